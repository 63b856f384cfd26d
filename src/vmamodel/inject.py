"""Deterministic fault injection at the places the kernel's mapping paths can fail.

``with mm.inject("vma_alloc", nth=1):`` makes the first allocation of a VMA inside the block
fail with ENOMEM. Call sites guard with ``if mm.injector.armed:`` so that an unused injector
costs one attribute test.
"""

from __future__ import annotations

import errno as errno_mod
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from vmamodel.mm_types import InjectorCore

#: Every named failure point and the errno the kernel returns there by default.
FAILURE_POINTS: dict[str, int] = {
    "vma_alloc": errno_mod.ENOMEM,  # vm_area_alloc() in __mmap_new_vma
    "vma_prealloc": errno_mod.ENOMEM,  # vma_iter_prealloc() (maple tree nodes)
    "split_alloc": errno_mod.ENOMEM,  # vm_area_dup() in __split_vma
    "merge_alloc": errno_mod.ENOMEM,  # vma_iter_prealloc() in vma_expand / commit_merge
    "anon_vma_alloc": errno_mod.ENOMEM,  # __anon_vma_prepare()
    "vm_enough_memory": errno_mod.ENOMEM,  # security_vm_enough_memory_mm() (accounting)
    "max_map_count": errno_mod.ENOMEM,  # the map_count checks, as if the limit were reached
    "munmap_gather": errno_mod.ENOMEM,  # a split in vms_gather_munmap_vmas (MAP_FIXED unmap)
    "shmem_zero_setup": errno_mod.ENOMEM,  # shmem_zero_setup() of a shared anonymous mapping
    "mmap_prepare": errno_mod.EINVAL,  # the driver's f_op->mmap_prepare
    "mmap": errno_mod.EINVAL,  # the driver's legacy f_op->mmap
    "action_prepare": errno_mod.EINVAL,  # mmap_action_prepare()
    "action_complete": errno_mod.ENOMEM,  # mmap_action_complete(): remap / insert pages
    "mapped": errno_mod.ENOMEM,  # vm_ops->mapped
    "success_hook": errno_mod.EINVAL,  # action->success_hook (v4)
    "may_split": errno_mod.EINVAL,  # vm_ops->may_split
    "vm_mremap": errno_mod.EINVAL,  # vm_ops->mremap
    "copy_vma": errno_mod.ENOMEM,  # copy_vma() in an mremap move
    "mt_dup": errno_mod.ENOMEM,  # __mt_dup() in dup_mmap: fork fails before any copy
    "fork_vma_dup": errno_mod.ENOMEM,  # vm_area_dup() of one VMA in dup_mmap
    "anon_vma_fork": errno_mod.ENOMEM,  # anon_vma_fork() of one VMA in dup_mmap
    "copy_page_range": errno_mod.ENOMEM,  # copy_page_range() after the copy's ->open
    "move_page_tables": errno_mod.ENOMEM,  # move_page_tables() moving less than asked (mremap)
}


@dataclass(slots=True)
class _Rule:
    point: str
    nth: int
    errno: int
    repeat: bool
    seen: int = 0
    fired: int = 0


class Injector(InjectorCore):
    """Counts how often each armed point is reached and fails the chosen hits (the switch
    ``armed`` and ``check`` are vmamodel.mm_types.InjectorCore, native in the compiled
    build)."""

    __slots__ = ()

    def add(
        self, point: str, nth: int = 1, errno: int | None = None, repeat: bool = False
    ) -> _Rule:
        if point not in FAILURE_POINTS:
            raise ValueError(f"unknown failure point {point!r}; known: {sorted(FAILURE_POINTS)}")
        if isinstance(nth, bool) or not isinstance(nth, int) or nth < 1:
            raise ValueError(f"inject(nth={nth!r}): nth counts from 1 (an int)")
        if errno is not None and (isinstance(errno, bool) or not isinstance(errno, int)
                                  or not 0 < errno < 4096):
            raise ValueError(f"inject(errno={errno!r}): an errno in [1, 4095] (MAX_ERRNO), "
                             "or None for the point's own")
        if not isinstance(repeat, bool):
            raise ValueError(f"inject(repeat={repeat!r}): True or False")
        rule = _Rule(point, nth, FAILURE_POINTS[point] if errno is None else errno, repeat)
        self._rules.append(rule)
        self.armed = True
        return rule

    def remove(self, rule: _Rule) -> None:
        self._rules.remove(rule)
        self.armed = bool(self._rules)

    @contextmanager
    def inject(
        self, point: str, nth: int = 1, errno: int | None = None, repeat: bool = False
    ) -> Iterator[_Rule]:
        rule = self.add(point, nth, errno, repeat)
        try:
            yield rule
        finally:
            self.remove(rule)
