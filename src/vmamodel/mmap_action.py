"""mmap actions (mm/util.c, mm/memory.c, mm/internal.h) and ``vm_ops->mapped``.

An ``mmap_prepare`` hook cannot touch page tables: no VMA exists yet and the range may still
merge. It records what it wants done in ``desc.action`` through the ``mmap_action_*`` helpers.
:func:`mmap_action_prepare` validates the action right after the hook (before the merge
attempt) and :func:`mmap_action_complete` performs it on a newly allocated VMA, then calls
``vm_ops->mapped`` (v4 and later) and the v4 ``success_hook``; on error it unmaps the VMA.

Errors travel as positive errno ints inside this module (0 = success, as the kernel's
negative returns) and leave it as ``OSError``. ``error_override`` alone keeps the kernel's
sign convention (a negative errno) because its validity check is about exactly that.

Profiles (``mm.profile``): 6.18 has no actions and no ``mapped`` - a driver that uses either
would not compile there, so the model raises ``TypeError``. v4 has ``success_hook`` and
``error_hook``; mainline has ``error_override`` instead.
"""

from __future__ import annotations

import enum
import errno as E
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from vmamodel.constants import (
    PAGE_MASK,
    PAGE_SHIFT,
    PAGE_SIZE,
    VM,
    VMA_REMAP_FLAGS,
    page_align,
    pfn_up,
)
from vmamodel.events import ActionStep, HookCall, WarnOn
from vmamodel.file import File, Ref, VmOperations
from vmamodel.hooks import call_hook, injected_errno, ops_owner, oserror
from vmamodel.munmap import do_munmap
from vmamodel.profiles import NotInProfile
from vmamodel.vma import pgprot_decrypted

if TYPE_CHECKING:
    from vmamodel.mm import AddressSpace
    from vmamodel.vma import Vma, VmAreaDesc

#: The kernel's MAX_ERRNO: IS_ERR_VALUE() accepts -MAX_ERRNO..-1.
MAX_ERRNO = 4095


class KernelBug(RuntimeError):
    """A BUG_ON() the model reached: the kernel would oops here."""


def io_remap_pfn_range_pfn(pfn: int, size: int) -> int:
    """io_remap_pfn_range_pfn() (include/linux/mm.h): identity on x86."""
    del size
    return pfn


class MmapActionType(enum.Enum):
    """enum mmap_action_type (include/linux/mm_types.h)."""

    NOTHING = enum.auto()
    REMAP_PFN = enum.auto()
    IO_REMAP_PFN = enum.auto()
    SIMPLE_IO_REMAP = enum.auto()  # v4 11/21
    MAP_KERNEL_PAGES = enum.auto()  # v4 20/21


@dataclass(frozen=True, slots=True)
class KernelPage:
    """A struct page a driver hands to ``mmap_action_map_kernel_pages``.

    ``kind`` is "kernel" for an ordinary kernel allocation; "anon" and "slab" pages are
    refused by validate_page_before_insert() (EINVAL).
    """

    pfn: int
    kind: str = "kernel"


@dataclass(slots=True)
class RemapParams:
    """action->remap: a PFN range and the page protection captured at helper time."""

    start: int = 0
    start_pfn: int = 0
    size: int = 0
    pgprot: int = 0


@dataclass(slots=True)
class SimpleIoremapParams:
    """action->simple_ioremap (v4 11/21)."""

    start_phys_addr: int = 0
    size: int = 0


@dataclass(slots=True)
class MapKernelParams:
    """action->map_kernel (v4 20/21); ``pgoff`` is desc->pgoff at helper time."""

    start: int = 0
    pages: Sequence[KernelPage] = ()
    nr_pages: int = 0
    pgoff: int = 0


SuccessHook = Callable[["Vma"], None]
ErrorHook = Callable[[int], int]


@dataclass(slots=True)
class MmapAction:
    """struct mmap_action (include/linux/mm_types.h). ``MmapAction()`` is MMAP_NOTHING.

    ``success_hook(vma)`` (v4) fails by raising OSError. ``error_hook(errno) -> errno``
    (v4) filters the error after the unmap. ``error_override`` (mainline) is a kernel-style
    negative errno, 0 for none. The kernel keeps the three parameter blocks in a union.
    """

    type: MmapActionType = MmapActionType.NOTHING
    remap: RemapParams = field(default_factory=RemapParams)
    simple_ioremap: SimpleIoremapParams = field(default_factory=SimpleIoremapParams)
    map_kernel: MapKernelParams = field(default_factory=MapKernelParams)
    success_hook: SuccessHook | None = None
    error_hook: ErrorHook | None = None
    error_override: int = 0
    hide_from_rmap_until_complete: bool = False


@dataclass(frozen=True, slots=True)
class PfnMap:
    """What a completed remap installed: PTEs for [start, end) from ``pfn`` with ``pgprot``.

    ``tracked`` is true for a full-VMA remap, which the kernel records in
    vma->pfnmap_track_ctx (PAT memtype tracking).
    """

    start: int
    end: int
    pfn: int
    pgprot: int
    tracked: bool


# ---------------------------------------------------------------------------------------
# desc helpers (include/linux/mm.h)
# ---------------------------------------------------------------------------------------


def _require_actions(desc: VmAreaDesc) -> None:
    """6.18 has no desc->action: a driver using a helper would not compile there."""
    if not desc.mm.profile.has_actions:
        raise NotInProfile(
            f"profile {desc.mm.profile.name}: struct vm_area_desc has no 'action' "
            "(mmap actions arrived with the mmap_prepare series)"
        )


def mmap_action_remap(desc: VmAreaDesc, start: int, start_pfn: int, size: int) -> None:
    """mmap_action_remap(): remap ``size`` bytes at ``start`` to ``start_pfn``.

    The page protection is captured now, so later changes to desc.page_prot do not apply.
    """
    _require_actions(desc)
    action = desc.action
    action.remap = RemapParams(start, start_pfn, size, desc.page_prot)
    action.type = MmapActionType.REMAP_PFN


def mmap_action_remap_full(desc: VmAreaDesc, start_pfn: int) -> None:
    """mmap_action_remap_full(): remap the whole proposed range."""
    mmap_action_remap(desc, desc.start, start_pfn, desc.size)


def mmap_action_ioremap(desc: VmAreaDesc, start: int, start_pfn: int, size: int) -> None:
    """mmap_action_ioremap(): as mmap_action_remap() with type IO_REMAP_PFN."""
    mmap_action_remap(desc, start, start_pfn, size)
    desc.action.type = MmapActionType.IO_REMAP_PFN


def mmap_action_ioremap_full(desc: VmAreaDesc, start_pfn: int) -> None:
    """mmap_action_ioremap_full(): I/O remap of the whole proposed range."""
    mmap_action_ioremap(desc, desc.start, start_pfn, desc.size)


def mmap_action_simple_ioremap(desc: VmAreaDesc, start_phys_addr: int, size: int) -> None:
    """mmap_action_simple_ioremap() (v4 11/21): prepare-time twin of vm_iomap_memory()."""
    _require_actions(desc)
    action = desc.action
    action.simple_ioremap = SimpleIoremapParams(start_phys_addr, size)
    action.type = MmapActionType.SIMPLE_IO_REMAP


def mmap_action_map_kernel_pages(
    desc: VmAreaDesc, start: int, pages: Sequence[KernelPage], nr_pages: int
) -> None:
    """mmap_action_map_kernel_pages() (v4 20/21): insert ``nr_pages`` pages at ``start``."""
    _require_actions(desc)
    action = desc.action
    action.map_kernel = MapKernelParams(start, pages, nr_pages, desc.pgoff)
    action.type = MmapActionType.MAP_KERNEL_PAGES


def mmap_action_map_kernel_pages_full(desc: VmAreaDesc, pages: Sequence[KernelPage]) -> None:
    """mmap_action_map_kernel_pages_full(): as many pages as the proposed range holds."""
    mmap_action_map_kernel_pages(desc, desc.start, pages, desc.pages)


# ---------------------------------------------------------------------------------------
# small shared rules
# ---------------------------------------------------------------------------------------


def is_cow_mapping(flags: int) -> bool:
    """is_cow_mapping() / vma_desc_is_cow_mapping(): private and may become writable."""
    return flags & (VM.SHARED | VM.MAYWRITE) == VM.MAYWRITE


def range_is_subset(outer_start: int, outer_end: int, start: int, end: int) -> bool:
    """range_is_subset() (include/linux/mm.h, v4 20/21)."""
    return outer_start <= start and end <= outer_end


def get_remap_pgoff(
    is_cow: bool, addr: int, end: int, vm_start: int, vm_end: int, pfn: int
) -> tuple[int, int | None]:
    """get_remap_pgoff() (mm/memory.c): (errno, new pgoff or None to keep it).

    A CoW mapping must be remapped whole and then carries the first PFN as its pgoff, which
    is how vm_normal_page() tells the original PFNs from CoW'ed pages.
    """
    if not is_cow:
        return 0, None
    if addr != vm_start or end != vm_end:
        return E.EINVAL, None
    return 0, pfn


def simple_ioremap_prep(
    vm_len: int, vm_pgoff: int, start_phys: int, size: int, *, phys_bits: int = 64
) -> tuple[int, int]:
    """__simple_ioremap_prep() (mm/memory.c, v4 11/21): (errno, first pfn).

    Shared by vm_iomap_memory() and simple_ioremap_prepare(). ``vm_pgoff`` counts pages
    into the physical region. ``phys_bits`` is the width of phys_addr_t/unsigned long for
    the wrap-around checks.
    """
    limit = 1 << phys_bits
    if start_phys + size >= limit:  # start + len < start in C
        return E.EINVAL, 0
    size += start_phys & ~PAGE_MASK
    pfn = start_phys >> PAGE_SHIFT
    pages = pfn_up(size)
    if pfn + pages >= limit:
        return E.EINVAL, 0
    if vm_pgoff > pages:
        return E.EINVAL, 0
    pfn += vm_pgoff
    pages -= vm_pgoff
    if (vm_len >> PAGE_SHIFT) > pages:
        return E.EINVAL, 0
    return 0, pfn


def _emit(mm: AddressSpace, step: str, action: MmapActionType, err: int, detail: str) -> None:
    if mm.tracer.active:
        mm.tracer.emit(ActionStep(step, action.name, err, detail))


def _warn(mm: AddressSpace, message: str, detail: str = "") -> None:
    if mm.tracer.active:
        mm.tracer.emit(WarnOn(message, detail))


def _injected(mm: AddressSpace, point: str) -> int:
    """The errno injected at ``point``, or 0: an action step that fails returns its errno."""
    return injected_errno(mm, point) if mm.injector.armed else 0


# ---------------------------------------------------------------------------------------
# prepare (mm/util.c mmap_action_prepare and the per-type *_prepare in mm/memory.c)
# ---------------------------------------------------------------------------------------


def _check_fields_exist(mm: AddressSpace, action: MmapAction) -> None:
    """Fields a profile's struct mmap_action lacks: using them would not compile."""
    profile = mm.profile
    if not profile.success_error_hooks and (action.success_hook or action.error_hook):
        raise NotInProfile(
            f"profile {profile.name}: mmap_action has no success_hook/error_hook"
        )
    if not profile.error_override and action.error_override:
        raise NotInProfile(f"profile {profile.name}: mmap_action has no error_override")


def _refuse_without_actions(mm: AddressSpace, desc: VmAreaDesc) -> None:
    """6.18: desc has no action; anything but the untouched default is a driver bug."""
    if desc.action != MmapAction():
        raise NotInProfile(
            f"profile {mm.profile.name}: struct vm_area_desc has no 'action' "
            f"(the hook set {desc.action!r})"
        )


def check_mmap_action(mm: AddressSpace, action: MmapAction) -> int:
    """check_mmap_action() (mainline mm/util.c): error_override must be an error value."""
    override = action.error_override
    if override and not -MAX_ERRNO <= override < 0:
        _warn(mm, "WARN_ON_ONCE: check_mmap_action", f"error_override={override}")
        return E.EINVAL
    return 0


def remap_pfn_range_prepare(desc: VmAreaDesc) -> int:
    """remap_pfn_range_prepare() (mm/memory.c): range check, CoW pgoff, VMA_REMAP_FLAGS."""
    remap = desc.action.remap
    start, end = remap.start, remap.start + remap.size
    if not range_is_subset(desc.start, desc.end, start, end):  # v4 21/21
        return E.EFAULT
    err, pgoff = get_remap_pgoff(
        is_cow_mapping(desc.vm_flags), start, end, desc.start, desc.end, remap.start_pfn
    )
    if err:
        return err
    if pgoff is not None:
        desc.pgoff = pgoff
    desc.vm_flags |= VMA_REMAP_FLAGS
    return 0


def io_remap_pfn_range_prepare(desc: VmAreaDesc) -> int:
    """io_remap_pfn_range_prepare() (mm/internal.h): translate, then delegate to REMAP_PFN."""
    action = desc.action
    remap = action.remap
    remap.start_pfn = io_remap_pfn_range_pfn(remap.start_pfn, remap.size)
    remap.pgprot = pgprot_decrypted(remap.pgprot)
    err = remap_pfn_range_prepare(desc)
    if err:
        return err
    action.type = MmapActionType.REMAP_PFN
    return 0


def simple_ioremap_prepare(desc: VmAreaDesc) -> int:
    """simple_ioremap_prepare() (mm/memory.c, v4 11/21): checks, then a full I/O remap.

    The remap's pgprot is taken from desc.page_prot here, i.e. after the hook returned.
    """
    params = desc.action.simple_ioremap
    err, pfn = simple_ioremap_prep(
        desc.size, desc.pgoff, params.start_phys_addr, params.size
    )
    if err:
        return err
    mmap_action_ioremap_full(desc, pfn)
    return io_remap_pfn_range_prepare(desc)


def map_kernel_pages_prepare(desc: VmAreaDesc) -> int:
    """map_kernel_pages_prepare() (mm/memory.c, v4 20/21): VM_MIXEDMAP, then range check.

    The flag is added before the range check, as the kernel does (harmless: mmap fails).
    """
    params = desc.action.map_kernel
    if not desc.vm_flags & VM.MIXEDMAP:
        desc.vm_flags |= VM.MIXEDMAP
    end = params.start + PAGE_SIZE * params.nr_pages
    if not range_is_subset(desc.start, desc.end, params.start, end):
        return E.EFAULT
    return 0


_PREPARE: dict[MmapActionType, Callable[[VmAreaDesc], int]] = {
    MmapActionType.REMAP_PFN: remap_pfn_range_prepare,
    MmapActionType.IO_REMAP_PFN: io_remap_pfn_range_prepare,
    MmapActionType.SIMPLE_IO_REMAP: simple_ioremap_prepare,
    MmapActionType.MAP_KERNEL_PAGES: map_kernel_pages_prepare,
}


def _prepare_by_type(mm: AddressSpace, desc: VmAreaDesc) -> int:
    action = desc.action
    if action.type is MmapActionType.NOTHING:
        return 0
    err = _injected(mm, "action_prepare")
    if err:
        return err
    prepare = _PREPARE.get(action.type)
    if prepare is None:
        _warn(mm, "WARN_ON_ONCE: mmap_action_prepare", f"unknown type {action.type!r}")
        return E.EINVAL
    return prepare(desc)


def mmap_action_prepare(mm: AddressSpace, desc: VmAreaDesc) -> None:
    """mmap_action_prepare() (mm/util.c): validate desc.action right after the hook.

    May change desc.vm_flags (VMA_REMAP_FLAGS, VM_MIXEDMAP) and desc.pgoff (CoW remaps)
    and rewrites IO_REMAP_PFN / SIMPLE_IO_REMAP into REMAP_PFN. Raises OSError on failure.
    The "action_prepare" failure point is only reachable for an action other than NOTHING,
    as the kernel cannot fail there otherwise.
    """
    if not mm.profile.has_actions:
        _refuse_without_actions(mm, desc)
        return
    action = desc.action
    _check_fields_exist(mm, action)
    before = action.type
    err = check_mmap_action(mm, action) if mm.profile.error_override else 0
    if not err:
        err = _prepare_by_type(mm, desc)
    _emit(mm, "prepare", before, err, f"-> {action.type.name} pgoff={desc.pgoff:#x}")
    if err:
        raise oserror(err, f"mmap_action_prepare({before.name})")


# ---------------------------------------------------------------------------------------
# complete (mm/util.c mmap_action_complete / mmap_action_finish, mm/memory.c)
# ---------------------------------------------------------------------------------------


def _record_pfnmap(mm: AddressSpace, vma: Vma, pfnmap: PfnMap) -> None:
    """Make a completed remap visible: the PTEs (mm.pages.present), vma->pfnmap_track_ctx
    (if the Vma carries that slot) for a tracked full-VMA remap, and an ActionStep event."""
    mm.pages.present.update(range(pfnmap.start, pfnmap.end, PAGE_SIZE))
    if pfnmap.tracked and hasattr(vma, "pfnmap_track_ctx"):
        setattr(vma, "pfnmap_track_ctx", pfnmap)  # noqa: B010 - optional slot, see report
    _emit(
        mm, "remap", MmapActionType.REMAP_PFN, 0,
        f"vma={vma.id} [{pfnmap.start:#x}-{pfnmap.end:#x}) pfn={pfnmap.pfn:#x} "
        f"prot={pfnmap.pgprot:#x} tracked={pfnmap.tracked}",
    )


def do_remap_pfn_range(
    mm: AddressSpace, vma: Vma, addr: int, pfn: int, size: int, prot: int
) -> int:
    """do_remap_pfn_range() (mm/memory.c): install the PTEs; errno or 0.

    A full-VMA remap sets up PFN tracking (EINVAL if the VMA is already tracked or PAT
    refuses); page-table allocation can fail with ENOMEM (the partial range is zapped).
    Both failures are the "action_complete" failure point (default ENOMEM).
    """
    if addr & ~PAGE_MASK:
        _warn(mm, "WARN_ON_ONCE: remap_pfn_range_internal", f"unaligned addr {addr:#x}")
        return E.EINVAL
    end = addr + page_align(size)
    if addr >= end:
        raise KernelBug(f"remap_pfn_range_internal: BUG_ON(addr >= end) addr={addr:#x}")
    if vma.vm_flags & VMA_REMAP_FLAGS != VMA_REMAP_FLAGS:
        _warn(mm, "VM_WARN_ON_ONCE: remap without VMA_REMAP_FLAGS", repr(vma))
    tracked = addr == vma.vm_start and addr + size == vma.vm_end
    if tracked and getattr(vma, "pfnmap_track_ctx", None) is not None:
        return E.EINVAL
    err = _injected(mm, "action_complete")
    if err:
        return err
    _record_pfnmap(mm, vma, PfnMap(addr, end, pfn, prot, tracked))
    return 0


def remap_pfn_range_complete(mm: AddressSpace, vma: Vma, action: MmapAction) -> int:
    """remap_pfn_range_complete() (mm/memory.c): do the remap prepared earlier."""
    remap = action.remap
    return do_remap_pfn_range(mm, vma, remap.start, remap.start_pfn, remap.size, remap.pgprot)


def _validate_kernel_page(page: KernelPage) -> int:
    """validate_page_before_insert() (mm/memory.c): anon and typed (slab) pages: EINVAL."""
    return E.EINVAL if page.kind in ("anon", "slab") else 0


def map_kernel_pages_complete(mm: AddressSpace, vma: Vma, action: MmapAction) -> int:
    """map_kernel_pages_complete() -> insert_pages() (mm/memory.c), with vma->vm_page_prot.

    Pages are inserted in order; an unsuitable page stops the insertion with EINVAL and
    leaves the earlier ones mapped (the failure path then unmaps the whole VMA).
    """
    params = action.map_kernel
    if len(params.pages) < params.nr_pages:
        raise ValueError(
            f"map_kernel: {params.nr_pages} pages requested but the array holds "
            f"{len(params.pages)} (an out-of-bounds read in the kernel)"
        )
    err = _injected(mm, "action_complete")
    if err:
        return err
    for index, page in enumerate(params.pages[: params.nr_pages]):
        err = _validate_kernel_page(page)
        if err:
            return err
        mm.pages.present.add(params.start + index * PAGE_SIZE)
        _emit(
            mm, "insert_page", MmapActionType.MAP_KERNEL_PAGES, 0,
            f"vma={vma.id} addr={params.start + index * PAGE_SIZE:#x} pfn={page.pfn:#x}",
        )
    return 0


def _complete_by_type(mm: AddressSpace, vma: Vma, action: MmapAction) -> int:
    kind = action.type
    if kind is MmapActionType.NOTHING:
        return 0
    if kind is MmapActionType.REMAP_PFN:
        return remap_pfn_range_complete(mm, vma, action)
    if kind is MmapActionType.MAP_KERNEL_PAGES:
        return map_kernel_pages_complete(mm, vma, action)
    # IO_REMAP_PFN and SIMPLE_IO_REMAP are rewritten by a successful prepare.
    _warn(mm, "WARN_ON_ONCE: mmap_action_complete", f"{kind.name} should have been delegated")
    return E.EINVAL


def call_vma_mapped(mm: AddressSpace, vma: Vma) -> int:
    """call_vma_mapped() (mm/util.c, v4 08/21): vm_ops->mapped on a newly mapped VMA.

    The hook sees (vm_start, vm_end, vm_pgoff, vm_file, Ref(vm_private_data)) and not the
    VMA. vm_private_data changes only if the hook succeeded and pointed the Ref elsewhere.
    The "mapped" failure point fails the hook before it runs. Returns errno or 0.
    """
    ops = vma.vm_ops
    if ops is None or ops.mapped is None:
        return 0
    mapped = ops.mapped
    file: File | None = vma.vm_file
    start, end, pgoff = vma.vm_start, vma.vm_end, vma.vm_pgoff
    ref: Ref[Any] = Ref(vma.vm_private_data)
    error = call_hook(
        mm, "mapped", ops_owner(ops), vma.id, (start, end, pgoff, file),
        lambda: mapped(start, end, pgoff, file, ref), "mapped",
    )
    if error is not None:
        return error.errno or E.EINVAL
    if ref.value is not vma.vm_private_data:
        vma.vm_private_data = ref.value
    return 0


def _hook_name(hook: Callable[..., Any]) -> str:
    return getattr(hook, "__qualname__", type(hook).__name__)


def call_success_hook(mm: AddressSpace, vma: Vma, action: MmapAction) -> int:
    """action->success_hook(vma) (v4 mmap_action_finish); errno or 0."""
    hook = action.success_hook
    if hook is None:
        return 0
    error = call_hook(
        mm, "success_hook", _hook_name(hook), vma.id, (), lambda: hook(vma), "success_hook"
    )
    return error.errno or E.EINVAL if error is not None else 0


def call_error_hook(mm: AddressSpace, vma: Vma, action: MmapAction, err: int) -> int:
    """action->error_hook(err) (v4 mmap_action_finish): may replace the error.

    Returning 0 trips VM_WARN_ON_ONCE but the 0 is still returned, so mmap() reports
    success for a mapping that was just unmapped - reproduced, not corrected.
    """
    hook = action.error_hook
    if hook is None:
        return err
    new = hook(err)
    if mm.tracer.active:
        mm.tracer.emit(HookCall("error_hook", _hook_name(hook), vma.id, (err,), new))
    if not new:
        _warn(mm, "VM_WARN_ON_ONCE: error_hook cleared the error", f"was errno {err}")
    return new


def maybe_rmap_unlock_action(
    mm: AddressSpace, vma: Vma, action: MmapAction, is_compat: bool
) -> None:
    """maybe_rmap_unlock_action() (mm/internal.h, v4 07/21): drop the i_mmap lock once.

    The compat path never takes the lock; compat_vma_mmap() clears the flag, but a driver
    that calls __compat_vma_mmap() itself after a hook that set it would unlock a lock it
    does not hold - flagged as a warning.
    """
    if not action.hide_from_rmap_until_complete:
        return
    if is_compat:
        _warn(mm, "i_mmap unlock without the lock held", "hide_from_rmap in the compat path")
    action.hide_from_rmap_until_complete = False
    _emit(mm, "rmap_unlock", action.type, 0, f"vma={vma.id}")


def _unmap_failed_vma(mm: AddressSpace, vma: Vma, action: MmapAction, err: int) -> None:
    """do_munmap() of exactly the new VMA's range; its result is ignored, as in the kernel.

    close() runs on the VMA although mapped() never succeeded for it.
    """

    start, length = vma.vm_start, vma.vm_end - vma.vm_start
    _emit(mm, "unmap", action.type, err, f"vma={vma.id} [{start:#x}+{length:#x})")
    try:
        do_munmap(mm, start, length)
    except OSError as exc:
        _emit(mm, "unmap_failed", action.type, exc.errno or 0, f"vma={vma.id}")


def _succeed_then_hooks(mm: AddressSpace, vma: Vma, action: MmapAction, err: int) -> int:
    """The success half of mmap_action_finish(): mapped, then the v4 success_hook."""
    if not err and mm.profile.has_mapped:
        err = call_vma_mapped(mm, vma)
    if not err and mm.profile.success_error_hooks:
        err = call_success_hook(mm, vma, action)
    return err


def mmap_action_finish(
    mm: AddressSpace, vma: Vma, action: MmapAction, err: int, *, is_compat: bool
) -> None:
    """mmap_action_finish() (mm/util.c): mapped -> success_hook -> rmap unlock -> on error
    unmap -> error_hook (v4) / error_override (mainline). Raises OSError on failure.

    Compat callers: v4 unmaps and filters like the normal path (it has no is_compat);
    mainline returns the raw error and leaves the clean-up to the legacy mmap path.
    """
    err = _succeed_then_hooks(mm, vma, action, err)
    maybe_rmap_unlock_action(mm, vma, action, is_compat)
    if not err:
        return
    if is_compat and not mm.profile.compat_unmaps_on_error:
        raise oserror(err, "mmap_action_complete (compat)")
    _unmap_failed_vma(mm, vma, action, err)
    if mm.profile.success_error_hooks:
        err = call_error_hook(mm, vma, action, err)
        if not err:
            return
    if mm.profile.error_override and action.error_override:
        _emit(mm, "error_override", action.type, -action.error_override, f"was errno {err}")
        err = -action.error_override
    raise oserror(err, "mmap_action_complete")


def refuse_mapped_without_profile(mm: AddressSpace, ops: VmOperations | None) -> None:
    """6.18 has no vm_ops->mapped: ops defining it would not compile there (TypeError)."""
    if not mm.profile.has_mapped and ops is not None and ops.mapped is not None:
        raise NotInProfile(f"profile {mm.profile.name}: vm_operations_struct has no 'mapped'")


def mmap_action_complete(
    mm: AddressSpace, vma: Vma, action: MmapAction, *, is_compat: bool
) -> None:
    """mmap_action_complete() (mm/util.c): perform the action on the new VMA, then finish.

    Called only for a newly allocated VMA (never for a merged range) and, in the compat
    path, on a VMA not yet in the tree. Under a profile without actions (6.18) the action
    must be NOTHING and nothing happens.
    """
    if not mm.profile.has_actions:
        if action != MmapAction():
            raise NotInProfile(f"profile {mm.profile.name}: no mmap actions ({action!r})")
        refuse_mapped_without_profile(mm, vma.vm_ops)
        return
    err = _complete_by_type(mm, vma, action)
    _emit(mm, "complete", action.type, err, f"vma={vma.id} compat={is_compat}")
    mmap_action_finish(mm, vma, action, err, is_compat=is_compat)


# ---------------------------------------------------------------------------------------
# the legacy VMA-based helpers old-form drivers call from f_op->mmap (mm/memory.c)
# ---------------------------------------------------------------------------------------


def mm_of(vma: Vma) -> AddressSpace:
    """vma->vm_mm, which a hook running on a VMA needs for tracing and injection."""
    mm = vma.vm_mm
    if mm is None:
        raise ValueError(f"{vma!r} has no vm_mm")
    return cast("AddressSpace", mm)


def remap_pfn_range(vma: Vma, addr: int, pfn: int, size: int, prot: int) -> None:
    """remap_pfn_range() (mm/memory.c): on a VMA inside f_op->mmap; raises OSError.

    remap_pfn_range_prepare_vma() first: the CoW whole-VMA rule and pgoff = pfn, then
    VMA_REMAP_FLAGS on the VMA, then the remap itself.
    """
    mm = mm_of(vma)
    end = addr + page_align(size)
    err, pgoff = get_remap_pgoff(
        is_cow_mapping(vma.vm_flags), addr, end, vma.vm_start, vma.vm_end, pfn
    )
    if not err:
        if pgoff is not None:
            vma.vm_pgoff = pgoff
        vma.vm_flags |= VMA_REMAP_FLAGS
        err = do_remap_pfn_range(mm, vma, addr, pfn, size, prot)
    if err:
        raise oserror(err, "remap_pfn_range")


def io_remap_pfn_range(vma: Vma, addr: int, pfn: int, size: int, prot: int) -> None:
    """io_remap_pfn_range() (include/linux/mm.h): translate the PFN, decrypted prot."""
    remap_pfn_range(
        vma, addr, io_remap_pfn_range_pfn(pfn, size), size, pgprot_decrypted(prot)
    )


def vm_iomap_memory(vma: Vma, start: int, length: int) -> None:
    """vm_iomap_memory() (mm/memory.c): map [start, start+length) honouring vm_pgoff.

    Same arithmetic as simple_ioremap_prepare(), uses the VMA's current page_prot.
    """
    vm_len = vma.vm_end - vma.vm_start
    err, pfn = simple_ioremap_prep(vm_len, vma.vm_pgoff, start, length)
    if err:
        raise oserror(err, "vm_iomap_memory")
    io_remap_pfn_range(vma, vma.vm_start, pfn, vm_len, vma.vm_page_prot)
