"""User-visible constants with the values of x86-64 Linux, and the VM_* flag bits.

The values come from the uapi headers (asm-generic/mman-common.h, asm/mman.h, linux/mman.h)
and include/linux/mm.h. The flag groups are named after their kernel counterparts.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING

PAGE_SHIFT = 12
PAGE_SIZE = 1 << PAGE_SHIFT
PAGE_MASK = ~(PAGE_SIZE - 1)

TASK_SIZE = 0x7FFFFFFFF000
DEFAULT_MMAP_MIN_ADDR = 4096
DEFAULT_MAX_MAP_COUNT = 65530
STACK_GUARD_GAP = 256 << PAGE_SHIFT
MIN_MMAP_GAP = 128 << 20
DEFAULT_RLIMIT_STACK = 8 << 20
DEFAULT_MMAP_BASE = TASK_SIZE - MIN_MMAP_GAP
PMD_SIZE = 2 << 20

PROT_NONE = 0x0
PROT_READ = 0x1
PROT_WRITE = 0x2
PROT_EXEC = 0x4
PROT_SEM = 0x8
PROT_GROWSDOWN = 0x01000000
PROT_GROWSUP = 0x02000000

MAP_SHARED = 0x01
MAP_PRIVATE = 0x02
MAP_SHARED_VALIDATE = 0x03
MAP_DROPPABLE = 0x08
MAP_TYPE = 0x0F
MAP_FIXED = 0x10
MAP_ANONYMOUS = 0x20
MAP_ANON = MAP_ANONYMOUS
MAP_32BIT = 0x40
MAP_ABOVE4G = 0x80
MAP_GROWSDOWN = 0x0100
MAP_DENYWRITE = 0x0800
MAP_EXECUTABLE = 0x1000
MAP_LOCKED = 0x2000
MAP_NORESERVE = 0x4000
MAP_POPULATE = 0x8000
MAP_NONBLOCK = 0x10000
MAP_STACK = 0x20000
MAP_HUGETLB = 0x40000
MAP_SYNC = 0x80000
MAP_FIXED_NOREPLACE = 0x100000
MAP_UNINITIALIZED = 0x4000000
MAP_FILE = 0
MAP_HUGE_SHIFT = 26
MAP_HUGE_2MB = 21 << MAP_HUGE_SHIFT
MAP_HUGE_1GB = 30 << MAP_HUGE_SHIFT

#: Flags that MAP_SHARED keeps and MAP_SHARED_VALIDATE accepts (LEGACY_MAP_MASK; x86-64 has
#: MAP_32BIT and MAP_ABOVE4G, the host accepts both). MAP_FIXED_NOREPLACE is not in it.
LEGACY_MAP_MASK = (
    MAP_SHARED | MAP_PRIVATE | MAP_FIXED | MAP_ANONYMOUS | MAP_DENYWRITE | MAP_EXECUTABLE
    | MAP_UNINITIALIZED | MAP_GROWSDOWN | MAP_LOCKED | MAP_NORESERVE | MAP_POPULATE
    | MAP_NONBLOCK | MAP_STACK | MAP_HUGETLB | MAP_32BIT | MAP_ABOVE4G | MAP_HUGE_2MB
    | MAP_HUGE_1GB
)

MREMAP_MAYMOVE = 1
MREMAP_FIXED = 2
MREMAP_DONTUNMAP = 4

MADV_NORMAL = 0
MADV_RANDOM = 1
MADV_SEQUENTIAL = 2
MADV_WILLNEED = 3
MADV_DONTNEED = 4
MADV_FREE = 8
MADV_REMOVE = 9
MADV_DONTFORK = 10
MADV_DOFORK = 11
MADV_MERGEABLE = 12
MADV_UNMERGEABLE = 13
MADV_HUGEPAGE = 14
MADV_NOHUGEPAGE = 15
MADV_DONTDUMP = 16
MADV_DODUMP = 17
MADV_WIPEONFORK = 18
MADV_KEEPONFORK = 19
MADV_COLD = 20
MADV_PAGEOUT = 21
MADV_POPULATE_READ = 22
MADV_POPULATE_WRITE = 23
MADV_DONTNEED_LOCKED = 24
MADV_COLLAPSE = 25
MADV_HWPOISON = 100
MADV_SOFT_OFFLINE = 101
MADV_GUARD_INSTALL = 102
MADV_GUARD_REMOVE = 103

MLOCK_ONFAULT = 0x01
MCL_CURRENT = 1
MCL_FUTURE = 2
MCL_ONFAULT = 4

PKEY_DISABLE_ACCESS = 0x1
PKEY_DISABLE_WRITE = 0x2

O_RDONLY = 0o0
O_WRONLY = 0o1
O_RDWR = 0o2
O_ACCMODE = 0o3


class VM(enum.IntFlag):
    """vm_flags bits of x86-64 (include/linux/mm.h); the bit order is smaps' VmFlags order."""

    NONE = 0
    READ = 1 << 0
    WRITE = 1 << 1
    EXEC = 1 << 2
    SHARED = 1 << 3
    MAYREAD = 1 << 4
    MAYWRITE = 1 << 5
    MAYEXEC = 1 << 6
    MAYSHARE = 1 << 7
    GROWSDOWN = 1 << 8
    UFFD_MISSING = 1 << 9
    PFNMAP = 1 << 10
    MAYBE_GUARD = 1 << 11
    UFFD_WP = 1 << 12
    LOCKED = 1 << 13
    IO = 1 << 14
    SEQ_READ = 1 << 15
    RAND_READ = 1 << 16
    DONTCOPY = 1 << 17
    DONTEXPAND = 1 << 18
    LOCKONFAULT = 1 << 19
    ACCOUNT = 1 << 20
    NORESERVE = 1 << 21
    HUGETLB = 1 << 22
    SYNC = 1 << 23
    ARCH_1 = 1 << 24
    WIPEONFORK = 1 << 25
    DONTDUMP = 1 << 26
    SOFTDIRTY = 1 << 27
    MIXEDMAP = 1 << 28
    HUGEPAGE = 1 << 29
    NOHUGEPAGE = 1 << 30
    MERGEABLE = 1 << 31
    PKEY_BIT0 = 1 << 32
    PKEY_BIT1 = 1 << 33
    PKEY_BIT2 = 1 << 34
    PKEY_BIT3 = 1 << 35
    SHADOW_STACK = 1 << 37
    ALLOW_ANY_UNCACHED = 1 << 39
    DROPPABLE = 1 << 40
    UFFD_MINOR = 1 << 41
    SEALED = 1 << 42

    # Flag arithmetic is on every hot path of the model; enum.Flag's operators cost ~0.5 us
    # each, int's ~10 ns. Combinations are therefore plain ints at run time (wrap them in
    # VM() to print); type checkers keep seeing VM, which is an int.
    if not TYPE_CHECKING:
        __and__ = int.__and__
        __rand__ = int.__rand__
        __or__ = int.__or__
        __ror__ = int.__ror__
        __xor__ = int.__xor__
        __rxor__ = int.__rxor__
        __invert__ = int.__invert__


#: smaps mnemonics (fs/proc/task_mmu.c show_smap_vma_flags); "" means "not printed".
VM_MNEMONICS: dict[int, str] = {
    0: "rd", 1: "wr", 2: "ex", 3: "sh", 4: "mr", 5: "mw", 6: "me", 7: "ms", 8: "gd",
    9: "um", 10: "pf", 11: "gu", 12: "uw", 13: "lo", 14: "io", 15: "sr", 16: "rr",
    17: "dc", 18: "de", 19: "lf", 20: "ac", 21: "nr", 22: "ht", 23: "sf", 24: "ar",
    25: "wf", 26: "dd", 27: "sd", 28: "mm", 29: "hg", 30: "nh", 31: "mg", 32: "", 33: "",
    34: "", 35: "", 37: "ss", 40: "dp", 41: "ui", 42: "sl",
}

# The host has CONFIG_MEM_SOFT_DIRTY off, so VM_SOFTDIRTY is 0 there; the sticky set is GUARD.
VM_ACCESS_FLAGS = VM.READ | VM.WRITE | VM.EXEC
VM_SPECIAL = VM.IO | VM.DONTEXPAND | VM.PFNMAP | VM.MIXEDMAP
VMA_REMAP_FLAGS = VM.IO | VM.PFNMAP | VM.DONTEXPAND | VM.DONTDUMP
VM_STICKY = VM.MAYBE_GUARD
VM_IGNORE_MERGE = VM_STICKY
VM_LOCKED_MASK = VM.LOCKED | VM.LOCKONFAULT
VM_STARTGAP_FLAGS = VM.GROWSDOWN | VM.SHADOW_STACK
VM_DATA_DEFAULT_FLAGS = VM.READ | VM.WRITE | VM.MAYREAD | VM.MAYWRITE | VM.MAYEXEC
VM_STACK_FLAGS = VM.GROWSDOWN | VM_DATA_DEFAULT_FLAGS | VM.ACCOUNT
VM_INIT_DEF_MASK = VM.NOHUGEPAGE
VM_STACK = VM.GROWSDOWN
VM_PKEY_SHIFT = 32
VM_PKEY_MASK = VM.PKEY_BIT0 | VM.PKEY_BIT1 | VM.PKEY_BIT2 | VM.PKEY_BIT3
