"""A program that fragments its memory the way guard-page allocators do: one 4 MiB anonymous
reservation, then every 4th page made PROT_NONE (an overflow guard), and a few W^X flips.
Used by the README's "Why does my process have so many VMAs?" walk-through."""

import ctypes

PAGE = 4096
PROT_NONE, PROT_READ, PROT_WRITE, PROT_EXEC = 0, 1, 2, 4
libc = ctypes.CDLL(None, use_errno=True)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                      ctypes.c_int, ctypes.c_long)
libc.mprotect.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)

pages = 1024
base = libc.mmap(None, pages * PAGE, PROT_READ | PROT_WRITE, 0x22, -1, 0)  # private anon
for i in range(0, pages, 4):
    ctypes.memset(base + i * PAGE, 1, 16)  # the allocator hands out the page
    libc.mprotect(base + (i + 3) * PAGE, PAGE, PROT_NONE)  # and guards the next
for i in range(0, 64, 8):  # a JIT flips some code pages to r-x
    libc.mprotect(base + i * PAGE, PAGE, PROT_READ | PROT_EXEC)
print("fragmented", pages // 4, "guards")
