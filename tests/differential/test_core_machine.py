"""Random sequences of mmap, munmap, mprotect and touch on anonymous private, anonymous
shared, memfd private and memfd shared mappings, on the model and on the host: results, maps,
VmFlags and protection keys must be identical after every step."""

from __future__ import annotations

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import rule

import vmamodel as v
from vmamodel.fuzz import generate as gen

from .machine import LENGTHS, PAGES, PROTS, DifferentialMachine, P, run_machine

pytestmark = pytest.mark.host

#: Two memfds shared by every example (the host child keeps their fds open).
MEMFDS = [v.memfd_create("diff0", gen.MEMFD_BYTES), v.memfd_create("diff1", gen.MEMFD_BYTES)]

KINDS = st.sampled_from(gen.KINDS)
EXTRA = st.sampled_from(gen.EXTRA)


class CoreMachine(DifferentialMachine):
    @rule(
        page=PAGES,
        npages=LENGTHS,
        prot=PROTS,
        kind=KINDS,
        noreplace=st.booleans(),
        extra=EXTRA,
        fileoff=st.integers(*gen.FILEOFF_RANGE),
    )
    def mmap(
        self, page: int, npages: int, prot: int, kind: str, noreplace: bool, extra: int,
        fileoff: int,
    ) -> None:
        addr, length, prot, flags, memfd, offset = gen.mmap_args(
            page, npages, prot, kind, noreplace, extra, fileoff)
        file = None if memfd is None else MEMFDS[memfd]
        self.both("mmap", addr, length, prot, flags, file, offset)

    @rule(page=PAGES, npages=st.integers(*gen.UNMAP_PAGES),
          skew=st.sampled_from(gen.MUNMAP_SKEWS))
    def munmap(self, page: int, npages: int, skew: int) -> None:
        self.both("munmap", gen.at(page) + skew, npages * P)

    @rule(page=PAGES, npages=st.integers(*gen.UNMAP_PAGES), prot=PROTS,
          skew=st.sampled_from(gen.MPROTECT_SKEWS))
    def mprotect(self, page: int, npages: int, prot: int, skew: int) -> None:
        self.both("mprotect", gen.at(page), npages * P + skew, prot)

    @rule(page=PAGES, write=st.booleans())
    def touch(self, page: int, write: bool) -> None:
        self.both("touch", gen.at(page) + 8, write)


def test_core_machine() -> None:
    run_machine(CoreMachine, minimum=2000)
