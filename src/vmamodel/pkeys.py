"""Memory protection keys on x86 (arch/x86/include/asm/pkeys.h, arch/x86/mm/pkeys.c,
arch/x86/kernel/fpu/xstate.c) and the pkey_alloc/pkey_free/pkey_mprotect system calls
(mm/mprotect.c).

State lives in the AddressSpace: ``pkey_allocation_map`` and ``_execute_only_pkey`` are
mm->context's fields, ``pkru`` is the PKRU register of the (single) calling thread. Without
PKU the context is left zeroed by the kernel (no key allocated, execute-only key "0"), which
is why the first pkey_alloc() of such an mm fails with EINVAL and every later one with ENOSPC.
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

from vmamodel.abi import as_int
from vmamodel.constants import PKEY_DISABLE_ACCESS, PKEY_DISABLE_WRITE
from vmamodel.hooks import oserror

if TYPE_CHECKING:
    from vmamodel.mm import AddressSpace

PKEY_ACCESS_MASK = PKEY_DISABLE_ACCESS | PKEY_DISABLE_WRITE
PKRU_AD_BIT = 0x1
PKRU_WD_BIT = 0x2
PKRU_BITS_PER_PKEY = 2
#: init_pkru_value: after exec every key but 0 is access-disabled.
INIT_PKRU_VALUE = sum(PKRU_AD_BIT << (key * PKRU_BITS_PER_PKEY) for key in range(1, 16))
U64 = (1 << 64) - 1


def arch_max_pkey(mm: AddressSpace) -> int:
    """arch_max_pkey(): 16 keys with PKU, only key 0 without."""
    return 16 if mm.pkeys_enabled else 1


def mm_pkey_is_allocated(mm: AddressSpace, pkey: int) -> bool:
    """mm_pkey_is_allocated(): in range, set in the map, and not the execute-only key."""
    if pkey < 0 or pkey >= arch_max_pkey(mm) or pkey == mm._execute_only_pkey:
        return False
    return bool(mm.pkey_allocation_map & (1 << pkey))


def mm_pkey_alloc(mm: AddressSpace) -> int:
    """mm_pkey_alloc(): the lowest clear bit of the map, now set; -1 when all are taken."""
    if mm.pkey_allocation_map == (1 << arch_max_pkey(mm)) - 1:
        return -1
    pkey = (~mm.pkey_allocation_map & (mm.pkey_allocation_map + 1)).bit_length() - 1
    mm.pkey_allocation_map |= 1 << pkey
    return pkey


def mm_pkey_free(mm: AddressSpace, pkey: int) -> None:
    """mm_pkey_free(): EINVAL for a key mm_pkey_is_allocated() does not accept."""
    if not mm_pkey_is_allocated(mm, pkey):
        raise oserror(errno.EINVAL, f"pkey_free: key {pkey} is not allocated")
    mm.pkey_allocation_map &= ~(1 << pkey)


def pkru_allows(pkru: int, pkey: int, write: bool) -> bool:
    """__pkru_allows_read() / __pkru_allows_write(): AD denies both, WD denies writes."""
    deny = PKRU_AD_BIT | PKRU_WD_BIT if write else PKRU_AD_BIT
    return not pkru & (deny << (pkey * PKRU_BITS_PER_PKEY))


def arch_set_user_pkey_access(mm: AddressSpace, pkey: int, init_val: int) -> None:
    """arch_set_user_pkey_access(): put the rights into the thread's PKRU; EINVAL without
    PKU."""
    if not mm.pkeys_enabled:
        raise oserror(errno.EINVAL, "pkey_alloc: no PKU")
    bits = (PKRU_AD_BIT if init_val & PKEY_DISABLE_ACCESS else 0) | (
        PKRU_WD_BIT if init_val & PKEY_DISABLE_WRITE else 0
    )
    shift = pkey * PKRU_BITS_PER_PKEY
    mm.pkru = mm.pkru & ~((PKRU_AD_BIT | PKRU_WD_BIT) << shift) | bits << shift


def mm_execute_only_pkey(mm: AddressSpace) -> int:
    """__execute_only_pkey(): allocate the execute-only key on first use and make sure PKRU
    denies data access through it; -1 when no key is free."""
    pkey = mm._execute_only_pkey
    fresh = pkey == -1
    if fresh:
        pkey = mm_pkey_alloc(mm)
        if pkey < 0:
            return -1
    elif not pkru_allows(mm.pkru, pkey, False):
        return pkey
    arch_set_user_pkey_access(mm, pkey, PKEY_DISABLE_ACCESS)
    if fresh:
        mm._execute_only_pkey = pkey
    return pkey


def sys_pkey_alloc(mm: AddressSpace, flags: int, init_val: int) -> int:
    """pkey_alloc(2): no flags exist; the rights go to PKRU. A failure to set them gives the
    key back, which fails silently for a key that mm_pkey_free() refuses (without PKU the
    first call thus leaves key 0 marked allocated, and later calls get ENOSPC)."""
    if flags & U64:
        raise oserror(errno.EINVAL, "pkey_alloc: flags")
    if init_val & U64 & ~PKEY_ACCESS_MASK:
        raise oserror(errno.EINVAL, "pkey_alloc: unknown access rights")
    pkey = mm_pkey_alloc(mm)
    if pkey == -1:
        raise oserror(errno.ENOSPC, "pkey_alloc: no key free")
    try:
        arch_set_user_pkey_access(mm, pkey, init_val)
    except OSError:
        if mm_pkey_is_allocated(mm, pkey):
            mm_pkey_free(mm, pkey)
        raise
    return pkey


def sys_pkey_free(mm: AddressSpace, pkey: int) -> None:
    """pkey_free(2): PKRU and the VMAs that still carry the key are left as they are."""
    mm_pkey_free(mm, as_int(pkey))


def check_pkey(mm: AddressSpace, pkey: int) -> None:
    """do_mprotect_pkey(): a key other than -1 must be one pkey_alloc() handed out (key 0
    counts with PKU)."""
    if pkey != -1 and not mm_pkey_is_allocated(mm, pkey):
        raise oserror(errno.EINVAL, f"pkey_mprotect: key {pkey} is not allocated")
