"""User-visible constants with the values of x86-64 Linux, and the VM_* flag bits.

The values come from the uapi headers (asm-generic/mman-common.h, asm/mman.h, linux/mman.h)
and include/linux/mm.h. The flag groups are named after their kernel counterparts.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Final

# The page size and its rounding helpers live in vmamodel.page (compiled in the compiled build).
from vmamodel.page import PAGE_MASK as PAGE_MASK
from vmamodel.page import PAGE_SHIFT as PAGE_SHIFT
from vmamodel.page import PAGE_SIZE as PAGE_SIZE
from vmamodel.page import ULONG_MAX as ULONG_MAX
from vmamodel.page import page_align as page_align
from vmamodel.page import pfn_up as pfn_up

TASK_SIZE: Final = 0x7FFFFFFFF000
DEFAULT_MMAP_MIN_ADDR: Final = 4096
DEFAULT_MAX_MAP_COUNT: Final = 65530
STACK_GUARD_GAP: Final = 256 << PAGE_SHIFT
MIN_MMAP_GAP: Final = 128 << 20
DEFAULT_RLIMIT_STACK: Final = 8 << 20
DEFAULT_MMAP_BASE: Final = TASK_SIZE - MIN_MMAP_GAP
PMD_SIZE: Final = 2 << 20

# Page cache modes carried in page_prot above the protection_map index of vm_get_page_prot().
# The kernel keeps them across vma_set_page_prot() (pgprot_modify keeps _PAGE_CACHE_MASK).
PGPROT_CACHE_SHIFT: Final = 16
PGPROT_CACHE_MASK: Final = 0x3 << PGPROT_CACHE_SHIFT
PGPROT_WB: Final = 0
PGPROT_UC: Final = 0x1 << PGPROT_CACHE_SHIFT
PGPROT_WC: Final = 0x2 << PGPROT_CACHE_SHIFT

PROT_NONE: Final = 0x0
PROT_READ: Final = 0x1
PROT_WRITE: Final = 0x2
PROT_EXEC: Final = 0x4
PROT_SEM: Final = 0x8
PROT_GROWSDOWN: Final = 0x01000000
PROT_GROWSUP: Final = 0x02000000

MAP_SHARED: Final = 0x01
MAP_PRIVATE: Final = 0x02
MAP_SHARED_VALIDATE: Final = 0x03
MAP_DROPPABLE: Final = 0x08
MAP_TYPE: Final = 0x0F
MAP_FIXED: Final = 0x10
MAP_ANONYMOUS: Final = 0x20
MAP_ANON: Final = MAP_ANONYMOUS
MAP_32BIT: Final = 0x40
MAP_ABOVE4G: Final = 0x80
MAP_GROWSDOWN: Final = 0x0100
MAP_DENYWRITE: Final = 0x0800
MAP_EXECUTABLE: Final = 0x1000
MAP_LOCKED: Final = 0x2000
MAP_NORESERVE: Final = 0x4000
MAP_POPULATE: Final = 0x8000
MAP_NONBLOCK: Final = 0x10000
MAP_STACK: Final = 0x20000
MAP_HUGETLB: Final = 0x40000
MAP_SYNC: Final = 0x80000
MAP_FIXED_NOREPLACE: Final = 0x100000
MAP_UNINITIALIZED: Final = 0x4000000
MAP_FILE: Final = 0
MAP_HUGE_SHIFT: Final = 26
MAP_HUGE_MASK: Final = 0x3F
MAP_HUGE_2MB: Final = 21 << MAP_HUGE_SHIFT
MAP_HUGE_1GB: Final = 30 << MAP_HUGE_SHIFT

#: Flags that MAP_SHARED keeps and MAP_SHARED_VALIDATE accepts (LEGACY_MAP_MASK; x86-64 has
#: MAP_32BIT and MAP_ABOVE4G, the host accepts both). MAP_FIXED_NOREPLACE is not in it.
LEGACY_MAP_MASK: Final = (
    MAP_SHARED | MAP_PRIVATE | MAP_FIXED | MAP_ANONYMOUS | MAP_DENYWRITE | MAP_EXECUTABLE
    | MAP_UNINITIALIZED | MAP_GROWSDOWN | MAP_LOCKED | MAP_NORESERVE | MAP_POPULATE
    | MAP_NONBLOCK | MAP_STACK | MAP_HUGETLB | MAP_32BIT | MAP_ABOVE4G | MAP_HUGE_2MB
    | MAP_HUGE_1GB
)

MREMAP_MAYMOVE: Final = 1
MREMAP_FIXED: Final = 2
MREMAP_DONTUNMAP: Final = 4

MADV_NORMAL: Final = 0
MADV_RANDOM: Final = 1
MADV_SEQUENTIAL: Final = 2
MADV_WILLNEED: Final = 3
MADV_DONTNEED: Final = 4
MADV_FREE: Final = 8
MADV_REMOVE: Final = 9
MADV_DONTFORK: Final = 10
MADV_DOFORK: Final = 11
MADV_MERGEABLE: Final = 12
MADV_UNMERGEABLE: Final = 13
MADV_HUGEPAGE: Final = 14
MADV_NOHUGEPAGE: Final = 15
MADV_DONTDUMP: Final = 16
MADV_DODUMP: Final = 17
MADV_WIPEONFORK: Final = 18
MADV_KEEPONFORK: Final = 19
MADV_COLD: Final = 20
MADV_PAGEOUT: Final = 21
MADV_POPULATE_READ: Final = 22
MADV_POPULATE_WRITE: Final = 23
MADV_DONTNEED_LOCKED: Final = 24
MADV_COLLAPSE: Final = 25
MADV_HWPOISON: Final = 100
MADV_SOFT_OFFLINE: Final = 101
MADV_GUARD_INSTALL: Final = 102
MADV_GUARD_REMOVE: Final = 103

PR_SET_MEMORY_MERGE: Final = 67
PR_GET_MEMORY_MERGE: Final = 68

MLOCK_ONFAULT: Final = 0x01
MCL_CURRENT: Final = 1
MCL_FUTURE: Final = 2
MCL_ONFAULT: Final = 4

PKEY_DISABLE_ACCESS: Final = 0x1
PKEY_DISABLE_WRITE: Final = 0x2

O_RDONLY: Final = 0o0
O_WRONLY: Final = 0o1
O_RDWR: Final = 0o2
O_ACCMODE: Final = 0o3


#: The vm_flags bits as plain int constants (VM_READ, ...): the hot paths test these, which
#: costs no attribute lookup, and which mypyc compiles to immediate values. VM names the
#: same bits for printing and parsing.
VM_NONE: Final = 0
VM_READ: Final = 1 << 0
VM_WRITE: Final = 1 << 1
VM_EXEC: Final = 1 << 2
VM_SHARED: Final = 1 << 3
VM_MAYREAD: Final = 1 << 4
VM_MAYWRITE: Final = 1 << 5
VM_MAYEXEC: Final = 1 << 6
VM_MAYSHARE: Final = 1 << 7
VM_GROWSDOWN: Final = 1 << 8
VM_UFFD_MISSING: Final = 1 << 9
VM_PFNMAP: Final = 1 << 10
VM_MAYBE_GUARD: Final = 1 << 11
VM_UFFD_WP: Final = 1 << 12
VM_LOCKED: Final = 1 << 13
VM_IO: Final = 1 << 14
VM_SEQ_READ: Final = 1 << 15
VM_RAND_READ: Final = 1 << 16
VM_DONTCOPY: Final = 1 << 17
VM_DONTEXPAND: Final = 1 << 18
VM_LOCKONFAULT: Final = 1 << 19
VM_ACCOUNT: Final = 1 << 20
VM_NORESERVE: Final = 1 << 21
VM_HUGETLB: Final = 1 << 22
VM_SYNC: Final = 1 << 23
VM_ARCH_1: Final = 1 << 24
VM_WIPEONFORK: Final = 1 << 25
VM_DONTDUMP: Final = 1 << 26
VM_SOFTDIRTY: Final = 1 << 27
VM_MIXEDMAP: Final = 1 << 28
VM_HUGEPAGE: Final = 1 << 29
VM_NOHUGEPAGE: Final = 1 << 30
VM_MERGEABLE: Final = 1 << 31
VM_PKEY_BIT0: Final = 1 << 32
VM_PKEY_BIT1: Final = 1 << 33
VM_PKEY_BIT2: Final = 1 << 34
VM_PKEY_BIT3: Final = 1 << 35
VM_SHADOW_STACK: Final = 1 << 37
VM_ALLOW_ANY_UNCACHED: Final = 1 << 39
VM_DROPPABLE: Final = 1 << 40
VM_UFFD_MINOR: Final = 1 << 41
VM_SEALED: Final = 1 << 42


class VM(enum.IntFlag):
    """vm_flags bits of x86-64 (include/linux/mm.h); the bit order is smaps' VmFlags order."""

    NONE = VM_NONE
    READ = VM_READ
    WRITE = VM_WRITE
    EXEC = VM_EXEC
    SHARED = VM_SHARED
    MAYREAD = VM_MAYREAD
    MAYWRITE = VM_MAYWRITE
    MAYEXEC = VM_MAYEXEC
    MAYSHARE = VM_MAYSHARE
    GROWSDOWN = VM_GROWSDOWN
    UFFD_MISSING = VM_UFFD_MISSING
    PFNMAP = VM_PFNMAP
    MAYBE_GUARD = VM_MAYBE_GUARD
    UFFD_WP = VM_UFFD_WP
    LOCKED = VM_LOCKED
    IO = VM_IO
    SEQ_READ = VM_SEQ_READ
    RAND_READ = VM_RAND_READ
    DONTCOPY = VM_DONTCOPY
    DONTEXPAND = VM_DONTEXPAND
    LOCKONFAULT = VM_LOCKONFAULT
    ACCOUNT = VM_ACCOUNT
    NORESERVE = VM_NORESERVE
    HUGETLB = VM_HUGETLB
    SYNC = VM_SYNC
    ARCH_1 = VM_ARCH_1
    WIPEONFORK = VM_WIPEONFORK
    DONTDUMP = VM_DONTDUMP
    SOFTDIRTY = VM_SOFTDIRTY
    MIXEDMAP = VM_MIXEDMAP
    HUGEPAGE = VM_HUGEPAGE
    NOHUGEPAGE = VM_NOHUGEPAGE
    MERGEABLE = VM_MERGEABLE
    PKEY_BIT0 = VM_PKEY_BIT0
    PKEY_BIT1 = VM_PKEY_BIT1
    PKEY_BIT2 = VM_PKEY_BIT2
    PKEY_BIT3 = VM_PKEY_BIT3
    SHADOW_STACK = VM_SHADOW_STACK
    ALLOW_ANY_UNCACHED = VM_ALLOW_ANY_UNCACHED
    DROPPABLE = VM_DROPPABLE
    UFFD_MINOR = VM_UFFD_MINOR
    SEALED = VM_SEALED

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
VM_ACCESS_FLAGS: Final = VM_READ | VM_WRITE | VM_EXEC
VM_SPECIAL: Final = VM_IO | VM_DONTEXPAND | VM_PFNMAP | VM_MIXEDMAP
VMA_REMAP_FLAGS: Final = VM_IO | VM_PFNMAP | VM_DONTEXPAND | VM_DONTDUMP
VM_STICKY: Final = VM_MAYBE_GUARD
VM_IGNORE_MERGE: Final = VM_STICKY
VM_UFFD_FLAGS: Final = VM_UFFD_MISSING | VM_UFFD_WP | VM_UFFD_MINOR
VM_LOCKED_MASK: Final = VM_LOCKED | VM_LOCKONFAULT
VM_STARTGAP_FLAGS: Final = VM_GROWSDOWN | VM_SHADOW_STACK
VM_DATA_DEFAULT_FLAGS: Final = VM_READ | VM_WRITE | VM_MAYREAD | VM_MAYWRITE | VM_MAYEXEC
VM_STACK_FLAGS: Final = VM_GROWSDOWN | VM_DATA_DEFAULT_FLAGS | VM_ACCOUNT
VM_INIT_DEF_MASK: Final = VM_NOHUGEPAGE
VM_STACK: Final = VM_GROWSDOWN
VM_PKEY_SHIFT: Final = 32
VM_PKEY_MASK: Final = VM_PKEY_BIT0 | VM_PKEY_BIT1 | VM_PKEY_BIT2 | VM_PKEY_BIT3
