"""include/linux/mm_types.h: the part of struct mm_struct that the mapping paths read and
write on every call, and the switches they test before tracing or injecting a failure.

The compiled build (vmamodel.buildinfo.HOT_MODULES) compiles this module, so these classes
are native there: the compiled modules, which type their ``mm`` as :class:`MmStruct`, read
and write its fields as C struct members, where the attributes of an interpreted object are
a generic attribute lookup each. :class:`vmamodel.mm.AddressSpace` subclasses
:class:`MmStruct` in interpreted code (its entry points carry vmamodel.abi's generated
converters) and adds the rest of the mm_struct. A compiled caller must not call a method on
an ``MmStruct`` (on an interpreted subclass that is a Python-level call): the hot operations
are the functions of this module instead.

In the pure build the classes are plain Python classes with ``__slots__``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, TypeVar

if TYPE_CHECKING:
    from vmamodel.driver_error import DriverError
    from vmamodel.events import Event
    from vmamodel.inject import _Rule
    from vmamodel.pagetable import PageTable
    from vmamodel.profiles import KernelProfile
    from vmamodel.tree import VmaTree
    from vmamodel.unmapped_area import ShmemHuge
    from vmamodel.vma import Vma

_T = TypeVar("_T")

try:
    from mypy_extensions import mypyc_attr as mypyc_attr  # vmamodel.syscalls uses it too
except ImportError:  # the core needs only the standard library: then the decorator is a no-op

    def mypyc_attr(*attrs: str, **kwattrs: object) -> Callable[[_T], _T]:
        """mypy_extensions.mypyc_attr, which does nothing at run time either."""
        return lambda cls: cls


#: The fields of :class:`MmStruct`, for a copy of the whole mm_struct (fork's dup_mm()):
#: the compiled class has no ``__slots__`` attribute to list them.
MM_STRUCT_FIELDS: Final = (
    "anon_ids", "cap_ipc_lock", "cap_sys_rawio", "commit_limit_pages", "committed_pages",
    "data_vm", "debug", "def_flags", "exec_vm", "injector", "ksm_merge_any", "legacy_layout",
    "locked_vm", "map_count", "max_lfs_pages", "max_map_count", "mmap_base", "mmap_legacy_base",
    "mmap_min_addr", "overcommit_memory", "pages", "pending_driver_error", "pkeys_enabled",
    "profile", "read_implies_exec", "rlimit_as", "rlimit_data", "rlimit_data_max",
    "rlimit_memlock", "rlimit_stack", "shmem_huge", "shmem_inos", "stack_guard_gap", "stack_vm",
    "task_size", "thp_enabled", "total_swap_pages", "total_vm", "totalram_pages", "tracer", "tree",
    "uffd_ctxs", "vm_policies", "vma_ids",
)


class IdCounter:
    """An atomic counter of identities, as get_next_ino() (fs/inode.c) numbers inodes: the
    model's VMA ids, anon_vma ids and shmem inode numbers (the functions below count on from
    ``value``, the last number given). A fork child shares its parent's counters, so that
    the numbers stay unique across the family."""

    __slots__ = ("value",)

    value: int

    def __init__(self) -> None:
        self.value = 0


@mypyc_attr(allow_interpreted_subclasses=True)
class TracerCore:
    """The tracepoints' static key (struct static_key, include/linux/jump_label.h): emitters
    test ``active`` before they build an event, and ``emit`` hands it to every subscriber.
    vmamodel.events.Tracer adds subscribing and collecting."""

    __slots__ = ("_subscribers", "active")

    _subscribers: list[Callable[[Event], None]]
    active: bool

    def __init__(self) -> None:
        self._subscribers = []
        self.active = False

    def emit(self, event: Event) -> None:
        """A tracepoint fires: every subscriber gets ``event`` (the caller tested
        ``active`` first)."""
        for callback in self._subscribers:
            callback(event)


@mypyc_attr(allow_interpreted_subclasses=True)
class InjectorCore:
    """The static key of fault injection and should_fail() (lib/fault-inject.c): call sites
    test ``armed`` before they ask; ``check`` counts a point reached and answers whether it
    fails. vmamodel.inject.Injector adds arming and disarming rules."""

    __slots__ = ("_rules", "armed", "reached")

    _rules: list[_Rule]
    armed: bool
    reached: dict[str, int]

    def __init__(self) -> None:
        self._rules = []
        self.armed = False
        self.reached = {}

    def check(self, point: str) -> int:
        """Record that ``point`` was reached; return the errno to fail with, or 0."""
        self.reached[point] = self.reached.get(point, 0) + 1
        for rule in self._rules:
            if rule.point != point:
                continue
            rule.seen += 1
            if rule.seen == rule.nth or (rule.repeat and rule.seen > rule.nth):
                rule.fired += 1
                return rule.errno
        return 0


@mypyc_attr(allow_interpreted_subclasses=True)
class MmStruct:
    """struct mm_struct (include/linux/mm_types.h), the fields the mapping paths use: the
    layout (task_size, mmap_base, mmap_legacy_base), the VMA tree and map_count, the
    statistics (total_vm, locked_vm, data_vm, exec_vm, stack_vm), def_flags, the commit
    charge, the rlimits and capabilities of the owning task, the sysctls and boot options
    the paths consult, the tracing and injection switches, and what the entry points
    (vmamodel.syscalls) test on every call: ``debug`` and the DriverError a hook left
    pending. vmamodel.mm.AddressSpace subclasses it (through vmamodel.syscalls.SyscallEntry)
    and sets every field in its constructor."""

    __slots__ = MM_STRUCT_FIELDS

    # The layout (mm->mmap_base, mmap_legacy_base, TASK_SIZE, vm.mmap_min_addr).
    task_size: int
    mmap_base: int
    mmap_legacy_base: int
    mmap_min_addr: int
    legacy_layout: bool
    stack_guard_gap: int
    # The VMAs (mm->mm_mt) and the page tables, and mm->map_count (vm.max_map_count).
    tree: VmaTree
    pages: PageTable
    map_count: int
    max_map_count: int
    # mm->total_vm, locked_vm, data_vm, exec_vm, stack_vm (pages), mm->def_flags.
    total_vm: int
    locked_vm: int
    data_vm: int
    exec_vm: int
    stack_vm: int
    def_flags: int
    # The commit charge (vm_committed_as) and the overcommit sysctls.
    committed_pages: int
    commit_limit_pages: int
    overcommit_memory: int
    totalram_pages: int
    total_swap_pages: int
    max_lfs_pages: int
    # The task's rlimits and capabilities.
    rlimit_stack: int
    rlimit_as: int
    rlimit_data: int
    rlimit_data_max: int
    rlimit_memlock: int
    cap_ipc_lock: bool
    cap_sys_rawio: bool
    # Boot options and configuration the paths consult; MMF_VM_MERGE_ANY of mm->flags
    # (prctl PR_SET_MEMORY_MERGE: new VMAs get VM_MERGEABLE).
    ksm_merge_any: bool
    thp_enabled: bool
    shmem_huge: ShmemHuge
    read_implies_exec: bool
    pkeys_enabled: bool
    profile: KernelProfile
    # The rare per-VMA fields (mempolicy, userfaultfd context), kept beside the VMAs.
    vm_policies: dict[Vma, Any]
    uffd_ctxs: dict[Vma, Any]
    # The switches of the event trace and of fault injection.
    tracer: TracerCore
    injector: InjectorCore
    # validate_mm() after every call (the model's CONFIG_DEBUG_VM_MAPLE_TREE), and the
    # DriverError of a misbehaving driver hook, raised when the running call returns.
    debug: bool
    pending_driver_error: DriverError | None
    # The model's numbering of VMAs, anon_vmas and shmem inodes.
    vma_ids: IdCounter
    anon_ids: IdCounter
    shmem_inos: IdCounter


def next_vma_id(mm: MmStruct) -> int:
    """vm_area_alloc()'s new VMA, numbered: the id of the next VMA of this family of mms."""
    ids = mm.vma_ids
    ids.value += 1
    return ids.value


def next_anon_vma_id(mm: MmStruct) -> int:
    """anon_vma_alloc()'s new anon_vma, numbered."""
    ids = mm.anon_ids
    ids.value += 1
    return ids.value


def next_shmem_ino(mm: MmStruct) -> int:
    """get_next_ino() for the shmem file of a shared anonymous mapping."""
    ids = mm.shmem_inos
    ids.value += 1
    return ids.value
