"""include/linux/mman.h: how mmap's PROT_* and MAP_* arguments become vm_flags bits."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from vmamodel.constants import (
    MAP_GROWSDOWN,
    MAP_LOCKED,
    MAP_STACK,
    MAP_SYNC,
    PROT_EXEC,
    PROT_READ,
    PROT_WRITE,
    VM_EXEC,
    VM_GROWSDOWN,
    VM_LOCKED,
    VM_NOHUGEPAGE,
    VM_PKEY_SHIFT,
    VM_READ,
    VM_SYNC,
    VM_WRITE,
)

if TYPE_CHECKING:
    from vmamodel.file import File
    from vmamodel.mm_types import MmStruct

_PROT_RWX: Final = PROT_READ | PROT_WRITE | PROT_EXEC
#: The MAP_* flags calc_vm_flag_bits() turns into VM_* flags (the usual mmap has none).
MAP_TO_VM_FLAGS: Final = MAP_GROWSDOWN | MAP_LOCKED | MAP_SYNC | MAP_STACK


def _prot_to_vm(prot: int) -> int:
    """_calc_vm_trans() of PROT_READ/WRITE/EXEC to VM_READ/WRITE/EXEC."""
    flags = 0
    if prot & PROT_READ:
        flags |= VM_READ
    if prot & PROT_WRITE:
        flags |= VM_WRITE
    if prot & PROT_EXEC:
        flags |= VM_EXEC
    return flags


#: the VM_* bits of each combination of PROT_READ/WRITE/EXEC, indexed by those bits
_PROT_BITS: Final = tuple(_prot_to_vm(prot) for prot in range(_PROT_RWX + 1))


def calc_vm_prot_bits(prot: int, pkey: int = 0) -> int:
    """calc_vm_prot_bits(): PROT_* to VM_READ/WRITE/EXEC, plus the protection key bits
    (arch_calc_vm_prot_bits on x86)."""
    return _PROT_BITS[prot & _PROT_RWX] | (pkey << VM_PKEY_SHIFT)


def calc_vm_flag_bits(mm: MmStruct, file: File | None, flags: int) -> int:
    """calc_vm_flag_bits(): MAP_GROWSDOWN, MAP_LOCKED, MAP_SYNC and MAP_STACK (which asks for
    VM_NOHUGEPAGE on THP kernels), taken from the raw flags."""
    if not flags & MAP_TO_VM_FLAGS:  # the usual mmap: none of them
        return 0
    vm_flags = 0
    if flags & MAP_GROWSDOWN:
        vm_flags |= VM_GROWSDOWN
    if flags & MAP_LOCKED:
        vm_flags |= VM_LOCKED
    if flags & MAP_SYNC:
        vm_flags |= VM_SYNC
    if flags & MAP_STACK and mm.thp_enabled:
        vm_flags |= VM_NOHUGEPAGE
    return vm_flags
