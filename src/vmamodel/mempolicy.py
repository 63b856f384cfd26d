"""struct mempolicy as a value (mm/mempolicy.c): how mbind() builds a policy from a mode,
mode flags and a user node mask, and when two policies are equal (mpol_equal), which is
what keeps VMAs with different policies apart in the merge rules.

The machine's NUMA layout is ``AddressSpace.numa_nodes`` (nodes 0..n-1 online, each with
memory, all allowed by the cpuset); MAX_NUMNODES is that of CONFIG_NODES_SHIFT=10.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass

from vmamodel.hooks import oserror

MPOL_DEFAULT = 0
MPOL_PREFERRED = 1
MPOL_BIND = 2
MPOL_INTERLEAVE = 3
MPOL_LOCAL = 4
MPOL_PREFERRED_MANY = 5
MPOL_WEIGHTED_INTERLEAVE = 6
MPOL_MAX = 7

MPOL_F_NUMA_BALANCING = 1 << 13
MPOL_F_RELATIVE_NODES = 1 << 14
MPOL_F_STATIC_NODES = 1 << 15
MPOL_MODE_FLAGS = MPOL_F_STATIC_NODES | MPOL_F_RELATIVE_NODES | MPOL_F_NUMA_BALANCING
#: Internal flags that MPOL_F_NUMA_BALANCING adds (migrate on fault, NUMA balancing on).
MPOL_F_MOF = 1 << 3
MPOL_F_MORON = 1 << 4

MPOL_MF_STRICT = 1 << 0
MPOL_MF_MOVE = 1 << 1
MPOL_MF_MOVE_ALL = 1 << 2
MPOL_MF_VALID = MPOL_MF_STRICT | MPOL_MF_MOVE | MPOL_MF_MOVE_ALL

#: MAX_NUMNODES with CONFIG_NODES_SHIFT=10 (the host's configuration).
MAX_NUMNODES = 1 << 10
NUMA_NO_NODE = -1
BITS_PER_LONG = 64
PAGE_BITS = 4096 * 8


@dataclass(frozen=True, slots=True)
class Mempolicy:
    """struct mempolicy: ``nodes`` and ``user_nodemask`` are node bit masks; the latter is
    kept only for MPOL_F_STATIC_NODES / MPOL_F_RELATIVE_NODES (mpol_store_user_nodemask),
    and is 0 otherwise. Field equality is __mpol_equal()."""

    mode: int
    flags: int
    nodes: int
    user_nodemask: int = 0
    home_node: int = NUMA_NO_NODE

    def with_home_node(self, home_node: int) -> Mempolicy:
        """mpol_dup() with a new home_node (set_mempolicy_home_node)."""
        return Mempolicy(self.mode, self.flags, self.nodes, self.user_nodemask, home_node)


def mpol_equal(a: Mempolicy | None, b: Mempolicy | None) -> bool:
    """mpol_equal() / __mpol_equal(): the same policy, or two of equal mode, flags, home
    node, (stored) user node mask and nodes; the default policy (None) equals only itself."""
    if a is b:
        return True
    if a is None or b is None:
        return False
    return a == b


def sanitize_mpol_flags(mode: int) -> tuple[int, int]:
    """sanitize_mpol_flags(): split ``mode`` into (mode, mode flags). EINVAL: an unknown
    mode, STATIC with RELATIVE, NUMA_BALANCING but for MPOL_BIND / MPOL_PREFERRED_MANY
    (which it gives MPOL_F_MOF | MPOL_F_MORON)."""
    mode &= 0xFFFFFFFF
    flags = mode & MPOL_MODE_FLAGS
    mode &= ~MPOL_MODE_FLAGS
    if mode >= MPOL_MAX:
        raise oserror(errno.EINVAL, f"mempolicy: unknown mode {mode}")
    if flags & MPOL_F_STATIC_NODES and flags & MPOL_F_RELATIVE_NODES:
        raise oserror(errno.EINVAL, "mempolicy: MPOL_F_STATIC_NODES with MPOL_F_RELATIVE_NODES")
    if flags & MPOL_F_NUMA_BALANCING:
        if mode not in (MPOL_BIND, MPOL_PREFERRED_MANY):
            raise oserror(errno.EINVAL, "mempolicy: MPOL_F_NUMA_BALANCING with this mode")
        flags |= MPOL_F_MOF | MPOL_F_MORON
    return mode, flags


def get_nodes(nmask: int | None, maxnode: int) -> int:
    """get_nodes(): the node mask the user passed (``nmask`` as an int of bits, None for
    NULL), cut to maxnode - 1 bits. EINVAL: more than a page of bits, or bits set above
    MAX_NUMNODES."""
    maxnode = (maxnode - 1) & ((1 << 64) - 1)
    if maxnode == 0 or nmask is None:
        return 0
    if maxnode > PAGE_BITS:
        raise oserror(errno.EINVAL, f"mempolicy: maxnode {maxnode + 1} is over a page of bits")
    nmask &= (1 << maxnode) - 1
    if nmask >> MAX_NUMNODES:
        raise oserror(errno.EINVAL, "mempolicy: a node above MAX_NUMNODES")
    return nmask


def mpol_new(mode: int, flags: int, nodes: int) -> Mempolicy | None:
    """mpol_new(): None for MPOL_DEFAULT (whose mask must be empty); MPOL_PREFERRED with an
    empty mask is MPOL_LOCAL; MPOL_LOCAL takes no mask; the others need one (EINVAL)."""
    if mode == MPOL_DEFAULT:
        if nodes:
            raise oserror(errno.EINVAL, "mempolicy: MPOL_DEFAULT with nodes")
        return None
    relative_or_static = flags & (MPOL_F_STATIC_NODES | MPOL_F_RELATIVE_NODES)
    if mode == MPOL_PREFERRED:
        if not nodes:
            if relative_or_static:
                raise oserror(errno.EINVAL, "mempolicy: local preference with node flags")
            mode = MPOL_LOCAL
    elif mode == MPOL_LOCAL:
        if nodes or relative_or_static:
            raise oserror(errno.EINVAL, "mempolicy: MPOL_LOCAL with nodes or node flags")
    elif not nodes:
        raise oserror(errno.EINVAL, "mempolicy: empty node mask")
    return Mempolicy(mode, flags, 0)


def nodes_fold(orig: int, size: int) -> int:
    """nodes_fold(): bit ``n % size`` for every bit n of ``orig``."""
    folded = 0
    n = 0
    while orig >> n:
        if orig >> n & 1:
            folded |= 1 << (n % size)
        n += 1
    return folded


def nodes_onto(orig: int, relmap: int) -> int:
    """nodes_onto() (bitmap_onto): bit n of ``orig`` becomes the n-th set bit of relmap."""
    targets = [n for n in range(relmap.bit_length()) if relmap >> n & 1]
    out = 0
    for n, target in enumerate(targets):
        if orig >> n & 1:
            out |= 1 << target
    return out


def mpol_set_nodemask(pol: Mempolicy | None, nodes: int, mems_allowed: int) -> Mempolicy | None:
    """mpol_set_nodemask() with the mode's create op (mpol_new_nodemask, mpol_new_preferred):
    the user's nodes within the allowed nodes with memory (folded onto them for
    MPOL_F_RELATIVE_NODES); EINVAL when none is left."""
    if pol is None or pol.mode == MPOL_LOCAL:
        return pol
    if pol.flags & MPOL_F_RELATIVE_NODES:
        weight = bin(mems_allowed).count("1")
        effective = nodes_onto(nodes_fold(nodes, weight), mems_allowed) if weight else 0
    else:
        effective = nodes & mems_allowed
    if not effective:
        raise oserror(errno.EINVAL, "mempolicy: no allowed node with memory in the mask")
    if pol.mode == MPOL_PREFERRED:
        effective &= -effective  # the first node only
    user = nodes if pol.flags & (MPOL_F_STATIC_NODES | MPOL_F_RELATIVE_NODES) else 0
    return Mempolicy(pol.mode, pol.flags, effective, user, pol.home_node)
