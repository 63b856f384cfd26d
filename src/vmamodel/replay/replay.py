"""``vmamodel replay``: a recording's calls, in order, on a model seeded from its start snapshot.

The model is ``AddressSpace.from_maps`` of the start snapshot (its smaps: exact VmFlags and
anon_vmas), configured with the recording machine's kernel traits and filesystems. Each call of
the process's tasks (all threads: they share the mm) runs on the model through the dispatch
table :data:`HANDLERS`, one entry a call; its result (address, value or errno) is compared
with the recorded one; at the end the model's maps and VmFlags are compared with the end
snapshot byte for byte (inodes renumbered by first appearance, as ``compare`` does).

Threads: strace shows when each call entered and left, not when it took effect (somewhere
between its two lines). Calls are replayed in exit order; where a result differs, the calls of
other threads that overlapped it (a later one that entered before it left, an earlier one that
left after it entered) are searched depth first for an admissible order (each thread's own
order kept, a call never before one that left before it entered) under which it, the calls
that were before it and every call placed before it give their recorded results, any number
of them moved, before a divergence is reported.

What the replay cannot know, and says: page faults are not in the log (strace sees system
calls only), so a new mapping gets its anon_vma only when the model itself needs one, and stack
growth is taken from the end snapshot (a fault of the lowest stack page).
"""

from __future__ import annotations

import contextlib
import difflib
import itertools
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from vmamodel.constants import (
    O_RDONLY,
    O_RDWR,
    PAGE_SIZE,
    PR_GET_MEMORY_MERGE,
    PR_SET_MEMORY_MERGE,
)
from vmamodel.events import Event, format_event
from vmamodel.file import File, memfd_create
from vmamodel.mm import AddressSpace
from vmamodel.parse import parse_maps
from vmamodel.replay.fdtable import F_DUPFD, F_DUPFD_CLOEXEC, Description, FdTable
from vmamodel.replay.record import SYSCALL_NR
from vmamodel.replay.recording import Recording, collector_paused
from vmamodel.replay.step import (
    MM_HANDLERS,
    PR_SET_VMA,
    Fault,
    FdHandler,
    Handler,
    Stepper,
    StraceCall,
    Trail,
    Unsupported,
    attach_thread_faults,
    by_thread,
    errno_name,
    index_by_line,
    int_args,
    named,
    select_calls,
    span,
    take_faults,
)
from vmamodel.replay.strace import (
    arg_int,
    fd_path,
    string_arg,
    struct_field,
)
from vmamodel.scenario.compare import InodeNumbering, vmflags
from vmamodel.snapshot import (
    DEFAULT_FILESYSTEM,
    SHMEM_FILESYSTEMS,
    file_operations_for,
)

__all__ = [
    "HANDLERS",
    "SUPPORTED",
    "UNSUPPORTED",
    "Divergence",
    "ReplayResult",
    "Unsupported",
    "replay",
    "smaps_to_maps",
]

CLONE_VM = 0x100
CLONE_FILES = 0x400
CLONE_VFORK = 0x4000
CLONE_THREAD = 0x10000
SIGCHLD = 17
PR_SET_VMA_ANON_NAME = 0
#: prctl options that change VMAs or their merging and that the model does not have yet.
PRCTL_UNSUPPORTED = {
    35: "PR_SET_MM (moves the mm's brk/stack/arg boundaries)",
    41: "PR_SET_THP_DISABLE",
    74: "PR_SET_SHADOW_STACK_STATUS",
}
DELETED = " (deleted)"
O_TRUNC = 0o1000
#: creat(2) is open(O_WRONLY | O_CREAT | O_TRUNC).
O_CREAT_WRONLY_TRUNC = 0o1101
#: How many times the calls before a window of overlapping calls are replayed again while
#: searching its orders (after a call that gave another result, a state met before, a step
#: back) before the failing call is reported.
MAX_TRIES = 400
#: The most calls one search reorders (the failing one in the middle).
MAX_WINDOW = 96
#: The calls that map or unmap: any of them may move where a later mapping is placed.
LAYOUT_CALLS = frozenset({
    "mmap", "munmap", "mremap", "brk", "shmat", "shmdt", "io_setup", "io_destroy",
    "map_shadow_stack",
})


# -- results ----------------------------------------------------------------------------------


@dataclass(slots=True)
class Divergence:
    """A recorded call whose result on the model differs, or the final maps that do."""

    kind: str  # "result", "unsupported", "final maps", "final vmflags"
    call: StraceCall | None
    model: str
    recorded: str
    events: list[Event] = field(default_factory=list)
    maps_around: str = ""
    detail: str = ""

    def report(self) -> str:
        """:meth:`describe`, then the model's events of the call and its maps around the
        address before it (what ``vmamodel replay`` prints)."""
        text = [self.describe()]
        if self.events:
            text.append("  events of the call on the model:")
            text += [f"    · {format_event(event)}" for event in self.events]
        if self.maps_around:
            text.append("  model maps around the address before the call:")
            text += [f"    {line}" for line in self.maps_around.splitlines()]
        return "\n".join(text)

    def describe(self) -> str:
        if self.call is None:
            return f"{self.kind} differ (- recorded, + model):\n{self.detail}"
        where = f"line {self.call.line}: {self.call.describe()}"
        text = f"{self.kind} at {where}\n  model:    {self.model}\n  recorded: {self.recorded}"
        if self.detail:
            text += f"\n  {self.detail}"
        return text


@dataclass(slots=True)
class ReplayResult:
    """What a replay did and found."""

    replayed: int = 0
    compared: int = 0
    skipped_interrupted: int = 0
    skipped_failed_unsupported: int = 0
    forks: int = 0
    faults: int = 0
    reordered: int = 0
    threads: int = 0
    divergences: list[Divergence] = field(default_factory=list)
    approximations: list[str] = field(default_factory=list)
    final_compared: bool = False
    model: AddressSpace | None = None
    #: address -> the last replayed call whose range began or ended there (worked out when
    #: first read: :class:`CallEdges`)
    edges: Mapping[int, StraceCall] = field(default_factory=dict)

    @property
    def exact(self) -> bool:
        return not self.divergences


# -- the model's view of files ----------------------------------------------------------------


_SMAPS_HEADER = re.compile(r"^[0-9a-f]+-[0-9a-f]+ [^\n]*\n?", re.MULTILINE)


def smaps_to_maps(smaps: str) -> str:
    """The maps text inside an smaps text (its header lines)."""
    return "".join(_SMAPS_HEADER.findall(smaps))


class CallEdges(Mapping[int, StraceCall]):
    """Address -> the last call of a replay pass whose range began or ended there: the
    pass's :class:`~vmamodel.replay.step.Trail`, worked out at the first lookup (only
    ``explain`` looks; a replay that does not pays nothing for it)."""

    def __init__(self, trail: Trail) -> None:
        self._trail = trail
        self._edges: dict[int, StraceCall] | None = None

    def _worked_out(self) -> dict[int, StraceCall]:
        if self._edges is None:
            self._edges = self._trail.edges()
        return self._edges

    def __getitem__(self, address: int) -> StraceCall:
        return self._worked_out()[address]

    def __iter__(self) -> Iterator[int]:
        return iter(self._worked_out())

    def __len__(self) -> int:
        return len(self._worked_out())

    def __repr__(self) -> str:
        return f"CallEdges({self._worked_out()!r})"


def _decode_dev(value: int) -> tuple[int, int]:
    """new_decode_dev() of a stat st_dev."""
    return ((value >> 8) & 0xFFF) | ((value >> 32) & ~0xFFF), (value & 0xFF) | (
        (value >> 12) & ~0xFF & 0xFFFFFFFF
    )


def _stat_dev(text: str) -> tuple[int, int]:
    if text.startswith("makedev("):
        major, minor = text[len("makedev("):-1].split(",")
        return arg_int(major), arg_int(minor)
    return _decode_dev(arg_int(text))


def files_by_path(rec: Recording) -> dict[str, tuple[tuple[int, int], int]]:
    """Path -> (device, inode) of the files the snapshots show, for descriptions that no
    fstat described."""
    by_path: dict[str, tuple[tuple[int, int], int]] = {}
    for text in (rec.end_smaps, rec.start_smaps):
        if text is None:
            continue
        for entry in parse_maps(smaps_to_maps(text)):
            if entry.inode:
                by_path.setdefault(entry.name, (entry.dev, entry.inode))
    return by_path


class _PathIndex:
    """:func:`files_by_path` of a recording, read from the snapshots at the first lookup
    (the first mmap of a file no fstat described): a replay that maps no file never
    parses the snapshots' maps for it."""

    def __init__(self, rec: Recording) -> None:
        self.rec = rec
        self._by_path: dict[str, tuple[tuple[int, int], int]] | None = None

    def get(self, path: str) -> tuple[tuple[int, int], int] | None:
        if self._by_path is None:
            self._by_path = files_by_path(self.rec)
        return self._by_path.get(path)


def _cover_seeded_files(model: AddressSpace) -> None:
    """A snapshot does not show file sizes: take each seeded file to be as long as the
    furthest page it maps (fstat or ftruncate, when the log has one, corrects it)."""
    for vma in model.tree:
        f = vma.vm_file
        if f is not None:
            f.size = max(f.size, (vma.vm_pgoff << 12) + vma.vm_end - vma.vm_start)


class _Files:
    """Descriptions to model Files: one File per description, created at its first mmap.
    A description opened before the start snapshot maps the seeded File of its inode."""

    def __init__(
        self, model: AddressSpace, rec: Recording, by_path: _PathIndex,
    ) -> None:
        self.fs_of = rec.fs_of
        self.seeded: dict[tuple[tuple[int, int], int], File] = {}
        for vma in model.tree:
            f = vma.vm_file
            if f is not None:
                self.seeded.setdefault((f.dev, f.ino), f)
        self.by_path = by_path
        self._next_ino = itertools.count(1 << 40)

    def file(self, desc: Description) -> File:
        if desc.file is not None:
            return desc.file
        path = desc.path
        deleted = path.endswith(DELETED)
        bare = path.removesuffix(DELETED)
        ident = (desc.dev, desc.ino) if desc.dev is not None and desc.ino is not None else None
        if ident is None:
            ident = self.by_path.get(bare) or self.by_path.get(bare + DELETED)
        if desc.before_start and ident is not None and ident in self.seeded:
            desc.file = self.seeded[ident]
            if desc.size is not None:
                desc.file.size = desc.size
            return desc.file
        dev, ino = ident if ident is not None else ((0, 0), next(self._next_ino))
        if desc.memfd is not None or bare.startswith("/memfd:"):
            name = desc.memfd if desc.memfd is not None else bare.removeprefix("/memfd:")
            desc.file = memfd_create(name, desc.size or 0, ino=ino)
            desc.file.dev = dev if dev != (0, 0) else desc.file.dev
        else:
            fstype = self.fs_of.get(dev, DEFAULT_FILESYSTEM)
            desc.file = File(
                path=bare, size=desc.size or 0, flags=desc.mode,
                f_op=file_operations_for(fstype),
                dev=dev, ino=ino, deleted=deleted, shmem=fstype in SHMEM_FILESYSTEMS,
            )
        return desc.file


# -- tasks ------------------------------------------------------------------------------------


def _clone_flags(call: StraceCall) -> int:
    if call.name == "fork":
        return SIGCHLD
    if call.name == "vfork":
        return CLONE_VM | CLONE_VFORK | SIGCHLD
    if call.name == "clone3":
        text = struct_field(call.args[0].split(" => ")[0], "flags") if call.args else None
        return arg_int(text) if text else 0
    for arg in call.args:
        if arg.startswith("flags="):
            return arg_int(arg[len("flags="):])
    return arg_int(call.args[2]) if len(call.args) > 2 else 0  # raw: (flags, stack, ...)


_CLONES = ("clone", "clone3", "fork", "vfork")
_EXECS = ("execve", "execveat")
_TASK_NAMES = frozenset(_CLONES + _EXECS)


@dataclass(slots=True)
class _Task:
    parent: int | None
    flags: int
    exec_line: int | None = None


def _tasks(calls: list[StraceCall], root: int, start_line: int) -> dict[int, _Task]:
    """The tasks that share the root's mm: the root and every task created with CLONE_VM by
    one of them, until it execs (after the start: the exec that made the root's image is
    before it)."""
    tasks = {root: _Task(None, 0)}
    calls = named(calls, _TASK_NAMES)  # the rest cannot make or end a task's share
    grown = True
    while grown:
        grown = False
        for call in calls:
            if call.pid not in tasks or call.retval is None or call.retval <= 0:
                continue
            if call.name in _CLONES:
                flags = _clone_flags(call)
                if flags & CLONE_VM and call.retval not in tasks:
                    tasks[call.retval] = _Task(call.pid, flags)
                    grown = True
    for call in calls:
        if (call.name in _EXECS and call.pid in tasks and call.retval == 0
                and call.end_line > start_line):
            task = tasks[call.pid]
            if task.exec_line is None:
                task.exec_line = call.end_line
    return tasks


# -- the replayer -----------------------------------------------------------------------------


def _recorded(call: StraceCall) -> str:
    if call.retval is None:
        return "?"
    if call.error and call.retval < 0:
        return f"-1 {call.error}"
    return hex(call.retval) if call.retval > 0xFFFF else str(call.retval)


def _model_text(value: int | None, exc: OSError | None) -> str:
    if exc is not None:
        return f"-1 {errno_name(exc)}"
    if value is None:
        return "(no result)"
    return hex(value) if value > 0xFFFF else str(value)


class _Run:
    """One pass over the calls in a given order: the model, the fd tables, the counters."""

    def __init__(
        self, rec: Recording, tasks: dict[int, _Task], pre: list[StraceCall],
        by_path: _PathIndex,
    ) -> None:
        self.rec = rec
        self.tasks = tasks
        self.tables: dict[int, FdTable] = {}
        start_brk = self._start_brk(pre)
        kwargs: dict[str, Any] = dict(rec.traits)
        if start_brk is not None and "[heap]" not in rec.start_smaps:
            kwargs["start_brk"] = start_brk
        maps = smaps_to_maps(rec.start_smaps)
        try:
            # a maps text (no VmFlags) seeds with flags inferred from the perms
            smaps = rec.start_smaps if "VmFlags:" in rec.start_smaps else None
            self.model = AddressSpace.from_maps(maps, smaps=smaps, fs_of=rec.fs_of, **kwargs)
        except ValueError as exc:
            raise ValueError(f"{rec.source}: start snapshot: {exc}") from None
        self.files = _Files(self.model, rec, by_path)
        _cover_seeded_files(self.model)
        self.forks = 0
        self.faults = 0
        #: SysV shm ids: the recorded kernel's -> the model's
        self.shm_ids: dict[int, int] = {}
        #: what the pass ran, from which :attr:`edges` is worked out
        self.trail = Trail()
        for call in pre:
            self.bookkeep(call, before_start=True)

    @property
    def edges(self) -> CallEdges:
        """Address -> the last call whose range began or ended there (a boundary between
        two VMAs is made by such a call; explain names it), worked out when first read."""
        return CallEdges(self.trail)

    def _start_brk(self, pre: list[StraceCall]) -> int | None:
        found = None
        for call in pre:
            if call.name == "brk" and call.pid == self.rec.root_pid and call.retval:
                found = call.retval
        return found

    def table(self, pid: int) -> FdTable:
        table = self.tables.get(pid)
        if table is None:
            task = self.tasks.get(pid)
            parent = self.table(task.parent) if task is not None and task.parent else None
            if parent is not None and task is not None and task.flags & CLONE_FILES:
                table = parent
            else:
                table = parent.copy() if parent is not None else FdTable()
            self.tables[pid] = table
        return table

    def mapped_file(self, call: StraceCall, fd: int, offset: int, length: int) -> File:
        """The model's File for an mmap of ``fd`` by ``call``: the description's, made at
        its first mmap (Unsupported when the log did not show its opening, or it is not a
        regular file or memfd)."""
        desc = self.table(call.pid).get(fd)
        if desc is None:
            path = fd_path(call.args[4])
            raise Unsupported(
                f"mmap of fd {fd} ({path or 'no path'}) whose opening was not recorded"
            )
        if not desc.path.startswith("/") or desc.path.startswith(("/dev/", "/proc/", "/sys/")):
            raise Unsupported(f"mmap of {desc.path} (not a regular file or memfd)")
        file = self.files.file(desc)
        if desc.size is None:
            # no fstat, ftruncate or O_TRUNC told the size: take the file to cover what it
            # maps, so that faults inside the mapping are not taken for SIGBUS
            file.size = max(file.size, offset + length)
        return file

    def bookkeep(self, call: StraceCall, before_start: bool = False) -> None:
        """The fd-table effect of a call (also for calls before the start snapshot)."""
        handler = FD_HANDLERS.get(call.name)
        if handler is not None and call.retval is not None and call.retval >= 0:
            handler(self, call, before_start)

# -- handlers: memory management --------------------------------------------------------------


def _ints(call: StraceCall, n: int) -> tuple[int, ...]:
    """The first ``n`` arguments as integers."""
    return int_args(call, n)[:n]


def _prctl(run: _Run, call: StraceCall) -> int | None:
    option = arg_int(call.args[0]) if call.args else -1
    if option == PR_SET_VMA:
        sub, addr, length = (arg_int(a) for a in call.args[1:4])
        if sub != PR_SET_VMA_ANON_NAME:
            raise Unsupported(f"prctl(PR_SET_VMA, {sub})")
        name_text = call.args[4] if len(call.args) > 4 else "NULL"
        if name_text == "NULL" or name_text == "0":
            name = None
        else:
            try:
                name = string_arg(name_text)
            except ValueError:
                raise Unsupported("prctl(PR_SET_VMA_ANON_NAME) whose name strace did not "
                                  "print") from None
        run.model.set_vma_anon_name(addr, length, name)
        return 0
    if option in (PR_SET_MEMORY_MERGE, PR_GET_MEMORY_MERGE):
        return run.model.prctl(option, *_ints(call, 5)[1:])
    if option in PRCTL_UNSUPPORTED:
        raise Unsupported(f"prctl({PRCTL_UNSUPPORTED[option]})")
    return None  # no effect on VMAs: not compared


def _nodemask(text: str) -> int | None:
    """mbind's node mask as strace prints it: ``NULL``, or ``[0x0000000000000005]`` (the
    mask in one hex number)."""
    text = text.strip()
    if text in ("NULL", "0"):
        return None
    if not (text.startswith("[") and text.endswith("]")) or "," in text:
        raise Unsupported(f"mbind node mask {text!r} (expected NULL or [0x...])")
    return arg_int(text[1:-1])


def _mbind(run: _Run, call: StraceCall) -> int:
    if len(call.args) < 6:
        raise Unsupported(f"mbind with {len(call.args)} arguments (expected 6)")
    addr, length, mode = (arg_int(a) for a in call.args[:3])
    maxnode, flags = arg_int(call.args[4]), arg_int(call.args[5])
    run.model.mbind(addr, length, mode, _nodemask(call.args[3]), maxnode, flags)
    return 0


def _set_mempolicy_home_node(run: _Run, call: StraceCall) -> int:
    run.model.set_mempolicy_home_node(*_ints(call, 4))
    return 0


def _io_setup(run: _Run, call: StraceCall) -> int:
    """io_setup(nr_events, ctxp): the ring's address is written to ``*ctxp`` (strace prints
    it as ``[0x7f...]``); the model's must be the same."""
    ctx = run.model.io_setup(_ints(call, 1)[0])
    printed = call.args[1].strip() if len(call.args) > 1 else ""
    if printed.startswith("[") and printed.endswith("]") and arg_int(printed[1:-1]) != ctx:
        return ctx  # a divergence that shows the model's ring address against 0
    return 0


def _io_destroy(run: _Run, call: StraceCall) -> int:
    run.model.io_destroy(*_ints(call, 1))
    return 0


def _map_shadow_stack(run: _Run, call: StraceCall) -> int:
    return run.model.map_shadow_stack(*_ints(call, 3))


IPC_RMID = 0
#: the IPC_64 bit an older libc ors into shmctl's command
IPC_64 = 0x100


def _shm_id(run: _Run, call: StraceCall) -> int:
    recorded = _ints(call, 1)[0]
    shmid = run.shm_ids.get(recorded)
    if shmid is None:
        raise Unsupported(f"{call.name} of shm segment {recorded} whose shmget was not "
                          "recorded (made by another process, or before the start)")
    return shmid


def _shmget(run: _Run, call: StraceCall) -> int | None:
    """shmget: the model's segment stands for the recorded id (ids are the kernel's to
    choose: not compared; an error is)."""
    key, size, flags = _ints(call, 3)
    shmid = run.model.shmget(key, size, flags)
    if call.retval is not None and call.retval >= 0:
        run.shm_ids[call.retval] = shmid
    return None


def _shmat(run: _Run, call: StraceCall) -> int:
    _, addr, flags = _ints(call, 3)
    return run.model.shmat(_shm_id(run, call), addr, flags)


def _shmdt(run: _Run, call: StraceCall) -> int:
    run.model.shmdt(*_ints(call, 1))
    return 0


def _shmctl(run: _Run, call: StraceCall) -> int | None:
    """shmctl(IPC_RMID) marks the segment for removal; other commands leave VMAs alone."""
    if len(call.args) < 2 or arg_int(call.args[1]) & ~IPC_64 != IPC_RMID:
        return None
    run.model.shmctl_rmid(_shm_id(run, call))
    return 0


def _fork(run: _Run, call: StraceCall) -> int | None:
    """A child without CLONE_VM is another address space; on this one a fork still matters
    (dup_mmap: anon_vma chains, VM_WIPEONFORK...): fork the model, then let the child exit."""
    if call.retval is None or call.retval <= 0 or _clone_flags(call) & CLONE_VM:
        return None
    child = run.model.fork()
    child.exit()
    run.forks += 1
    return None


def _execve(run: _Run, call: StraceCall) -> int | None:
    if call.retval == 0 and call.pid == run.rec.root_pid:
        raise Unsupported("execve: the address space ends here (a new one starts; replay "
                          "stops)")
    return None


def _nothing(run: _Run, call: StraceCall) -> int | None:
    return None


def _unsupported(what: str) -> Handler:
    def handler(run: _Run, call: StraceCall) -> int | None:
        raise Unsupported(f"{call.name}: {what}")

    return handler


#: The calls the replay runs on the model: name -> handler (returns the value to compare, or
#: None when there is nothing to compare). Adding a call is one entry.
SUPPORTED: dict[str, Handler] = {
    **MM_HANDLERS,  # mmap, munmap, mprotect, mremap, madvise, brk, mlock...: step.py
    "prctl": _prctl,
    "fork": _fork,
    "vfork": _fork,
    "clone": _fork,
    "clone3": _fork,
    "execve": _execve,
    "execveat": _execve,
    "exit": _nothing,
    "exit_group": _nothing,
    "mbind": _mbind,
    "set_mempolicy_home_node": _set_mempolicy_home_node,
    "io_setup": _io_setup,
    "io_destroy": _io_destroy,
    "map_shadow_stack": _map_shadow_stack,
    "shmget": _shmget,
    "shmat": _shmat,
    "shmdt": _shmdt,
    "shmctl": _shmctl,
}

#: Calls the model does not have yet: name -> why. The replay stops at a successful one and
#: names it with its line; a failed one changed nothing and is skipped. (Once the model has
#: one, its entry in SUPPORTED takes over.)
UNSUPPORTED: dict[str, str] = {
    "userfaultfd": "userfaultfd registration is not in the model",
    "io_uring_setup": "io_uring ring mappings are not in the model",
    "remap_file_pages": "remap_file_pages is not in the model",
    "memfd_secret": "secret memory is not in the model",
    "process_madvise": "process_madvise is not in the model",
    "process_mrelease": "process_mrelease is not in the model",
}
#: The dispatch table: a supported call's handler wins over its UNSUPPORTED entry.
HANDLERS: dict[str, Handler] = {
    **{name: _unsupported(why) for name, why in UNSUPPORTED.items()},
    **SUPPORTED,
}
_UNSUPPORTED_NAMES = frozenset(UNSUPPORTED) - frozenset(SUPPORTED)


# -- handlers: file descriptions (also before the start) ------------------------------------


def _open(run: _Run, call: StraceCall, before: bool) -> None:
    assert call.retval is not None
    path = call.ret_path
    if path is None:
        index = 1 if call.name in ("openat", "openat2") else 0
        try:
            path = string_arg(call.args[index])
        except (ValueError, IndexError):
            path = "?"
    if call.name == "creat":
        flags = O_CREAT_WRONLY_TRUNC
    elif call.name == "openat2":
        text = struct_field(call.args[2], "flags") if len(call.args) > 2 else None
        flags = arg_int(text) if text else 0
    else:
        flags = arg_int(call.args[2 if call.name == "openat" else 1])
    desc = Description(path, flags, call.line, before)
    if flags & O_TRUNC and desc.mode != O_RDONLY:
        desc.size = 0
    run.table(call.pid).install(call.retval, desc)


def _memfd(run: _Run, call: StraceCall, before: bool) -> None:
    assert call.retval is not None
    try:
        name = string_arg(call.args[0])
    except (ValueError, IndexError):
        name = "?"
    desc = Description(f"/memfd:{name}{DELETED}", O_RDWR, call.line, before, memfd=name)
    run.table(call.pid).install(call.retval, desc)


def _dup(run: _Run, call: StraceCall, before: bool) -> None:
    assert call.retval is not None
    run.table(call.pid).dup(arg_int(call.args[0]), call.retval)


def _fcntl(run: _Run, call: StraceCall, before: bool) -> None:
    assert call.retval is not None
    if len(call.args) > 1 and arg_int(call.args[1]) in (F_DUPFD, F_DUPFD_CLOEXEC):
        run.table(call.pid).dup(arg_int(call.args[0]), call.retval)


def _close(run: _Run, call: StraceCall, before: bool) -> None:
    run.table(call.pid).close(arg_int(call.args[0]))


def _close_range(run: _Run, call: StraceCall, before: bool) -> None:
    first, last, flags = (arg_int(a) for a in call.args[:3])
    run.table(call.pid).close_range(first, last, flags)


def _fstat(run: _Run, call: StraceCall, before: bool) -> None:
    """fstat/newfstatat(fd, "", AT_EMPTY_PATH)/statx of an fd: device, inode and size."""
    if call.name == "fstat":
        fd_text, struct = call.args[0], call.args[1] if len(call.args) > 1 else ""
    elif call.name == "newfstatat" and len(call.args) > 2 and call.args[1] == '""':
        fd_text, struct = call.args[0], call.args[2]
    elif call.name == "statx" and len(call.args) > 4 and call.args[1] == '""':
        fd_text, struct = call.args[0], call.args[4]
    else:
        return
    desc = run.table(call.pid).get(arg_int(fd_text))
    if desc is None:
        return
    if call.name == "statx":
        size, ino = struct_field(struct, "stx_size"), struct_field(struct, "stx_ino")
        major = struct_field(struct, "stx_dev_major")
        minor = struct_field(struct, "stx_dev_minor")
        if major is not None and minor is not None:
            desc.dev = (arg_int(major), arg_int(minor))
    else:
        size, ino = struct_field(struct, "st_size"), struct_field(struct, "st_ino")
        dev = struct_field(struct, "st_dev")
        if dev is not None:
            desc.dev = _stat_dev(dev)
    if ino is not None:
        desc.ino = arg_int(ino)
    if size is not None:
        desc.size = arg_int(size)
        if desc.file is not None:
            desc.file.size = desc.size


def _ftruncate(run: _Run, call: StraceCall, before: bool) -> None:
    desc = run.table(call.pid).get(arg_int(call.args[0]))
    if desc is not None:
        desc.size = arg_int(call.args[1])
        if desc.file is not None:
            desc.file.size = desc.size


def _unlink(run: _Run, call: StraceCall, before: bool) -> None:
    """unlink/unlinkat of a path: its open files show " (deleted)" from now on (the model's
    File, seeded or opened, of that path)."""
    try:
        path = string_arg(call.args[1 if call.name == "unlinkat" else 0])
    except (ValueError, IndexError):
        return
    if not path.startswith("/"):
        return  # relative to a directory the log does not show
    for table in run.tables.values():
        for desc in table.fds.values():
            if desc.path == path:
                desc.path = path + DELETED
                if desc.file is not None:
                    desc.file.deleted = True
    for vma in run.model.tree:
        f = vma.vm_file
        if f is not None and f.path == path and not f.shmem:
            f.deleted = True


def _truncate(run: _Run, call: StraceCall, before: bool) -> None:
    """truncate(path, size): every description of that path sees the new size."""
    try:
        path, size = string_arg(call.args[0]), arg_int(call.args[1])
    except (ValueError, IndexError):
        return
    for table in run.tables.values():
        for desc in table.fds.values():
            if desc.path == path:
                desc.size = size
                if desc.file is not None:
                    desc.file.size = size


FD_HANDLERS: dict[str, FdHandler] = {
    "truncate": _truncate,
    "unlink": _unlink,
    "unlinkat": _unlink,
    "open": _open,
    "openat": _open,
    "openat2": _open,
    "creat": _open,
    "memfd_create": _memfd,
    "dup": _dup,
    "dup2": _dup,
    "dup3": _dup,
    "fcntl": _fcntl,
    "close": _close,
    "close_range": _close_range,
    "fstat": _fstat,
    "newfstatat": _fstat,
    "statx": _fstat,
    "ftruncate": _ftruncate,
}
#: The calls a replay runs (on the model, or on its fd tables).
_REPLAYED_NAMES = frozenset(HANDLERS) | frozenset(FD_HANDLERS)


# -- the replay loop --------------------------------------------------------------------------


@dataclass(slots=True)
class _Plan:
    pre: list[StraceCall]
    calls: list[StraceCall]  # in exit order, only the mm's tasks, start..end
    #: the page faults a thread took just before each call (by index in ``calls``; None:
    #: none)
    faults_before: list[list[Fault] | None] = field(default_factory=list)
    #: faults after the last replayed call (before the end marker)
    tail_faults: list[Fault] = field(default_factory=list)
    unmatched_enters: int = 0


def _attach_faults(rec: Recording, plan: _Plan, tasks: dict[int, _Task]) -> None:
    """Line perf's events up with strace's calls, thread by thread: strace shows a
    subsequence of the entries perf saw (none before the tracee's exec), so each entry perf
    saw either is the next call strace showed (same number) or is skipped; the faults
    before an entry belong just before that call."""
    plan.faults_before = [None] * len(plan.calls)
    if rec.faults is None:
        return
    planned = index_by_line(plan.calls)
    by_tid = by_thread(rec.log.calls, rec.faults.keys() & tasks.keys())
    for tid, events in rec.faults.items():
        if tid in tasks:
            plan.unmatched_enters += attach_thread_faults(
                by_tid.get(tid, []), SYSCALL_NR, events, planned, rec.start_line,
                plan.faults_before, plan.tail_faults)


def _plan(rec: Recording) -> tuple[_Plan, dict[int, _Task]]:
    """The calls a replay runs and the faults before each (the collector paused: a plan is
    an object or two a call and no cycle, :func:`collector_paused`)."""
    with collector_paused():
        return _make_plan(rec)


def _make_plan(rec: Recording) -> tuple[_Plan, dict[int, _Task]]:
    root = rec.root_pid if rec.root_pid is not None else 0
    tasks = _tasks(rec.log.calls, root, rec.start_line)
    exec_lines = {pid: task.exec_line for pid, task in tasks.items()}
    pre, calls = select_calls(rec.log.calls, exec_lines, rec.start_line, rec.end_line,
                              _REPLAYED_NAMES)
    plan = _Plan(pre, calls)
    _attach_faults(rec, plan, tasks)
    return plan, tasks


def _maps_around(model: AddressSpace, call: StraceCall, lines: int = 3) -> str:
    try:
        addr = arg_int(call.args[0]) if call.args else 0
    except ValueError:
        addr = 0
    text = model.maps().splitlines()
    index = 0
    for i, entry in enumerate(parse_maps(model.maps())):
        if entry.end > addr:
            index = i
            break
    else:
        index = len(text)
    return "\n".join(text[max(0, index - lines):index + lines + 1])


class Replayer:
    """Replays a :class:`Recording`; see :func:`replay`."""

    def __init__(self, rec: Recording, keep_going: bool = False) -> None:
        self.rec = rec
        self.keep_going = keep_going
        self.plan, self.tasks = _plan(rec)
        self.order = list(range(len(self.plan.calls)))
        self.result = ReplayResult(threads=len(self.tasks))
        self.by_path = _PathIndex(rec)
        self.stepper = Stepper(self.plan.calls, self.plan.faults_before, HANDLERS,
                               FD_HANDLERS, _UNSUPPORTED_NAMES)
        #: the orders the last search tried that gave another result (for its report)
        self.tried = 0

    def _fresh(self) -> _Run:
        return _Run(self.rec, self.tasks, self.plan.pre, self.by_path)

    def _step(self, run: _Run, index: int) -> tuple[bool, int | None, OSError | None]:
        """Run the call at ``index`` of the plan (:meth:`Stepper.step`)."""
        return self.stepper.step(run, index)

    def _replay_prefix(self, upto: int) -> _Run:
        run = self._fresh()
        self.stepper.steps(run, self.order, upto)
        return run

    def run(self) -> ReplayResult:
        result = self.result
        run = self._fresh()
        calls = self.plan.calls
        order = self.order
        stepper = self.stepper
        position = 0
        while True:
            try:
                position, value, exc = stepper.advance(run, order, position)
            except Unsupported as why:
                call = calls[order[stepper.position]]
                result.divergences.append(Divergence("unsupported", call, str(why), _recorded(
                    call), detail=f"{self.rec.source}: line {call.line}: {why}"))
                break
            if position >= len(order):
                break
            counted = set(order[:position + 1])
            fixed = self._try_orders(position, value)
            if fixed is not None:
                run, after = fixed
                # _try_orders rewrote a slice of it (every call counted so far is still
                # before ``after``): count the calls it pulled in, where they ran
                for moved in order[:after]:
                    if moved not in counted:
                        self._count(calls[moved])
                position = after
                continue
            result.divergences.append(self._divergence(position, value, exc))
            if not self.keep_going:
                break
            position += 1
        result.replayed += stepper.replayed
        result.skipped_interrupted += stepper.interrupted
        result.compared += stepper.replayed - stepper.interrupted
        if self.plan.tail_faults and (not result.divergences or self.keep_going):
            take_faults(run, self.plan.tail_faults)
        result.forks = run.forks
        result.faults = run.faults
        result.edges = run.edges
        result.model = run.model
        if not result.divergences or self.keep_going:
            self._final(run)
        self._notes()
        return result

    def _count(self, call: StraceCall) -> None:
        if call.name in FD_HANDLERS:
            return
        self.result.replayed += 1
        if call.retval is None:
            self.result.skipped_interrupted += 1
        else:
            self.result.compared += 1

    # -- threads: other admissible orders of overlapping calls ------------------------------

    def _window(self, position: int) -> tuple[int, int]:
        """The positions ``lo..hi`` of the calls that overlapped the call at ``position`` in
        time: earlier ones that left after it entered (they may have taken effect after
        it) and later ones that entered before it left (they may have taken effect before
        it), with everything between them; at most :data:`MAX_WINDOW` // 2 positions on
        either side."""
        calls, order = self.plan.calls, self.order
        call = calls[order[position]]
        lo = hi = position
        for q in range(position + 1, min(len(order), position + MAX_WINDOW // 2 + 1)):
            if calls[order[q]].line < call.end_line:
                hi = q
        for q in range(position - 1, max(-1, position - MAX_WINDOW // 2 - 1), -1):
            if calls[order[q]].end_line > call.line:
                lo = q
        return lo, hi

    def _prerequisites(self, c: int, pending: list[int]) -> list[int]:
        """The calls of ``pending`` that must take effect before call ``c``: those of its
        thread that entered before it, those that left before it entered."""
        calls = self.plan.calls
        mine = calls[c]
        return [d for d in pending if d != c and (
            (calls[d].pid == mine.pid and calls[d].line < mine.line)
            or calls[d].end_line < mine.line)]

    def _useful(self, target: int, value: int | None, window: list[int]) -> set[int]:
        """The calls of ``window`` that may change the result of call ``target``: those
        that map or unmap (a placement depends on every mapping), those whose range meets
        its own (recorded or model), and the calls that must precede one of these."""
        calls = self.plan.calls
        call = calls[target]
        spans = [s for s in (span(call, value), span(call, call.retval)) if s is not None]

        def touches(c: int) -> bool:
            other = calls[c]
            if other.name in LAYOUT_CALLS:
                return True
            took = span(other, other.retval)
            return took is not None and any(
                took[0] <= hi + PAGE_SIZE and lo - PAGE_SIZE <= took[1] for lo, hi in spans)

        useful = {c for c in window if c != target and touches(c)}
        todo = list(useful)
        while todo:
            for d in self._prerequisites(todo.pop(), window):
                if d not in useful:
                    useful.add(d)
                    todo.append(d)
        return useful

    def _options(self, pending: list[int], target: int, useful: set[int]) -> list[int]:
        """The calls to try next, most likely first: the next one in the current order,
        the failing call, then the available calls that may change its result."""
        free = [c for c in pending if not self._prerequisites(c, pending)]
        first = free[:1]
        if target in free and target not in first:
            first.append(target)
        return first + [c for c in free if c in useful and c not in first]

    def _search(self, lo: int, target: int, value: int | None, hi: int, budget: list[int]
                ) -> tuple[_Run, list[int], int] | None:
        """An admissible order of the calls at positions ``lo..hi`` under which the failing
        call ``target``, every call before it in the current order (they matched) and every
        call placed before it give their recorded results (the others follow in the current
        order), with how many calls it placed: a depth-first search placing one call at a
        time (:meth:`_options`), backtracking when none matches. A call that matched is
        never pushed after the failing one unchecked: two results that no order gives
        together would otherwise be fixed in turn for ever, each fix breaking the other.
        A state met before (the same calls placed, the same maps) is not explored again.
        ``budget[0]``: how many more times the pass may be rebuilt (the calls before ``lo``
        and those placed replayed again: after a mismatch, a state met before or a step
        back)."""
        window = self.order[lo:hi + 1]
        required = frozenset(window[:window.index(target) + 1])
        useful = self._useful(target, value, window)
        chosen: list[int] = []
        options = [self._options(window, target, useful)]
        seen: set[tuple[frozenset[int], str]] = set()
        run: _Run | None = self._replay_prefix(lo)
        while True:
            if not options[-1]:
                options.pop()
                if not chosen:
                    return None
                chosen.pop()
                run = None  # it ran the popped call: rebuilt before the next try
                continue
            candidate = options[-1].pop(0)
            if run is None:
                if budget[0] <= 0:
                    return None
                budget[0] -= 1
                run = self._replay_prefix(lo)
                for index in chosen:
                    self._step(run, index)
            try:
                good = self._step(run, candidate)[0]
            except Unsupported:
                good = False
            if good:
                chosen.append(candidate)
                placed = frozenset(chosen)
                if target in placed and required <= placed:
                    return run, chosen + [c for c in window if c not in placed], len(chosen)
                state = (placed, run.model.maps())
                if state not in seen:
                    seen.add(state)
                    options.append(self._options(
                        [c for c in window if c not in state[0]], target, useful))
                    continue
                chosen.pop()
            else:
                self.tried += 1
            run = None  # it ran a call not kept: rebuilt before the next try

    def _try_orders(self, position: int, value: int | None
                    ) -> tuple[_Run, int] | None:
        """Find an admissible order of the calls that overlapped the failing one under
        which it and every call before it give their recorded results (:meth:`_search`);
        rewrite the order with it: (the pass, the position after the calls it ran: past
        ``position``, so that the replay always moves on)."""
        lo, hi = self._window(position)
        target = self.order[position]
        self.tried = 0
        found = self._search(lo, target, value, hi, [MAX_TRIES])
        if found is None:
            return None
        run, chunk, placed = found
        current = self.order[lo:hi + 1]
        self.order[lo:hi + 1] = chunk
        self.result.reordered += sum(1 for a, b in zip(chunk, current, strict=True) if a != b)
        return run, lo + placed

    # -- reporting --------------------------------------------------------------------------

    def _divergence(self, position: int, value: int | None, exc: OSError | None) -> Divergence:
        index = self.order[position]
        call = self.plan.calls[index]
        lo, hi = self._window(position)
        run = self._replay_prefix(position)
        before = _maps_around(run.model, call)
        with run.model.tracer.collect() as events, contextlib.suppress(Unsupported):
            self._step(run, index)
        window = [self.plan.calls[i] for i in self.order[lo:hi + 1]]
        first, last = min(c.line for c in window), max(c.end_line for c in window)
        return Divergence(
            "result", call, _model_text(value, exc), _recorded(call), list(events),
            maps_around=before,
            detail=f"no order of the {hi - lo + 1} overlapping call(s) (lines {first}.."
                   f"{last}) gives every recorded result: {self.tried} mismatching "
                   f"order(s) tried; {self.result.reordered} call(s) reordered before",
        )

    def _final(self, run: _Run) -> None:
        end = self.rec.end_smaps
        if end is None:
            self.result.approximations.append(
                "no end snapshot (the program left without running destructors): final maps "
                "not compared")
            return
        self._grow_stack(run, end)
        model_maps = InodeNumbering().text(run.model.maps())
        host_maps = InodeNumbering().text(smaps_to_maps(end))
        self.result.final_compared = True
        if model_maps != host_maps:
            self.result.divergences.append(Divergence(
                "final maps", None, model_maps, host_maps,
                detail=_diff(host_maps, model_maps)))
            return
        if "VmFlags:" not in end:
            self.result.approximations.append("the end snapshot is a maps text: VmFlags not "
                                              "compared")
            return
        mine, theirs = vmflags(run.model.smaps()), vmflags(end)
        if mine != theirs:
            bad = [r for r in theirs if mine.get(r) != theirs[r]]
            lines = [f"{r}: model {mine.get(r)!r}, recorded {theirs[r]!r}" for r in bad[:10]]
            self.result.divergences.append(Divergence(
                "final vmflags", None, "", "", detail="\n  ".join(lines)))

    def _grow_stack(self, run: _Run, end: str) -> None:
        """The stack grows by faults, which strace does not see: fault the lowest page the
        end snapshot shows, as the program's own accesses did."""
        stacks = [e for e in parse_maps(smaps_to_maps(end)) if e.name == "[stack]"]
        mine = [v for v in run.model.tree if run.model.start_stack and v.vm_start <= (
            run.model.start_stack) < v.vm_end]
        if not stacks or not mine or stacks[0].start >= mine[0].vm_start:
            return
        pages = (mine[0].vm_start - stacks[0].start) // PAGE_SIZE
        try:
            run.model.touch(stacks[0].start, write=True)
        except OSError:
            return
        self.result.approximations.append(
            f"stack growth of {pages} pages taken from the end snapshot (page faults are "
            f"not recorded)")

    def _notes(self) -> None:
        if self.rec.faults is None:
            self.result.approximations.append(
                "page faults are not recorded (no perf): a new mapping's anon_vma is the "
                "model's own (merges that anon_vma identity would refuse can differ), stack "
                "growth comes from the end snapshot")
        elif self.plan.unmatched_enters:
            self.result.approximations.append(
                f"{self.plan.unmatched_enters} call entries seen by perf had no strace line: "
                "faults near them may be placed one call early or late")


def _diff(host: str, model: str) -> str:
    return "".join(difflib.unified_diff(
        host.splitlines(keepends=True), model.splitlines(keepends=True), "recorded", "model",
        n=2))


def replay(rec: Recording, *, keep_going: bool = False) -> ReplayResult:
    """Replay a recording on the model; see the module docstring."""
    return Replayer(rec, keep_going).run()


def iter_calls(rec: Recording) -> Iterable[StraceCall]:
    """The calls a replay of ``rec`` runs, in exit order."""
    plan, _ = _plan(rec)
    return iter(plan.calls)
