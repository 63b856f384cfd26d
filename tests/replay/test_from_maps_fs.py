"""from_maps gives a seeded regular file the operations of its filesystem (issue 13, item 1):
on ext4/xfs/btrfs the kernel places file mappings with thp_get_unmapped_area, so a seeded
mapping of 2 MiB or more moved by mremap lands where the kernel puts it."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

import vmamodel as v
from vmamodel.host.placement import PlacementChild
from vmamodel.host.traits import host_filesystems, host_kernel_kwargs, parse_mountinfo
from vmamodel.mm import AddressSpace
from vmamodel.scenario.compare import InodeNumbering
from vmamodel.snapshot import THP_FILESYSTEMS, file_operations_for
from vmamodel.unmapped_area import ThpFileOperations, thp_get_unmapped_area

MIB = 1 << 20


def _disk_dev(path: Path) -> tuple[int, int]:
    st = os.stat(path)
    return os.major(st.st_dev), os.minor(st.st_dev)


def _moved(fs_of: dict[tuple[int, int], str] | None, tmp_path: Path) -> tuple[int, int, str, str]:
    """Map 3 MiB of a file in the runner, seed a model from its maps, grow the mapping with
    MREMAP_MAYMOVE on both: (host address, model address, host maps, model maps)."""
    path = tmp_path / "lib.so"
    path.write_bytes(b"\0" * (8 * MIB))
    data = v.open_file(str(path), v.O_RDONLY, 8 * MIB, f_op=ThpFileOperations())
    with PlacementChild() as child:
        addr = child.mmap(0, 3 * MIB, v.PROT_READ, v.MAP_PRIVATE, data, 0)
        # a neighbour below so that growing in place is impossible
        child.mmap(addr - 4096, 4096, v.PROT_NONE, v.MAP_PRIVATE | v.MAP_ANONYMOUS | v.MAP_FIXED)
        child.mmap(addr + 3 * MIB, 4096, v.PROT_NONE,
                   v.MAP_PRIVATE | v.MAP_ANONYMOUS | v.MAP_FIXED)
        model = AddressSpace.from_maps(
            child.maps(), smaps=child.smaps(), fs_of=fs_of, **host_kernel_kwargs()
        )
        host_new = child.mremap(addr, 3 * MIB, 6 * MIB, v.MREMAP_MAYMOVE)
        model_new = model.mremap(addr, 3 * MIB, 6 * MIB, v.MREMAP_MAYMOVE)
        return host_new, model_new, child.maps(), model.maps()


@pytest.fixture
def disk_dir() -> Iterator[Path]:
    """A directory on the filesystem of the checkout (a disk filesystem, where /tmp may be
    tmpfs)."""
    with tempfile.TemporaryDirectory(dir=Path(__file__).parent) as name:
        yield Path(name)


def test_seeded_disk_file_moved_by_mremap_lands_where_the_kernel_puts_it(
    disk_dir: Path,
) -> None:
    fs = host_filesystems()
    host_new, model_new, host_maps, model_maps = _moved(fs, disk_dir)
    if fs.get(_disk_dev(disk_dir)) in THP_FILESYSTEMS:
        assert host_new % (2 * MIB) == 0  # thp_get_unmapped_area aligned it
    assert model_new == host_new
    assert InodeNumbering().text(model_maps) == InodeNumbering().text(host_maps)


def test_the_wrong_operations_would_place_it_elsewhere(disk_dir: Path) -> None:
    """The mistake the fix removes: told the other kind of filesystem, the model moves the
    mapping elsewhere than the kernel."""
    real = host_filesystems().get(_disk_dev(disk_dir))
    fs = {_disk_dev(disk_dir): "ext2" if real in THP_FILESYSTEMS else "ext4"}
    host_new, model_new, _, _ = _moved(fs, disk_dir)
    assert model_new != host_new


def test_file_operations_by_filesystem() -> None:
    assert file_operations_for("ext4").get_unmapped_area is thp_get_unmapped_area
    assert file_operations_for("xfs").get_unmapped_area is thp_get_unmapped_area
    assert file_operations_for("tmpfs").get_unmapped_area is None  # shmem's, by file.shmem
    assert file_operations_for("nfs").get_unmapped_area is None


def test_seeded_tmpfs_file_is_shmem() -> None:
    maps = (
        "7f0000000000-7f0000001000 rw-s 00000000 00:17 42"
        + " " * 41 + "/dev/shm/x\n"
    )
    maps = InodeNumbering().text(maps)  # recompute the padding for the inode's width
    mm = AddressSpace.from_maps(maps, fs_of={(0, 0x17): "tmpfs"})
    (vma,) = mm.tree
    assert vma.vm_file is not None and vma.vm_file.shmem
    assert mm.maps() == maps


def test_parse_mountinfo() -> None:
    text = (
        "27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n"
        "25 24 0:23 / /dev/shm rw,relatime shared:5 - tmpfs tmpfs rw\n"
    )
    assert parse_mountinfo(text) == {(254, 0): "ext4", (0, 23): "tmpfs"}
    with pytest.raises(ValueError, match="m:1: not a mountinfo line"):
        parse_mountinfo("garbage\n", "m")
