"""Faulting a range in ahead of use (mm/gup.c __mm_populate, populate_vma_page_range): what
MAP_POPULATE, MAP_LOCKED and mlock do after the VMA work is finished."""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING, cast

from vmamodel.constants import (
    PAGE_SIZE,
    VM_ACCESS_FLAGS,
    VM_IO,
    VM_LOCKONFAULT,
    VM_PFNMAP,
    VM_SHARED,
    VM_WRITE,
)
from vmamodel.fault import handle_mm_fault
from vmamodel.hooks import oserror

if TYPE_CHECKING:
    from vmamodel.mm import AddressSpace
    from vmamodel.mm_types import MmStruct
    from vmamodel.vma import Vma


def populate_vma_page_range(mm: MmStruct, vma: Vma, start: int, end: int) -> None:
    """populate_vma_page_range(): write faults for private writable VMAs (so they get an
    anon_vma), read faults otherwise; an inaccessible VMA fails with EFAULT."""

    if vma.vm_flags & VM_LOCKONFAULT:
        return
    if not vma.vm_flags & VM_ACCESS_FLAGS:
        raise oserror(errno.EFAULT, "populate: PROT_NONE")
    write = vma.vm_flags & (VM_WRITE | VM_SHARED) == VM_WRITE
    # check_vma_flags(): GUP asks arch_vma_access_permitted() even with FOLL_FORCE.
    if cast("AddressSpace", mm).pkey_denies_access(vma.pkey, write):
        raise oserror(errno.EFAULT, "populate: protection key denies access")
    # A guard marker (MADV_GUARD_INSTALL) faults like SIGSEGV and stops the populate there.
    guard = mm.pages.guards.first_in(start, end)
    stop = end if guard is None else guard
    if write or vma.vm_file is not None:
        # One fault decides the VMA-level effect; pages past EOF stop the populate.
        for addr in range(start, stop, PAGE_SIZE):
            try:
                handle_mm_fault(mm, vma, addr, write)
            except OSError as exc:
                raise oserror(errno.EFAULT, "populate: fault failed") from exc
            if not vma.vm_file:
                if write and not vma.vm_flags & VM_SHARED:
                    mm.pages.anon.update(range(start, stop, PAGE_SIZE))
                break
    if stop < end:
        raise oserror(errno.EFAULT, "populate: guard marker")


def mm_populate(mm: MmStruct, start: int, length: int, ignore_errors: bool) -> None:
    """__mm_populate(): walk the VMAs of [start, start+length); skip VM_IO/VM_PFNMAP."""
    end = start + length
    addr = start
    while addr < end:
        vma = mm.tree.find(addr)
        if vma is None or vma.vm_start >= end:
            break
        addr = max(addr, vma.vm_start)
        stop = min(end, vma.vm_end)
        if not vma.vm_flags & (VM_IO | VM_PFNMAP):
            try:
                populate_vma_page_range(mm, vma, addr, stop)
            except OSError:
                if not ignore_errors:
                    raise
        addr = stop
