"""VMA merging (mm/vma.c): vma_merge_new_range, vma_merge_existing_range, vma_expand,
vma_modify and the predicates that decide whether two VMAs may become one.

Every refusal between two touching VMAs can be reported as a :class:`MergeRefused` event
naming the rule; :func:`merge_refusal` is the single place those rules live.
"""

from __future__ import annotations

import enum
import errno
from typing import TYPE_CHECKING, Final

from vmamodel.constants import PAGE_SHIFT, VM_IGNORE_MERGE, VM_SPECIAL, VM_STICKY
from vmamodel.events import MergeAttempt, MergeRefused, VmaRemoved
from vmamodel.hooks import maybe_inject, oserror
from vmamodel.mempolicy import Mempolicy, mpol_equal
from vmamodel.vma import (
    AnonVma,
    Vma,
    drop_rare_fields,
    split_vma,
    vma_policy,
    vma_uffd_ctx,
)

if TYPE_CHECKING:
    from vmamodel.file import File
    from vmamodel.mm_types import MmStruct


#: The vm_flags is_mergeable_vma() compares: all but VM_IGNORE_MERGE (one constant, so that
#: the pure build does not invert it on every test).
MERGE_FLAGS_MASK: Final = ~VM_IGNORE_MERGE


class MergeState(enum.Enum):
    """enum vma_merge_state."""

    START = 0
    ERROR_NOMEM = 1
    NOMERGE = 2
    SUCCESS = 3


class VmaMergeStruct:
    """struct vma_merge_struct: the proposal (range and attributes) and its neighbours."""

    __slots__ = (
        "adjust_middle_start",
        "adjust_next_start",
        "anon_name",
        "anon_vma",
        "copied_from",
        "end",
        "file",
        "flags",
        "give_up_on_oom",
        "just_expand",
        "middle",
        "mm",
        "next",
        "pgoff",
        "policy",
        "prev",
        "remove_middle",
        "remove_next",
        "start",
        "state",
        "target",
        "uffd_ctx",
    )

    def __init__(
        self,
        mm: MmStruct,
        start: int,
        end: int,
        pgoff: int,
        flags: int,
        file: File | None,
        prev: Vma | None = None,
        middle: Vma | None = None,
        next: Vma | None = None,
    ) -> None:
        self.mm = mm
        self.start = start
        self.end = end
        self.pgoff = pgoff
        self.flags = flags
        self.file = file
        self.prev = prev
        self.middle = middle
        self.next = next
        self.target: Vma | None = None
        self.anon_vma: AnonVma | None = None
        self.policy: Mempolicy | None = None
        self.uffd_ctx: object | None = None
        self.anon_name: str | None = None
        self.copied_from: Vma | None = None
        self.just_expand = False
        self.give_up_on_oom = False
        self.state = MergeState.START
        self.remove_middle = False
        self.remove_next = False
        self.adjust_middle_start = False
        self.adjust_next_start = False

    @classmethod
    def from_vma(
        cls, mm: MmStruct, prev: Vma | None, vma: Vma, start: int, end: int
    ) -> VmaMergeStruct:
        """VMG_VMA_STATE(): a proposal that copies every attribute of ``vma``."""
        # The class by name, not cls: a native constructor call under mypyc (cls() is a
        # generic call with keyword parsing). No subclass builds through here.
        vmg = VmaMergeStruct(
            mm, start, end, vma.vm_pgoff + ((start - vma.vm_start) >> PAGE_SHIFT),
            vma.vm_flags, vma.vm_file, prev, vma,
        )
        vmg.anon_vma = vma.anon_vma
        if mm.vm_policies:
            vmg.policy = vma_policy(vma)
        if mm.uffd_ctxs:
            vmg.uffd_ctx = vma_uffd_ctx(vma)
        vmg.anon_name = vma.anon_name
        return vmg


def vma_is_fork_child(vma: Vma | None) -> bool:
    """vma_is_fork_child(): faulted, with an anon_vma_chain of more than one entry."""
    return vma is not None and vma.anon_vma is not None and vma.fork_child


def can_merge_remove_vma(vma: Vma) -> bool:
    """can_merge_remove_vma(): a VMA with a close hook is never removed by a merge."""
    return vma.vm_ops is None or vma.vm_ops.close is None


def _attribute_refusal(vmg: VmaMergeStruct, other: Vma) -> str | None:
    """is_mergeable_vma(): policy (mpol_equal), flags (but the sticky ones), file, uffd
    context (is_mergeable_vm_userfaultfd_ctx: the same context or none on both), name. The
    side tables are looked at only when some VMA of the mm has a policy or a context."""
    mm = vmg.mm
    if (mm.vm_policies or vmg.policy is not None) and not mpol_equal(
        vmg.policy, vma_policy(other)
    ):
        return "mpol_equal"
    if (other.vm_flags ^ vmg.flags) & MERGE_FLAGS_MASK:
        return "vm_flags"
    if other.vm_file is not vmg.file:
        return "vm_file"
    if (mm.uffd_ctxs or vmg.uffd_ctx is not None) and vma_uffd_ctx(other) is not vmg.uffd_ctx:
        return "userfaultfd_ctx"
    if other.anon_name != vmg.anon_name:
        return "anon_vma_name"
    return None


def _anon_vma_refusal(vmg: VmaMergeStruct, tgt: Vma) -> str | None:
    """is_mergeable_anon_vma(): the three cases of anon_vma compatibility."""
    src_anon = vmg.anon_vma
    if tgt.anon_vma is None and src_anon is not None:
        # tgt would adopt the proposal's anon_vma (dup_anon_vma)
        if vma_is_fork_child(vmg.middle):
            return "anon_vma: middle is a fork child"
        if vma_is_fork_child(vmg.copied_from):
            return "anon_vma: mremap source is a fork child"
        return None
    if tgt.anon_vma is not None and src_anon is None:
        return "anon_vma: neighbour is a fork child" if vma_is_fork_child(tgt) else None
    if src_anon is not tgt.anon_vma:
        return "anon_vma: different anon_vmas"
    return None


def merge_refusal(vmg: VmaMergeStruct, merge_next: bool) -> str | None:
    """can_vma_merge_before() / can_vma_merge_after(): None if the neighbour is compatible,
    else the name of the rule that refuses the merge."""
    other = vmg.next if merge_next else vmg.prev
    assert other is not None
    reason = _attribute_refusal(vmg, other) or _anon_vma_refusal(vmg, other)
    if reason is not None:
        return reason
    if merge_next:
        if other.vm_pgoff != vmg.pgoff + ((vmg.end - vmg.start) >> PAGE_SHIFT):
            return "vm_pgoff not contiguous"
    elif other.vm_pgoff + other.pages != vmg.pgoff:
        return "vm_pgoff not contiguous"
    return None



def vma_pair_refusal(mm: MmStruct, prev: Vma, vma: Vma) -> str | None:
    """Why two touching VMAs stay two: the rule that would refuse merging all of ``vma`` into
    ``prev`` through vma_merge_existing_range() (as an mprotect of ``vma`` to its own flags
    would try), or None when nothing keeps them apart. The one home of that question for the
    tools (explain, show) that ask it about an existing address space."""
    if (prev.vm_flags | vma.vm_flags) & VM_SPECIAL:
        return "VM_SPECIAL"
    vmg = VmaMergeStruct.from_vma(mm, prev, vma, vma.vm_start, vma.vm_end)
    reason = merge_refusal(vmg, False)
    if reason is not None:
        return reason
    if not can_merge_remove_vma(vma):
        return "close hook: middle cannot be removed"
    return None

def _refused(vmg: VmaMergeStruct, side: str, other: Vma, rule: str) -> None:
    if vmg.mm.tracer.active:
        vmg.mm.tracer.emit(MergeRefused(side, other.id, rule))


def _refused_special(vmg: VmaMergeStruct) -> None:
    """A VM_SPECIAL proposal never merges (the early return of vma_merge_new_range): name
    that rule for each neighbour that touches the range."""
    prev, nxt = vmg.prev, vmg.next
    if prev is not None and prev.vm_end == vmg.start:
        _refused(vmg, "prev", prev, "VM_SPECIAL")
    if nxt is not None and nxt.vm_start == vmg.end:
        _refused(vmg, "next", nxt, "VM_SPECIAL")


def can_vma_merge_left(vmg: VmaMergeStruct) -> bool:
    """can_vma_merge_left(): prev touches the range and is compatible."""
    prev = vmg.prev
    if prev is None or prev.vm_end != vmg.start:
        return False
    reason = merge_refusal(vmg, False)
    if reason is not None:
        _refused(vmg, "prev", prev, reason)
        return False
    return True


def can_vma_merge_right(vmg: VmaMergeStruct, can_merge_left: bool) -> bool:
    """can_vma_merge_right(): next touches the range and is compatible; when merging both
    ways, prev and next must also have compatible anon_vmas."""
    nxt = vmg.next
    if nxt is None or vmg.end != nxt.vm_start:
        return False
    reason = merge_refusal(vmg, True)
    if reason is not None:
        _refused(vmg, "next", nxt, reason)
        return False
    if not can_merge_left:
        return True
    prev = vmg.prev
    assert prev is not None
    if prev.anon_vma is None or nxt.anon_vma is None or prev.anon_vma is nxt.anon_vma:
        return True
    _refused(vmg, "next", nxt, "anon_vma: prev and next have different anon_vmas")
    return False


def dup_anon_vma(dst: Vma, src: Vma) -> bool:
    """dup_anon_vma(): an unfaulted dst adopts src's anon_vma (and its chain). Returns whether
    dst changed, so that a failed commit can undo it (unlink_anon_vmas)."""
    if src.anon_vma is not None and dst.anon_vma is None:
        dst.anon_vma = src.anon_vma
        dst.fork_child = src.fork_child
        return True
    return False


def _undo_dup(dup: Vma | None) -> None:
    if dup is not None:
        dup.anon_vma = None
        dup.fork_child = False


def _remove_merged(mm: MmStruct, first: Vma | None, second: Vma | None) -> None:
    """vma_complete() removal of what a merge absorbed (middle, next, or both, in that
    order): freed without close (merges never remove VMAs with close)."""
    tree = mm.tree
    rare = mm.vm_policies or mm.uffd_ctxs
    traced = mm.tracer.active
    for vma in [first, second]:  # a list: mypyc walks it natively, a tuple by iterator
        if vma is None:
            continue
        tree.remove(vma)
        mm.map_count -= 1
        vma.detached = True
        if rare:
            drop_rare_fields(mm, vma)
        if traced:
            mm.tracer.emit(VmaRemoved(vma.id, vma.vm_start, vma.vm_end, "merged"))


def commit_merge(vmg: VmaMergeStruct) -> None:
    """commit_merge(): apply the planned ranges and removals; ENOMEM before any change."""
    mm = vmg.mm
    if mm.injector.armed:
        maybe_inject(mm, "merge_alloc")
    if vmg.remove_middle or vmg.remove_next:
        _remove_merged(
            mm,
            vmg.middle if vmg.remove_middle else None,
            vmg.next if vmg.remove_next else None,
        )
    tree = mm.tree
    if vmg.adjust_next_start:
        middle, nxt = vmg.middle, vmg.next
        assert middle is not None and nxt is not None
        tree.set_range(middle, vmg.start, vmg.end, vmg.pgoff)
        pgoff = nxt.vm_pgoff - ((nxt.vm_start - vmg.end) >> PAGE_SHIFT)
        tree.set_range(nxt, vmg.end, nxt.vm_end, pgoff)
        return
    target = vmg.target
    assert target is not None
    if vmg.adjust_middle_start:
        middle = vmg.middle
        assert middle is not None
        pgoff = middle.vm_pgoff + ((vmg.end - middle.vm_start) >> PAGE_SHIFT)
        tree.set_range(middle, vmg.end, middle.vm_end, pgoff)
    tree.set_range(target, vmg.start, vmg.end, vmg.pgoff)


def vma_expand(vmg: VmaMergeStruct) -> bool:
    """vma_expand(): grow the target over [start, end), removing next when reached.
    Returns False (state ERROR_NOMEM unless give_up_on_oom) when the commit fails."""
    target, nxt = vmg.target, vmg.next
    assert target is not None
    remove_next = nxt is not None and nxt is not target and vmg.end == nxt.vm_end
    sticky = (vmg.flags | target.vm_flags) & VM_STICKY
    dup: Vma | None = None
    if remove_next:
        assert nxt is not None
        sticky |= nxt.vm_flags & VM_STICKY
        dup = target if dup_anon_vma(target, nxt) else None
    if vmg.copied_from is not None and dup_anon_vma(target, vmg.copied_from):
        dup = target
    vmg.remove_next = remove_next
    try:
        commit_merge(vmg)
    except OSError:
        _undo_dup(dup)
        vmg.remove_next = False
        if not vmg.give_up_on_oom:
            vmg.state = MergeState.ERROR_NOMEM
        return False
    target.vm_flags |= sticky
    return True


def _trace_merge(vmg: VmaMergeStruct, op: str, start: int, end: int, merged: bool) -> None:
    removed = tuple(
        v.id
        for v, gone in ((vmg.middle, vmg.remove_middle), (vmg.next, vmg.remove_next))
        if gone and v is not None
    )
    target_id = vmg.target.id if merged and vmg.target is not None else None
    vmg.mm.tracer.emit(MergeAttempt(op, start, end, merged, target_id, removed))


def vma_merge_new_range(vmg: VmaMergeStruct) -> Vma | None:
    """vma_merge_new_range(): merge a range that is about to be mapped with prev and/or
    next. Returns the expanded VMA, or None (state NOMERGE, or ERROR_NOMEM)."""
    prev, nxt = vmg.prev, vmg.next
    start, end = vmg.start, vmg.end
    vmg.state = MergeState.NOMERGE
    if vmg.flags & VM_SPECIAL or (prev is None and nxt is None):
        if vmg.mm.tracer.active:
            _refused_special(vmg)
            _trace_merge(vmg, "new_range", start, end, False)
        return None
    # A new range [start, end) in the gap between prev and next: prev|new| grows prev,
    # |new|next grows next down, prev|new|next makes prev cover all three (next goes).
    left = can_vma_merge_left(vmg)
    right = not vmg.just_expand and can_vma_merge_right(vmg, left)
    if right:
        assert nxt is not None
        vmg.end = nxt.vm_end
        vmg.target = nxt
    if left:
        assert prev is not None
        vmg.start = prev.vm_start
        vmg.target = prev
        vmg.pgoff = prev.vm_pgoff
        if right and nxt is not None and not can_merge_remove_vma(nxt):
            vmg.end = end
            _refused(vmg, "next", nxt, "close hook: next cannot be removed")
    merged = vmg.target is not None and vma_expand(vmg)
    if merged:
        vmg.state = MergeState.SUCCESS
    if vmg.mm.tracer.active:
        _trace_merge(vmg, "new_range", start, end, merged)
    return vmg.target if merged else None


def vma_merge_existing_range(vmg: VmaMergeStruct) -> Vma | None:
    """vma_merge_existing_range(): after changing attributes of [start, end) inside middle,
    merge that range into prev and/or next. Returns the target or None."""
    mm = vmg.mm
    middle, prev = vmg.middle, vmg.prev
    assert middle is not None
    start, end = vmg.start, vmg.end
    left_side = start == middle.vm_start
    right_side = end == middle.vm_end
    vmg.state = MergeState.NOMERGE
    if vmg.flags & VM_SPECIAL or not (left_side or right_side):
        return None
    merge_left = left_side and can_vma_merge_left(vmg)
    nxt: Vma | None = None
    merge_right = False
    if right_side:
        nxt = vmg.next = mm.tree.next_of(middle)
        merge_right = can_vma_merge_right(vmg, merge_left)
    if not merge_left and not merge_right:
        return None
    vmg.remove_middle = left_side and right_side
    if vmg.remove_middle and not can_merge_remove_vma(middle):
        if mm.tracer.active:
            side = "prev" if merge_left else "next"
            other = prev if merge_left else nxt
            assert other is not None
            mm.tracer.emit(MergeRefused(side, other.id, "close hook: middle cannot be removed"))
        vmg.remove_middle = False
        return None
    merge_both = merge_left and merge_right
    vmg.remove_next = merge_both
    if merge_both and nxt is not None and not can_merge_remove_vma(nxt):
        _refused(vmg, "next", nxt, "close hook: next cannot be removed")
        vmg.remove_next = merge_right = merge_both = False

    sticky = vmg.flags & VM_STICKY
    if merge_right:
        assert nxt is not None
        vmg.target = nxt
        sticky |= nxt.vm_flags & VM_STICKY
    if merge_left:
        assert prev is not None
        vmg.target = prev
        sticky |= prev.vm_flags & VM_STICKY

    # The three outcomes, with [start, end) the changed range ("=" it, "-" untouched):
    #   both:   prev|==middle==|next      -> prev grows over middle and next
    #   left:   prev|===|-middle-|        -> prev grows to end; middle starts at end
    #           prev|==middle==|          -> prev grows over middle, which goes
    #   right:  |-middle-|===|next        -> next starts at start; middle ends at start
    #           |==middle==|next          -> next grows down over middle, which goes
    dup: Vma | None = None
    if merge_both:
        assert prev is not None and nxt is not None
        vmg.start, vmg.end, vmg.pgoff = prev.vm_start, nxt.vm_end, prev.vm_pgoff
        source = nxt if nxt.anon_vma is not None else middle
        dup = prev if dup_anon_vma(prev, source) else None
    elif merge_left:
        assert prev is not None
        vmg.start, vmg.pgoff = prev.vm_start, prev.vm_pgoff
        vmg.adjust_middle_start = not vmg.remove_middle
        dup = prev if dup_anon_vma(prev, middle) else None
    else:
        assert nxt is not None
        pglen = (vmg.end - vmg.start) >> PAGE_SHIFT
        if vmg.remove_middle:
            vmg.end = nxt.vm_end
            vmg.pgoff = nxt.vm_pgoff - pglen
        else:
            vmg.adjust_next_start = True
            vmg.start, vmg.end, vmg.pgoff = middle.vm_start, start, middle.vm_pgoff
        dup = nxt if dup_anon_vma(nxt, middle) else None

    try:
        commit_merge(vmg)
    except OSError:
        _undo_dup(dup)
        vmg.remove_middle = vmg.remove_next = False
        vmg.adjust_middle_start = vmg.adjust_next_start = False
        if not vmg.give_up_on_oom:
            vmg.state = MergeState.ERROR_NOMEM
        if mm.tracer.active:
            _trace_merge(vmg, "existing_range", start, end, False)
        return None
    target = vmg.target
    assert target is not None
    target.vm_flags |= sticky
    vmg.state = MergeState.SUCCESS
    if mm.tracer.active:
        _trace_merge(vmg, "existing_range", start, end, True)
    return target


def vma_modify(vmg: VmaMergeStruct) -> Vma:
    """vma_modify(): merge [start, end) with a neighbour, or split middle so that a VMA
    covers exactly [start, end). Returns that VMA (the original object after a split)."""
    vma = vmg.middle
    assert vma is not None
    start, end = vmg.start, vmg.end
    merged = vma_merge_existing_range(vmg)
    if merged is not None:
        return merged
    if vmg.state is MergeState.ERROR_NOMEM:
        raise oserror(errno.ENOMEM, "vma_modify: merge failed")
    if vma.vm_start < start:
        split_vma(vmg.mm, vma, start, new_below=True)
    if vma.vm_end > end:
        split_vma(vmg.mm, vma, end, new_below=False)
    return vma


def vma_modify_flags(
    mm: MmStruct, prev: Vma | None, vma: Vma, start: int, end: int, flags: int
) -> tuple[Vma, int]:
    """vma_modify_flags(): returns the VMA now covering [start, end) and the flags to set
    on it (the requested flags plus any sticky flags a merge kept)."""
    vmg = VmaMergeStruct.from_vma(mm, prev, vma, start, end)
    vmg.flags = flags
    result = vma_modify(vmg)
    if vmg.state is MergeState.SUCCESS:
        flags = result.vm_flags
    return result, flags
