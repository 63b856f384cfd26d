"""Protection keys: pkey_alloc, pkey_free, pkey_mprotect and the PKRU rights they set.

The ``mm`` tests run on the model and the host; the model is configured like the host, and
whether the host CPU has PKU decides which branch of the kernel's behaviour they check
(``host_has_pkeys()``). The ``model_*`` tests run the model with and without PKU whatever
this machine is.
"""

from __future__ import annotations

import errno

import pytest

import vmamodel as v
from vmamodel.constants import VM_PKEY_MASK, VM_PKEY_SHIFT
from vmamodel.host import host_has_pkeys

from .util import NOREPLACE, RO, RW, P, at, layout

DA = v.PKEY_DISABLE_ACCESS
DW = v.PKEY_DISABLE_WRITE
ULONG_MAX = (1 << 64) - 1


def _errno(fn: object, *args: object, **kwargs: object) -> int:
    with pytest.raises(OSError) as info:
        fn(*args, **kwargs)  # type: ignore[operator]
    return info.value.errno or 0


def keys(mm: object) -> list[int]:
    """The protection key of each VMA (0 everywhere without PKU)."""
    return [
        (view.vm_flags & VM_PKEY_MASK) >> VM_PKEY_SHIFT
        for view in mm.vmas()  # type: ignore[attr-defined]
    ]


def state(mm: object) -> tuple[str, str]:
    return mm.maps(), mm.smaps()  # type: ignore[attr-defined]


def assert_access(mm: object, addr: int, read_ok: bool, write_ok: bool) -> None:
    """A read and a write of ``addr`` fault (EFAULT) exactly where they should."""
    for write, ok in ((False, read_ok), (True, write_ok)):
        if ok:
            mm.touch(addr, write=write)  # type: ignore[attr-defined]
        else:
            assert _errno(mm.touch, addr, write=write) == errno.EFAULT  # type: ignore[attr-defined]


def model(pkeys: bool) -> v.AddressSpace:
    return v.AddressSpace(pkeys=pkeys, debug=True)


# ---- pkey_alloc -------------------------------------------------------------------------


@pytest.mark.parametrize(("flags", "rights"), [(1, 0), (ULONG_MAX, 0), (0, 4), (0, ULONG_MAX)])
def test_pkey_alloc_bad_flags_or_rights_are_einval_before_any_key_is_taken(mm, flags, rights):
    """sys_pkey_alloc(): flags must be 0 and the rights within PKEY_ACCESS_MASK; neither
    check takes a key (the next good call still gets the first one, or fails as a first call
    does without PKU)."""
    assert _errno(mm.pkey_alloc, flags, rights) == errno.EINVAL
    if host_has_pkeys():
        assert mm.pkey_alloc() == 1
    else:
        assert _errno(mm.pkey_alloc) == errno.EINVAL


def test_pkey_alloc_hands_out_the_lowest_free_key_until_none_is_left(mm):
    """mm_pkey_alloc(): keys 1..15 in order (0 is taken at exec), then ENOSPC; a freed key is
    the next one handed out. Without PKU the mm context is never initialised: the first call
    takes key 0, cannot set its rights (EINVAL) and cannot give it back (key 0 counts as the
    execute-only key), so every later call is ENOSPC."""
    if host_has_pkeys():
        assert [mm.pkey_alloc() for _ in range(15)] == list(range(1, 16))
        assert _errno(mm.pkey_alloc) == errno.ENOSPC
        mm.pkey_free(7)
        assert mm.pkey_alloc(0, DW) == 7
        assert _errno(mm.pkey_alloc) == errno.ENOSPC
    else:
        assert _errno(mm.pkey_alloc) == errno.EINVAL
        assert _errno(mm.pkey_alloc, 0, DA) == errno.ENOSPC
        assert _errno(mm.pkey_alloc) == errno.ENOSPC


def test_fork_inherits_the_allocation_map(mm):
    """dup_mm() copies mm->context: a child forked before any pkey_alloc starts where its
    parent did; one forked after continues from the parent's map."""
    before = mm.fork()
    if host_has_pkeys():
        assert mm.pkey_alloc() == 1
        after = mm.fork()
        assert before.pkey_alloc() == 1
        assert after.pkey_alloc() == 2
    else:
        assert _errno(mm.pkey_alloc) == errno.EINVAL
        after = mm.fork()
        assert _errno(before.pkey_alloc) == errno.EINVAL
        assert _errno(after.pkey_alloc) == errno.ENOSPC


# ---- pkey_free --------------------------------------------------------------------------


@pytest.mark.parametrize("pkey", [-1, 5, 16, 1 << 31, ULONG_MAX])
def test_pkey_free_of_a_key_never_allocated_is_einval(mm, pkey):
    """mm_pkey_is_allocated(): negative (the argument is an int), out of range, or not in the
    map."""
    assert _errno(mm.pkey_free, pkey) == errno.EINVAL


def test_pkey_free_twice_is_einval(mm):
    if not host_has_pkeys():
        assert _errno(mm.pkey_alloc) == errno.EINVAL
        assert _errno(mm.pkey_free, 0) == errno.EINVAL
        return
    key = mm.pkey_alloc()
    mm.pkey_free(key)
    assert _errno(mm.pkey_free, key) == errno.EINVAL


def test_key_0_is_freeable_only_with_pku(mm):
    """With PKU key 0 is an ordinary allocated key: pkey_free(0) succeeds and pkey_alloc()
    hands it out again (rights 0, so the process's own memory stays usable). Without PKU it
    is the context's execute-only key, which no interface accepts."""
    if host_has_pkeys():
        mm.pkey_free(0)
        assert mm.pkey_alloc() == 0
    else:
        assert _errno(mm.pkey_free, 0) == errno.EINVAL


def test_execute_only_key_is_taken_from_the_map_and_refused_to_users(mm):
    """__execute_only_pkey() allocates the lowest free key at the first PROT_EXEC-only
    mapping; mm_pkey_is_allocated() then refuses it to pkey_free and pkey_mprotect."""
    mm.mmap(at(0), P, v.PROT_EXEC, NOREPLACE)
    mm.mmap(at(2), P, RW, NOREPLACE)
    if host_has_pkeys():
        assert keys(mm) == [1, 0]
        assert _errno(mm.pkey_free, 1) == errno.EINVAL
        assert _errno(mm.pkey_mprotect, at(2), P, RW, 1) == errno.EINVAL
        assert mm.pkey_alloc() == 2
    else:
        assert keys(mm) == [0, 0]
        assert _errno(mm.pkey_alloc) == errno.EINVAL
    assert keys(mm)[1] == 0


def test_execute_only_key_comes_after_user_keys(mm):
    if not host_has_pkeys():
        assert _errno(mm.pkey_alloc) == errno.EINVAL
        mm.mmap(at(0), P, v.PROT_EXEC, NOREPLACE)
        assert keys(mm) == [0]
        return
    assert mm.pkey_alloc() == 1
    mm.mmap(at(0), P, v.PROT_EXEC, NOREPLACE)
    assert keys(mm) == [2]
    assert mm.pkey_alloc() == 3


# ---- pkey_mprotect ----------------------------------------------------------------------


def test_pkey_mprotect_with_key_minus_one_is_mprotect(mm):
    """pkey -1 (also as the unsigned 32-bit 0xffffffff: the argument is an int) is a plain
    mprotect, on either CPU."""
    mm.mmap(at(0), 4 * P, RW, NOREPLACE)
    mm.pkey_mprotect(at(1), P, RO, -1)
    mm.pkey_mprotect(at(2), P, RO, 0xFFFFFFFF)
    assert layout(mm) == [(0, 1, "rw-p"), (1, 3, "r--p"), (3, 4, "rw-p")]
    assert keys(mm) == [0, 0, 0]


@pytest.mark.parametrize("pkey", [1, 5, 15, 16, -2, 1 << 31])
def test_pkey_mprotect_with_an_unallocated_key_is_einval_and_changes_nothing(mm, pkey):
    mm.mmap(at(0), 4 * P, RW, NOREPLACE)
    before = state(mm)
    assert _errno(mm.pkey_mprotect, at(1), P, RO, pkey) == errno.EINVAL
    assert state(mm) == before


def test_pkey_mprotect_with_key_0(mm):
    """Key 0 is allocated from exec with PKU; without PKU nothing is, not even key 0."""
    mm.mmap(at(0), 2 * P, RW, NOREPLACE)
    if host_has_pkeys():
        mm.pkey_mprotect(at(0), P, RO, 0)
        assert layout(mm) == [(0, 1, "r--p"), (1, 2, "rw-p")]
    else:
        assert _errno(mm.pkey_mprotect, at(0), P, RO, 0) == errno.EINVAL
        assert layout(mm) == [(0, 2, "rw-p")]


@pytest.mark.parametrize(
    ("addr", "length", "prot", "expected"),
    [
        (at(0), 0, RO, None),  # len 0 returns before the key is looked at
        (at(0) + 1, P, RO, errno.EINVAL),
        (at(0), ULONG_MAX, RO, errno.ENOMEM),  # the range wraps
        (at(0), P, 0x100, errno.EINVAL),
        (at(9), P, RO, errno.EINVAL),  # nothing mapped: the key is checked first
    ],
)
def test_pkey_mprotect_checks_the_key_after_the_arguments_before_the_vmas(
    mm, addr, length, prot, expected
):
    """do_mprotect_pkey(): alignment, length and prot come first, the key second (EINVAL
    even where plain mprotect would say ENOMEM), the VMAs last."""
    mm.mmap(at(0), P, RW, NOREPLACE)
    if expected is None:
        mm.pkey_mprotect(addr, length, prot, 9)
    else:
        assert _errno(mm.pkey_mprotect, addr, length, prot, 9) == expected
    assert layout(mm) == [(0, 1, "rw-p")]
    assert _errno(mm.pkey_mprotect, at(9), P, RO, -1) == errno.ENOMEM


def test_keys_split_and_merge_vmas_and_mprotect_keeps_the_key(mm):
    """A VMA part with another key splits off; plain mprotect keeps each VMA's key; giving
    the part key 0 back lets it merge again (the pkey bits are vm_flags bits)."""
    mm.mmap(at(0), 4 * P, RW, NOREPLACE)
    if not host_has_pkeys():
        assert _errno(mm.pkey_alloc) == errno.EINVAL
        assert _errno(mm.pkey_mprotect, at(1), 2 * P, RW, 1) == errno.EINVAL
        assert layout(mm) == [(0, 4, "rw-p")]
        return
    key = mm.pkey_alloc()
    mm.pkey_mprotect(at(1), 2 * P, RW, key)
    assert layout(mm) == [(0, 1, "rw-p"), (1, 3, "rw-p"), (3, 4, "rw-p")]
    assert keys(mm) == [0, key, 0]
    mm.mprotect(at(0), 4 * P, RO)
    assert keys(mm) == [0, key, 0]
    mm.pkey_mprotect(at(1), 2 * P, RO, 0)
    assert layout(mm) == [(0, 4, "r--p")]


def test_pkey_mprotect_exec_only_with_a_user_key_keeps_that_key(mm):
    """__arch_override_mprotect_pkey(): an explicit key wins over the execute-only key."""
    mm.mmap(at(0), P, RW, NOREPLACE)
    if not host_has_pkeys():
        mm.pkey_mprotect(at(0), P, v.PROT_EXEC, -1)
        assert keys(mm) == [0]
        return
    key = mm.pkey_alloc()
    mm.pkey_mprotect(at(0), P, v.PROT_EXEC, key)
    assert keys(mm) == [key]
    mm.pkey_mprotect(at(0), P, v.PROT_EXEC, -1)
    assert keys(mm) == [2]  # the execute-only key, allocated now


# ---- PKRU ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rights", "read_ok", "write_ok"),
    [(0, True, True), (DW, True, False), (DA, False, False), (DA | DW, False, False)],
)
def test_access_rights_decide_what_faults(mm, rights, read_ok, write_ok):
    """arch_set_user_pkey_access(): AD denies reads and writes, WD writes; the fault is
    SIGSEGV (EFAULT here) although the VMA allows both."""
    mm.mmap(at(0), P, RW, NOREPLACE)
    if not host_has_pkeys():
        assert _errno(mm.pkey_alloc, 0, rights) == errno.EINVAL
        mm.touch(at(0), write=True)
        return
    key = mm.pkey_alloc(0, rights)
    mm.pkey_mprotect(at(0), P, RW, key)
    assert_access(mm, at(0), read_ok, write_ok)


def test_pkey_free_leaves_pkru_and_the_vmas_alone(mm):
    """sys_pkey_free() only clears the map bit: the VMA keeps the key and PKRU its rights
    until pkey_alloc() hands the key out again with new ones."""
    mm.mmap(at(0), P, RW, NOREPLACE)
    if not host_has_pkeys():
        assert _errno(mm.pkey_free, 1) == errno.EINVAL
        return
    key = mm.pkey_alloc(0, DA)
    mm.pkey_mprotect(at(0), P, RW, key)
    mm.pkey_free(key)
    assert keys(mm) == [key]
    assert _errno(mm.touch, at(0)) == errno.EFAULT
    assert _errno(mm.pkey_mprotect, at(0), P, RW, key) == errno.EINVAL
    assert mm.pkey_alloc(0, DW) == key
    mm.touch(at(0))
    assert _errno(mm.touch, at(0), write=True) == errno.EFAULT


def test_populate_honours_write_disable(mm):
    """check_vma_flags(): mlock populates a private writable VMA with writes, which a WD key
    refuses (EFAULT, reported as ENOMEM; the VMA stays locked); a shared one is read, which
    WD allows."""
    mm.mmap(at(0), P, RW, NOREPLACE)
    mm.mmap(at(2), P, RW, v.MAP_SHARED | v.MAP_ANONYMOUS | v.MAP_FIXED_NOREPLACE)
    if not host_has_pkeys():
        mm.mlock(at(0), P)
        mm.mlock(at(2), P)
        return
    key = mm.pkey_alloc(0, DW)
    mm.pkey_mprotect(at(0), P, RW, key)
    mm.pkey_mprotect(at(2), P, RW, key)
    assert _errno(mm.mlock, at(0), P) == errno.ENOMEM
    mm.mlock(at(2), P)
    assert [view.vm_flags & v.VM.LOCKED != 0 for view in mm.vmas()] == [True, True]


def test_fork_inherits_pkru(mm):
    mm.mmap(at(0), P, RW, NOREPLACE)
    if not host_has_pkeys():
        mm.fork().touch(at(0))
        return
    key = mm.pkey_alloc(0, DA)
    mm.pkey_mprotect(at(0), P, RW, key)
    child = mm.fork()
    assert keys(child) == [key]
    assert _errno(child.touch, at(0)) == errno.EFAULT


# ---- the model on both CPUs ---------------------------------------------------------------


@pytest.mark.parametrize("pkeys", [False, True])
def test_model_alloc_sequence_on_either_cpu(pkeys):
    mm = model(pkeys)
    if pkeys:
        assert [mm.pkey_alloc() for _ in range(15)] == list(range(1, 16))
        assert _errno(mm.pkey_alloc) == errno.ENOSPC
    else:
        assert _errno(mm.pkey_alloc) == errno.EINVAL
        assert _errno(mm.pkey_alloc) == errno.ENOSPC
        assert _errno(mm.pkey_free, 0) == errno.EINVAL


@pytest.mark.parametrize("pkeys", [False, True])
def test_model_pkey_mprotect_on_either_cpu(pkeys):
    mm = model(pkeys)
    mm.mmap(at(0), 2 * P, RW, NOREPLACE)
    mm.pkey_mprotect(at(0), P, RO, -1)
    if pkeys:
        key = mm.pkey_alloc(0, DA)
        mm.pkey_mprotect(at(1), P, RW, key)
        assert keys(mm) == [0, key]
        assert f"ProtectionKey:  {key:8d}" in mm.smaps()
        assert _errno(mm.touch, at(1)) == errno.EFAULT
        mm.touch(at(0))
    else:
        assert _errno(mm.pkey_mprotect, at(1), P, RW, 0) == errno.EINVAL
        assert keys(mm) == [0, 0]
        assert "ProtectionKey" not in mm.smaps()


@pytest.mark.parametrize(("rights", "read_ok", "write_ok"), [(0, 1, 1), (DW, 1, 0), (DA, 0, 0)])
def test_model_rights_on_pku(rights, read_ok, write_ok):
    mm = model(True)
    mm.mmap(at(0), P, RW, NOREPLACE)
    key = mm.pkey_alloc(0, rights)
    mm.pkey_mprotect(at(0), P, RW, key)
    assert_access(mm, at(0), read_ok, write_ok)


def test_model_exec_only_key_fails_when_users_hold_every_key():
    """__execute_only_pkey(): with all 15 keys allocated, PROT_EXEC mappings keep key 0 and
    stay readable; a key freed later is not taken by a plain mprotect of such a VMA."""
    mm = model(True)
    for _ in range(15):
        mm.pkey_alloc()
    mm.mmap(at(0), P, v.PROT_EXEC, NOREPLACE)
    assert keys(mm) == [0]
    mm.touch(at(0))
    mm.pkey_free(5)
    mm.mprotect(at(0), P, RO)
    assert keys(mm) == [0]
    assert mm.pkey_alloc() == 5


def test_seal_refuses_discard_of_write_disabled_anon_memory(mm):
    """can_madvise_modify(): a WD key makes writable anonymous memory count as read-only,
    so MADV_DONTNEED on it sealed is EPERM; without the key it is allowed."""
    mm.mmap(at(0), 2 * P, RW, NOREPLACE)
    if not host_has_pkeys():
        mm.mseal(at(0), 2 * P)
        mm.madvise(at(0), 2 * P, v.MADV_DONTNEED)
        return
    key = mm.pkey_alloc(0, DW)
    mm.pkey_mprotect(at(1), P, RW, key)
    mm.mseal(at(0), 2 * P)
    mm.madvise(at(0), P, v.MADV_DONTNEED)
    assert _errno(mm.madvise, at(1), P, v.MADV_DONTNEED) == errno.EPERM
