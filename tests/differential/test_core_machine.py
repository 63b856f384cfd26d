"""Random sequences of mmap, munmap, mprotect and touch on anonymous private, anonymous
shared, memfd private and memfd shared mappings, on the model and on the host: results, maps,
VmFlags and protection keys must be identical after every step."""

from __future__ import annotations

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import rule

import vmamodel as v
from core.util import at

from .machine import LENGTHS, PAGES, PROTS, WINDOW, DifferentialMachine, P, run_machine

pytestmark = pytest.mark.host

#: Two memfds shared by every example (the host child keeps their fds open).
MEMFDS = [v.memfd_create("diff0", 2 * WINDOW * P), v.memfd_create("diff1", 2 * WINDOW * P)]

KINDS = st.sampled_from(
    ["anon-private", "anon-shared", "memfd0-private", "memfd0-shared", "memfd1-private"]
)
EXTRA = st.sampled_from([0, 0, 0, 0, v.MAP_NORESERVE, v.MAP_POPULATE, v.MAP_STACK, v.MAP_LOCKED])


class CoreMachine(DifferentialMachine):
    @rule(
        page=PAGES,
        npages=LENGTHS,
        prot=PROTS,
        kind=KINDS,
        noreplace=st.booleans(),
        extra=EXTRA,
        fileoff=st.integers(0, WINDOW),
    )
    def mmap(
        self, page: int, npages: int, prot: int, kind: str, noreplace: bool, extra: int,
        fileoff: int,
    ) -> None:
        flags = (v.MAP_FIXED_NOREPLACE if noreplace else v.MAP_FIXED) | extra
        file = None
        if kind.startswith("anon"):
            flags |= v.MAP_ANONYMOUS
        else:
            file = MEMFDS[int(kind[5])]
        flags |= v.MAP_SHARED if kind.endswith("shared") else v.MAP_PRIVATE
        self.both("mmap", at(page), npages * P, prot, flags, file, fileoff * P)

    @rule(page=PAGES, npages=st.integers(0, 12), skew=st.sampled_from([0, 0, 0, 0, 1, 100]))
    def munmap(self, page: int, npages: int, skew: int) -> None:
        self.both("munmap", at(page) + skew, npages * P)

    @rule(page=PAGES, npages=st.integers(0, 12), prot=PROTS, skew=st.sampled_from([0, 0, 0, 1]))
    def mprotect(self, page: int, npages: int, prot: int, skew: int) -> None:
        self.both("mprotect", at(page), npages * P + skew, prot)

    @rule(page=PAGES, write=st.booleans())
    def touch(self, page: int, write: bool) -> None:
        self.both("touch", at(page) + 8, write)


def test_core_machine() -> None:
    run_machine(CoreMachine, minimum=2000)
