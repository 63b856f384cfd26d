"""Random garbage at every public entry point of AddressSpace never corrupts the model.

Each call either succeeds, or fails with an OSError carrying an errno, or with a TypeError or
ValueError raised at the entry (then nothing changed); validate_mm() holds after every call.
An OSError may leave part of the range changed, as the kernel's mprotect, mlock and madvise
do, so only validate_mm() is checked after one.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import vmamodel as v
from vmamodel.abi import SYSCALL_ARGS
from vmamodel.mm import AddressSpace

from .util import ANON, FIXED, RW, P, at

U64 = 1 << 64


class Index:
    """An integer-like object (``__index__``), as numpy integers are."""

    def __init__(self, value: int) -> None:
        self.value = value

    def __index__(self) -> int:
        return self.value

    def __repr__(self) -> str:
        return f"Index({self.value:#x})"


BITS = st.integers(0, 70).map(lambda n: 1 << n)
ADDRESSES = st.integers(-4, 40).map(at) | st.sampled_from([0, P, -P, U64 - P, U64, 1 << 47])
INTEGERS = st.one_of(
    ADDRESSES,
    st.integers(-3, 16).map(lambda n: n * P),
    BITS,
    BITS.map(lambda b: b - 1),
    BITS.map(lambda b: -b),
    st.integers(-(1 << 70), 1 << 70),
    st.integers(-3, 40),
    st.sampled_from([v.MAP_FIXED | ANON, v.MAP_FIXED_NOREPLACE | ANON, ANON, v.MAP_SHARED
                     | v.MAP_ANONYMOUS, v.MREMAP_MAYMOVE, v.MREMAP_MAYMOVE | v.MREMAP_FIXED,
                     v.MADV_DONTNEED, v.MADV_DONTFORK, v.MADV_WIPEONFORK, v.MCL_CURRENT]),
)
GARBAGE = st.one_of(
    INTEGERS,
    INTEGERS.map(Index),
    st.booleans(),
    st.floats(allow_nan=True),
    st.none(),
    st.text(max_size=100),
    st.binary(max_size=8),
    st.lists(st.integers(), max_size=2),
    st.just(object()),
    st.just(v.memfd_create("garbage", 4 * P)),
)
ENTRIES = sorted(name for name in SYSCALL_ARGS if name not in ("fork", "exit"))


@st.composite
def calls(draw: st.DrawFn) -> tuple[str, tuple[Any, ...]]:
    name = draw(st.sampled_from(ENTRIES))
    nargs = draw(st.integers(0, len(SYSCALL_ARGS[name])))
    required = len(SYSCALL_ARGS[name]) - {"mmap": 2, "mremap": 2, "mlock2": 1, "mseal": 1,
                                          "touch": 1, "pkey_alloc": 2}.get(name, 0)
    nargs = max(nargs, required)
    return name, tuple(draw(GARBAGE) for _ in range(nargs))


def _populated() -> AddressSpace:
    mm = AddressSpace()
    mm.mmap(at(0), 8 * P, RW, FIXED)
    mm.mprotect(at(2), P, v.PROT_READ)
    mm.mmap(at(10), 4 * P, RW, v.MAP_SHARED | v.MAP_ANONYMOUS | v.MAP_FIXED)
    mm.mmap(at(16), 2 * P, RW, v.MAP_PRIVATE | v.MAP_FIXED, v.memfd_create("f", 8 * P), P)
    mm.mlock(at(5), P)
    mm.validate_mm()
    return mm


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(calls(), min_size=1, max_size=6))
def test_garbage_never_corrupts_the_model(sequence):
    mm = _populated()
    for name, args in sequence:
        before = mm.maps()
        try:
            getattr(mm, name)(*args)
        except OSError as exc:
            assert exc.errno, f"{name}{args!r}: OSError without errno"
        except (TypeError, ValueError):
            assert mm.maps() == before, f"{name}{args!r} failed at the entry yet changed maps"
        mm.validate_mm()
    mm.exit()
    mm.validate_mm()
    assert mm.map_count == 0


MAPS_LINES = st.builds(
    lambda start, length, perms, name, ino: (
        f"{start:x}-{start + length:x} {perms} 00000000 {'08:01' if ino else '00:00'} {ino}"
        + (" " * max(1, 73 - 42 - len(str(ino))) + name if name else " ")),
    st.integers(-(1 << 12), 1 << 48).map(lambda n: n * 3 // 2),
    st.integers(-P, 1 << 30),
    st.sampled_from(["rw-p", "r--p", "---p", "rwxs", "r-xp"]),
    st.sampled_from(["", "[heap]", "[stack]", "[vsyscall]", "[vdso]", "foo", "/lib/x.so",
                     "[anon:x]", "[bogus]"]),
    st.sampled_from([0, 0, 1234]),
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(MAPS_LINES, max_size=8), st.integers(0, 8))
def test_garbage_maps_text_is_a_value_error_or_a_valid_model(lines, max_map_count):
    text = "\n".join(lines) + "\n"
    try:
        mm = AddressSpace.from_maps(text, max_map_count=max_map_count)
    except ValueError:
        return
    mm.validate_mm()
    assert mm.map_count <= max_map_count


@given(st.text(max_size=30), GARBAGE, GARBAGE, GARBAGE)
def test_garbage_injection_rules_are_refused_at_the_entry(point, nth, errno, repeat):
    mm = _populated()
    before = mm.maps()
    try:
        with mm.inject(point, nth, errno, repeat):
            mm.mprotect(at(0), P, v.PROT_READ)
    except (ValueError, TypeError):
        assert mm.maps() == before
    except OSError as exc:
        assert exc.errno
    mm.validate_mm()
    assert not mm.injector.armed


OPTIONS = ["task_size", "mmap_min_addr", "max_map_count", "rlimit_stack", "rlimit_as",
           "rlimit_data", "rlimit_memlock", "overcommit_memory", "totalram_pages", "start_brk",
           "start_data", "end_data", "mmap_base"]


@given(st.sampled_from(OPTIONS), GARBAGE)
def test_garbage_constructor_options_are_refused_or_work(option, value):
    try:
        mm = AddressSpace(**{option: value})
    except (ValueError, TypeError):
        return
    mm.validate_mm()
    try:
        mm.mmap(at(0), P, RW, FIXED)
    except OSError as exc:
        assert exc.errno
    mm.validate_mm()
