"""Random placement on the model and on the host: mmap without MAP_FIXED (many sizes, private,
shared, memfd and THP-file mappings, hints, MAP_32BIT, MAP_GROWSDOWN), munmap of pieces of
what was mapped, and mremap(MREMAP_MAYMOVE). Each example starts a fresh placement runner
(whole process, randomisation off) and seeds the model from its maps and smaps; after every
call the results, the maps text and the VmFlags must be identical."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

import vmamodel as v
from vmamodel.host.placement import PlacementChild
from vmamodel.host.traits import host_kernel_kwargs
from vmamodel.mm import AddressSpace
from vmamodel.scenario.compare import InodeNumbering
from vmamodel.unmapped_area import ThpFileOperations

from .machine import EXAMPLES, SETTINGS, outcome, smaps_keys

pytestmark = pytest.mark.host

P = 4096
PMD = 2 << 20
HIGH = 0x300000000000
RW = v.PROT_READ | v.PROT_WRITE

#: Page counts: small, around a PMD, PMD multiples (THP alignment), and larger.
PAGES = st.one_of(
    st.integers(1, 40),
    st.sampled_from([511, 512, 513, 1024, 1536, 2048, 2560]),
    st.integers(41, 3000),
)
KINDS = st.sampled_from(
    ["anon", "anon", "anon", "shared", "memfd-shared", "memfd-private", "file", "file-shared"]
)
EXTRA = st.sampled_from([0, 0, 0, 0, v.MAP_32BIT, v.MAP_GROWSDOWN, v.MAP_ABOVE4G, v.MAP_STACK])
PROTS = st.sampled_from([v.PROT_NONE, v.PROT_READ, RW, v.PROT_READ | v.PROT_EXEC])
#: memfd and file sizes: room for offsets up to 8 MiB plus the longest mapping.
FILE_BYTES = 8 * PMD + 3000 * P


def _thp_file() -> v.File:
    """A file on this machine's disk filesystem, kept for the session (every example maps
    it; the runner opens its own descriptor)."""
    handle, name = tempfile.mkstemp(prefix="vmamodel-placement-")
    os.ftruncate(handle, FILE_BYTES)
    os.close(handle)
    st_ = os.stat(name)
    return v.open_file(
        name, v.O_RDWR, FILE_BYTES, dev=(os.major(st_.st_dev), os.minor(st_.st_dev)),
        ino=st_.st_ino, f_op=ThpFileOperations(),
    )


FILES: dict[str, v.File] = {}


def shared_file(kind: str) -> v.File:
    if kind not in FILES:
        FILES[kind] = _thp_file() if kind == "file" else v.memfd_create("place", FILE_BYTES)
    return FILES[kind]


class PlacementMachine(RuleBasedStateMachine):
    calls = 0

    def __init__(self) -> None:
        super().__init__()
        self.host = PlacementChild()
        self.model = AddressSpace.from_maps(
            self.host.maps(), smaps=self.host.smaps(), debug=True, **host_kernel_kwargs()
        )
        # Ranges this example mapped: only these are unmapped or moved again.
        self.mine: list[tuple[int, int]] = []
        self.log: list[str] = []

    def teardown(self) -> None:
        self.host.close()

    def both(self, name: str, *args: Any) -> tuple[str, Any]:
        self.log.append(f"{name}{args}")
        type(self).calls += 1
        want = outcome(lambda: getattr(self.host, name)(*args))
        got = outcome(lambda: getattr(self.model, name)(*args))
        assert got == want, f"{name}{args}: model {got} != host {want}" + self.history()
        return got

    @invariant()
    def same_state(self) -> None:
        want = InodeNumbering().text(self.host.maps())
        got = InodeNumbering().text(self.model.maps())
        assert got == want, f"maps differ\n--- model\n{got}--- host\n{want}" + self.history()
        assert smaps_keys(self.model.smaps()) == smaps_keys(self.host.smaps()), (
            "VmFlags differ" + self.history()
        )

    def history(self) -> str:
        return "\nsteps:\n  " + "\n  ".join(self.log)

    def _hint(self, choice: int, which: int, shift: int) -> int:
        """0: none; 1: high and free; else near a range this example mapped (inside it,
        right after it, below it, on its last page)."""
        if choice == 0 or not self.mine:
            return 0
        if choice == 1:
            return HIGH + shift * P
        start, end = self.mine[which % len(self.mine)]
        near = {2: start + shift * P, 3: end + shift * P, 4: start - shift * P, 5: end - P}
        return max(P, near[choice])

    @rule(
        pages=PAGES, kind=KINDS, extra=EXTRA, prot=PROTS, offset=st.integers(0, 2048),
        hint=st.integers(0, 12), which=st.integers(0, 1000), shift=st.integers(0, 600),
    )
    def mmap(
        self, pages: int, kind: str, extra: int, prot: int, offset: int, hint: int, which: int,
        shift: int,
    ) -> None:
        length = pages * P
        file = None
        if kind == "anon":
            flags = v.MAP_PRIVATE | v.MAP_ANONYMOUS
        elif kind == "shared":
            flags = v.MAP_SHARED | v.MAP_ANONYMOUS
        else:
            file = shared_file("file" if kind.startswith("file") else "memfd")
            flags = v.MAP_SHARED if kind.endswith("shared") else v.MAP_PRIVATE
        addr = self._hint(hint if hint < 6 else 0, which, shift)
        kind_, result = self.both("mmap", addr, length, prot, flags | extra, file, offset * P)
        if kind_ == "ok":
            self.mine.append((result, result + length))

    @rule(which=st.integers(0, 1000), first=st.integers(0, 3000), pages=st.integers(1, 600))
    def munmap(self, which: int, first: int, pages: int) -> None:
        if not self.mine:
            return
        start, end = self.mine[which % len(self.mine)]
        addr = min(start + first * P, end - P)
        self.both("munmap", addr, min(pages * P, end - addr))

    @rule(
        which=st.integers(0, 1000), pages=PAGES,
        flags=st.sampled_from([v.MREMAP_MAYMOVE, v.MREMAP_MAYMOVE, 0]),
    )
    def mremap(self, which: int, pages: int, flags: int) -> None:
        if not self.mine:
            return
        start, end = self.mine[which % len(self.mine)]
        kind, result = self.both("mremap", start, end - start, pages * P, flags)
        if kind == "ok":
            self.mine.append((result, result + pages * P))


def test_placement_machine() -> None:
    from hypothesis.stateful import run_state_machine_as_test

    PlacementMachine.calls = 0
    run_state_machine_as_test(PlacementMachine, settings=SETTINGS)
    minimum = 500 * EXAMPLES // 100
    print(f"placement machine: {PlacementMachine.calls} calls compared")
    assert PlacementMachine.calls >= minimum, (
        f"compared only {PlacementMachine.calls} calls"
    )


def teardown_module() -> None:
    for file in FILES.values():
        if file.kind == "regular":
            Path(file.path).unlink(missing_ok=True)
