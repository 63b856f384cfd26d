"""Kernel profiles: the one table of differences between the code states the model knows.

- ``6.18``: the host kernel. No mmap actions, no ``vm_ops->mapped``; the compat path
  (compat_vma_mmap_prepare) only ORs the inner hook's flags into the VMA.
- ``v4``: the series "mm: expand mmap_prepare functionality and usage" v4, the seed.
  Actions with ``success_hook``/``error_hook``; vfs_mmap rejects a legacy ``.mmap`` that
  leaves a ``mapped`` hook (__vma_check_mmap_hook, EINVAL); a failure in the compat path
  unmaps the range.
- ``mainline``: after the series. ``error_override`` replaces the two hooks, the legacy check
  is gone (3d3544a6c996), and the compat path never unmaps (``is_compat``); the compat desc is
  pre-filled with the VMA's vm_ops.

User-visible behaviour that the host can judge is the same under every profile.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class KernelProfile:
    name: str
    #: mmap_action in vm_area_desc, mmap_action_prepare/complete.
    has_actions: bool
    #: vm_ops->mapped is called (call_vma_mapped).
    has_mapped: bool
    #: action->success_hook / action->error_hook exist (v4).
    success_error_hooks: bool
    #: action->error_override exists, checked by check_mmap_action (mainline).
    error_override: bool
    #: vfs_mmap fails a legacy .mmap that left vm_ops->mapped set (v4 __vma_check_mmap_hook).
    legacy_mapped_check: bool
    #: A compat-path action/mapped failure unmaps the range (v4, before the is_compat hotfix).
    compat_unmaps_on_error: bool
    #: The compat path can only add flags, never clear them (6.18 set_vma_from_desc).
    compat_flags_or_only: bool
    #: compat_set_desc_from_vma pre-fills desc.vm_ops with the VMA's ops (mainline).
    compat_prefills_vm_ops: bool


PROFILES: dict[str, KernelProfile] = {
    "6.18": KernelProfile(
        name="6.18",
        has_actions=False,
        has_mapped=False,
        success_error_hooks=False,
        error_override=False,
        legacy_mapped_check=False,
        compat_unmaps_on_error=False,
        compat_flags_or_only=True,
        compat_prefills_vm_ops=False,
    ),
    "v4": KernelProfile(
        name="v4",
        has_actions=True,
        has_mapped=True,
        success_error_hooks=True,
        error_override=False,
        legacy_mapped_check=True,
        compat_unmaps_on_error=True,
        compat_flags_or_only=False,
        compat_prefills_vm_ops=False,
    ),
    "mainline": KernelProfile(
        name="mainline",
        has_actions=True,
        has_mapped=True,
        success_error_hooks=False,
        error_override=True,
        legacy_mapped_check=False,
        compat_unmaps_on_error=False,
        compat_flags_or_only=False,
        compat_prefills_vm_ops=True,
    ),
}

DEFAULT_PROFILE = "v4"


class NotInProfile(TypeError):
    """A driver uses an API the profile's kernel does not have: it would not compile there
    (``vm_ops->mapped`` or ``desc->action`` under 6.18, ``success_hook`` in mainline...)."""


def get_profile(profile: str | KernelProfile) -> KernelProfile:
    if isinstance(profile, KernelProfile):
        return profile
    try:
        return PROFILES[profile]
    except KeyError:
        known = sorted(PROFILES)
        raise ValueError(f"unknown kernel profile {profile!r}; choose from {known}") from None
