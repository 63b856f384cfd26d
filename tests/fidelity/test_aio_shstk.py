"""The aio ring of io_setup(2) and map_shadow_stack(2), on the model and on the host kernel.

The kernel places the ring near the process's own mappings; both backends then move it to
an arena address with mremap (io_setup's ``move_to``), which aio_ring_mremap follows."""

from __future__ import annotations

import errno

import pytest

import vmamodel as v
from core.util import NOREPLACE, RW, P, at, flags_of, layout
from peer.util import errno_of

RING = "rd wr sh mr mw ms de"


@pytest.mark.parametrize(("nr_events", "pages"), [(1, 1), (8, 1), (64, 2), (128, 3), (1000, 16)])
def test_ring_size_flags_and_name(mm, nr_events, pages):
    ctx = mm.io_setup(nr_events, move_to=at(0))
    assert ctx == at(0)
    assert layout(mm) == [(0, pages, "rw-s")]
    assert flags_of(mm) == [RING]
    assert [view.name for view in mm.vmas()] == ["/[aio] (deleted)"]
    mm.io_destroy(ctx)
    assert layout(mm) == []


def test_rings_never_merge_and_destroy_follows_a_move(mm):
    one = mm.io_setup(1, move_to=at(0))
    two = mm.io_setup(1, move_to=at(1))
    assert layout(mm) == [(0, 1, "rw-s"), (1, 2, "rw-s")]
    moved = mm.mremap(two, P, P, v.MREMAP_MAYMOVE | v.MREMAP_FIXED, at(5))
    assert errno_of(mm.io_destroy, two) == errno.EINVAL
    mm.io_destroy(moved)
    mm.io_destroy(one)
    assert layout(mm) == []


def test_the_ring_cannot_grow(mm):
    ctx = mm.io_setup(1, move_to=at(0))
    assert errno_of(mm.mremap, ctx, P, 2 * P, 0) == errno.EFAULT
    mm.io_destroy(ctx)


@pytest.mark.parametrize(("nr_events", "expected"),
                         [(0, errno.EINVAL), (65537, errno.EAGAIN), (1 << 23, errno.EINVAL)])
def test_io_setup_errors(mm, nr_events, expected):
    assert errno_of(mm.io_setup, nr_events, at(0)) == expected
    assert layout(mm) == []


@pytest.mark.parametrize(("addr", "size", "flags"), [(0, P, 0), (at(0), P, 1), (0, 0, 7)])
def test_map_shadow_stack_is_enosys(mm, addr, size, flags):
    """No CONFIG_X86_USER_SHADOW_STACK on the host (nor user_shstk in its CPU)."""
    mm.mmap(at(4), P, RW, NOREPLACE)
    assert errno_of(mm.map_shadow_stack, addr, size, flags) == errno.ENOSYS
