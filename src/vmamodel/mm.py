"""struct mm_struct: one process's address space, and its system-call entry points."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from vmamodel.abi import syscall_abi
from vmamodel.aio import DEFAULT_AIO_MAX_NR, sys_io_destroy, sys_io_setup
from vmamodel.anon_name import prctl_set_vma_anon_name
from vmamodel.constants import (
    DEFAULT_MAX_MAP_COUNT,
    DEFAULT_MMAP_MIN_ADDR,
    DEFAULT_RLIMIT_STACK,
    MIN_MMAP_GAP,
    PAGE_SHIFT,
    PAGE_SIZE,
    PR_GET_MEMORY_MERGE,
    PR_SET_MEMORY_MERGE,
    STACK_GUARD_GAP,
    TASK_SIZE,
    VM,
    VM_LOCKED,
    page_align,
)
from vmamodel.driver_error import DriverError
from vmamodel.events import Tracer
from vmamodel.exec import do_execve
from vmamodel.fork import dup_mmap, exit_mmap
from vmamodel.hugetlb import HugetlbPool
from vmamodel.inject import Injector, _Rule
from vmamodel.ksm import prctl_memory_merge
from vmamodel.mbind import kernel_mbind, set_mempolicy_home_node
from vmamodel.mlock import do_mlock, do_mlockall, do_munlock, do_munlockall, sys_mlock2
from vmamodel.mm_types import (
    IdCounter,
    next_anon_vma_id,
    next_shmem_ino,
    next_vma_id,
)
from vmamodel.mprotect import do_mprotect_pkey
from vmamodel.mseal import do_mseal
from vmamodel.msync import sys_mincore, sys_msync
from vmamodel.pagetable import PageTable
from vmamodel.pkeys import (
    INIT_PKRU_VALUE,
    mm_execute_only_pkey,
    pkru_allows,
    sys_pkey_alloc,
    sys_pkey_free,
)
from vmamodel.procfs import get_vma_name, render_maps, render_smaps
from vmamodel.profiles import DEFAULT_PROFILE, KernelProfile, get_profile
from vmamodel.shm import IpcNamespace, do_shmat, ksys_shmctl_rmid, ksys_shmdt, ksys_shmget
from vmamodel.shstk import sys_map_shadow_stack
from vmamodel.snapshot import address_space_from_maps
from vmamodel.syscalls import SyscallEntry
from vmamodel.tree import VmaTree
from vmamodel.unmapped_area import ShmemHuge
from vmamodel.userfaultfd import (
    UserfaultfdCtx,
    sys_userfaultfd,
    userfaultfd_register,
    userfaultfd_release_all,
    userfaultfd_unregister,
)
from vmamodel.vma import Vma, VmaView

F = TypeVar("F", bound=Callable[..., Any])


def entry(name: str) -> Callable[[F], F]:
    """A system call of the model: arguments as the kernel's C types (vmamodel.abi), and a
    DriverError a hook left pending raised once the call has finished or failed."""
    return syscall_abi(name, pending="pending_driver_error")


RLIM_INFINITY = (1 << 64) - 1
#: MAX_LFS_FILESIZE on 64-bit, in pages.
MAX_LFS_PAGES = ((1 << 63) - 1) >> PAGE_SHIFT
#: The host's RAM (24 GiB) in pages, for the heuristic overcommit check.
DEFAULT_TOTALRAM_PAGES = (24 << 30) >> PAGE_SHIFT


def mmap_base(task_size: int, rlimit_stack: int, stack_guard_gap: int) -> int:
    """mmap_base() (arch/x86/mm/mmap.c) with randomisation off: the stack limit plus the
    guard gap, clamped to [128 MiB, 5/6 of the task size], below the top."""
    gap = rlimit_stack
    pad = stack_guard_gap
    if gap + pad > gap:
        gap += pad
    gap = max(MIN_MMAP_GAP, min(gap, task_size // 6 * 5))
    return page_align(task_size - gap)


#: The constructor's integer options and the values each may take (inclusive bounds).
_OPTION_RANGES: dict[str, tuple[int, int]] = {
    # x86-64 user space ends below 2**56 (5-level paging); the tree keeps VMA starts as
    # signed 64-bit ints in the compiled build, so nothing may start at or above 2**63.
    "task_size": (PAGE_SIZE, 1 << 63),
    "mmap_min_addr": (0, RLIM_INFINITY),
    "max_map_count": (0, (1 << 31) - 1),  # sysctl vm.max_map_count is an int >= 0
    "rlimit_stack": (0, RLIM_INFINITY),
    "rlimit_as": (0, RLIM_INFINITY),
    "rlimit_data": (0, RLIM_INFINITY),
    "rlimit_memlock": (0, RLIM_INFINITY),
    "overcommit_memory": (0, 2),  # OVERCOMMIT_GUESS, _ALWAYS, _NEVER
    "totalram_pages": (1, RLIM_INFINITY),
    "start_brk": (0, RLIM_INFINITY),
    "start_data": (0, RLIM_INFINITY),
    "end_data": (0, RLIM_INFINITY),
}


def _check_options(options: dict[str, Any]) -> None:
    """The constructor's options, refused with a ValueError (TypeError for a non-integer)
    naming the option, as sysctl and setrlimit refuse what they cannot hold."""
    for name, (lo, hi) in _OPTION_RANGES.items():
        value = options[name]
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"AddressSpace({name}=...) must be an int, not "
                            f"{type(value).__name__}")
        if not lo <= value <= hi:
            raise ValueError(f"AddressSpace({name}={value!r}): must be in [{lo}, {hi}]")
    base = options["mmap_base"]
    if base is not None and (not isinstance(base, int) or not 0 <= base <= options["task_size"]):
        raise ValueError(f"AddressSpace(mmap_base={base!r}): must be in [0, task_size]")
    if options["start_data"] > options["end_data"]:
        raise ValueError("AddressSpace(start_data=..., end_data=...): start_data > end_data")


class AddressSpace(SyscallEntry):
    """A model of one process's address space (mm_struct) on x86-64 with 4 KiB pages.

    Every syscall method raises ``OSError`` with the kernel's errno and otherwise returns
    what the syscall returns. mmap, munmap, mprotect, mremap, madvise, brk and touch are
    :class:`vmamodel.syscalls.SyscallEntry`'s (compiled in the mypyc build).
    ``profile`` chooses the kernel code state ("6.18", "v4", "mainline"); ``debug`` checks
    the tree invariants after every call (validate_mm).
    ``start_brk`` is where brk() starts the heap (``start_data``/``end_data`` bound the data
    segment that RLIMIT_DATA also counts).
    """

    # The fields the compiled hot paths and the entry points use live in MmStruct (native
    # there); these are the rest, in slots: the rarer paths reach them by attribute lookup.
    __slots__ = (
        "_execute_only_pkey", "aio_contexts", "aio_inos", "aio_max_nr", "anon_vma_name_enabled",
        "current_brk", "end_data", "gate_vma", "hugetlb_pool", "ipc_ns", "mems_allowed",
        "pkey_allocation_map", "pkru", "possible_cpus", "start_brk", "start_data",
        "start_stack",
    )

    # Narrower than MmStruct's: the interpreted callers subscribe, collect and inject.
    tracer: Tracer
    injector: Injector

    def __init__(
        self,
        *,
        task_size: int = TASK_SIZE,
        mmap_min_addr: int = DEFAULT_MMAP_MIN_ADDR,
        mmap_base: int | None = None,
        max_map_count: int = DEFAULT_MAX_MAP_COUNT,
        profile: str | KernelProfile = DEFAULT_PROFILE,
        legacy_layout: bool = False,
        rlimit_stack: int = DEFAULT_RLIMIT_STACK,
        rlimit_as: int = RLIM_INFINITY,
        rlimit_data: int = RLIM_INFINITY,
        rlimit_memlock: int = 8 << 20,
        cap_ipc_lock: bool = True,
        cap_sys_rawio: bool = True,
        overcommit_memory: int = 0,
        totalram_pages: int = DEFAULT_TOTALRAM_PAGES,
        thp_enabled: bool = True,
        shmem_huge: ShmemHuge | None = None,
        read_implies_exec: bool = False,
        pkeys: bool = False,
        start_brk: int = 0,
        start_data: int = 0,
        end_data: int = 0,
        anon_vma_name: bool = True,
        numa_nodes: int = 1,
        possible_cpus: int = 2,
        hugetlb_pages: dict[int, int] | None = None,
        debug: bool = False,
    ) -> None:
        _check_options(locals())
        self.task_size = task_size
        self.mmap_min_addr = mmap_min_addr
        self.max_map_count = max_map_count
        self.stack_guard_gap = STACK_GUARD_GAP
        self.mmap_base = (
            globals()["mmap_base"](task_size, rlimit_stack, self.stack_guard_gap)
            if mmap_base is None
            else mmap_base
        )
        self.mmap_legacy_base = page_align(task_size // 3)
        self.legacy_layout = bool(legacy_layout)
        self.profile = get_profile(profile)
        self.rlimit_stack = rlimit_stack
        self.rlimit_as = rlimit_as
        self.rlimit_data = rlimit_data
        self.rlimit_data_max = rlimit_data
        self.rlimit_memlock = rlimit_memlock
        self.cap_ipc_lock = bool(cap_ipc_lock)
        self.cap_sys_rawio = bool(cap_sys_rawio)
        self.overcommit_memory = overcommit_memory
        self.totalram_pages = totalram_pages
        self.anon_vma_name_enabled = anon_vma_name  # CONFIG_ANON_VMA_NAME
        self.total_swap_pages = 0
        self.commit_limit_pages = totalram_pages
        self.committed_pages = 0
        self.max_lfs_pages = MAX_LFS_PAGES
        self.thp_enabled = bool(thp_enabled)
        self.shmem_huge = ShmemHuge() if shmem_huge is None else shmem_huge
        self.read_implies_exec = bool(read_implies_exec)
        self.pkeys_enabled = bool(pkeys)
        # mm->context and the calling thread's PKRU as exec leaves them (init_new_context
        # sets the context only with PKU; without, it stays zero).
        self.pkey_allocation_map = 1 if pkeys else 0
        self._execute_only_pkey = -1 if pkeys else 0
        self.pkru = INIT_PKRU_VALUE if pkeys else 0
        self.debug = bool(debug)
        # A misbehaving driver hook of the running call (vmamodel.driver_error.DriverError).
        self.pending_driver_error: DriverError | None = None

        self.tree = VmaTree()
        self.pages = PageTable()
        self.map_count = 0
        self.total_vm = self.locked_vm = self.data_vm = self.exec_vm = self.stack_vm = 0
        self.def_flags = 0
        # MMF_VM_MERGE_ANY (prctl PR_SET_MEMORY_MERGE): new VMAs get VM_MERGEABLE.
        self.ksm_merge_any = False
        # The rare per-VMA fields (see Vma): memory policies and userfaultfd contexts.
        self.vm_policies: dict[Vma, Any] = {}
        # Nodes 0..numa_nodes-1, online with memory and allowed (mempolicy.py).
        self.mems_allowed = (1 << numa_nodes) - 1
        # vm.nr_hugepages per huge page size, and SysV IPC: both system-wide, shared by fork.
        self.hugetlb_pool = HugetlbPool(hugetlb_pages)
        self.ipc_ns = IpcNamespace()
        # aio contexts by id (the ring's address), num_possible_cpus(), fs.aio-max-nr.
        self.aio_contexts: dict[int, Any] = {}
        self.aio_inos = itertools.count(1)
        self.possible_cpus = possible_cpus
        self.aio_max_nr = DEFAULT_AIO_MAX_NR
        self.uffd_ctxs: dict[Vma, Any] = {}
        # The program break as exec left it: brk() grows the heap from start_brk; the data
        # segment [start_data, end_data) counts against RLIMIT_DATA (check_data_rlimit).
        self.start_brk = start_brk
        self.current_brk = start_brk  # mm->brk (the name brk is the syscall)
        self.start_data = start_data
        self.end_data = end_data
        self.start_stack = 0
        # The gate VMA ([vsyscall]): shown in maps, but not in the tree nor in map_count.
        self.gate_vma: Vma | None = None
        self.tracer = Tracer()
        self.injector = Injector()
        self.vma_ids = IdCounter()
        self.anon_ids = IdCounter()
        self.shmem_inos = IdCounter()

    # -- identities ---------------------------------------------------------------------

    def next_vma_id(self) -> int:
        """The next VMA id (vmamodel.mm_types.next_vma_id, which compiled callers use)."""
        return next_vma_id(self)

    def next_anon_vma_id(self) -> int:
        """The next anon_vma id (vmamodel.mm_types.next_anon_vma_id)."""
        return next_anon_vma_id(self)

    def next_shmem_ino(self) -> int:
        """get_next_ino() for the shmem files of shared anonymous mappings."""
        return next_shmem_ino(self)

    # -- protection keys (arch/x86/mm/pkeys.c) -------------------------------------------

    def execute_only_pkey(self) -> int:
        """execute_only_pkey(): the key (allocated on first use: the lowest free one, 1 in a
        fresh mm) whose PKRU bits deny data access; -1 without PKU or when no key is free."""
        if not self.pkeys_enabled:
            return -1
        return mm_execute_only_pkey(self)

    def pkey_denies_access(self, pkey: int, write: bool = False) -> bool:
        """!arch_vma_access_permitted(): the thread's PKRU denies a data read (or write) of
        memory with this key."""
        return self.pkeys_enabled and not pkru_allows(self.pkru, pkey, write)

    # -- limits -------------------------------------------------------------------------

    def can_do_mlock(self) -> bool:
        """can_do_mlock(): CAP_IPC_LOCK or a non-zero RLIMIT_MEMLOCK."""
        return self.cap_ipc_lock or self.rlimit_memlock != 0

    def mlock_future_ok(self, flags: int, nbytes: int) -> bool:
        """mlock_future_ok(): locked_vm + len within RLIMIT_MEMLOCK unless CAP_IPC_LOCK."""
        if not flags & VM_LOCKED or self.cap_ipc_lock:
            return True
        locked = (self.locked_vm << PAGE_SHIFT) + nbytes
        return locked <= self.rlimit_memlock

    # -- entry points -------------------------------------------------------------------

    # -- entry points: mmap, munmap, mprotect, mremap, madvise, brk and touch are
    # SyscallEntry's (vmamodel.syscalls, native in the compiled build); these are the rest.

    @entry("pkey_mprotect")
    def pkey_mprotect(self, addr: int, length: int, prot: int, pkey: int) -> None:
        """pkey_mprotect(2): mprotect(2) that also gives the range the key ``pkey`` (-1: as
        mprotect)."""
        self._call(
            "pkey_mprotect",
            (addr, length, prot, pkey),
            lambda: do_mprotect_pkey(self, addr, length, prot, pkey),
        )

    @entry("pkey_alloc")
    def pkey_alloc(self, flags: int = 0, access_rights: int = 0) -> int:
        """pkey_alloc(2): a new key; ``access_rights`` (PKEY_DISABLE_ACCESS/WRITE) go to the
        calling thread's PKRU."""
        return self._call(
            "pkey_alloc",
            (flags, access_rights),
            lambda: sys_pkey_alloc(self, flags, access_rights),
        )

    @entry("pkey_free")
    def pkey_free(self, pkey: int) -> None:
        """pkey_free(2)."""
        self._call("pkey_free", (pkey,), lambda: sys_pkey_free(self, pkey))

    @entry("set_vma_anon_name")
    def set_vma_anon_name(self, addr: int, length: int, name: str | None) -> None:
        """prctl(PR_SET_VMA, PR_SET_VMA_ANON_NAME, addr, length, name): name the anonymous
        memory of [addr, addr+length), or clear its name (None). See vmamodel.anon_name."""

        args = (addr, length, name)
        self._call(
            "set_vma_anon_name", args, lambda: prctl_set_vma_anon_name(self, addr, length, name)
        )

    @entry("prctl")
    def prctl(self, option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
        """prctl(2) for the options that act on the address space: PR_SET_MEMORY_MERGE and
        PR_GET_MEMORY_MERGE (KSM, see vmamodel.ksm). Other options are not modelled
        (ValueError)."""
        if option not in (PR_SET_MEMORY_MERGE, PR_GET_MEMORY_MERGE):
            raise ValueError(f"prctl option {option} is not modelled")
        args = (arg2, arg3, arg4, arg5)
        return self._call(
            "prctl", (option, *args), lambda: prctl_memory_merge(self, option, *args)
        )

    @entry("mbind")
    def mbind(
        self, addr: int, length: int, mode: int, nodemask: int | None = None, maxnode: int = 0,
        flags: int = 0,
    ) -> None:
        """mbind(2): ``nodemask`` is the node bit mask as an int (None: a NULL pointer), of
        which the kernel reads ``maxnode - 1`` bits. See vmamodel.mbind."""
        args = (addr, length, mode, nodemask, maxnode, flags)
        self._call("mbind", args, lambda: kernel_mbind(self, *args))

    @entry("set_mempolicy_home_node")
    def set_mempolicy_home_node(
        self, addr: int, length: int, home_node: int, flags: int = 0
    ) -> None:
        """set_mempolicy_home_node(2)."""
        args = (addr, length, home_node, flags)
        self._call(
            "set_mempolicy_home_node", args, lambda: set_mempolicy_home_node(self, *args)
        )

    @entry("userfaultfd")
    def userfaultfd(self, flags: int = 0, features: int = 0) -> UserfaultfdCtx:
        """userfaultfd(2) and its UFFDIO_API handshake: the new context (the descriptor)."""
        return self._call(
            "userfaultfd", (flags, features), lambda: sys_userfaultfd(self, flags, features)
        )

    @entry("uffdio_register")
    def uffdio_register(self, uffd: UserfaultfdCtx, addr: int, length: int, mode: int) -> int:
        """ioctl(uffd, UFFDIO_REGISTER): returns the ioctls the range supports."""
        args = (uffd, addr, length, mode)
        return self._call("uffdio_register", args, lambda: userfaultfd_register(self, *args))

    @entry("uffdio_unregister")
    def uffdio_unregister(self, uffd: UserfaultfdCtx, addr: int, length: int) -> None:
        """ioctl(uffd, UFFDIO_UNREGISTER)."""
        args = (uffd, addr, length)
        self._call("uffdio_unregister", args, lambda: userfaultfd_unregister(self, *args))

    @entry("uffd_close")
    def uffd_close(self, uffd: UserfaultfdCtx) -> None:
        """close(2) of the userfaultfd: its VMAs are unregistered (userfaultfd_release)."""
        self._call("uffd_close", (uffd,), lambda: userfaultfd_release_all(self, uffd))

    @entry("shmget")
    def shmget(self, key: int, size: int, shmflg: int) -> int:
        """shmget(2): the segment's id (see vmamodel.shm)."""
        args = (key, size, shmflg)
        return self._call("shmget", args, lambda: ksys_shmget(self, *args))

    @entry("shmat")
    def shmat(self, shmid: int, addr: int = 0, shmflg: int = 0) -> int:
        """shmat(2): the address the segment was attached at."""
        args = (shmid, addr, shmflg)
        return self._call("shmat", args, lambda: do_shmat(self, *args))

    @entry("shmdt")
    def shmdt(self, addr: int) -> None:
        """shmdt(2)."""
        self._call("shmdt", (addr,), lambda: ksys_shmdt(self, addr))

    @entry("shmctl_rmid")
    def shmctl_rmid(self, shmid: int) -> None:
        """shmctl(shmid, IPC_RMID, NULL)."""
        self._call("shmctl_rmid", (shmid,), lambda: ksys_shmctl_rmid(self, shmid))

    @entry("msync")
    def msync(self, addr: int, length: int, flags: int) -> None:
        """msync(2) (see vmamodel.msync)."""
        args = (addr, length, flags)
        self._call("msync", args, lambda: sys_msync(self, *args))

    @entry("mincore")
    def mincore(self, addr: int, length: int) -> bytes:
        """mincore(2): one byte per page, 1 when resident."""
        return self._call("mincore", (addr, length), lambda: sys_mincore(self, addr, length))

    @entry("io_setup")
    def io_setup(self, nr_events: int, move_to: int | None = None) -> int:
        """io_setup(2): the context id, which is the address of its ring (see vmamodel.aio);
        ``move_to`` then moves the ring there with mremap."""
        args = (nr_events, move_to)
        return self._call("io_setup", args, lambda: sys_io_setup(self, *args))

    @entry("io_destroy")
    def io_destroy(self, ctx_id: int) -> None:
        """io_destroy(2)."""
        self._call("io_destroy", (ctx_id,), lambda: sys_io_destroy(self, ctx_id))

    @entry("map_shadow_stack")
    def map_shadow_stack(self, addr: int, size: int, flags: int = 0) -> int:
        """map_shadow_stack(2): ENOSYS, as on a kernel without CONFIG_X86_USER_SHADOW_STACK
        (the host's; its CPU has no user_shstk either)."""
        return self._call(
            "map_shadow_stack", (addr, size, flags), lambda: sys_map_shadow_stack(self)
        )

    @entry("mseal")
    def mseal(self, addr: int, length: int, flags: int = 0) -> None:
        """mseal(2): seal [addr, addr+length) against unmapping, moving and protection
        changes (VM_SEALED); it cannot be undone."""
        self._call("mseal", (addr, length, flags), lambda: do_mseal(self, addr, length, flags))

    @entry("mlock")
    def mlock(self, addr: int, length: int) -> None:
        """mlock(2)."""
        self._call("mlock", (addr, length), lambda: do_mlock(self, addr, length, 0))

    @entry("mlock2")
    def mlock2(self, addr: int, length: int, flags: int = 0) -> None:
        """mlock2(2): MLOCK_ONFAULT locks on fault."""
        self._call("mlock2", (addr, length, flags), lambda: sys_mlock2(self, addr, length, flags))

    @entry("munlock")
    def munlock(self, addr: int, length: int) -> None:
        """munlock(2)."""
        self._call("munlock", (addr, length), lambda: do_munlock(self, addr, length))

    @entry("mlockall")
    def mlockall(self, flags: int) -> None:
        """mlockall(2): MCL_CURRENT, MCL_FUTURE, MCL_ONFAULT."""
        self._call("mlockall", (flags,), lambda: do_mlockall(self, flags))

    @entry("munlockall")
    def munlockall(self) -> None:
        """munlockall(2)."""
        self._call("munlockall", (), lambda: do_munlockall(self))

    @entry("fork")
    def fork(self) -> AddressSpace:
        """fork(2): the child's address space (dup_mmap)."""

        return self._call("fork", (), lambda: dup_mmap(self))

    @entry("exit")
    def exit(self) -> None:
        """exit(2): exit_mmap() closes and frees every VMA."""

        self._call("exit", (), lambda: exit_mmap(self))

    def execve(
        self, maps: str | None = None, smaps: str | None = None, **kwargs: Any
    ) -> AddressSpace:
        """execve(2): this address space ends (exit_mmap) and the new image's begins,
        seeded from its /proc/PID/maps (and smaps) when given. See vmamodel.exec."""
        return self._call("execve", (), lambda: do_execve(self, maps, smaps, **kwargs))

    @classmethod
    def from_maps(cls, text: str, **kwargs: Any) -> AddressSpace:
        """A model seeded from a real process's /proc/PID/maps (mmap_base inferred unless
        given), so that kernel-placed mappings land where the kernel would put them."""

        return address_space_from_maps(cls, text, **kwargs)

    # -- views --------------------------------------------------------------------------

    def maps(self) -> str:
        """/proc/PID/maps."""

        return render_maps(self)

    def smaps(self) -> str:
        """/proc/PID/smaps: header, sizes and VmFlags of each VMA."""

        return render_smaps(self)

    def vmas(self) -> list[VmaView]:
        """Read-only snapshots of the VMAs in address order."""

        return [
            VmaView(
                vma.vm_start,
                vma.vm_end,
                vma.vm_pgoff,
                VM(vma.vm_flags),
                vma.vm_file,
                vma.anon_vma.id if vma.anon_vma is not None else None,
                get_vma_name(self, vma),
            )
            for vma in self.tree
        ]

    @entry("find_vma")
    def find_vma(self, addr: int) -> Any:
        """find_vma(): the first VMA ending above addr (the live object; do not mutate)."""
        return self.tree.find(addr)

    # -- fault injection ----------------------------------------------------------------

    @contextmanager
    def inject(
        self, point: str, nth: int = 1, errno: int | None = None, repeat: bool = False
    ) -> Iterator[_Rule]:
        """Fail the ``nth`` time ``point`` is reached inside the block (see
        ``vmamodel.inject.FAILURE_POINTS``)."""
        with self.injector.inject(point, nth, errno, repeat) as rule:
            yield rule

    def __repr__(self) -> str:
        return f"AddressSpace({self.map_count} VMAs, profile={self.profile.name})"

