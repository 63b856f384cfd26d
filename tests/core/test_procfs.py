"""The maps and smaps text that breaks parsers, written out by hand and checked on both
backends: the name column at offset 73, the trailing space of unnamed lines, escaped newlines,
" (deleted)", and the names of memfd and shared anonymous mappings."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import vmamodel as v

from .util import NOREPLACE, RW, SHANON, P, at


def head(start: int, end: int, perms: str, offset: int, dev: str, ino: int) -> str:
    """show_vma_header_prefix(): the fixed fields (the offset in bytes, vm_pgoff << 12)."""
    return f"{start:08x}-{end:08x} {perms} {offset:08x} {dev} {ino}"


def named(prefix: str, name: str) -> str:
    return prefix + " " * max(1, 73 - len(prefix)) + name


def dev_of(st: os.stat_result) -> str:
    return f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}"


def test_anonymous_line_ends_with_one_space(mm):
    mm.mmap(at(0), P, RW, NOREPLACE)
    assert mm.maps() == head(at(0), at(1), "rw-p", 0, "00:00", 0) + " \n"


def test_path_with_space_and_newline_then_deleted(mm, tmp_path: Path):
    path = tmp_path / "a b\nc"
    path.write_bytes(b"\0" * 2 * P)
    st = os.stat(path)
    file = v.open_file(str(path), os.O_RDONLY, 2 * P,
                       dev=(os.major(st.st_dev), os.minor(st.st_dev)), ino=st.st_ino)
    mm.mmap(at(0), 2 * P, v.PROT_READ, v.MAP_PRIVATE | v.MAP_FIXED_NOREPLACE, file, P)
    prefix = head(at(0), at(2), "r--p", P, dev_of(st), st.st_ino)
    shown = str(path).replace("\n", "\\012")
    assert mm.maps() == named(prefix, shown) + "\n"
    os.unlink(path)
    file.deleted = True  # the model is told what the host's dentry now says
    assert mm.maps() == named(prefix, shown + " (deleted)") + "\n"


@pytest.mark.parametrize("name", ["buf", "with space"])
def test_memfd_name(mm, name: str):
    fd = v.memfd_create(name, P)
    mm.mmap(at(0), P, RW, v.MAP_SHARED | v.MAP_FIXED_NOREPLACE, fd)
    [line] = mm.maps().splitlines()
    assert line.endswith(" " + f"/memfd:{name} (deleted)")
    assert line.index("/memfd:") == 73
    assert line.split()[:4] == [f"{at(0):x}-{at(1):x}", "rw-s", "00000000", "00:01"]


def test_shared_anonymous_is_dev_zero_deleted(mm):
    mm.mmap(at(0), P, RW, SHANON)
    [line] = mm.maps().splitlines()
    assert line.endswith(" /dev/zero (deleted)") and line.index("/dev/zero") == 73
    assert line.split()[1:4] == ["rw-s", "00000000", "00:01"]


def test_parse_maps_reads_back_the_hard_lines(mm, tmp_path: Path):
    path = tmp_path / "x\ny (deleted)"
    path.write_bytes(b"\0" * P)
    st = os.stat(path)
    file = v.open_file(str(path), os.O_RDONLY, P,
                       dev=(os.major(st.st_dev), os.minor(st.st_dev)), ino=st.st_ino)
    mm.mmap(at(0), P, v.PROT_READ, v.MAP_SHARED | v.MAP_FIXED_NOREPLACE, file)
    mm.mmap(at(2), P, RW, SHANON)
    mm.mmap(at(4), P, RW, NOREPLACE)
    entries = v.parse_maps(mm.maps())
    assert [e.name for e in entries] == [str(path), "/dev/zero (deleted)", ""]
    assert [e.start for e in entries] == [at(0), at(2), at(4)]


def test_smaps_header_and_vmflags_order(mm):
    mm.mmap(at(0), P, RW, NOREPLACE)
    lines = mm.smaps().splitlines()
    assert lines[0] == head(at(0), at(1), "rw-p", 0, "00:00", 0) + " "
    assert lines[1].split() == ["Size:", "4", "kB"]
    assert lines[-1] == "VmFlags: rd wr mr mw me ac "
