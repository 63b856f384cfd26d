"""mlock, mlock2, munlock, mlockall and munlockall: lock bits, splits and merges, holes and
their partial effects, population, locked_vm, each on the model and on the host.

locked_vm is compared as the host reports it (VmLck in /proc/PID/status) before any
mlockall, which would lock the host child's own Python mappings too."""

from __future__ import annotations

import errno

import pytest

import vmamodel as v
from vmamodel.host import HostAddressSpace

from .test_madvise import DROPPABLE, ULONG_MAX, errno_of
from .util import NOREPLACE, RW, SHANON, P, at, flags_of, layout


def _locks(mm: object) -> list[str]:
    """Per VMA: "lo", "lo lf" or "" (the lock mnemonics of VmFlags)."""
    return [" ".join(f for f in line.split() if f in ("lo", "lf")) for line in flags_of(mm)]


def locked_pages(mm: object) -> int:
    """mm->locked_vm in pages."""
    if isinstance(mm, HostAddressSpace):
        with open(f"/proc/{mm.pid}/status") as status:
            for line in status:
                if line.startswith("VmLck:"):
                    return int(line.split()[1]) // 4
        raise AssertionError("no VmLck line")
    return int(mm.locked_vm)  # type: ignore[attr-defined]


def _separately_written(mm, lock: object) -> list[tuple[int, int, str]]:
    """[0,2) is locked by ``lock``, [3,5) write-faulted, then the gap is mapped: a three-way
    merge happens only if [0,2) has no anon_vma (is_mergeable_anon_vma()). The lock is dropped first
    so that the lock bits do not block the merge."""
    mm.mmap(at(0), 2 * P, RW, NOREPLACE)
    mm.mmap(at(3), 2 * P, RW, NOREPLACE)
    lock(mm)  # type: ignore[operator]
    mm.munlock(at(0), 2 * P)
    mm.touch(at(3), True)
    mm.mmap(at(2), P, RW, NOREPLACE)
    return layout(mm)


# -- mlock / munlock ----------------------------------------------------------------------


def test_mlock_splits_and_munlock_merges_back(mm):
    mm.mmap(at(0), 4 * P, RW, NOREPLACE)
    mm.mlock(at(1), 2 * P)
    assert layout(mm) == [(0, 1, "rw-p"), (1, 3, "rw-p"), (3, 4, "rw-p")]
    assert _locks(mm) == ["", "lo", ""]
    assert locked_pages(mm) == 2
    mm.munlock(at(1), 2 * P)
    assert layout(mm) == [(0, 4, "rw-p")]
    assert locked_pages(mm) == 0


def test_mlock_rounds_the_start_down_and_the_end_up(mm):
    mm.mmap(at(0), 4 * P, RW, NOREPLACE)
    mm.mlock(at(1) + 100, P)
    assert _locks(mm) == ["", "lo", ""]
    assert layout(mm)[1][:2] == (1, 3)


def test_mlock_of_length_zero_at_an_unaligned_address_locks_its_page(mm):
    mm.mmap(at(0), 2 * P, RW, NOREPLACE)
    mm.mlock(at(0) + 5, 0)
    assert _locks(mm) == ["lo", ""]


def test_mlock_of_length_zero_at_an_aligned_address_does_nothing(mm):
    mm.mlock(at(5), 0)
    assert layout(mm) == []


def test_mlock_of_a_length_that_wraps_to_zero_succeeds(mm):
    mm.mmap(at(0), 2 * P, RW, NOREPLACE)
    mm.mlock(at(0), ULONG_MAX)
    mm.munlock(at(0), ULONG_MAX)
    assert _locks(mm) == [""]


def test_mlock_of_a_wrapping_range_is_einval(mm):
    mm.mmap(at(0), 2 * P, RW, NOREPLACE)
    assert errno_of(mm.mlock, at(0), (1 << 64) - at(0) + P) == errno.EINVAL


def test_mlock_starting_in_a_hole_is_enomem_and_changes_nothing(mm):
    mm.mmap(at(1), 2 * P, RW, NOREPLACE)
    assert errno_of(mm.mlock, at(0), 3 * P) == errno.ENOMEM
    assert _locks(mm) == [""]
    assert locked_pages(mm) == 0


@pytest.mark.parametrize("second", [True, False])
def test_mlock_over_a_hole_keeps_what_came_before(mm, second):
    """Partial effect: the VMA before the hole is locked (and counted), ENOMEM."""
    mm.mmap(at(0), 2 * P, RW, NOREPLACE)
    if second:
        mm.mmap(at(3), 2 * P, RW, NOREPLACE)
    assert errno_of(mm.mlock, at(1), 5 * P) == errno.ENOMEM
    assert _locks(mm) == ["", "lo"] + ([""] if second else [])
    assert locked_pages(mm) == 1


def test_munlock_over_a_hole_keeps_what_came_before(mm):
    mm.mmap(at(0), 2 * P, RW, NOREPLACE | v.MAP_LOCKED)
    mm.mmap(at(3), 2 * P, RW, NOREPLACE | v.MAP_LOCKED)
    assert errno_of(mm.munlock, at(0), 5 * P) == errno.ENOMEM
    assert _locks(mm) == ["", "lo"]
    assert locked_pages(mm) == 2


def test_mlock_across_vmas_locks_each(mm):
    mm.mmap(at(0), 2 * P, RW, NOREPLACE)
    mm.mmap(at(2), 2 * P, v.PROT_READ, NOREPLACE)
    mm.mlock(at(1), 2 * P)
    assert layout(mm) == [(0, 1, "rw-p"), (1, 2, "rw-p"), (2, 3, "r--p"), (3, 4, "r--p")]
    assert _locks(mm) == ["", "lo", "lo", ""]
    assert locked_pages(mm) == 2


def test_mlock2_rejects_unknown_flags(mm):
    mm.mmap(at(0), P, RW, NOREPLACE)
    assert errno_of(mm.mlock2, at(0), P, 2) == errno.EINVAL
    assert _locks(mm) == [""]


def test_mlock2_onfault_and_mlock_replace_each_other(mm):
    mm.mmap(at(0), 2 * P, RW, NOREPLACE)
    mm.mlock2(at(0), P, v.MLOCK_ONFAULT)
    assert _locks(mm) == ["lo lf", ""]
    assert locked_pages(mm) == 1
    mm.mlock(at(0), 2 * P)
    assert _locks(mm) == ["lo"]
    assert locked_pages(mm) == 2
    mm.mlock2(at(0), 2 * P, v.MLOCK_ONFAULT)
    assert _locks(mm) == ["lo lf"]
    assert locked_pages(mm) == 2


def test_mlock_of_prot_none_locks_but_fails_to_populate(mm):
    """The lock bits stay although populating failed: ENOMEM (EFAULT translated)."""
    mm.mmap(at(0), 2 * P, v.PROT_NONE, NOREPLACE)
    assert errno_of(mm.mlock, at(0), P) == errno.ENOMEM
    assert _locks(mm) == ["lo", ""]
    assert locked_pages(mm) == 1


def test_mlock2_onfault_of_prot_none_succeeds(mm):
    mm.mmap(at(0), 2 * P, v.PROT_NONE, NOREPLACE)
    mm.mlock2(at(0), P, v.MLOCK_ONFAULT)
    assert _locks(mm) == ["lo lf", ""]


def test_mlock_past_the_end_of_the_file_is_enomem(mm):
    file = v.memfd_create("mlock", 2 * P)
    mm.mmap(at(0), 4 * P, RW, v.MAP_SHARED | v.MAP_FIXED, file, 0)
    assert errno_of(mm.mlock, at(0), 4 * P) == errno.ENOMEM
    assert _locks(mm) == ["lo"]
    assert locked_pages(mm) == 4


def test_mlock_over_a_guard_page_is_enomem(mm):
    mm.mmap(at(0), 4 * P, RW, NOREPLACE)
    mm.madvise(at(1), P, v.MADV_GUARD_INSTALL)
    assert errno_of(mm.mlock, at(0), 4 * P) == errno.ENOMEM
    assert _locks(mm) == ["lo"]


def test_mprotect_of_locked_memory_ignores_a_failed_populate(mm):
    """mprotect_fixup populates a locked VMA made writable but ignores the result."""
    mm.mmap(at(0), 4 * P, v.PROT_READ, NOREPLACE)
    mm.madvise(at(1), P, v.MADV_GUARD_INSTALL)
    assert errno_of(mm.mlock, at(0), 4 * P) == errno.ENOMEM
    mm.mprotect(at(0), 4 * P, RW)
    assert layout(mm) == [(0, 4, "rw-p")]


def test_mlock_skips_droppable_memory(mm):
    mm.mmap(at(0), 2 * P, RW, DROPPABLE)
    mm.mlock(at(0), P)
    assert layout(mm) == [(0, 2, "rw-p")]
    assert _locks(mm) == [""]
    assert locked_pages(mm) == 0


def test_mlock_of_shared_memory(mm):
    mm.mmap(at(0), 2 * P, RW, SHANON)
    mm.mlock(at(0), P)
    assert _locks(mm) == ["lo", ""]


def test_mlock_populates_private_writable_memory(mm):
    """mlock write-faults a private writable VMA: it gets its own anon_vma."""
    got = _separately_written(mm, lambda m: m.mlock(at(0), 2 * P))
    assert got == [(0, 3, "rw-p"), (3, 5, "rw-p")]


def test_mlock2_onfault_does_not_populate(mm):
    got = _separately_written(mm, lambda m: m.mlock2(at(0), 2 * P, v.MLOCK_ONFAULT))
    assert got == [(0, 5, "rw-p")]


def test_munmap_of_locked_memory_returns_locked_vm(mm):
    mm.mmap(at(0), 4 * P, RW, NOREPLACE)
    mm.mlock(at(0), 4 * P)
    mm.munmap(at(1), 2 * P)
    assert locked_pages(mm) == 2


# -- mlockall / munlockall ----------------------------------------------------------------


@pytest.mark.parametrize("flags", [0, v.MCL_ONFAULT, 8, v.MCL_FUTURE | 8, -1])
def test_mlockall_rejects_bad_flags(mm, flags):
    assert errno_of(mm.mlockall, flags) == errno.EINVAL


def test_mlockall_future_locks_new_mappings_only(mm):
    mm.mmap(at(0), 2 * P, RW, NOREPLACE)
    mm.mlockall(v.MCL_FUTURE)
    mm.mmap(at(3), 2 * P, RW, NOREPLACE)
    mm.mmap(at(6), 2 * P, v.PROT_NONE, NOREPLACE)
    assert _locks(mm) == ["", "lo", "lo"]


def test_mlockall_future_onfault(mm):
    mm.mlockall(v.MCL_FUTURE | v.MCL_ONFAULT)
    mm.mmap(at(0), 2 * P, RW, NOREPLACE)
    assert _locks(mm) == ["lo lf"]


def test_mlockall_current_locks_every_vma_and_ignores_populate_errors(mm):
    mm.mmap(at(0), 2 * P, RW, NOREPLACE)
    mm.mmap(at(2), 2 * P, v.PROT_NONE, NOREPLACE)
    mm.mmap(at(4), 2 * P, RW, SHANON)
    mm.mlockall(v.MCL_CURRENT)
    assert _locks(mm) == ["lo", "lo", "lo"]
    mm.mmap(at(8), P, RW, NOREPLACE)
    assert _locks(mm) == ["lo", "lo", "lo", ""]


def test_mlockall_current_onfault(mm):
    mm.mmap(at(0), 2 * P, RW, NOREPLACE)
    mm.mlockall(v.MCL_CURRENT | v.MCL_ONFAULT)
    assert _locks(mm) == ["lo lf"]


def test_mlockall_current_without_future_clears_future(mm):
    mm.mlockall(v.MCL_FUTURE)
    mm.mlockall(v.MCL_CURRENT)
    mm.mmap(at(0), P, RW, NOREPLACE)
    assert _locks(mm) == [""]


def test_mlockall_skips_droppable_memory(mm):
    mm.mmap(at(0), 2 * P, RW, DROPPABLE)
    mm.mlockall(v.MCL_CURRENT | v.MCL_FUTURE)
    mm.mmap(at(4), 2 * P, RW, DROPPABLE)
    assert _locks(mm) == ["", ""]


def test_munlockall_unlocks_and_merges(mm):
    mm.mmap(at(0), 2 * P, RW, NOREPLACE)
    mm.mlockall(v.MCL_FUTURE | v.MCL_ONFAULT)
    mm.mmap(at(2), 2 * P, RW, NOREPLACE)
    assert layout(mm) == [(0, 2, "rw-p"), (2, 4, "rw-p")]
    mm.munlockall()
    assert layout(mm) == [(0, 4, "rw-p")]
    assert _locks(mm) == [""]
    mm.mmap(at(4), P, RW, NOREPLACE)
    assert _locks(mm) == [""]


def test_mlockall_current_populates(mm):
    got = _separately_written(mm, lambda m: m.mlockall(v.MCL_CURRENT))
    assert got == [(0, 3, "rw-p"), (3, 5, "rw-p")]


# -- limits the host cannot be given (it runs as root with CAP_IPC_LOCK) -------------------


def _unprivileged(limit: int, **kwargs: object) -> v.AddressSpace:
    return v.AddressSpace(rlimit_memlock=limit, cap_ipc_lock=False, debug=True, **kwargs)


@pytest.mark.parametrize("call", ["mlock", "mlock2", "mlockall"])
def test_model_no_memlock_limit_and_no_capability_is_eperm(call):
    mm = _unprivileged(0)
    mm.mmap(at(0), P, RW, NOREPLACE)
    args = (v.MCL_CURRENT,) if call == "mlockall" else (at(0), P)
    assert errno_of(getattr(mm, call), *args) == errno.EPERM


def test_model_mlock_over_the_limit_is_enomem_and_changes_nothing():
    mm = _unprivileged(P)
    mm.mmap(at(0), 2 * P, RW, NOREPLACE)
    assert errno_of(mm.mlock, at(0), 2 * P) == errno.ENOMEM
    assert _locks(mm) == [""]
    mm.mlock(at(0), P)
    assert mm.locked_vm == 1


def test_model_pages_already_locked_do_not_count_twice():
    mm = _unprivileged(2 * P)
    mm.mmap(at(0), 3 * P, RW, NOREPLACE)
    mm.mlock(at(0), 2 * P)
    mm.mlock(at(0), 2 * P)
    assert errno_of(mm.mlock, at(0), 3 * P) == errno.ENOMEM
    mm.munlock(at(0), 3 * P)
    assert mm.locked_vm == 0


def test_model_mlockall_current_over_the_limit_is_enomem():
    mm = _unprivileged(P)
    mm.mmap(at(0), 2 * P, RW, NOREPLACE)
    assert errno_of(mm.mlockall, v.MCL_CURRENT) == errno.ENOMEM
    mm.mlockall(v.MCL_FUTURE)
    assert mm.def_flags & v.VM.LOCKED


def test_model_mlock_split_at_max_map_count_is_enomem():
    mm = v.AddressSpace(max_map_count=1, debug=True)
    mm.mmap(at(0), 3 * P, RW, NOREPLACE)
    assert errno_of(mm.mlock, at(1), P) == errno.ENOMEM
    assert _locks(mm) == [""]
    assert mm.locked_vm == 0


def test_model_special_mappings_are_never_locked():
    """mlock_fixup skips VM_SPECIAL without an error, and populate skips VM_IO/VM_PFNMAP."""
    from .test_madvise import special_mm

    mm = special_mm()
    mm.mlock(at(0), 3 * P)
    assert _locks(mm) == ["lo", "", "lo"]
    assert mm.locked_vm == 2
    mm.munlockall()
    mm.mlockall(v.MCL_CURRENT | v.MCL_FUTURE)
    assert _locks(mm) == ["lo", "", "lo"]


@pytest.mark.parametrize("pkeys", [False, True])
def test_model_mlock_of_exec_only_memory_follows_pku(pkeys):
    """check_vma_flags(): with PKU the execute-only key denies GUP's access, so populating
    fails (ENOMEM from mlock) although the lock bits stay; without PKU it succeeds."""
    mm = v.AddressSpace(pkeys=pkeys, debug=True)
    mm.mmap(at(0), P, v.PROT_EXEC, NOREPLACE)
    if pkeys:
        assert errno_of(mm.mlock, at(0), P) == errno.ENOMEM
    else:
        mm.mlock(at(0), P)
    assert _locks(mm) == ["lo"]
