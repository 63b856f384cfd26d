"""Memory accounting and limits: VM_ACCOUNT charging (mm/util.c __vm_enough_memory),
may_expand_vm and vm_stat_account (mm/mmap.c), and the mapping-kind predicates of
mm/internal.h."""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING, Final

from vmamodel.constants import PAGE_SHIFT, VM_EXEC, VM_NORESERVE, VM_SHARED, VM_STACK, VM_WRITE
from vmamodel.hooks import maybe_inject, oserror

if TYPE_CHECKING:
    from vmamodel.file import File
    from vmamodel.mm_types import MmStruct

#: vm.overcommit_memory. Final: under mypyc a plain module global is a dict lookup per read.
OVERCOMMIT_GUESS: Final = 0
OVERCOMMIT_ALWAYS: Final = 1
OVERCOMMIT_NEVER: Final = 2

#: The masks of the mapping-kind tests below, each one constant (Final: folded when
#: compiled; in the pure build a combination written out is combined again on every call,
#: into a new int when the result passes 256).
EXEC_MAPPING_MASK: Final = VM_EXEC | VM_WRITE | VM_STACK
DATA_MAPPING_MASK: Final = VM_WRITE | VM_SHARED | VM_STACK
ACCOUNTABLE_MASK: Final = VM_NORESERVE | VM_SHARED | VM_WRITE
#: The flags that choose the exec/stack/data split of vm_stat_account().
STAT_SPLIT_MASK: Final = VM_EXEC | VM_WRITE | VM_SHARED | VM_STACK


def is_exec_mapping(flags: int) -> bool:
    """is_exec_mapping(): executable, not writable, not a stack."""
    return flags & EXEC_MAPPING_MASK == VM_EXEC


def is_stack_mapping(flags: int) -> bool:
    """is_stack_mapping()."""
    return flags & VM_STACK == VM_STACK


def is_data_mapping(flags: int) -> bool:
    """is_data_mapping(): private writable, not a stack."""
    return flags & DATA_MAPPING_MASK == VM_WRITE


def accountable_mapping(file: File | None, flags: int) -> bool:
    """accountable_mapping() (mm/vma.c): private writable and not VM_NORESERVE; hugetlb
    files are accounted in huge pages instead (is_file_hugepages)."""
    if file is not None and file.kind == "hugetlb":
        return False
    return flags & ACCOUNTABLE_MASK == VM_WRITE


def may_expand_vm(mm: MmStruct, flags: int, npages: int) -> bool:
    """may_expand_vm(): RLIMIT_AS on total_vm and RLIMIT_DATA on data mappings.

    ``pages > limit >> PAGE_SHIFT`` is tested as ``pages << PAGE_SHIFT > limit`` (the same for
    whole pages): an unlimited rlimit (RLIM_INFINITY) is a 64-bit int, which shifting would
    allocate anew on every call in the compiled build."""
    if (mm.total_vm + npages) << PAGE_SHIFT > mm.rlimit_as:
        return False
    # is_data_mapping(), written out (this runs on every mmap).
    if (flags & DATA_MAPPING_MASK == VM_WRITE
            and (mm.data_vm + npages) << PAGE_SHIFT > mm.rlimit_data):
        # The Valgrind exception: a zero soft limit with a hard limit that allows it.
        return mm.rlimit_data == 0 and mm.data_vm + npages <= mm.rlimit_data_max >> PAGE_SHIFT
    return True


def vm_stat_account(mm: MmStruct, flags: int, npages: int) -> None:
    """vm_stat_account(): total_vm and the exec/stack/data split (the predicates written
    out: this runs on every mmap)."""
    mm.total_vm += npages
    if flags & EXEC_MAPPING_MASK == VM_EXEC:  # is_exec_mapping()
        mm.exec_vm += npages
    elif flags & VM_STACK == VM_STACK:  # is_stack_mapping()
        mm.stack_vm += npages
    elif flags & DATA_MAPPING_MASK == VM_WRITE:  # is_data_mapping()
        mm.data_vm += npages


def vm_stat_reaccount(mm: MmStruct, oldflags: int, newflags: int, npages: int) -> None:
    """vm_stat_account(oldflags, -npages) then vm_stat_account(newflags, npages), the pair
    mprotect_fixup() makes; only when the flags that choose the exec/stack/data split
    changed (otherwise the two cancel out)."""
    if (oldflags ^ newflags) & STAT_SPLIT_MASK:
        vm_stat_account(mm, oldflags, -npages)
        vm_stat_account(mm, newflags, npages)


def security_vm_enough_memory(mm: MmStruct, pages: int) -> None:
    """__vm_enough_memory(): charge ``pages`` to the commit counter or fail with ENOMEM.

    The heuristic mode (the default, as on the host) refuses a single request larger than
    RAM plus swap; "never" enforces the commit limit; "always" never refuses.
    """
    if mm.injector.armed:
        maybe_inject(mm, "vm_enough_memory")
    mode = mm.overcommit_memory
    if mode == OVERCOMMIT_GUESS and pages > mm.totalram_pages + mm.total_swap_pages:
        raise oserror(errno.ENOMEM, "__vm_enough_memory: request larger than RAM + swap")
    if mode == OVERCOMMIT_NEVER and mm.committed_pages + pages > mm.commit_limit_pages:
        raise oserror(errno.ENOMEM, "__vm_enough_memory: over the commit limit")
    mm.committed_pages += pages


def vm_unacct_memory(mm: MmStruct, pages: int) -> None:
    """vm_unacct_memory()."""
    mm.committed_pages -= pages
