"""AddressSpace.from_maps refuses text no kernel prints (a ValueError naming the line) and
keeps what a real process shows: every readable /proc/*/maps of this machine round-trips."""

from __future__ import annotations

import glob
import re
import subprocess
import sys

import pytest

from vmamodel.mm import AddressSpace

ANON = "{:x}-{:x} rw-p 00000000 00:00 0 "
NAMED = "{:x}-{:x} rw-p 00000000 00:00 0                          {}"
A = 0x7F0000000000
P = 4096


def _anon(start: int, end: int, name: str = "") -> str:
    return NAMED.format(start, end, name) if name else ANON.format(start, end)


BAD = [
    ("start above end", [_anon(A + P, A)], 1, "start not below end"),
    ("empty range", [_anon(A, A + P), _anon(A + 2 * P, A + 2 * P)], 2, "start not below end"),
    ("unaligned start", [_anon(A + 1, A + P)], 1, "not page aligned"),
    ("unaligned end", [_anon(A, A + P + 8)], 1, "not page aligned"),
    ("overlapping", [_anon(A, A + 2 * P), _anon(A + P, A + 3 * P)], 2, "overlapping"),
    ("out of order", [_anon(A + 4 * P, A + 5 * P), _anon(A, A + P)], 2, "out of order"),
    ("two stacks", [_anon(A, A + P, "[stack]"), _anon(A + 2 * P, A + 3 * P, "[stack]")], 2,
     "a second [stack]"),
    ("two gates", ["ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0"
                   "                  [vsyscall]"] * 2, 2, "out of order"),
    ("a bare name on anonymous memory", [_anon(A, A + P, "foo")], 1, "anonymous line"),
    ("an unknown bracket name", [_anon(A, A + P, "[bogus]")], 1, "cannot seed"),
    ("not a maps line", [_anon(A, A + P), "hello"], 2, "not a maps line"),
    ("above TASK_SIZE", [_anon(0x800000000000, 0x800000001000)], 1, "above TASK_SIZE"),
    ("anonymous memory inside the heap",
     [_anon(A, A + P, "[heap]"), _anon(A + P, A + 2 * P), _anon(A + 2 * P, A + 3 * P, "[heap]")],
     2, "inside the heap"),
]


@pytest.mark.parametrize(("lines", "number", "message"), [b[1:] for b in BAD],
                         ids=[b[0] for b in BAD])
def test_bad_maps_text_is_a_value_error_naming_the_line(lines, number, message):
    with pytest.raises(ValueError, match=rf"maps line {number}: .*{re.escape(message)}"):
        AddressSpace.from_maps("\n".join(lines) + "\n")


def test_two_vsyscall_lines_at_different_places():
    lines = [_anon(A, A + P, "[vsyscall]"), _anon(A + 2 * P, A + 3 * P, "[vsyscall]")]
    with pytest.raises(ValueError, match=r"maps line 2: a second \[vsyscall\]"):
        AddressSpace.from_maps("\n".join(lines) + "\n")


def test_more_lines_than_max_map_count():
    lines = [_anon(A + 2 * i * P, A + (2 * i + 1) * P) for i in range(6)]
    AddressSpace.from_maps("\n".join(lines[:5]) + "\n", max_map_count=5)
    with pytest.raises(ValueError, match="maps line 6: more than max_map_count"):
        AddressSpace.from_maps("\n".join(lines) + "\n", max_map_count=5)


def test_a_heap_split_in_three_keeps_its_name():
    lines = [_anon(A, A + P, "[heap]"),
             NAMED.format(A + P, A + 2 * P, "[heap]").replace("rw-p", "r--p"),
             _anon(A + 2 * P, A + 4 * P, "[heap]")]
    text = "\n".join(lines) + "\n"
    mm = AddressSpace.from_maps(text)
    assert mm.maps() == text
    assert (mm.start_brk, mm.current_brk) == (A, A + 4 * P)


SPLIT_HEAP = r"""
import ctypes, mmap
libc = ctypes.CDLL(None, use_errno=True)
libc.sbrk.restype = ctypes.c_void_p
libc.sbrk.argtypes = [ctypes.c_long]
P = mmap.PAGESIZE
top = libc.sbrk(0)
pad = (-top) % P
base = libc.sbrk(pad + 4 * P) + pad
assert libc.mprotect(ctypes.c_void_p(base + P), P, 1) == 0
print(open("/proc/self/maps").read(), end="")
"""


def test_a_real_heap_split_by_mprotect_round_trips():
    text = subprocess.run([sys.executable, "-c", SPLIT_HEAP], capture_output=True, text=True,
                          check=True).stdout
    assert sum(1 for line in text.splitlines() if line.endswith("[heap]")) >= 3
    assert AddressSpace.from_maps(text).maps() == text


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read()
    except OSError:  # the process ended, or it is not ours to read
        return None


def _readable_maps() -> list[str]:
    """The maps text of every process, read until two reads agree: a process that maps or
    unmaps while the kernel prints its maps in chunks can give an inconsistent text."""
    texts = []
    for path in sorted(glob.glob("/proc/[0-9]*/maps")):
        previous = _read(path)
        for _ in range(5):
            text = _read(path)
            if text is None or text == previous:
                break
            previous = text
        else:
            continue  # never stable: busy mapping and unmapping
        if text:
            texts.append(text)
    return texts


def test_every_process_of_this_machine_round_trips():
    texts = _readable_maps()
    assert texts, "no readable /proc/*/maps"
    for text in texts:
        mm = AddressSpace.from_maps(text)
        assert mm.maps() == text
        mm.validate_mm()
