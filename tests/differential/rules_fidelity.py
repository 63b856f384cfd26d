"""Hypothesis rules for the calls of issue 13, mixed into a DifferentialMachine: KSM merge-any
(prctl PR_SET_MEMORY_MERGE), mbind with valid and invalid policies, userfaultfd
registration with two contexts, shmat/shmdt of two SysV segments and private/shared
/dev/zero mappings, over ranges near existing VMAs that cross VMAs and holes."""

from __future__ import annotations

import os
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import rule

import vmamodel as v
from vmamodel.devzero import open_dev_zero
from vmamodel.fuzz.generate import target_page
from vmamodel.mempolicy import (
    MPOL_BIND,
    MPOL_DEFAULT,
    MPOL_F_STATIC_NODES,
    MPOL_INTERLEAVE,
    MPOL_LOCAL,
    MPOL_PREFERRED,
)
from vmamodel.shm import IPC_CREAT, IPC_PRIVATE, SHM_RDONLY, SHM_REMAP, SHM_RND

from .machine import PAGES, P, at, outcome
from .rules_madvise import LENGTHS, TARGETS

POLICIES = st.sampled_from([
    (MPOL_DEFAULT, None, 0), (MPOL_BIND, 1, 64), (MPOL_BIND, 1, 64), (MPOL_PREFERRED, 1, 64),
    (MPOL_INTERLEAVE, 1, 64), (MPOL_BIND | MPOL_F_STATIC_NODES, 3, 64), (MPOL_LOCAL, None, 0),
    (MPOL_BIND, 2, 64), (MPOL_PREFERRED, None, 0), (9, 1, 64),
])
MODES = st.sampled_from([1, 1, 2, 3, 4, 0])
SHMFLAGS = st.sampled_from([0, 0, SHM_RDONLY, SHM_REMAP, SHM_REMAP, SHM_RND, 0o1])
_ZERO_STAT = os.stat("/dev/zero")
#: One /dev/zero open file for every example (the host child keeps its fd open).
ZERO = open_dev_zero(dev=(os.major(_ZERO_STAT.st_dev), os.minor(_ZERO_STAT.st_dev)),
                     ino=_ZERO_STAT.st_ino)


class FidelityRules:
    """Rules only: the machine class that mixes this in provides ``both``, ``model``,
    ``host``, ``log`` and ``check_state``."""

    def __init__(self) -> None:
        super().__init__()
        host: Any = self.host  # type: ignore[attr-defined]
        model: Any = self.model  # type: ignore[attr-defined]
        host.prctl(v.PR_SET_MEMORY_MERGE, 0)  # the shared child keeps it between examples
        self.uffds = [(host.userfaultfd(), model.userfaultfd()) for _ in range(2)]
        # Two SysV segments of 3 and 5 pages; removed in teardown, after which they go with
        # their last attach (when the next example empties the arena). The host child
        # removes whatever is left when it exits.
        self.segments = [
            (host.shmget(IPC_PRIVATE, size, IPC_CREAT | 0o600),
             model.shmget(IPC_PRIVATE, size, IPC_CREAT | 0o600))
            for size in (3 * P, 5 * P)
        ]

    def teardown(self) -> None:
        for host_uffd, _ in self.uffds:
            self.host.uffd_close(host_uffd)  # type: ignore[attr-defined]
        for host_id, _ in self.segments:
            self.host.shmctl_rmid(host_id)  # type: ignore[attr-defined]
        self.host.prctl(v.PR_SET_MEMORY_MERGE, 0)  # type: ignore[attr-defined]

    @rule(on=st.booleans())
    def merge_any(self, on: bool) -> None:
        self.both("prctl", v.PR_SET_MEMORY_MERGE, int(on))  # type: ignore[attr-defined]

    @rule(near=TARGETS, npages=LENGTHS, policy=POLICIES)
    def mbind(self, near: tuple[int, int], npages: int, policy: tuple[int, Any, int]) -> None:
        page = target_page(self.model, *near)  # type: ignore[attr-defined]
        mode, nodes, maxnode = policy
        self.both("mbind", at(page), npages * P, mode, nodes, maxnode)  # type: ignore[attr-defined]

    @rule(near=TARGETS, npages=LENGTHS, which=st.integers(0, 1), mode=MODES,
          register=st.booleans())
    def uffd(self, near: tuple[int, int], npages: int, which: int, mode: int,
             register: bool) -> None:
        page = target_page(self.model, *near)  # type: ignore[attr-defined]
        host_uffd, model_uffd = self.uffds[which]
        start, length = at(page), npages * P
        name = "uffdio_register" if register else "uffdio_unregister"
        args: tuple[Any, ...] = (start, length, mode) if register else (start, length)
        self.log.append(f"{name}(uffd{which}, {args})")  # type: ignore[attr-defined]
        type(self).calls += 1  # type: ignore[attr-defined]
        want = outcome(lambda: getattr(self.host, name)(host_uffd, *args))  # type: ignore[attr-defined]
        got = outcome(lambda: getattr(self.model, name)(model_uffd, *args))  # type: ignore[attr-defined]
        assert got == want, f"{name}{args}: model {got} != host {want}\n" + self.history()  # type: ignore[attr-defined]
        self.check_state()  # type: ignore[attr-defined]

    @rule(page=PAGES, which=st.integers(0, 1), shmflg=SHMFLAGS, skew=st.sampled_from([0, 0, 8]))
    def shmat(self, page: int, which: int, shmflg: int, skew: int) -> None:
        host_id, model_id = self.segments[which]
        args = (at(page) + skew, shmflg)
        self.log.append(f"shmat(seg{which}, {args})")  # type: ignore[attr-defined]
        type(self).calls += 1  # type: ignore[attr-defined]
        want = outcome(lambda: self.host.shmat(host_id, *args))  # type: ignore[attr-defined]
        got = outcome(lambda: self.model.shmat(model_id, *args))  # type: ignore[attr-defined]
        assert got == want, f"shmat{args}: model {got} != host {want}\n" + self.history()  # type: ignore[attr-defined]
        self.check_state()  # type: ignore[attr-defined]

    @rule(near=TARGETS)
    def shmdt(self, near: tuple[int, int]) -> None:
        self.both("shmdt", at(target_page(self.model, *near)))  # type: ignore[attr-defined]

    @rule(page=PAGES, npages=LENGTHS, shared=st.booleans(), fileoff=st.integers(0, 8))
    def mmap_dev_zero(self, page: int, npages: int, shared: bool, fileoff: int) -> None:
        flags = (v.MAP_SHARED if shared else v.MAP_PRIVATE) | v.MAP_FIXED
        self.both("mmap", at(page), npages * P, v.PROT_READ | v.PROT_WRITE, flags, ZERO,  # type: ignore[attr-defined]
                  fileoff * P)
