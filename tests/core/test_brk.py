"""brk(2) on both backends: growth, shrinking, the refusals (below start_brk, a mapping in
the way, the stack guard gap, RLIMIT_DATA, sealed VMAs), how the heap VMA grows or does not
(do_brk_flags expands only the VMA that ends at the old break, and only when compatible),
and the [heap] name in maps.

The host child keeps its heap in the top of the arena (``start_brk``); the model is
configured with the same start_brk (host_model_kwargs), so pages are counted from it.
"""

from __future__ import annotations

import resource
from typing import Any

import pytest

import vmamodel as v

from .util import NOREPLACE, RO, RW, P

U64 = (1 << 64) - 1
#: A data segment for the model (the host reports its own: the Python binary's .data).
DATA_START = 0x555555558000
DATA_SIZE = 3 * P + 616


def heap(mm: Any) -> list[tuple[int, int, str, str]]:
    """(first page, end page, perms, name) of each VMA, counted from start_brk."""
    base = mm.start_brk
    out = []
    for line in mm.maps().splitlines():
        fields = line.split()
        start, end = (int(x, 16) for x in fields[0].split("-"))
        name = fields[5] if len(fields) > 5 else ""
        out.append(((start - base) // P, (end - base) // P, fields[1], name))
    return out


def brk_at(mm: Any, offset: int) -> int:
    """brk(start_brk + offset); returns the break relative to start_brk."""
    result: int = mm.brk(mm.start_brk + offset)
    return result - mm.start_brk


def flags(mm: Any) -> list[str]:
    return [
        line.split(":", 1)[1].strip()
        for line in mm.smaps().splitlines()
        if line.startswith("VmFlags:")
    ]


def set_rlimit_data(mm: Any, soft: int) -> None:
    """RLIMIT_DATA's soft limit (the hard one stays infinite)."""
    if hasattr(mm, "pid"):
        resource.prlimit(mm.pid, resource.RLIMIT_DATA, (soft, resource.RLIM_INFINITY))
    else:
        mm.rlimit_data = soft


def data_vm(mm: Any) -> int:
    """mm->data_vm in pages (VmData of the host process)."""
    if not hasattr(mm, "pid"):
        return int(mm.data_vm)
    with open(f"/proc/{mm.pid}/status") as status:
        for line in status:
            if line.startswith("VmData:"):
                return int(line.split()[1]) // 4
    raise AssertionError("no VmData")


@pytest.fixture
def dmm(backend: Any) -> Any:
    """An address space with a data segment of a few pages (RLIMIT_DATA counts it)."""
    if backend.is_host:
        return backend()
    return backend(start_data=DATA_START, end_data=DATA_START + DATA_SIZE)


# ---- growth ---------------------------------------------------------------------------------


def test_brk_below_start_brk_reports_the_break_and_changes_nothing(mm):
    assert mm.brk(0) == mm.start_brk
    assert mm.brk(mm.start_brk - 1) == mm.start_brk
    assert brk_at(mm, 3 * P) == 3 * P
    assert mm.brk(0) == mm.start_brk + 3 * P
    assert heap(mm) == [(0, 3, "rw-p", "[heap]")]


def test_first_growth_maps_an_accounted_heap_vma_rounded_up_to_a_page(mm):
    assert brk_at(mm, 3 * P + 5) == 3 * P + 5
    assert heap(mm) == [(0, 4, "rw-p", "[heap]")]
    assert flags(mm) == ["rd wr mr mw me ac"]


def test_a_break_in_the_same_page_moves_without_touching_the_vma(mm):
    assert brk_at(mm, P + 1) == P + 1
    assert brk_at(mm, 2 * P) == 2 * P
    assert brk_at(mm, P + 7) == P + 7
    assert heap(mm) == [(0, 2, "rw-p", "[heap]")]


def test_growth_expands_the_heap_vma_in_place(mm):
    brk_at(mm, 2 * P)
    mm.touch(mm.start_brk, write=True)  # faulted: the expansion keeps its anon_vma
    assert brk_at(mm, 5 * P) == 5 * P
    assert brk_at(mm, 9 * P) == 9 * P
    assert heap(mm) == [(0, 9, "rw-p", "[heap]")]


def test_growth_after_an_incompatible_tail_makes_a_new_vma(mm):
    brk_at(mm, 4 * P)
    mm.mprotect(mm.start_brk + 3 * P, P, RO)
    assert brk_at(mm, 6 * P) == 6 * P
    assert heap(mm) == [(0, 3, "rw-p", "[heap]"), (3, 4, "r--p", "[heap]"),
                        (4, 6, "rw-p", "[heap]")]


def test_growth_after_a_hole_below_the_break_does_not_fill_the_hole(mm):
    brk_at(mm, 4 * P)
    mm.munmap(mm.start_brk + 2 * P, 2 * P)
    assert brk_at(mm, 6 * P) == 6 * P
    assert heap(mm) == [(0, 2, "rw-p", "[heap]"), (4, 6, "rw-p", "[heap]")]


def test_growth_never_extends_a_mapping_below_start_brk(mm):
    """vma_prev_limit(start_brk): a mapping that ends exactly at start_brk is not the brk
    VMA, even when it could merge."""
    mm.mmap(mm.start_brk - 2 * P, 2 * P, RW, NOREPLACE)
    assert brk_at(mm, 2 * P) == 2 * P
    assert heap(mm) == [(-2, 0, "rw-p", ""), (0, 2, "rw-p", "[heap]")]


def test_a_mapping_placed_at_the_break_is_grown_as_the_heap(mm):
    """Whatever ends at the old break (above start_brk) is the brk VMA."""
    brk_at(mm, 2 * P)
    mm.munmap(mm.start_brk, 2 * P)
    mm.mmap(mm.start_brk + P, P, RW, NOREPLACE)
    assert brk_at(mm, 4 * P) == 4 * P
    assert heap(mm) == [(1, 4, "rw-p", "[heap]")]


def test_an_anonymous_mapping_right_above_the_heap_merges_into_it(mm):
    brk_at(mm, 2 * P)
    mm.mmap(mm.start_brk + 2 * P, 3 * P, RW, NOREPLACE)
    assert heap(mm) == [(0, 5, "rw-p", "[heap]")]


def test_a_mapping_across_start_brk_is_named_heap_even_with_no_heap(mm):
    mm.mmap(mm.start_brk - P, 2 * P, RW, NOREPLACE)
    assert heap(mm) == [(-1, 1, "rw-p", "[heap]")]


# ---- refusals -------------------------------------------------------------------------------


def test_growth_needs_a_free_page_above_the_new_break(mm):
    mm.mmap(mm.start_brk + 8 * P, P, RW, NOREPLACE)
    assert brk_at(mm, 7 * P + 1) == 0
    assert brk_at(mm, 8 * P) == 0
    assert heap(mm) == [(8, 9, "rw-p", "")]
    assert brk_at(mm, 7 * P) == 7 * P
    assert heap(mm) == [(0, 7, "rw-p", "[heap]"), (8, 9, "rw-p", "")]


def test_growth_into_a_mapping_is_refused(mm):
    mm.mmap(mm.start_brk + 2 * P, P, RO, NOREPLACE)
    assert brk_at(mm, 5 * P) == 0
    assert heap(mm) == [(2, 3, "r--p", "")]


def test_growth_keeps_the_stack_guard_gap_below_a_growsdown_mapping(mm):
    gap = 256
    stack = 300
    mm.mmap(mm.start_brk + stack * P, P, RW, NOREPLACE | v.MAP_GROWSDOWN)
    assert brk_at(mm, (stack - gap) * P) == 0
    assert brk_at(mm, (stack - gap - 1) * P + 1) == 0
    assert brk_at(mm, (stack - gap - 1) * P) == (stack - gap - 1) * P


def test_the_guard_gap_is_not_kept_below_an_ordinary_mapping(mm):
    mm.mmap(mm.start_brk + 300 * P, P, RW, NOREPLACE)
    assert brk_at(mm, 299 * P) == 299 * P


@pytest.mark.parametrize("addr", [1 << 63, U64, v.TASK_SIZE + 1, U64 - P + 2])
def test_a_break_beyond_the_address_space_is_refused(mm, addr):
    brk_at(mm, P)
    assert mm.brk(addr) == mm.start_brk + P
    assert heap(mm) == [(0, 1, "rw-p", "[heap]")]


def test_growth_over_rlimit_data_is_refused(mm):
    """may_expand_vm() in do_brk_flags(): data_vm plus the growth must fit."""
    brk_at(mm, 2 * P)
    set_rlimit_data(mm, (data_vm(mm) + 4) * P)
    assert brk_at(mm, 7 * P) == 2 * P
    assert brk_at(mm, 6 * P) == 6 * P
    set_rlimit_data(mm, resource.RLIM_INFINITY)
    assert heap(mm) == [(0, 6, "rw-p", "[heap]")]


def test_rlimit_data_counts_the_break_and_the_data_segment_even_when_shrinking(dmm):
    """check_data_rlimit(): (brk - start_brk) + (end_data - start_data) must fit, for any
    new break, smaller or not."""
    mm = dmm
    segment = mm.end_data - mm.start_data
    assert segment > 0
    brk_at(mm, 16 * P)
    set_rlimit_data(mm, 8 * P + segment)
    assert brk_at(mm, 8 * P + 1) == 16 * P
    assert heap(mm) == [(0, 16, "rw-p", "[heap]")]
    assert brk_at(mm, 8 * P) == 8 * P
    set_rlimit_data(mm, resource.RLIM_INFINITY)
    assert heap(mm) == [(0, 8, "rw-p", "[heap]")]


# ---- shrinking ------------------------------------------------------------------------------


def test_shrink_unmaps_the_tail(mm):
    brk_at(mm, 8 * P)
    assert brk_at(mm, 3 * P + 1) == 3 * P + 1
    assert heap(mm) == [(0, 4, "rw-p", "[heap]")]
    assert brk_at(mm, 0) == 0
    assert heap(mm) == []


def test_shrink_with_nothing_mapped_in_the_released_range_fails(mm):
    """The VMA found from the new break must start below the old one: with the heap gone
    the break cannot come down, and the next growth starts from where it is."""
    brk_at(mm, 4 * P)
    mm.munmap(mm.start_brk, 4 * P)
    assert brk_at(mm, 0) == 4 * P
    assert brk_at(mm, 6 * P) == 6 * P
    assert heap(mm) == [(4, 6, "rw-p", "[heap]")]


def test_shrink_unmaps_whatever_lies_between_the_breaks(mm):
    brk_at(mm, 6 * P)
    mm.munmap(mm.start_brk + 2 * P, 4 * P)
    mm.mmap(mm.start_brk + 4 * P, P, RO, NOREPLACE)
    assert brk_at(mm, P) == P
    assert heap(mm) == [(0, 1, "rw-p", "[heap]")]


def test_shrink_through_a_split_heap_removes_every_piece(mm):
    brk_at(mm, 6 * P)
    mm.mprotect(mm.start_brk + 2 * P, P, RO)
    mm.mprotect(mm.start_brk + 4 * P, P, RO)
    assert len(heap(mm)) == 5
    assert brk_at(mm, P + 5) == P + 5
    assert heap(mm) == [(0, 2, "rw-p", "[heap]")]


def test_shrink_of_a_sealed_heap_fails_and_keeps_the_break(mm):
    child = mm.fork()  # the host cannot reset an arena with sealed mappings: seal in a fork
    try:
        brk_at(child, 4 * P)
        child.mseal(child.start_brk, 4 * P)
        assert brk_at(child, P) == 4 * P
        assert heap(child) == [(0, 4, "rw-p", "[heap]")]
        assert brk_at(child, 6 * P) == 6 * P
    finally:
        child.exit()


def test_regrowth_after_a_shrink_expands_the_remaining_heap(mm):
    brk_at(mm, 8 * P)
    mm.touch(mm.start_brk + P, write=True)
    brk_at(mm, 2 * P)
    assert brk_at(mm, 5 * P) == 5 * P
    assert heap(mm) == [(0, 5, "rw-p", "[heap]")]


# ---- the heap across fork -------------------------------------------------------------------


def test_a_fork_child_expands_an_unfaulted_heap_in_place(mm):
    brk_at(mm, 2 * P)
    child = mm.fork()
    try:
        assert brk_at(child, 4 * P) == 4 * P
        assert heap(child) == [(0, 4, "rw-p", "[heap]")]
        assert heap(mm) == [(0, 2, "rw-p", "[heap]")]
    finally:
        child.exit()


def test_a_fork_child_does_not_expand_a_faulted_heap(mm):
    """is_mergeable_anon_vma(): the child's heap VMA is a fork child, so the growth gets a
    VMA of its own; the parent's heap still expands."""
    brk_at(mm, 2 * P)
    mm.touch(mm.start_brk, write=True)
    child = mm.fork()
    try:
        assert brk_at(child, 4 * P) == 4 * P
        assert heap(child) == [(0, 2, "rw-p", "[heap]"), (2, 4, "rw-p", "[heap]")]
        assert brk_at(mm, 4 * P) == 4 * P
        assert heap(mm) == [(0, 4, "rw-p", "[heap]")]
    finally:
        child.exit()



def test_mlockall_future_locks_and_populates_the_heap_but_not_in_a_child(mm):
    """def_flags carries VM_LOCKED into do_brk_flags() and brk() populates the growth (so the
    heap gets an anon_vma); the child's def_flags lose it and its copy is a fork child."""
    mm.mlockall(v.MCL_FUTURE)
    brk_at(mm, 3 * P)
    assert flags(mm) == ["rd wr mr mw me lo ac"]
    child = mm.fork()
    try:
        assert brk_at(child, 5 * P) == 5 * P
        assert heap(child) == [(0, 3, "rw-p", "[heap]"), (3, 5, "rw-p", "[heap]")]
        assert flags(child) == ["rd wr mr mw me ac"] * 2
    finally:
        child.exit()
        mm.munlockall()


# ---- the oracle's safety ----------------------------------------------------------------------


@pytest.mark.host
def test_the_oracle_refuses_a_break_that_leaves_the_arena():
    from vmamodel.host import HEAP_SPAN, HostAddressSpace

    with HostAddressSpace() as hs:
        top = hs.start_brk + HEAP_SPAN
        with pytest.raises(ValueError):
            hs.brk(top + 1)
        assert hs.brk(top) == top
        assert hs.brk(hs.start_brk - P) == top  # below start_brk: refused by the kernel
        assert hs.brk(hs.start_brk) == hs.start_brk


@pytest.mark.host
def test_glibc_in_the_oracle_child_cannot_move_the_break():
    """After child.move_heap(), sbrk() fails inside the child while the oracle's own brk()
    still works: malloc can never be handed memory of the heap under test."""
    import subprocess
    import sys
    from pathlib import Path

    from vmamodel.host import CHILD_PATH, heap_start

    script = f"""
import ctypes, sys
sys.path.insert(0, {str(Path(CHILD_PATH).parent)!r})
import child
start = {heap_start()}
child.move_heap(start)
libc = ctypes.CDLL(None)
libc.sbrk.restype = ctypes.c_void_p
libc.sbrk.argtypes = (ctypes.c_long,)
failed = ctypes.c_void_p(-1).value
# Without the filter the first sbrk would fail (the stale break runs into the binary) and
# leave glibc's idea of the break at start: the second would then take the test heap.
print(libc.sbrk(1 << 20) == failed, libc.sbrk(1 << 20) == failed,
      child.sys6(child.SYS_BRK, 0) == start,
      child.sys6(child.SYS_BRK, start + 4096) == start + 4096)
"""
    result = subprocess.run([sys.executable, "-I", "-S", "-c", script], capture_output=True,
                            text=True, check=True)
    assert result.stdout.split() == ["True"] * 4

# ---- the model's own bookkeeping --------------------------------------------------------------


def model(**kwargs: Any) -> v.AddressSpace:
    from vmamodel.host import host_model_kwargs

    return v.AddressSpace(debug=True, **{**host_model_kwargs(), **kwargs})


@pytest.mark.parametrize("point", ["vm_enough_memory", "vma_alloc", "vma_prealloc"])
def test_a_failed_growth_changes_nothing(point):
    mm = model()
    with mm.inject(point) as rule:
        assert brk_at(mm, 2 * P) == 0
    assert rule.fired == 1
    assert (mm.maps(), mm.committed_pages, mm.total_vm, mm.data_vm) == ("", 0, 0, 0)
    assert brk_at(mm, 2 * P) == 2 * P


def test_a_failed_expansion_changes_nothing():
    mm = model()
    brk_at(mm, 2 * P)
    with mm.inject("merge_alloc") as rule:
        assert brk_at(mm, 4 * P) == 2 * P
    assert rule.fired == 1
    assert (heap(mm), mm.committed_pages, mm.total_vm) == ([(0, 2, "rw-p", "[heap]")], 2, 2)


def test_a_failed_shrink_keeps_the_break():
    mm = model()
    brk_at(mm, 4 * P)
    mm.mprotect(mm.start_brk + 3 * P, P, RO)
    with mm.inject("split_alloc") as rule:
        assert brk_at(mm, P) == 4 * P
    assert rule.fired == 1
    assert mm.current_brk == mm.start_brk + 4 * P


def test_growth_counts_total_data_and_commit():
    mm = model()
    brk_at(mm, 3 * P)
    brk_at(mm, 5 * P)
    assert (mm.total_vm, mm.data_vm, mm.committed_pages, mm.locked_vm) == (5, 5, 5, 0)
    brk_at(mm, P)
    assert (mm.total_vm, mm.data_vm, mm.committed_pages) == (1, 1, 1)


def test_growth_past_max_map_count_is_refused():
    """do_brk_flags(): map_count above the limit refuses even a growth that would merge."""
    mm = model(max_map_count=2)
    brk_at(mm, P)
    for page in (4, 6):
        mm.mmap(mm.start_brk + page * P, P, RO, NOREPLACE)
    assert mm.map_count == 3
    assert brk_at(mm, 2 * P) == P


def test_a_heap_locked_by_def_flags_is_locked_counted_and_populated():
    mm = model()
    mm.def_flags = v.VM.LOCKED
    brk_at(mm, 3 * P)
    assert flags(mm) == ["rd wr mr mw me lo ac"]
    assert mm.locked_vm == 3
    assert mm.vmas()[0].anon_vma is not None


def test_a_locked_heap_over_rlimit_memlock_is_refused():
    """check_brk_limits(): mlock_future_ok() under mlockall(MCL_FUTURE) without
    CAP_IPC_LOCK."""
    mm = model(cap_ipc_lock=False, rlimit_memlock=4 * P)
    mm.def_flags = v.VM.LOCKED
    assert brk_at(mm, 4 * P) == 4 * P
    assert brk_at(mm, 5 * P) == 4 * P


def test_read_implies_exec_makes_the_heap_executable():
    mm = model(read_implies_exec=True)
    brk_at(mm, P)
    assert heap(mm) == [(0, 1, "rwxp", "[heap]")]
