"""The page size and the arithmetic that rounds to it: PAGE_SHIFT, PAGE_SIZE, PAGE_MASK
(arch/x86/include/asm/page_types.h), PAGE_ALIGN() (include/linux/mm.h) and PFN_UP()
(include/linux/pfn.h).

A module of its own so that the compiled build compiles it with the hot modules (the call
paths round lengths on every call), while vmamodel.constants, which re-exports everything
here, stays plain Python. Standard library only, no vmamodel imports.
"""

from __future__ import annotations

from typing import Final

PAGE_SHIFT: Final = 12
PAGE_SIZE: Final = 1 << PAGE_SHIFT
PAGE_MASK: Final = ~(PAGE_SIZE - 1)
#: The largest unsigned long: syscall arguments are cut to it, and ranges past it wrap.
ULONG_MAX: Final = (1 << 64) - 1


def page_align(length: int) -> int:
    """PAGE_ALIGN() on an unsigned long: rounds up to a page, and wraps to 0 past the top."""
    if length % PAGE_SIZE:  # (an aligned length, the usual one, makes no new int)
        length = (length + PAGE_SIZE - 1) & PAGE_MASK
    # Masked with ULONG_MAX only when outside [0, 2**64): the mask is a 64-bit int, which the
    # compiled build would combine through a new int object on every call.
    return length & ULONG_MAX if length >> 64 else length


def pfn_up(nbytes: int) -> int:
    """PFN_UP(): how many pages ``nbytes`` bytes take, the last one partly."""
    return (nbytes + PAGE_SIZE - 1) >> PAGE_SHIFT
