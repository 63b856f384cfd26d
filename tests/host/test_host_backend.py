"""Tests of the host oracle itself (HostAddressSpace on the real kernel) and of the parsers."""

from __future__ import annotations

import errno
import gc
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from vmamodel import VM, memfd_create
from vmamodel.constants import (
    MADV_DONTFORK,
    MAP_ANONYMOUS,
    MAP_FIXED,
    MAP_FIXED_NOREPLACE,
    MAP_PRIVATE,
    MAP_SHARED,
    MREMAP_FIXED,
    MREMAP_MAYMOVE,
    O_RDONLY,
    O_RDWR,
    PROT_NONE,
    PROT_READ,
    PROT_WRITE,
    TASK_SIZE,
)
from vmamodel.host import DEFAULT_ARENA, HostAddressSpace, HostCrash, real_file
from vmamodel.parse import (
    MapsEntry,
    format_maps_line,
    parse_maps,
    parse_maps_line,
    parse_smaps,
    vm_flags_from_names,
)

P = 4096
A = DEFAULT_ARENA[0]
RW = PROT_READ | PROT_WRITE
ANON = MAP_PRIVATE | MAP_ANONYMOUS
NOREPLACE = ANON | MAP_FIXED_NOREPLACE
host = pytest.mark.host


@pytest.fixture
def hs() -> Iterator[HostAddressSpace]:
    with HostAddressSpace() as space:
        yield space


def ranges(space: Any) -> list[tuple[int, int, str]]:
    """(first page, end page, perms) of each VMA relative to the arena."""
    return [((e.start - A) // P, (e.end - A) // P, e.perms) for e in parse_maps(space.maps())]


def page_file(tmp_path: Path, pages: int, name: str = "data") -> Path:
    path = tmp_path / name
    path.write_bytes(bytes(range(256)) * (pages * P // 256))
    return path


# ---- both backends ----------------------------------------------------------------------


@host
def test_munmap_middle_leaves_two_vmas(mm: Any, arena: int) -> None:
    assert mm.mmap(arena, 3 * P, RW, NOREPLACE) == arena
    mm.munmap(arena + P, P)
    entries = parse_maps(mm.maps())
    spans = [(e.start - arena, e.end - arena) for e in entries]
    assert spans == [(0, P), (2 * P, 3 * P)]
    assert all(e.line.endswith(" 0 ") and e.name == "" for e in entries)


@host
def test_touch_of_prot_none_is_efault(mm: Any, arena: int) -> None:
    mm.mmap(arena, P, PROT_NONE, NOREPLACE)
    for write in (False, True):
        with pytest.raises(OSError) as info:
            mm.touch(arena, write=write)
        assert info.value.errno == errno.EFAULT


# ---- syscalls and errno -----------------------------------------------------------------


@host
def test_private_rw_anon_vmflags(hs: HostAddressSpace) -> None:
    hs.mmap(A, P, RW, NOREPLACE)
    (entry,) = parse_smaps(hs.smaps())
    assert entry.vm_flag_names == ("rd", "wr", "mr", "mw", "me", "ac")
    assert entry.vm_flags == VM.READ | VM.WRITE | VM.MAYREAD | VM.MAYWRITE | VM.MAYEXEC | VM.ACCOUNT
    assert entry.fields["Size"] == 4 and entry.fields["Rss"] == 0
    (view,) = hs.vmas()
    assert (view.vm_start, view.vm_end, view.vm_pgoff, view.file, view.anon_vma) == (
        A, A + P, None, None, None,
    )
    assert view.vm_flags == entry.vm_flags


@host
def test_shared_mapping_of_readonly_file_cannot_become_writable(
    hs: HostAddressSpace, tmp_path: Path
) -> None:
    file = real_file(page_file(tmp_path, 1), O_RDONLY)
    hs.mmap(A, P, PROT_READ, MAP_SHARED | MAP_FIXED_NOREPLACE, file)
    with pytest.raises(OSError) as info:
        hs.mprotect(A, P, RW)
    assert info.value.errno == errno.EACCES
    (entry,) = parse_maps(hs.maps())
    assert entry.perms == "r--s"  # VM_MAYSHARE without VM_SHARED
    assert (entry.dev, entry.inode, entry.name) == (file.dev, file.ino, file.path)
    (view,) = hs.vmas()
    assert view.file is file and view.vm_pgoff == 0


@host
@pytest.mark.parametrize(
    ("call", "expected"),
    [
        (lambda h: h.mmap(A, 0, RW, NOREPLACE), errno.EINVAL),
        (lambda h: h.mmap(A, P, RW, MAP_PRIVATE | MAP_FIXED_NOREPLACE), errno.EBADF),
        (lambda h: h.mmap(A + 1, P, RW, ANON | MAP_FIXED), errno.EINVAL),
        (lambda h: h.mmap(A, 1 << 62, RW, ANON | MAP_FIXED), errno.ENOMEM),
        (lambda h: h.mmap(A, (1 << 64) - 100, RW, ANON | MAP_FIXED), errno.ENOMEM),
        (lambda h: h.mmap(A, P, RW, ANON | MAP_FIXED, None, 1), errno.EINVAL),
        (lambda h: h.munmap(A + 1, P), errno.EINVAL),
        (lambda h: h.munmap(A, 0), errno.EINVAL),
        (lambda h: h.munmap(0x1000, TASK_SIZE), errno.EINVAL),
        (lambda h: h.mprotect(A + 1, P, PROT_READ), errno.EINVAL),
        (lambda h: h.mprotect(A, P, PROT_READ), errno.ENOMEM),
        (lambda h: h.madvise(A, P, 12345), errno.EINVAL),
        (lambda h: h.mremap(A, P, 2 * P), errno.EFAULT),
        (lambda h: h.mremap(A, P, P, MREMAP_FIXED, A + P), errno.EINVAL),
    ],
)
def test_errno_is_the_kernels(call: Any, expected: int) -> None:
    with HostAddressSpace() as hs:
        with pytest.raises(OSError) as info:
            call(hs)
        assert info.value.errno == expected
        assert info.value.strerror == os.strerror(expected)
        assert hs.maps() == ""


@host
def test_noreplace_overlap_is_eexist_and_changes_nothing(hs: HostAddressSpace) -> None:
    hs.mmap(A + P, P, RW, NOREPLACE)
    before = hs.maps()
    with pytest.raises(OSError) as info:
        hs.mmap(A, 3 * P, PROT_READ, NOREPLACE)
    assert info.value.errno == errno.EEXIST
    assert hs.maps() == before


@host
def test_mprotect_hole_is_enomem_after_partial_change(hs: HostAddressSpace) -> None:
    hs.mmap(A, P, RW, NOREPLACE)
    hs.mmap(A + 2 * P, P, RW, NOREPLACE)
    with pytest.raises(OSError) as info:
        hs.mprotect(A, 3 * P, PROT_READ)
    assert info.value.errno == errno.ENOMEM
    assert ranges(hs) == [(0, 1, "r--p"), (2, 3, "rw-p")]


# ---- touch and the fault semantics it must reproduce --------------------------------------


@host
def test_touch_faults_like_user_accesses(hs: HostAddressSpace) -> None:
    hs.mmap(A, P, PROT_READ, NOREPLACE)
    hs.touch(A)
    with pytest.raises(OSError) as info:
        hs.touch(A, write=True)
    assert info.value.errno == errno.EFAULT
    with pytest.raises(OSError):
        hs.touch(A + P)  # unmapped
    hs.mmap(A + 2 * P, P, RW, NOREPLACE)
    hs.touch(A + 2 * P + 123, write=True)
    rss = [e.fields["Rss"] for e in parse_smaps(hs.smaps())]
    assert rss == [0, 4]  # the read fault mapped the zero page, which smaps does not count
    assert hs.peek(A + 2 * P + 123) == 0


@host
@pytest.mark.parametrize(("write", "merged"), [(False, True), (True, False)])
def test_only_write_faults_give_an_anon_vma(write: bool, merged: bool) -> None:
    """Two separately faulted VMAs: filling the gap merges all three only if no anon_vma."""
    with HostAddressSpace() as hs:
        hs.mmap(A, P, RW, NOREPLACE)
        hs.mmap(A + 2 * P, P, RW, NOREPLACE)
        hs.touch(A, write=write)
        hs.touch(A + 2 * P, write=write)
        hs.mmap(A + P, P, RW, NOREPLACE)
        assert ranges(hs) == ([(0, 3, "rw-p")] if merged else [(0, 2, "rw-p"), (2, 3, "rw-p")])


@host
def test_efault_poke_does_not_leave_a_byte_behind(hs: HostAddressSpace) -> None:
    hs.mmap(A, P, PROT_READ, NOREPLACE)
    hs.mmap(A + P, P, RW, NOREPLACE)
    for _ in range(3):
        with pytest.raises(OSError):
            hs.poke(A, 7)
    hs.poke(A + P, 42)
    assert hs.peek(A + P) == 42
    assert hs.peek(A + P + 1) == 0


@host
def test_memfd_beyond_eof_is_efault_not_sigbus(hs: HostAddressSpace) -> None:
    file = memfd_create("short", P)
    hs.mmap(A, 2 * P, RW, MAP_SHARED | MAP_FIXED_NOREPLACE, file)
    hs.touch(A, write=True)
    with pytest.raises(OSError) as info:
        hs.touch(A + P)
    assert info.value.errno == errno.EFAULT
    hs.ftruncate(file, 2 * P)
    hs.touch(A + P)


# ---- names, files, vmas -------------------------------------------------------------------


@host
def test_memfd_and_shared_anon_names(hs: HostAddressSpace) -> None:
    file = memfd_create("my name", 4 * P)
    hs.mmap(A, 2 * P, PROT_READ, MAP_SHARED | MAP_FIXED_NOREPLACE, file, P)
    hs.mmap(A + 4 * P, 2 * P, PROT_READ, MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE)
    hs.munmap(A + 4 * P, P)
    memfd, zero = parse_maps(hs.maps())
    assert memfd.name == "/memfd:my name (deleted)" and memfd.deleted
    assert memfd.dev == (0, 1) and memfd.offset == P and memfd.perms == "r--s"
    assert zero.name == "/dev/zero (deleted)" and zero.deleted and zero.dev == (0, 1)
    assert zero.offset == P  # the later piece of a split shared anonymous mapping
    assert all(e.line.index("/") == 73 for e in (memfd, zero))
    views = hs.vmas()
    assert [v.file for v in views] == [file, None]
    assert [v.vm_pgoff for v in views] == [1, 1]
    assert [v.name for v in views] == [memfd.name, zero.name]
    assert views[1].vm_flags & VM.SHARED and views[1].vm_flags & VM.MAYSHARE


@host
def test_two_opens_of_one_path_are_different_files(hs: HostAddressSpace, tmp_path: Path) -> None:
    path = page_file(tmp_path, 2)
    first, second = real_file(path), real_file(path, O_RDWR)
    hs.mmap(A, P, PROT_READ, MAP_SHARED | MAP_FIXED_NOREPLACE, first)
    hs.mmap(A + P, P, PROT_READ, MAP_SHARED | MAP_FIXED_NOREPLACE, second, P)
    assert len(ranges(hs)) == 2  # different struct file: no merge
    hs.mmap(A + 2 * P, P, PROT_READ, MAP_SHARED | MAP_FIXED_NOREPLACE, first, 2 * P)
    assert len(ranges(hs)) == 3
    hs.munmap(A, 3 * P)
    hs.mmap(A, P, PROT_READ, MAP_SHARED | MAP_FIXED_NOREPLACE, first)
    hs.mmap(A + P, P, PROT_READ, MAP_SHARED | MAP_FIXED_NOREPLACE, first, P)
    assert len(ranges(hs)) == 1


@host
def test_newline_in_a_file_name(hs: HostAddressSpace, tmp_path: Path) -> None:
    path = page_file(tmp_path, 1, "odd name\nwith newline")
    file = real_file(path, O_RDONLY)
    hs.mmap(A, P, PROT_READ, MAP_PRIVATE | MAP_FIXED_NOREPLACE, file)
    (entry,) = parse_maps(hs.maps())
    assert "\\012" in entry.line and entry.name == str(path)
    assert entry.format() == entry.line
    path.unlink()
    (entry,) = parse_maps(hs.maps())
    assert entry.name == f"{path} (deleted)" and entry.deleted
    assert hs.vmas()[0].file is file


# ---- arena guards and filtering -----------------------------------------------------------


@host
@pytest.mark.parametrize(
    "call",
    [
        lambda h: h.mmap(A - P, 2 * P, RW, ANON | MAP_FIXED),
        lambda h: h.mmap(A + (1 << 40), P, RW, NOREPLACE),
        lambda h: h.munmap(A - P, P),
        lambda h: h.munmap(0, TASK_SIZE - P),
        lambda h: h.mprotect(A - P, P, PROT_NONE),
        lambda h: h.madvise(A - P, 2 * P, MADV_DONTFORK),
        lambda h: h.mlock(A - 1, 2),
        lambda h: h.touch(A - 1),
        lambda h: h.poke(A + (1 << 40), 1),
        lambda h: h.mremap(A, P, P, MREMAP_MAYMOVE | MREMAP_FIXED, 0x200000),
    ],
)
def test_guard_refuses_memory_outside_the_arena(call: Any) -> None:
    with HostAddressSpace() as hs:
        hs.mmap(A, P, RW, NOREPLACE)
        with pytest.raises(ValueError, match="arena"):
            call(hs)
        assert hs.alive and ranges(hs) == [(0, 1, "rw-p")]


@host
def test_hint_outside_the_arena_is_undone(hs: HostAddressSpace) -> None:
    with pytest.raises(ValueError, match="outside the arena"):
        hs.mmap(0, P, RW, ANON)
    assert hs.maps() == ""
    assert hs.mmap(A + 5 * P + 7, P, RW, ANON) == A + 5 * P  # a free hint is honoured
    assert ranges(hs) == [(5, 6, "rw-p")]


@host
def test_maps_filtering() -> None:
    with HostAddressSpace(arena=None) as whole, HostAddressSpace() as confined:
        whole.mmap(A, P, RW, NOREPLACE)
        confined.mmap(A, P, RW, NOREPLACE)
        names = {e.name for e in parse_maps(whole.maps())}
        assert {"[stack]", "[vdso]", "[vsyscall]", ""} <= names
        assert any(name.endswith("/libc.so.6") for name in names)
        assert ranges(confined) == [(0, 1, "rw-p")]
        assert len(parse_smaps(whole.smaps())) == len(parse_maps(whole.maps()))
        (block,) = parse_smaps(confined.smaps())
        assert block.header.line == confined.maps().rstrip("\n")
        assert confined.smaps().count("\n") == 1 + len(block.fields) + 1


# ---- more calls ---------------------------------------------------------------------------


@host
def test_mremap_grow_move_and_data(hs: HostAddressSpace) -> None:
    hs.mmap(A, P, RW, NOREPLACE)
    hs.poke(A + 5, 0x31)
    assert hs.mremap(A, P, 2 * P) == A
    assert ranges(hs) == [(0, 2, "rw-p")]
    target = A + 10 * P
    assert hs.mremap(A, 2 * P, 2 * P, MREMAP_MAYMOVE | MREMAP_FIXED, target) == target
    assert ranges(hs) == [(10, 12, "rw-p")] and hs.peek(target + 5) == 0x31


@host
def test_mlock_and_madvise_flags(hs: HostAddressSpace) -> None:
    hs.mmap(A, 3 * P, RW, NOREPLACE)
    hs.madvise(A + P, P, MADV_DONTFORK)
    assert [e.vm_flag_names for e in parse_smaps(hs.smaps())][1] == (
        "rd", "wr", "mr", "mw", "me", "dc", "ac",
    )
    hs.mlock(A + 2 * P + 1, 1)  # rounded to the page
    flags = [set(e.vm_flag_names) for e in parse_smaps(hs.smaps())]
    assert ["dc" in f for f in flags] == [False, True, False]
    assert ["lo" in f for f in flags] == [False, False, True]
    hs.munlock(A + 2 * P, P)
    hs.mlock2(A, P, 1)
    assert "lf" in parse_smaps(hs.smaps())[0].vm_flag_names
    hs.mlockall(3)
    hs.munlockall()
    assert not any("lo" in e.vm_flag_names for e in parse_smaps(hs.smaps()))


@host
def test_fork_child_does_not_merge_with_a_faulted_vma(hs: HostAddressSpace) -> None:
    """An unfaulted new range next to a faulted VMA merges, except in a fork child
    (is_mergeable_anon_vma() and vma_is_fork_child() in mm/vma.c)."""
    hs.mmap(A, P, RW, NOREPLACE)
    hs.touch(A, write=True)
    with hs.fork() as child:
        assert child.pid != hs.pid and child.maps() == hs.maps()
        child.mmap(A + P, P, RW, NOREPLACE)
        hs.mmap(A + P, P, RW, NOREPLACE)
        assert ranges(child) == [(0, 1, "rw-p"), (1, 2, "rw-p")]
        assert ranges(hs) == [(0, 2, "rw-p")]
        with child.fork() as grandchild:
            assert grandchild.maps() == child.maps()
    assert hs.maps() != ""


@host
def test_run_batch_returns_errors_in_place(hs: HostAddressSpace) -> None:
    results = hs.run_batch([
        ("mmap", A, 3 * P, RW, NOREPLACE),
        ("mmap", A, P, RW, NOREPLACE),
        ("munmap", A + P, P),
        ("touch", A + P, True),
        ("maps",),
    ])
    assert results[0] == A and results[2] is None
    assert isinstance(results[1], OSError) and results[1].errno == errno.EEXIST
    assert isinstance(results[3], OSError) and results[3].errno == errno.EFAULT
    assert results[4] == hs.maps() and len(parse_maps(results[4])) == 2
    with pytest.raises(ValueError):
        hs.run_batch([("munmap", A, P), ("munmap", 0, P)])
    assert len(ranges(hs)) == 2  # the guard refused the whole batch before sending


@host
def test_reset_empties_the_arena(hs: HostAddressSpace) -> None:
    hs.mmap(A, P, RW, NOREPLACE)
    hs.mmap(A + (1 << 39), P, RW, NOREPLACE)
    hs.reset()
    assert hs.maps() == ""


# ---- crashes and lifecycle ----------------------------------------------------------------


@host
def test_crash_is_reported_and_sticky() -> None:
    hs = HostAddressSpace(arena=None)
    with pytest.raises(HostCrash, match="SIGSEGV"):
        hs.munmap(0x1000, TASK_SIZE - 0x1000)  # unmaps the child's own code
    with pytest.raises(HostCrash, match="SIGSEGV"):
        hs.maps()
    assert not hs.alive
    hs.close()
    assert HostAddressSpace().maps() == ""  # a fresh child works


@host
def test_killed_child_and_killed_fork(hs: HostAddressSpace) -> None:
    child = hs.fork()
    os.kill(child.pid, signal.SIGKILL)
    with pytest.raises(HostCrash, match="SIGKILL"):
        child.maps()
    child.close()
    assert hs.maps() == ""
    os.kill(hs.pid, signal.SIGTERM)
    with pytest.raises(HostCrash, match="SIGTERM"):
        hs.mmap(A, P, RW, NOREPLACE)


@host
def test_garbage_collection_stops_the_child() -> None:
    pid = HostAddressSpace().pid
    gc.collect()
    deadline = time.monotonic() + 5
    while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not os.path.exists(f"/proc/{pid}")


# ---- parsers ------------------------------------------------------------------------------


def test_parse_maps_round_trips_this_process() -> None:
    text = Path("/proc/self/maps").read_text()
    entries = parse_maps(text)
    assert "".join(e.line + "\n" for e in entries) == text
    assert all(e.format() == e.line for e in entries)
    vsyscall = [e for e in entries if e.name == "[vsyscall]"]
    assert vsyscall and vsyscall[0].start == 0xFFFFFFFFFF600000
    assert any(e.name == "[heap]" for e in entries) and any(e.name == "[stack]" for e in entries)


def test_parse_smaps_of_this_process() -> None:
    blocks = parse_smaps(Path("/proc/self/smaps").read_text())
    assert len(blocks) > 10 and any(b.name == "[vsyscall]" for b in blocks)
    for block in blocks:
        assert block.header.format() == block.header.line
        assert block.fields["Size"] * 1024 == block.end - block.start
        assert bool(block.vm_flags & VM.READ) == (block.header.perms[0] == "r")
        assert bool(block.vm_flags & VM.MAYSHARE) == block.header.shared
        assert block.unknown_flags == 0


@pytest.mark.parametrize(
    ("line", "name", "deleted"),
    [
        ("7f31bc277000-7f31bc27b000 rw-p 00000000 00:00 0 ", "", False),
        ("55d0c0a8e000-55d0c0aaf000 rw-p 00000000 00:00 0"
         + " " * 26 + "[heap]", "[heap]", False),
        ("ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0"
         + " " * 18 + "[vsyscall]", "[vsyscall]", False),
        ("7f0000000000-7f0000001000 rw-s 00000000 00:01 1026"
         + " " * 23 + "/dev/zero (deleted)", "/dev/zero (deleted)", True),
        ("7f0000000000-7f0000001000 r--s 00001000 00:01 4"
         + " " * 26 + "/memfd:a b\\012c (deleted)", "/memfd:a b\nc (deleted)", True),
        ("7f0000000000-7f0000001000 r--p 00000000 fe:00 5308472"
         + " " * 20 + "/tmp/with  two spaces", "/tmp/with  two spaces", False),
        ("7f0000000000-7f0000001000 r--p 123456789abcdef0 103:1f 18446744073709551615"
         + "  /big", "/big", False),
    ],
)
def test_parse_tricky_maps_lines(line: str, name: str, deleted: bool) -> None:
    entry = parse_maps_line(line + "\n")
    assert (entry.name, entry.deleted, entry.line) == (name, deleted, line)
    assert entry.format() == line
    if name and len(line.split(name[:4])[0]) <= 73:
        assert line[73] in "/["


def test_parse_maps_fields() -> None:
    line = format_maps_line(0x1000, 0x3000, "r-xp", 0x5000, (0x103, 0x1F), 77, "/x")
    entry = parse_maps_line(line)
    assert entry == MapsEntry(0x1000, 0x3000, "r-xp", 0x5000, (0x103, 0x1F), 77, "/x", line)
    assert entry.has_file and entry.pages == 2 and not entry.shared


@pytest.mark.parametrize(
    "bad",
    [
        "1000-2000 rw-p 00000000 00:00 0",  # no trailing space
        "1000-2000 rw-p 00000000 00:00 0 x",  # name not padded
        "00001000-00002000 rw-q 00000000 00:00 0 ",
        "Size: 4 kB",
    ],
)
def test_parse_rejects_malformed_lines(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_maps_line(bad)


def test_vm_flags_from_names() -> None:
    assert vm_flags_from_names(["rd", "sh", "mr", "ms"]) == VM.READ | VM.SHARED | VM.MAYREAD | (
        VM.MAYSHARE
    )
    assert vm_flags_from_names(["rd", "??"], pkey=5) == VM.READ | VM.PKEY_BIT0 | VM.PKEY_BIT2
    with pytest.raises(ValueError):
        vm_flags_from_names(["zz"])
