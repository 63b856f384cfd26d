"""mbind(2) and set_mempolicy_home_node(2) (mm/mempolicy.c): give [start, start+len) a
memory policy, splitting and merging VMAs by policy (vma_modify_policy).

Checks, in the kernel's order (kernel_mbind, do_mbind): mode and mode flags
(sanitize_mpol_flags), the node mask (get_nodes), the MPOL_MF_* flags, an unaligned start
(all EINVAL); a range that wraps is EINVAL, an empty one succeeds at once; then the policy
itself (mpol_new, mpol_set_nodemask: EINVAL). Before any VMA changes, queue_pages_range
walks the range: a hole fails the call with EFAULT (but for MPOL_DEFAULT, which only fails
when nothing at all is mapped there). Then each VMA part gets the policy (mbind_range).
Page placement and migration (MPOL_MF_MOVE, MPOL_MF_STRICT's EIO) are not the VMA layer's:
on a one-node machine no page is ever on a wrong node.
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

from vmamodel.constants import PAGE_MASK, ULONG_MAX, page_align
from vmamodel.events import VmaChanged
from vmamodel.hooks import oserror
from vmamodel.mempolicy import (
    MAX_NUMNODES,
    MPOL_BIND,
    MPOL_DEFAULT,
    MPOL_MF_VALID,
    MPOL_PREFERRED_MANY,
    Mempolicy,
    get_nodes,
    mpol_equal,
    mpol_new,
    mpol_set_nodemask,
    sanitize_mpol_flags,
)
from vmamodel.merge import VmaMergeStruct, vma_modify
from vmamodel.vma import set_vma_policy, vma_policy

if TYPE_CHECKING:
    from vmamodel.mm import AddressSpace
    from vmamodel.vma import Vma


def _page_range(start: int, length: int) -> int:
    """PAGE_ALIGN(len) added to start; EINVAL when the range wraps. Returns the end."""
    end = start + page_align(length)
    if end > ULONG_MAX:
        raise oserror(errno.EINVAL, "mempolicy: the range wraps")
    return end


def kernel_mbind(
    mm: AddressSpace, start: int, length: int, mode: int, nmask: int | None, maxnode: int,
    flags: int,
) -> None:
    """kernel_mbind() and do_mbind()."""
    start &= ULONG_MAX
    length &= ULONG_MAX
    mode, mode_flags = sanitize_mpol_flags(mode)
    nodes = get_nodes(nmask, maxnode & ULONG_MAX)
    flags &= ULONG_MAX
    if flags & ~MPOL_MF_VALID:
        raise oserror(errno.EINVAL, f"mbind: unknown flags {flags:#x}")
    if start & ~PAGE_MASK:
        raise oserror(errno.EINVAL, "mbind: unaligned start")
    end = _page_range(start, length)
    if end == start:
        return
    new = mpol_new(mode, mode_flags, nodes)
    new = mpol_set_nodemask(new, nodes, mm.mems_allowed)
    queue_pages_range(mm, start, end, discontig_ok=new is None)
    vma, prev = mm.tree.find_prev(start)
    while vma is not None and vma.vm_start < end:
        vma = mbind_range(mm, vma, prev, start, end, new)
        prev = vma
        vma = mm.tree.find(vma.vm_end)


def queue_pages_range(mm: AddressSpace, start: int, end: int, discontig_ok: bool) -> None:
    """queue_pages_range() / queue_pages_test_walk(), as far as they decide the errno: a
    hole before, between or after the VMAs of the range is EFAULT unless the new policy is
    the default one; a range with no VMA at all is always EFAULT."""
    first = mm.tree.find(start)
    if first is None or first.vm_start >= end:
        raise oserror(errno.EFAULT, "mbind: nothing mapped in the range")
    if discontig_ok:
        return
    if first.vm_start > start:
        raise oserror(errno.EFAULT, "mbind: hole at the start of the range")
    vma = first
    while vma.vm_end < end:
        nxt = mm.tree.find(vma.vm_end)
        if nxt is None or nxt.vm_start != vma.vm_end:
            raise oserror(errno.EFAULT, "mbind: hole in the range")
        vma = nxt


def mbind_range(
    mm: AddressSpace, vma: Vma, prev: Vma | None, start: int, end: int,
    new_pol: Mempolicy | None,
) -> Vma:
    """mbind_range(): nothing when the VMA's policy already equals ``new_pol``; otherwise
    vma_modify_policy() (merge or split) and vma_replace_policy(). Returns the VMA now
    covering the part."""
    vmend = min(end, vma.vm_end)
    vmstart = max(start, vma.vm_start)
    if mpol_equal(vma_policy(vma), new_pol):
        return vma
    vma = vma_modify_policy(mm, prev if start <= vma.vm_start else vma, vma, vmstart, vmend,
                            new_pol)
    set_vma_policy(vma, new_pol)
    if mm.tracer.active:
        mm.tracer.emit(
            VmaChanged(vma.id, vma.vm_start, vma.vm_end, vma.vm_pgoff, vma.vm_flags, "mbind")
        )
    return vma


def vma_modify_policy(
    mm: AddressSpace, prev: Vma | None, vma: Vma, start: int, end: int,
    new_pol: Mempolicy | None,
) -> Vma:
    """vma_modify_policy() (mm/vma.c): merge or split so one VMA covers [start, end)."""
    vmg = VmaMergeStruct.from_vma(mm, prev, vma, start, end)
    vmg.policy = new_pol
    return vma_modify(vmg)


def set_mempolicy_home_node(
    mm: AddressSpace, start: int, length: int, home_node: int, flags: int
) -> None:
    """set_mempolicy_home_node(2): the home node of the MPOL_BIND / MPOL_PREFERRED_MANY
    policies in the range. EINVAL: unaligned start, flags, a node that is not online (or
    past MAX_NUMNODES), a wrapping range. VMAs without a policy are skipped; one with another
    mode stops the walk with EOPNOTSUPP; ENOENT when no VMA with a policy was found."""
    start &= ULONG_MAX
    length &= ULONG_MAX
    home_node &= ULONG_MAX
    if start & ~PAGE_MASK:
        raise oserror(errno.EINVAL, "set_mempolicy_home_node: unaligned start")
    if flags & ULONG_MAX:
        raise oserror(errno.EINVAL, "set_mempolicy_home_node: flags must be 0")
    if home_node >= MAX_NUMNODES or not mm.mems_allowed >> home_node & 1:
        raise oserror(errno.EINVAL, f"set_mempolicy_home_node: node {home_node} is not online")
    end = _page_range(start, length)
    if end == start:
        return
    found = False
    vma, prev = mm.tree.find_prev(start)
    while vma is not None and vma.vm_start < end:
        old = vma_policy(vma)
        if old is None:
            prev = vma
            vma = mm.tree.find(vma.vm_end)
            continue
        if old.mode not in (MPOL_BIND, MPOL_PREFERRED_MANY):
            raise oserror(errno.EOPNOTSUPP, "set_mempolicy_home_node: not a bind policy")
        vma = mbind_range(mm, vma, prev, start, end, old.with_home_node(home_node))
        found = True
        prev = vma
        vma = mm.tree.find(vma.vm_end)
    if not found:
        raise oserror(errno.ENOENT, "set_mempolicy_home_node: no VMA with a policy")


__all__ = ["MPOL_DEFAULT", "kernel_mbind", "set_mempolicy_home_node"]
