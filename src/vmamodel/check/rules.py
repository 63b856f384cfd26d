"""The kernel rule behind each finding, one sentence each, named by the kernel function."""

from __future__ import annotations

from vmamodel.inject import FAILURE_POINTS

#: Failure points that are the driver's own hooks. Forcing one of them to fail shows what the
#: kernel does next, but not what the driver's real error path would have done first, so a
#: state difference after it is reported as "if-hook-fails", not as a driver bug.
DRIVER_HOOK_POINTS = frozenset(
    {"mmap_prepare", "mmap", "mapped", "success_hook", "may_split", "vm_mremap"}
)

_FAIL: dict[str, str] = {
    "vma_alloc": "mmap failed after `mmap_prepare`, when the VMA was allocated: no VMA exists, "
    "so no `close` will run: `__mmap_new_vma()` in `__mmap_region()`",
    "vma_prealloc": "mmap failed after `mmap_prepare`, preallocating the tree: no VMA is "
    "inserted, so no `close` will run: `vma_iter_prealloc()` in `__mmap_new_vma()`",
    "merge_alloc": "a merge failed to preallocate after the hooks ran: `vma_iter_prealloc()` "
    "in `vma_expand()` / `commit_merge()`",
    "action_prepare": "the mmap action was refused after `mmap_prepare` returned, before any "
    "VMA exists, so no `close` will run: `mmap_action_prepare()` in `call_mmap_prepare()`",
    "action_complete": "the action failed in `mmap_action_complete()`: `mapped` is skipped but "
    "the new VMA is unmapped, so `close` runs on a VMA `mapped` never saw: "
    "`mmap_action_finish()`",
    "mapped": "`mapped` failed: the new VMA is unmapped, so `close` runs on a VMA whose "
    "`mapped` did not succeed: `mmap_action_finish()`",
    "success_hook": "the action's success hook failed after `mapped`: the VMA is unmapped: "
    "`mmap_action_finish()` (v4)",
    "split_alloc": "a split failed: `__split_vma()` (`vm_area_dup()`) returns ENOMEM and the "
    "VMA stays whole",
    "munmap_gather": "the unmap of the range under MAP_FIXED failed while gathering: "
    "`vms_gather_munmap_vmas()` in `__mmap_setup()`",
    "mt_dup": "fork failed before copying any VMA: `__mt_dup()` in `dup_mmap()`",
    "fork_vma_dup": "fork failed copying a VMA: the copies made so far are closed: "
    "`vm_area_dup()` in `dup_mmap()`",
    "anon_vma_fork": "fork failed after the copy's `open`: the copies are closed: "
    "`anon_vma_fork()` in `dup_mmap()`",
    "copy_page_range": "fork failed after the copy's `open`: the copies are closed: "
    "`copy_page_range()` in `dup_mmap()`",
    "copy_vma": "an mremap move failed to copy the VMA: `copy_vma()` in `move_vma()`",
    "move_page_tables": "an mremap move moved fewer pages than asked and is undone: "
    "`move_page_tables()` in `move_vma()`",
    "vm_mremap": "the driver's `mremap` hook failed and the move is undone: "
    "`vm_ops->mremap` in `move_vma()`",
    "may_split": "the driver's `may_split` refused a split: `__split_vma()`",
}

RULES: dict[str, str] = {
    "merge": "the range merged into its neighbour, so no VMA was created and no `close` will "
    "run: `vma_merge_new_range()` in `__mmap_region()`",
    "compat-drop": "the outer legacy `.mmap` failed after the inner `mapped` ran in the compat "
    "layer: the VMA is freed without `close`: `compat_vma_mmap()` under `vfs_mmap()`, "
    "cleaned up by `__mmap_new_file_vma()`",
    "compat-fail": "the outer legacy `.mmap` failed after the compat layer ran the inner "
    "`mmap_prepare`: the VMA is freed without `close` (`__mmap_new_file_vma()`), so "
    "`mmap_prepare` must not take anything",
    "legacy-fail": "a legacy `.mmap` failed: the VMA is freed without `close` "
    "(`__mmap_new_file_vma()`), so the hook's error path must give back what it took",
    "check-hook": "`__vma_check_mmap_hook()` (v4 `vfs_mmap()`) refuses a legacy `.mmap` that "
    "leaves `vm_ops->mapped` set - after the compat layer already called it - and the VMA is "
    "freed without `close`",
    "private-lost": "a later range merged into the VMA and replaced the `vm_private_data` that "
    "`mapped` had set with the new desc's private data: `set_vma_user_defined_fields()` in "
    "`__mmap_region()`",
    "teardown": "once every mapping was unmapped or its process exited (`exit_mmap()` closes "
    "every VMA), the driver's state did not return to what it was before the first mmap",
    "crash": "a hook may fail only by returning an errno (an `OSError` here); any other "
    "exception is an oops in the kernel",
    "use-after-close": "after `vma_close()` the VMA has the dummy ops: no hook of the driver "
    "may run on it again",
    "mapped-twice": "`call_vma_mapped()` runs once, for a newly created VMA only "
    "(`mmap_action_finish()`)",
    "invariant": "the model's own invariants (`validate_mm()`) after the call",
    **{f"fail:{point}": text for point, text in _FAIL.items()},
}


def rule_text(rule: str) -> str:
    """The sentence of a rule key (``merge``, ``fail:vma_alloc``, ``warn:...``)."""
    if rule in RULES:
        return RULES[rule]
    if rule.startswith("warn:"):
        return f"the kernel warns: {rule[5:]}"
    if rule.startswith("fail:"):
        point = rule[5:]
        return f"a failure at `{point}` (errno {FAILURE_POINTS.get(point, 0)}) took another path"
    return rule
