"""mbind(2) and set_mempolicy_home_node(2): policies split and merge VMAs (mpol_equal in
is_mergeable_vma), and the errno of bad modes, flags and node masks, on the model and on the
host kernel (one NUMA node: node 0)."""

from __future__ import annotations

import errno

import pytest

import vmamodel as v
from core.util import NOREPLACE, RW, SHANON, P, at, layout
from peer.util import errno_of, state
from vmamodel.mempolicy import (
    MPOL_BIND,
    MPOL_DEFAULT,
    MPOL_F_NUMA_BALANCING,
    MPOL_F_RELATIVE_NODES,
    MPOL_F_STATIC_NODES,
    MPOL_INTERLEAVE,
    MPOL_LOCAL,
    MPOL_MF_MOVE,
    MPOL_MF_MOVE_ALL,
    MPOL_MF_STRICT,
    MPOL_PREFERRED,
    MPOL_PREFERRED_MANY,
    MPOL_WEIGHTED_INTERLEAVE,
)

NODE0 = 0b1
NODE1 = 0b10


def four(mm):
    mm.mmap(at(0), 4 * P, RW, NOREPLACE)
    return mm


def test_bind_the_middle_splits_and_default_merges_again(mm):
    four(mm)
    mm.mbind(at(1), 2 * P, MPOL_BIND, NODE0, 64)
    assert layout(mm) == [(0, 1, "rw-p"), (1, 3, "rw-p"), (3, 4, "rw-p")]
    mm.mbind(at(1), 2 * P, MPOL_DEFAULT)
    assert layout(mm) == [(0, 4, "rw-p")]


def test_equal_policies_merge_and_different_ones_do_not(mm):
    four(mm)
    mm.mbind(at(0), P, MPOL_BIND, NODE0, 64)
    mm.mbind(at(2), P, MPOL_BIND, NODE0, 64)
    assert len(layout(mm)) == 4
    mm.mbind(at(1), P, MPOL_BIND, NODE0, 2)
    assert layout(mm) == [(0, 3, "rw-p"), (3, 4, "rw-p")]
    mm.mbind(at(3), P, MPOL_INTERLEAVE, NODE0, 64)
    assert layout(mm) == [(0, 3, "rw-p"), (3, 4, "rw-p")]
    mm.mbind(at(2), P, MPOL_PREFERRED, NODE0, 64)
    assert layout(mm) == [(0, 2, "rw-p"), (2, 3, "rw-p"), (3, 4, "rw-p")]


def test_static_nodes_keep_the_user_mask_apart(mm):
    """MPOL_F_STATIC_NODES stores the user's mask: node 0 and nodes 0-1 are different
    policies although both bind to node 0 here."""
    four(mm)
    mm.mbind(at(0), 2 * P, MPOL_BIND | MPOL_F_STATIC_NODES, NODE0, 64)
    mm.mbind(at(2), 2 * P, MPOL_BIND | MPOL_F_STATIC_NODES, NODE0 | NODE1, 64)
    assert layout(mm) == [(0, 2, "rw-p"), (2, 4, "rw-p")]
    mm.mbind(at(2), 2 * P, MPOL_BIND, NODE0 | NODE1, 64)
    mm.mbind(at(0), 2 * P, MPOL_BIND, NODE0, 64)
    assert layout(mm) == [(0, 4, "rw-p")]


def test_a_new_mapping_next_to_a_bound_vma_does_not_merge(mm):
    mm.mmap(at(0), 2 * P, RW, NOREPLACE)
    mm.mbind(at(0), 2 * P, MPOL_BIND, NODE0, 64)
    mm.mmap(at(2), 2 * P, RW, NOREPLACE)
    assert layout(mm) == [(0, 2, "rw-p"), (2, 4, "rw-p")]
    mm.mbind(at(2), 2 * P, MPOL_BIND, NODE0, 64)
    assert layout(mm) == [(0, 4, "rw-p")]


def test_mremap_moves_the_policy_with_the_vma(mm):
    four(mm)
    mm.mbind(at(2), 2 * P, MPOL_BIND, NODE0, 64)
    mm.mremap(at(2), 2 * P, 2 * P, v.MREMAP_MAYMOVE | v.MREMAP_FIXED, at(10))
    mm.mmap(at(12), P, RW, NOREPLACE)
    assert layout(mm) == [(0, 2, "rw-p"), (10, 12, "rw-p"), (12, 13, "rw-p")]
    mm.mbind(at(12), P, MPOL_BIND, NODE0, 64)
    assert layout(mm) == [(0, 2, "rw-p"), (10, 13, "rw-p")]


def test_fork_keeps_the_policies(mm):
    four(mm)
    mm.mbind(at(1), P, MPOL_BIND, NODE0, 64)
    child = mm.fork()
    assert len(layout(child)) == 3
    child.mbind(at(1), P, MPOL_DEFAULT)
    assert layout(child) == [(0, 4, "rw-p")]


def test_shared_memory_takes_a_policy_too(mm):
    mm.mmap(at(0), 4 * P, RW, SHANON)
    mm.mbind(at(1), P, MPOL_BIND, NODE0, 64)
    assert len(layout(mm)) == 3


@pytest.mark.parametrize(
    ("mode", "nodes", "maxnode", "flags", "expected"),
    [
        (7, NODE0, 64, 0, errno.EINVAL),  # MPOL_MAX
        (MPOL_BIND | MPOL_F_STATIC_NODES | MPOL_F_RELATIVE_NODES, NODE0, 64, 0, errno.EINVAL),
        (MPOL_INTERLEAVE | MPOL_F_NUMA_BALANCING, NODE0, 64, 0, errno.EINVAL),
        (MPOL_BIND, NODE0, 64, 1 << 3, errno.EINVAL),  # MPOL_MF_LAZY
        (MPOL_BIND, NODE1, 64, 0, errno.EINVAL),  # no such node
        (MPOL_BIND, NODE0, 1, 0, errno.EINVAL),  # maxnode 1: an empty mask
        (MPOL_BIND, NODE0, 0, 0, errno.EINVAL),
        (MPOL_BIND, None, 64, 0, errno.EINVAL),
        (MPOL_BIND, NODE0, 4096 * 8 + 2, 0, errno.EINVAL),
        (MPOL_BIND, 1 << 1024, 1026, 0, errno.EINVAL),  # above MAX_NUMNODES
        (MPOL_DEFAULT, NODE0, 64, 0, errno.EINVAL),
        (MPOL_LOCAL, NODE0, 64, 0, errno.EINVAL),
        (MPOL_LOCAL | MPOL_F_STATIC_NODES, None, 0, 0, errno.EINVAL),
        (MPOL_PREFERRED | MPOL_F_STATIC_NODES, None, 0, 0, errno.EINVAL),
        (MPOL_PREFERRED_MANY, 0, 64, 0, errno.EINVAL),
        (MPOL_WEIGHTED_INTERLEAVE, NODE1, 64, 0, errno.EINVAL),
    ],
)
def test_bad_policies_fail_and_change_nothing(mm, mode, nodes, maxnode, flags, expected):
    four(mm)
    before = state(mm)
    assert errno_of(mm.mbind, at(1), P, mode, nodes, maxnode, flags) == expected
    assert state(mm) == before


@pytest.mark.parametrize(
    ("mode", "nodes", "maxnode"),
    [
        (MPOL_BIND | MPOL_F_NUMA_BALANCING, NODE0, 64),
        (MPOL_PREFERRED_MANY | MPOL_F_NUMA_BALANCING, NODE0, 64),
        (MPOL_BIND | MPOL_F_RELATIVE_NODES, NODE1, 64),  # folded onto node 0
        (MPOL_BIND, NODE0 | NODE1, 64),
        (MPOL_BIND, NODE0 | 1 << 1023, 1025),
        (MPOL_PREFERRED, None, 0),  # local
        (MPOL_LOCAL, None, 0),
        (MPOL_WEIGHTED_INTERLEAVE, NODE0, 64),
        (MPOL_BIND, NODE0, 4096 * 8 + 1),
    ],
)
def test_good_policies_split(mm, mode, nodes, maxnode):
    four(mm)
    mm.mbind(at(1), P, mode, nodes, maxnode)
    assert len(layout(mm)) == 3


@pytest.mark.parametrize("flags", [MPOL_MF_STRICT, MPOL_MF_MOVE, MPOL_MF_MOVE_ALL,
                                   MPOL_MF_STRICT | MPOL_MF_MOVE])
def test_move_and_strict_flags_on_one_node(mm, flags):
    four(mm)
    mm.touch(at(1), write=True)
    mm.mbind(at(1), P, MPOL_BIND, NODE0, 64, flags)
    assert len(layout(mm)) == 3


def test_range_checks(mm):
    four(mm)
    before = state(mm)
    assert errno_of(mm.mbind, at(0) + 1, P, MPOL_BIND, NODE0, 64) == errno.EINVAL
    mm.mbind(at(1), 0, MPOL_BIND, 0, 64)  # empty: succeeds before the policy is checked
    mm.mbind(at(1), -1, MPOL_BIND, NODE0, 64)  # PAGE_ALIGN wraps to an empty range
    assert errno_of(mm.mbind, at(1), -2 * P, MPOL_BIND, NODE0, 64) == errno.EINVAL
    assert state(mm) == before


def test_holes_are_efault_before_any_change(mm):
    mm.mmap(at(0), 2 * P, RW, NOREPLACE)
    mm.mmap(at(3), 2 * P, RW, NOREPLACE)
    before = state(mm)
    assert errno_of(mm.mbind, at(1), 3 * P, MPOL_BIND, NODE0, 64) == errno.EFAULT
    assert errno_of(mm.mbind, at(4), 2 * P, MPOL_BIND, NODE0, 64) == errno.EFAULT
    assert errno_of(mm.mbind, at(6), 2 * P, MPOL_DEFAULT) == errno.EFAULT
    assert errno_of(mm.mbind, at(2), P, MPOL_BIND, NODE0, 64) == errno.EFAULT
    assert state(mm) == before
    mm.mbind(at(0), 5 * P, MPOL_DEFAULT)  # the default policy skips holes


def test_home_node(mm):
    four(mm)
    assert errno_of(mm.set_mempolicy_home_node, at(0), 4 * P, 0) == errno.ENOENT
    mm.mbind(at(1), 2 * P, MPOL_BIND, NODE0, 64)
    assert errno_of(mm.set_mempolicy_home_node, at(0), 4 * P, 1) == errno.EINVAL
    assert errno_of(mm.set_mempolicy_home_node, at(0), 4 * P, 0, 1) == errno.EINVAL
    assert errno_of(mm.set_mempolicy_home_node, at(0) + 1, 4 * P, 0) == errno.EINVAL
    assert errno_of(mm.set_mempolicy_home_node, at(0), 4 * P, 1024) == errno.EINVAL
    mm.set_mempolicy_home_node(at(2), P, 0)
    assert layout(mm) == [(0, 1, "rw-p"), (1, 2, "rw-p"), (2, 3, "rw-p"), (3, 4, "rw-p")]
    mm.set_mempolicy_home_node(at(0), 4 * P, 0)
    assert layout(mm) == [(0, 1, "rw-p"), (1, 3, "rw-p"), (3, 4, "rw-p")]
    # The node is checked before the empty range returns.
    assert errno_of(mm.set_mempolicy_home_node, at(0), 0, 5) == errno.EINVAL
    mm.set_mempolicy_home_node(at(0), 0, 0)


def test_home_node_refuses_other_modes(mm):
    four(mm)
    mm.mbind(at(0), P, MPOL_BIND, NODE0, 64)
    mm.mbind(at(2), P, MPOL_INTERLEAVE, NODE0, 64)
    assert errno_of(mm.set_mempolicy_home_node, at(0), 4 * P, 0) == errno.EOPNOTSUPP
    # The first VMA got its home node before the walk stopped.
    mm.mbind(at(1), P, MPOL_BIND, NODE0, 64)
    assert layout(mm) == [(0, 1, "rw-p"), (1, 2, "rw-p"), (2, 3, "rw-p"), (3, 4, "rw-p")]
