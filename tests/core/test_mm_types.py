"""vmamodel.mm_types: MmStruct under AddressSpace, its fields through fork, the id counters,
the tracer and injector cores, and the pure build without mypy_extensions."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from vmamodel import AddressSpace
from vmamodel.constants import MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, PROT_READ, PROT_WRITE
from vmamodel.events import Tracer, VmaCreated
from vmamodel.fork import mm_struct_fields
from vmamodel.inject import Injector
from vmamodel.mm_types import MM_STRUCT_FIELDS, InjectorCore, MmStruct, TracerCore

ANON = MAP_PRIVATE | MAP_ANONYMOUS
RW = PROT_READ | PROT_WRITE
BASE = 0x100000000
P = 4096


def test_address_space_is_an_mm_struct_with_every_field_set() -> None:
    mm = AddressSpace()
    assert isinstance(mm, MmStruct)
    assert isinstance(mm.tracer, TracerCore) and isinstance(mm.injector, InjectorCore)
    fields = mm_struct_fields(AddressSpace)
    assert len(fields) == len(set(fields))
    assert set(MM_STRUCT_FIELDS) <= set(fields)
    for name in fields:
        getattr(mm, name)  # raises AttributeError if the constructor left one unset


def test_address_space_refuses_an_unknown_attribute() -> None:
    mm = AddressSpace()
    with pytest.raises(AttributeError):
        mm.no_such_field = 1  # type: ignore[attr-defined]


def test_flag_options_are_stored_as_bools() -> None:
    mm = AddressSpace(debug=1, pkeys=0, thp_enabled=0, legacy_layout=1)  # type: ignore[arg-type]
    assert (mm.debug, mm.pkeys_enabled, mm.thp_enabled, mm.legacy_layout) == (
        True, False, False, True)


def test_fork_copies_every_field_and_shares_the_id_counters() -> None:
    mm = AddressSpace(rlimit_memlock=1 << 20, max_map_count=1000)
    mm.mmap(BASE, 2 * P, RW, ANON | MAP_FIXED)
    mm.touch(BASE, write=True)
    child = mm.fork()
    for name in mm_struct_fields(AddressSpace):
        getattr(child, name)
    assert (child.rlimit_memlock, child.max_map_count, child.map_count) == (1 << 20, 1000, 1)
    assert child.tracer is not mm.tracer and child.injector is not mm.injector
    assert child.vma_ids is mm.vma_ids and child.anon_ids is mm.anon_ids
    ids = {vma.id for vma in mm.tree} | {vma.id for vma in child.tree}
    assert len(ids) == 2
    first = mm.next_vma_id()
    assert child.next_vma_id() == first + 1


def test_the_tracer_core_switches_on_while_subscribed() -> None:
    mm = AddressSpace()
    assert mm.tracer.active is False
    with mm.tracer.collect() as events:
        assert mm.tracer.active is True
        mm.mmap(BASE, P, RW, ANON | MAP_FIXED)
    assert mm.tracer.active is False
    assert [type(e) for e in events if isinstance(e, VmaCreated)] == [VmaCreated]


def test_a_subclass_override_of_check_is_called_by_the_mapping_paths() -> None:
    reached: list[str] = []

    class Watching(Injector):
        __slots__ = ()

        def check(self, point: str) -> int:
            reached.append(point)
            return Injector.check(self, point)

    mm = AddressSpace()
    mm.injector = Watching()
    mm.injector.armed = True
    mm.mmap(BASE, P, RW, ANON | MAP_FIXED)
    assert "vma_alloc" in reached
    assert mm.injector.reached["vma_alloc"] == 1


def test_a_new_tracer_or_injector_can_replace_the_old() -> None:
    mm = AddressSpace()
    mm.tracer, mm.injector = Tracer(), Injector()
    with mm.inject("vma_alloc"), pytest.raises(OSError):
        mm.mmap(BASE, P, RW, ANON | MAP_FIXED)
    assert mm.map_count == 0


def test_the_pure_sources_import_without_mypy_extensions() -> None:
    """The core needs only the standard library: without mypy_extensions the mypyc_attr
    decorator is a no-op of mm_types' own. (The pure sources: the compiled build runs on
    mypyc's runtime library, librt, which brings mypy_extensions.)"""
    src = Path(__file__).resolve().parents[2] / "src"
    code = (
        "import sys; sys.modules['mypy_extensions'] = None\n"
        "from vmamodel.mm import AddressSpace\n"
        "mm = AddressSpace(); mm.mmap(0x100000000, 4096, 3, 0x32)\n"
        "print(mm.map_count, *(cls.__name__ for cls in type(mm).__mro__[1:3]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={"PYTHONPATH": str(src)}, check=True)
    assert out.stdout.split() == ["1", "SyscallEntry", "MmStruct"]


class _OneSlot(AddressSpace):
    __slots__ = "label"  # a single slot may be a str


class _WeakReferable(AddressSpace):
    __slots__ = ("__weakref__", "label")


class _WithDict(AddressSpace):
    """No ``__slots__``: the fields it adds live in a ``__dict__``."""


@pytest.mark.parametrize("cls", [_OneSlot, _WeakReferable, _WithDict])
def test_fork_copies_the_fields_a_subclass_adds(cls: type[AddressSpace]) -> None:
    """dup_mm() copies the whole mm_struct: what a subclass adds goes to the child too (a
    list by copy, as for the parent's own fields)."""
    mm = cls()
    mm.label = ["parent"]  # type: ignore[attr-defined]
    child = mm.fork()
    assert type(child) is cls
    assert child.label == ["parent"]  # type: ignore[attr-defined]
    assert child.label is not mm.label  # type: ignore[attr-defined]
