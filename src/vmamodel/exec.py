"""execve(2) as the VMA layer sees it (fs/exec.c): the end of one address space and the
start of another.

begin_new_exec → exec_mmap puts the new mm in place and drops the old one, whose VMAs all
go (exit_mmap: every ->close runs, SysV attaches are detached, userfaultfd registrations
and aio rings vanish with them). The new mm starts from mm_alloc(): nothing of the old one
but what the kernel carries across (MMF_INIT_MASK: MMF_VM_MERGE_ANY of PR_SET_MEMORY_MERGE,
so the new image's VMAs are KSM-mergeable too), the resource limits, and the system-wide
state (hugetlb pool, IPC namespace). mlockall(MCL_FUTURE), protection keys and memory
policies of VMAs do not survive.

What the loader maps (ELF segments, stack, vdso, heap) is not modelled call by call: the
new address space is seeded from the new image's /proc/PID/maps (and smaps) as the kernel
built it (``AddressSpace.from_maps``), or left empty when none is given.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vmamodel.fork import exit_mmap
from vmamodel.snapshot import address_space_from_maps

if TYPE_CHECKING:
    from vmamodel.mm import AddressSpace

#: The constructor arguments that describe the kernel and the process's limits: execve
#: keeps them (the layout, mmap_base and the break, belong to the new image).
CARRIED = (
    "task_size", "mmap_min_addr", "max_map_count", "rlimit_stack", "rlimit_as",
    "rlimit_data", "rlimit_memlock", "cap_ipc_lock", "cap_sys_rawio", "overcommit_memory",
    "totalram_pages", "thp_enabled", "shmem_huge", "read_implies_exec", "possible_cpus",
)


def carried_kwargs(old: AddressSpace) -> dict[str, Any]:
    """The old mm's configuration that the new one keeps."""
    kwargs = {name: getattr(old, name) for name in CARRIED if hasattr(old, name)}
    kwargs["profile"] = old.profile
    kwargs["pkeys"] = old.pkeys_enabled
    kwargs["anon_vma_name"] = old.anon_vma_name_enabled
    kwargs["numa_nodes"] = old.mems_allowed.bit_length()
    return kwargs


def do_execve(
    old: AddressSpace, maps: str | None, smaps: str | None, **kwargs: Any
) -> AddressSpace:
    """exec_mmap(): tear the old address space down (exit_mmap) and return the new one,
    seeded from ``maps``/``smaps`` of the new image, with MMF_VM_MERGE_ANY carried over.
    ``kwargs`` override the carried configuration (e.g. ``mmap_base``)."""
    config = {**carried_kwargs(old), **kwargs}
    cls = type(old)
    if maps is None:
        new = cls(**config)
    else:
        new = address_space_from_maps(cls, maps, smaps=smaps, **config)
    new.ksm_merge_any = old.ksm_merge_any
    new.hugetlb_pool = old.hugetlb_pool
    new.ipc_ns = old.ipc_ns
    exit_mmap(old)
    return new
