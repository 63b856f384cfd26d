"""User accesses: what faults, and what a fault changes."""

from __future__ import annotations

import errno

import pytest

import vmamodel as v
from vmamodel.host import host_has_pkeys

from .util import NOREPLACE, RO, RW, P, at, layout


def _errno(fn: object, *args: object, **kwargs: object) -> int:
    with pytest.raises(OSError) as info:
        fn(*args, **kwargs)  # type: ignore[operator]
    return info.value.errno or 0


def test_unmapped_access_is_efault(mm):
    assert _errno(mm.touch, at(0)) == errno.EFAULT


def test_prot_none_read_is_efault(mm):
    mm.mmap(at(0), P, v.PROT_NONE, NOREPLACE)
    assert _errno(mm.touch, at(0)) == errno.EFAULT


def test_read_only_write_is_efault_and_changes_nothing(mm):
    mm.mmap(at(0), P, RO, NOREPLACE)
    assert _errno(mm.touch, at(0), write=True) == errno.EFAULT
    mm.mmap(at(1), P, RO, NOREPLACE)
    assert layout(mm) == [(0, 2, "r--p")]


def test_x86_reads_work_without_prot_read(mm):
    mm.mmap(at(0), P, v.PROT_WRITE, NOREPLACE)
    mm.touch(at(0))


def test_exec_only_readability_follows_pku(mm):
    """With PKU, PROT_EXEC alone takes the execute-only key, whose PKRU bits deny reads;
    without PKU, x86 reads any present mapping. The fixture configures the model like the
    host, so this runs the branch of the machine it is on."""
    mm.mmap(at(0), P, v.PROT_EXEC, NOREPLACE)
    if host_has_pkeys():
        assert _errno(mm.touch, at(0)) == errno.EFAULT
    else:
        mm.touch(at(0))
    mm.mprotect(at(0), P, v.PROT_READ | v.PROT_EXEC)
    mm.touch(at(0))


def test_exec_only_key_keeps_exec_vmas_apart(mm):
    """A PROT_EXEC mapping (key 1) and an RX mapping made exec-only by mprotect (key 1)
    merge; an exec-only VMA does not merge with a key-0 one of the same flags."""
    mm.mmap(at(0), P, v.PROT_EXEC, NOREPLACE)
    mm.mmap(at(1), P, v.PROT_READ | v.PROT_EXEC, NOREPLACE)
    assert len(layout(mm)) == 2
    mm.mprotect(at(1), P, v.PROT_EXEC)
    assert layout(mm) == [(0, 2, "--xp")]
    mm.mprotect(at(0), P, v.PROT_READ | v.PROT_EXEC)
    mm.mprotect(at(0), P, v.PROT_EXEC)
    assert layout(mm) == [(0, 2, "--xp")]


def test_write_only_write_works(mm):
    mm.mmap(at(0), P, v.PROT_WRITE, NOREPLACE)
    mm.touch(at(0), write=True)


def test_shared_memfd_past_eof_is_efault(mm):
    f = v.memfd_create("short", P)
    mm.mmap(at(0), 2 * P, RW, v.MAP_SHARED | v.MAP_FIXED_NOREPLACE, f)
    mm.touch(at(0), write=True)
    assert _errno(mm.touch, at(1)) == errno.EFAULT


def test_private_file_write_creates_anon_vma(mm):
    """A CoW write on a private file mapping gives it an anon_vma; split pieces share it and
    re-merge, and an unfaulted contiguous neighbour still merges (it adopts the anon_vma)."""
    f = v.memfd_create("cow", 4 * P)
    flags = v.MAP_PRIVATE | v.MAP_FIXED_NOREPLACE
    mm.mmap(at(0), 2 * P, RW, flags, f)
    mm.touch(at(0), write=True)
    mm.mprotect(at(1), P, RO)
    mm.mprotect(at(1), P, RW)
    assert layout(mm) == [(0, 2, "rw-p")]
    mm.mmap(at(2), 2 * P, RW, flags, f, 2 * P)
    assert layout(mm) == [(0, 4, "rw-p")]


@pytest.mark.parametrize("pkeys", [False, True])
def test_model_exec_only_key_on_either_cpu(pkeys):
    """Both CPUs, whichever this host is: the key shows in smaps only with PKU."""
    mm = v.AddressSpace(pkeys=pkeys)
    mm.mmap(at(0), P, v.PROT_EXEC, NOREPLACE)
    assert ("ProtectionKey:         1" in mm.smaps()) is pkeys
    assert ("ProtectionKey:" in mm.smaps()) is pkeys
    if pkeys:
        assert _errno(mm.touch, at(0)) == errno.EFAULT
    else:
        mm.touch(at(0))
