"""The host oracle: the model's AddressSpace API, executed by the real kernel in a child process.

Every call is one request to a child Python process (child.py) that issues the raw syscall in
its own address space and answers with the result or the kernel's errno; ``maps()`` and
``smaps()`` are the child's /proc/self/maps and /proc/self/smaps, restricted to the arena.

Safety: with an arena (the default), any call that could change or write memory outside it is
refused with ``ValueError`` in the parent before anything is sent. Calls the kernel rejects
before looking at any VMA (length 0, an unaligned address where the syscall requires an
aligned one, a length that overflows) are let through so that their errno can be compared.
A kernel-chosen address outside the arena (a hinted mmap, an mremap move) is unmapped again in
the child and reported as ``ValueError``.

The heap: the child's break is moved into the top :data:`HEAP_SPAN` of the arena (at
``heap_start(arena)``) once glibc's malloc has been barred from brk() (child.py), so
``brk()`` plays in the arena on a break no one else uses; its ``[heap]`` shows in ``maps()``
like any arena mapping.

Crashes: if the child dies (signal, exit) or stops answering, the call raises
:class:`HostCrash` naming the signal, and the object stays dead: every later call raises
``HostCrash`` again (no silent restart, which would lose the address-space state). Create a
new ``HostAddressSpace`` to continue.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import os
import signal
import subprocess
import sys
import tempfile
import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from errno import EPERM
from pathlib import Path
from typing import IO, Any

from vmamodel.abi import SYSCALL_ARGS, convert_args, syscall_abi
from vmamodel.constants import (
    MAP_FIXED,
    MAP_FIXED_NOREPLACE,
    MREMAP_DONTUNMAP,
    MREMAP_FIXED,
    MREMAP_MAYMOVE,
    O_RDWR,
    PAGE_SIZE,
    PR_GET_MEMORY_MERGE,
    PR_SET_MEMORY_MERGE,
    TASK_SIZE,
    VM,
    page_align,
)
from vmamodel.file import File, open_file
from vmamodel.host.arena import DEFAULT_ARENA
from vmamodel.host.protocol import U64, Channel, ChannelClosed, ChannelTimeout
from vmamodel.host.traits import host_has_pkeys, host_mmap_min_addr, host_model_kwargs
from vmamodel.parse import parse_smaps
from vmamodel.vma import VmaView

__all__ = [
    "DEFAULT_ARENA",
    "HostAddressSpace",
    "HostChildError",
    "HostCrash",
    "host_has_pkeys",
    "host_model_kwargs",
    "real_file",
]

#: (base, size): 16 TiB up, far below where the kernel places Python's own mappings.
#: The top of the arena that is left to the heap (start_brk is its first byte).
HEAP_SPAN = 1 << 30
#: malloc takes 64 MiB of spare heap while Python starts, before the child forbids it the
#: break: it then rarely needs new mappings (at max_map_count it could not get any).
GLIBC_TUNABLES = "glibc.malloc.top_pad=67108864"


def heap_start(arena: tuple[int, int] | None = DEFAULT_ARENA) -> int | None:
    """Where the oracle puts the child's start_brk for an arena ``(base, size)``: the last
    HEAP_SPAN of it, or None (the heap stays where exec put it) for no or a small arena."""
    if arena is None or arena[1] < 2 * HEAP_SPAN:
        return None
    return arena[0] + arena[1] - HEAP_SPAN


#: The prctl options the oracle passes to the kernel: those the model has.
HOST_PRCTL_OPTIONS = frozenset({PR_SET_MEMORY_MERGE, PR_GET_MEMORY_MERGE})

CHILD_PATH = Path(__file__).with_name("child.py")
_TOKENS = itertools.count(1)


class HostCrash(RuntimeError):
    """The child process died or hung; the message names the signal or exit status."""


class HostChildError(RuntimeError):
    """The child raised a Python exception (a bug in the oracle, not a kernel errno)."""


def real_file(path: str | os.PathLike[str], flags: int = O_RDWR) -> File:
    """A File for an existing path, with the dev/inode/size that os.stat reports.

    The child opens ``path`` with ``flags`` when the File is first mapped; /proc/PID/maps
    shows the superblock device and inode, which is what st_dev/st_ino give.
    """
    st = os.stat(path)
    return open_file(
        os.fspath(path),
        flags,
        st.st_size,
        dev=(os.major(st.st_dev), os.minor(st.st_dev)),
        ino=st.st_ino,
    )


def _uffd_range_rejected(start: int, length: int) -> bool:
    """validate_range() of userfaultfd refuses the range before looking at any VMA."""
    return bool(
        start % PAGE_SIZE or length % PAGE_SIZE or not length
        or start < host_mmap_min_addr() or start >= TASK_SIZE or length > TASK_SIZE - start
    )


class HostUserfaultfd:
    """A userfaultfd open in the child (its descriptor is kept under ``token``)."""

    __slots__ = ("token",)

    def __init__(self, token: int) -> None:
        self.token = token

    def __repr__(self) -> str:
        return f"HostUserfaultfd({self.token})"


class _FileRecord:
    __slots__ = ("dev", "file", "ino", "token")

    def __init__(self, token: int, file: File, dev: tuple[int, int], ino: int) -> None:
        self.token = token
        self.file = file
        self.dev = dev
        self.ino = ino


def _signal_text(status: int) -> str:
    """Describe a waitpid status or a negative Popen returncode's signal."""
    try:
        return signal.Signals(status).name
    except ValueError:
        return f"signal {status}"


def _shutdown(channel: Channel, proc: subprocess.Popen[bytes] | None, stderr: IO[bytes]) -> None:
    """Finaliser: never raises, never waits long."""
    try:
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(Exception):
                channel.call(("exit",))
        channel.close()
        if proc is not None:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    finally:
        stderr.close()


@dataclass(frozen=True)
class PlainCall:
    """A call whose request is its arguments as registers: ``required`` arguments, then
    optional ones with these defaults; ``guard`` says how its (start, length) range is kept
    inside the arena: "aligned" (an unaligned start is EINVAL in the kernel, so it passes),
    "rounded" (the mlock family rounds the start down), "huge" (as aligned, and a range
    ending above TASK_SIZE fails in the kernel), None (no range)."""

    required: int
    defaults: tuple[int, ...] = ()
    guard: str | None = "aligned"


#: Calls whose request needs nothing but their arguments; the others (mmap's file, mremap's
#: two ranges, brk's heap, touch, anon names) keep a ``_req_<name>`` builder of their own.
PLAIN_CALLS: dict[str, PlainCall] = {
    "munmap": PlainCall(2, guard="huge"),
    "mprotect": PlainCall(3),
    "madvise": PlainCall(3),
    "mlock": PlainCall(2, guard="rounded"),
    "mlock2": PlainCall(2, (0,), guard="rounded"),
    "munlock": PlainCall(2, guard="rounded"),
    "mlockall": PlainCall(1, guard=None),
    "munlockall": PlainCall(0, guard=None),
    "mseal": PlainCall(2, (0,)),
    "pkey_mprotect": PlainCall(4),
    "pkey_alloc": PlainCall(0, (0, 0), guard=None),
    "pkey_free": PlainCall(1, guard=None),
}
def _check_arena(arena: object) -> None:
    """``(base, size)``: page-aligned, non-empty, within the user address space."""
    if arena is None:
        return
    if (not isinstance(arena, tuple) or len(arena) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in arena)):
        raise ValueError(f"HostAddressSpace(arena={arena!r}): a (base, size) pair of ints")
    base, size = arena
    if base < 0 or size <= 0 or (base | size) % PAGE_SIZE or base + size > TASK_SIZE:
        raise ValueError(f"HostAddressSpace(arena=({base:#x}, {size:#x})): base and size "
                         f"page-aligned, size > 0, base >= 0, base + size <= {TASK_SIZE:#x}")


class HostAddressSpace:
    """The host kernel's answer to the same calls as :class:`vmamodel.mm.AddressSpace`.

    ``arena`` is ``(base, size)`` or None (no guard, no filtering). ``timeout`` bounds each
    round trip (seconds, None for no limit); exceeding it kills the child (HostCrash).
    Not thread-safe: one call at a time.
    """

    def __init__(
        self,
        arena: tuple[int, int] | None = DEFAULT_ARENA,
        *,
        python: str = sys.executable,
        timeout: float | None = 60.0,
    ) -> None:
        _check_arena(arena)
        if timeout is not None and (isinstance(timeout, bool) or not isinstance(
                timeout, (int, float)) or not timeout > 0):
            raise ValueError(f"HostAddressSpace(timeout={timeout!r}): seconds > 0, or None")
        self.bounds = None if arena is None else (arena[0], arena[0] + arena[1])
        self._timeout = timeout
        self._files: dict[int, _FileRecord] = {}
        self._by_inode: dict[tuple[tuple[int, int], int], File] = {}
        self._dead: str | None = None
        self._parent: HostAddressSpace | None = None
        self._brk_layout: tuple[int, int, int] | None = None
        # Lives as long as the child; closed by the finaliser.
        self._stderr: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115
        self._proc: subprocess.Popen[bytes] | None = None
        self._channel = self._spawn(python, heap_start(arena))
        self.pid: int = self._proc.pid if self._proc is not None else 0
        self._finalizer = weakref.finalize(
            self, _shutdown, self._channel, self._proc, self._stderr
        )
        leftover = self.maps() if self.bounds is not None else ""
        if leftover:
            self.close()
            raise RuntimeError(f"the arena is not empty in a fresh child:\n{leftover}")

    def _spawn(self, python: str, start_brk: int | None) -> Channel:
        req_r, req_w = os.pipe()
        resp_r, resp_w = os.pipe()
        bounds = ["-"] if self.bounds is None else [f"{b:x}" for b in self.bounds]
        heap = "-" if start_brk is None else f"{start_brk:x}"
        argv = [python, "-I", "-S", str(CHILD_PATH), str(req_r), str(resp_w), *bounds, heap]
        env = dict(os.environ)
        env["GLIBC_TUNABLES"] = ":".join(filter(None, (env.get("GLIBC_TUNABLES"), GLIBC_TUNABLES)))
        try:
            self._proc = subprocess.Popen(
                argv, pass_fds=(req_r, resp_w), stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=self._stderr, cwd="/", env=env,
            )
        finally:
            os.close(req_r)
            os.close(resp_w)
        return Channel(req_w, resp_r, self._timeout)

    @classmethod
    def _attach(cls, parent: HostAddressSpace, channel: Channel, pid: int) -> HostAddressSpace:
        """A HostAddressSpace for a process forked by ``parent``'s child."""
        self = cls.__new__(cls)
        self.bounds = parent.bounds
        self._timeout = parent._timeout
        self._files = dict(parent._files)  # fork(2) inherited the descriptors
        self._by_inode = dict(parent._by_inode)
        self._dead = None
        self._parent = parent
        self._brk_layout = parent._brk_layout
        # A forked process writes to its ancestor's stderr file; nothing to collect here.
        self._stderr = io.BytesIO()
        self._proc = None
        self._channel = channel
        self.pid = pid
        self._finalizer = weakref.finalize(self, _shutdown, channel, None, self._stderr)
        return self

    # ---- lifecycle ---------------------------------------------------------------------
    def close(self) -> None:
        """Stop the child (a forked one is also reaped by its parent process)."""
        if self._finalizer.alive:
            self._finalizer()
            if self._parent is not None and self._parent._dead is None and self._dead is None:
                with contextlib.suppress(HostCrash, OSError):
                    self._parent._request(("status", self.pid))
        if self._dead is None:
            self._dead = f"host child {self.pid} was closed"

    def __enter__(self) -> HostAddressSpace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        arena = "no arena" if self.bounds is None else f"arena {self.bounds[0]:#x}+{self.size:#x}"
        state = f", dead: {self._dead}" if self._dead else ""
        return f"HostAddressSpace(pid {self.pid}, {arena}{state})"

    @property
    def size(self) -> int:
        return 0 if self.bounds is None else self.bounds[1] - self.bounds[0]

    @property
    def alive(self) -> bool:
        return self._dead is None

    # ---- transport ---------------------------------------------------------------------
    def _request(self, request: tuple[Any, ...]) -> Any:
        return self._result(self._roundtrip(request))

    def _roundtrip(self, request: tuple[Any, ...]) -> tuple[Any, ...]:
        if self._dead is not None:
            raise HostCrash(f"{self._dead}; make a new HostAddressSpace")
        try:
            return self._channel.call(request)
        except ChannelClosed:
            self._dead = self._death_cause()
        except ChannelTimeout:
            self._kill()
            self._dead = f"host child {self.pid} did not answer {request[0]!r} in time"
        self._finalizer()
        raise HostCrash(self._dead)

    def _kill(self) -> None:
        if self._proc is not None:
            self._proc.kill()
        else:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)

    def _death_cause(self) -> str:
        """Why the child went away: its signal or exit status (waitpid), plus stderr."""
        what = f"host child {self.pid}"
        if self._proc is not None:
            try:
                code = self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                code = self._proc.wait()
            text = (f"{what} was killed by {_signal_text(-code)}" if code < 0
                    else f"{what} exited with status {code}")
        elif self._parent is not None and self._parent._dead is None:
            raw = self._parent._request(("status", self.pid))
            if raw is None:
                text = f"{what} went away"
            elif os.WIFSIGNALED(raw):
                text = f"{what} was killed by {_signal_text(os.WTERMSIG(raw))}"
            else:
                text = f"{what} exited with status {os.waitstatus_to_exitcode(raw)}"
        else:
            text = f"{what} went away (its parent is gone, status unknown)"
        tail = self._stderr_tail()
        return f"{text}{': ' + tail if tail else ''}"

    def _stderr_tail(self) -> str:
        try:
            self._stderr.seek(0)
            data = self._stderr.read()[-2000:]
        except (OSError, ValueError):
            return ""
        return data.decode(errors="replace").strip()

    @staticmethod
    def _result(response: tuple[Any, ...]) -> Any:
        kind = response[0]
        if kind == "ok":
            return response[1]
        if kind == "err":
            errno: int = response[1]
            raise OSError(errno, os.strerror(errno))
        if kind == "out":
            raise ValueError(
                f"the kernel placed [{response[1]:#x}, +{response[2]:#x}) outside the arena; "
                "it has been unmapped again"
            )
        raise HostChildError(f"host child raised:\n{response[1]}")

    # ---- guards ------------------------------------------------------------------------
    def _inside(self, start: int, end: int, what: str) -> None:
        assert self.bounds is not None
        lo, hi = self.bounds
        if not (lo <= start and end <= hi):
            raise ValueError(
                f"{what} [{start:#x}, {end:#x}) leaves the arena [{lo:#x}, {hi:#x})"
            )

    def _guard(
        self, what: str, start: int, length: int, *, aligned: bool = True, huge: bool = False,
    ) -> None:
        """Refuse a range outside the arena unless the kernel rejects the call up front.

        ``aligned``: the syscall fails with EINVAL on an unaligned start (mmap MAP_FIXED,
        munmap, mprotect, madvise) instead of rounding it down (mlock family).
        ``huge``: a range ending above TASK_SIZE fails (mmap: ENOMEM, munmap: EINVAL).
        A length of 0 changes nothing anywhere, and a range that wraps past 2**64 fails in
        every one of these syscalls.
        """
        if self.bounds is None or length == 0:
            return
        if aligned and start % PAGE_SIZE:
            return
        if not aligned:
            length += start % PAGE_SIZE
            start -= start % PAGE_SIZE
        end = start + page_align(length)
        if end > U64 or (huge and end > TASK_SIZE):
            return
        self._inside(start, end, what)

    # ---- files -------------------------------------------------------------------------
    def _token(self, file: File) -> int:
        """The child's descriptor for this File, opened or created on first use."""
        record = self._files.get(id(file))
        if record is not None and record.file is file:
            return record.token
        token = next(_TOKENS)
        if file.kind == "memfd":
            name = str(file.extra.get("name", file.path.removeprefix("/memfd:")))
            request = ("open", token, "memfd", name, 0, file.size)
        elif file.kind in ("regular", "chardev"):
            request = ("open", token, "regular", file.path, file.flags, 0)
        else:
            raise ValueError(f"the host backend cannot create a {file.kind!r} file")
        major, minor, ino = self._request(request)
        self._files[id(file)] = _FileRecord(token, file, (major, minor), ino)
        # The first File mapped for an inode names it in vmas().
        self._by_inode.setdefault(((major, minor), ino), file)
        return token

    def ftruncate(self, file: File, size: int) -> None:
        """ftruncate(2) of the child's descriptor for ``file`` (host-only helper)."""
        self._request(("ftruncate", self._token(file), size))

    # ---- request builders (shared by the methods and run_batch) ------------------------
    def _req_mmap(
        self, addr: int, length: int, prot: int, flags: int, file: File | None = None,
        offset: int = 0,
    ) -> tuple[Any, ...]:
        addr, length, prot, flags, offset = (v & U64 for v in (addr, length, prot, flags, offset))
        if flags & (MAP_FIXED | MAP_FIXED_NOREPLACE):
            self._guard("mmap", addr, length, huge=True)
        token = None if file is None else self._token(file)
        return ("mmap", addr, length, prot, flags, token, offset)

    def _req_plain(self, name: str, args: Sequence[int]) -> tuple[Any, ...]:
        """A request of a call in :data:`PLAIN_CALLS`: every argument a register (U64), and
        the range its first two arguments give guarded as the table says."""
        spec = PLAIN_CALLS[name]
        if len(args) > len(spec.defaults) + spec.required or len(args) < spec.required:
            raise TypeError(f"{name}() takes {spec.required} to "
                            f"{spec.required + len(spec.defaults)} arguments, not {len(args)}")
        values = [v & U64 for v in (*args, *spec.defaults[len(args) - spec.required:])]
        if spec.guard is not None:
            self._guard(name, values[0], values[1], aligned=spec.guard != "rounded",
                        huge=spec.guard == "huge")
        return (name, *values)

    def _build(self, name: str, args: Sequence[Any]) -> tuple[Any, ...]:
        """The request for one call of the AddressSpace API, by name."""
        if name in PLAIN_CALLS:
            return self._req_plain(name, args)
        builder: Callable[..., tuple[Any, ...]] = getattr(self, "_req_" + name)
        return builder(*args)

    def _req_mremap(
        self, old_addr: int, old_len: int, new_len: int, flags: int = 0, new_addr: int = 0,
    ) -> tuple[Any, ...]:
        old_addr, old_len, new_len, flags, new_addr = (
            v & U64 for v in (old_addr, old_len, new_len, flags, new_addr)
        )
        # EINVAL before any VMA is looked at (check_mremap_params): unknown flags, unaligned
        # old_addr, new_len 0 after PAGE_ALIGN or above TASK_SIZE, a new range past TASK_SIZE.
        aligned_new = page_align(new_len)
        rejected = (
            flags & ~(MREMAP_FIXED | MREMAP_MAYMOVE | MREMAP_DONTUNMAP)
            or old_addr % PAGE_SIZE
            or not new_len
            or aligned_new > TASK_SIZE
            or (flags & (MREMAP_FIXED | MREMAP_DONTUNMAP) and new_addr > TASK_SIZE - aligned_new)
        )
        if self.bounds is not None and not rejected:
            self._inside(old_addr, old_addr + max(page_align(old_len), PAGE_SIZE), "mremap")
            if flags & MREMAP_FIXED and not new_addr % PAGE_SIZE:
                self._inside(new_addr, new_addr + page_align(new_len), "mremap target")
        return ("mremap", old_addr, old_len, new_len, flags, new_addr)

    def _req_set_vma_anon_name(
        self, addr: int, length: int, name: str | None
    ) -> tuple[Any, ...]:
        addr, length = addr & U64, length & U64
        self._guard("set_vma_anon_name", addr, length)
        raw = None if name is None else name.encode("utf-8", "surrogateescape")
        return ("set_vma_anon_name", addr, length, raw)

    def _req_prctl(
        self, option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0
    ) -> tuple[Any, ...]:
        if option not in HOST_PRCTL_OPTIONS:
            raise ValueError(f"prctl option {option} is not let through to the host child")
        return ("prctl", option, *(v & U64 for v in (arg2, arg3, arg4, arg5)))

    def _req_mbind(
        self, addr: int, length: int, mode: int, nodemask: int | None = None, maxnode: int = 0,
        flags: int = 0,
    ) -> tuple[Any, ...]:
        addr, length, mode, maxnode, flags = (v & U64 for v in (addr, length, mode, maxnode, flags))
        self._guard("mbind", addr, length)
        raw = None
        if nodemask is not None:
            # Whole longs covering maxnode bits (get_nodes reads no more), at least one.
            words = max(1, min((maxnode + 63) // 64, 4096 // 8 + 1))
            raw = (nodemask & ((1 << (64 * words)) - 1)).to_bytes(8 * words, "little")
        return ("mbind", addr, length, mode, raw, maxnode, flags)

    def _req_set_mempolicy_home_node(
        self, addr: int, length: int, home_node: int, flags: int = 0
    ) -> tuple[Any, ...]:
        addr, length, home_node, flags = (v & U64 for v in (addr, length, home_node, flags))
        self._guard("set_mempolicy_home_node", addr, length)
        return ("set_mempolicy_home_node", addr, length, home_node, flags)

    def _req_uffdio_register(
        self, uffd: HostUserfaultfd, addr: int, length: int, mode: int
    ) -> tuple[Any, ...]:
        addr, length, mode = addr & U64, length & U64, mode & U64
        if not _uffd_range_rejected(addr, length):
            self._guard("uffdio_register", addr, length)
        return ("uffd_register", uffd.token, addr, length, mode)

    def _req_uffdio_unregister(
        self, uffd: HostUserfaultfd, addr: int, length: int
    ) -> tuple[Any, ...]:
        addr, length = addr & U64, length & U64
        if not _uffd_range_rejected(addr, length):
            self._guard("uffdio_unregister", addr, length)
        return ("uffd_unregister", uffd.token, addr, length)

    def _req_brk(self, addr: int) -> tuple[Any, ...]:
        addr &= U64
        newbrk = page_align(addr) & U64
        # Below start_brk, or ending past TASK_SIZE (or wrapping), brk() changes nothing.
        if self.bounds is not None and self.start_brk <= addr and 0 < newbrk <= TASK_SIZE:
            self._inside(self.start_brk, newbrk, "brk")
        return ("brk", addr)

    def _req_touch(self, addr: int, write: bool = False) -> tuple[Any, ...]:
        addr &= U64
        if self.bounds is not None:
            self._inside(addr, addr + 1, "touch")
        return ("touch", addr, bool(write))

    def _req_peek(self, addr: int) -> tuple[Any, ...]:
        self._req_touch(addr)
        return ("peek", addr & U64)

    def _req_poke(self, addr: int, value: int) -> tuple[Any, ...]:
        self._req_touch(addr, True)
        return ("poke", addr & U64, value & 0xFF)

    def _req_maps(self) -> tuple[Any, ...]:
        return ("maps",)

    def _req_smaps(self) -> tuple[Any, ...]:
        return ("smaps",)

    # ---- the AddressSpace API ----------------------------------------------------------
    @syscall_abi("mmap")
    def mmap(
        self, addr: int, length: int, prot: int, flags: int, file: File | None = None,
        offset: int = 0,
    ) -> int:
        """mmap(2). ``file`` is materialised in the child on first use (see _token)."""
        result: int = self._request(self._req_mmap(addr, length, prot, flags, file, offset))
        return result

    @syscall_abi("munmap")
    def munmap(self, addr: int, length: int) -> None:
        self._request(self._req_plain("munmap", (addr, length)))

    @syscall_abi("mprotect")
    def mprotect(self, addr: int, length: int, prot: int) -> None:
        self._request(self._req_plain("mprotect", (addr, length, prot)))

    @syscall_abi("mremap")
    def mremap(
        self, old_addr: int, old_len: int, new_len: int, flags: int = 0, new_addr: int = 0,
    ) -> int:
        result: int = self._request(self._req_mremap(old_addr, old_len, new_len, flags, new_addr))
        return result

    @syscall_abi("madvise")
    def madvise(self, addr: int, length: int, advice: int) -> None:
        self._request(self._req_plain("madvise", (addr, length, advice)))

    @syscall_abi("mlock")
    def mlock(self, addr: int, length: int) -> None:
        self._request(self._req_plain("mlock", (addr, length)))

    @syscall_abi("mlock2")
    def mlock2(self, addr: int, length: int, flags: int = 0) -> None:
        self._request(self._req_plain("mlock2", (addr, length, flags)))

    @syscall_abi("munlock")
    def munlock(self, addr: int, length: int) -> None:
        self._request(self._req_plain("munlock", (addr, length)))

    @syscall_abi("mlockall")
    def mlockall(self, flags: int) -> None:
        """mlockall(2) of the whole child (its own Python mappings included)."""
        self._request(self._req_plain("mlockall", (flags,)))

    def munlockall(self) -> None:
        self._request(self._req_plain("munlockall", ()))

    @syscall_abi("set_vma_anon_name")
    def set_vma_anon_name(self, addr: int, length: int, name: str | None) -> None:
        """prctl(PR_SET_VMA, PR_SET_VMA_ANON_NAME, addr, length, name); None is NULL."""
        self._request(self._req_set_vma_anon_name(addr, length, name))

    @syscall_abi("mseal")
    def mseal(self, addr: int, length: int, flags: int = 0) -> None:
        """mseal(2). Sealed mappings cannot be unmapped, so ``reset()`` refuses afterwards;
        to reuse one child for many sealing cases, ``fork()`` it while empty and seal in the
        fork (closing the fork frees its sealed mappings)."""
        self._request(self._req_plain("mseal", (addr, length, flags)))

    @syscall_abi("pkey_mprotect")
    def pkey_mprotect(self, addr: int, length: int, prot: int, pkey: int) -> None:
        """pkey_mprotect(2) (guarded like mprotect)."""
        self._request(self._req_plain("pkey_mprotect", (addr, length, prot, pkey)))

    @syscall_abi("prctl")
    def prctl(self, option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
        """prctl(2), only for the options of :data:`HOST_PRCTL_OPTIONS` (PR_SET_MEMORY_MERGE
        acts on all of the child's VMAs, its own included)."""
        result: int = self._request(self._req_prctl(option, arg2, arg3, arg4, arg5))
        return result

    @syscall_abi("mbind")
    def mbind(
        self, addr: int, length: int, mode: int, nodemask: int | None = None, maxnode: int = 0,
        flags: int = 0,
    ) -> None:
        """mbind(2); ``nodemask`` as an int of node bits (None: NULL)."""
        self._request(self._req_mbind(addr, length, mode, nodemask, maxnode, flags))

    @syscall_abi("set_mempolicy_home_node")
    def set_mempolicy_home_node(
        self, addr: int, length: int, home_node: int, flags: int = 0
    ) -> None:
        self._request(self._req_set_mempolicy_home_node(addr, length, home_node, flags))

    @syscall_abi("userfaultfd")
    def userfaultfd(self, flags: int = 0, features: int = 0) -> HostUserfaultfd:
        """userfaultfd(2) and UFFDIO_API in the child; the handle stands for its descriptor."""
        uffd = HostUserfaultfd(next(_TOKENS))
        self._request(("uffd_open", uffd.token, flags & U64, features & U64))
        return uffd

    @syscall_abi("uffdio_register")
    def uffdio_register(self, uffd: HostUserfaultfd, addr: int, length: int, mode: int) -> int:
        result: int = self._request(self._req_uffdio_register(uffd, addr, length, mode))
        return result

    @syscall_abi("uffdio_unregister")
    def uffdio_unregister(self, uffd: HostUserfaultfd, addr: int, length: int) -> None:
        self._request(self._req_uffdio_unregister(uffd, addr, length))

    @syscall_abi("uffd_close")
    def uffd_close(self, uffd: HostUserfaultfd) -> None:
        """close(2) of the descriptor: the kernel unregisters its VMAs."""
        self._request(("close", uffd.token))

    @syscall_abi("shmget")
    def shmget(self, key: int, size: int, shmflg: int) -> int:
        """shmget(2) in the child; the child removes the segments it made when it exits."""
        result: int = self._request(("shmget", key & 0xFFFFFFFF, size & U64, shmflg & U64))
        return result

    @syscall_abi("shmat")
    def shmat(self, shmid: int, addr: int = 0, shmflg: int = 0) -> int:
        """shmat(2); an address outside the arena is refused like a MAP_FIXED mmap there."""
        if addr:
            self._guard("shmat", addr & ~(PAGE_SIZE - 1), PAGE_SIZE)
        result: int = self._request(("shmat", shmid & U64, addr & U64, shmflg & U64))
        return result

    @syscall_abi("shmdt")
    def shmdt(self, addr: int) -> None:
        if addr % PAGE_SIZE == 0:
            self._guard("shmdt", addr, PAGE_SIZE)
        self._request(("shmdt", addr & U64))

    @syscall_abi("shmctl_rmid")
    def shmctl_rmid(self, shmid: int) -> None:
        self._request(("shmctl_rmid", shmid & U64))

    @syscall_abi("msync")
    def msync(self, addr: int, length: int, flags: int) -> None:
        addr, length = addr & U64, length & U64
        self._guard("msync", addr, length)
        self._request(("msync", addr, length, flags & 0xFFFFFFFF))

    @syscall_abi("mincore")
    def mincore(self, addr: int, length: int) -> bytes:
        """mincore(2); the vector is allocated in the child (at most 2**20 pages)."""
        addr, length = addr & U64, length & U64
        if addr + length <= TASK_SIZE:  # else ENOMEM before any VMA is looked at
            self._guard("mincore", addr, length)
            if length > (1 << 32):
                raise ValueError("mincore: the oracle allocates at most 2**20 vector bytes")
        result: bytes = self._request(("mincore", addr, length))
        return result

    @syscall_abi("io_setup")
    def io_setup(self, nr_events: int, move_to: int | None = None) -> int:
        """io_setup(2) in the child: the kernel places the ring near the child's own
        mappings, so ``move_to`` (an arena address) is needed to keep it; without it a ring
        outside the arena is destroyed again and ValueError raised."""
        if move_to is not None:
            self._guard("io_setup", move_to & U64, PAGE_SIZE)
        result: int = self._request(("io_setup", nr_events & 0xFFFFFFFF, move_to))
        return result

    @syscall_abi("io_destroy")
    def io_destroy(self, ctx_id: int) -> None:
        self._request(("io_destroy", ctx_id & U64))

    @syscall_abi("map_shadow_stack")
    def map_shadow_stack(self, addr: int, size: int, flags: int = 0) -> int:
        """map_shadow_stack(2) (syscall 453)."""
        result: int = self._request(("map_shadow_stack", addr & U64, size & U64, flags & U64))
        return result

    @syscall_abi("pkey_alloc")
    def pkey_alloc(self, flags: int = 0, access_rights: int = 0) -> int:
        """pkey_alloc(2); the rights go to the child's PKRU. With PKU, after pkey_free(0),
        rights on key 0 would fault all of the child's own memory (HostCrash)."""
        result: int = self._request(self._req_plain("pkey_alloc", (flags, access_rights)))
        return result

    @syscall_abi("pkey_free")
    def pkey_free(self, pkey: int) -> None:
        self._request(self._req_plain("pkey_free", (pkey,)))

    @syscall_abi("brk")
    def brk(self, addr: int) -> int:
        """brk(2): the new break, or the old one when the kernel refuses."""
        result: int = self._request(self._req_brk(addr))
        return result

    def _layout(self) -> tuple[int, int, int]:
        if self._brk_layout is None:
            start_brk, start_data, end_data = self._request(("brk_layout",))
            self._brk_layout = (start_brk, start_data, end_data)
        return self._brk_layout

    @property
    def start_brk(self) -> int:
        """mm->start_brk of the child (see heap_start())."""
        return self._layout()[0]

    @property
    def start_data(self) -> int:
        """mm->start_data: with end_data, the data segment RLIMIT_DATA counts for brk()."""
        return self._layout()[1]

    @property
    def end_data(self) -> int:
        return self._layout()[2]

    @syscall_abi("touch")
    def touch(self, addr: int, write: bool = False) -> None:
        """Fault the page at ``addr`` as a user read or write would; OSError(EFAULT) where a
        real access would get SIGSEGV/SIGBUS. A write stores a zero byte."""
        self._request(self._req_touch(addr, write))

    def peek(self, addr: int) -> int:
        """Read the byte at ``addr`` (a read touch that returns the value)."""
        result: int = self._request(self._req_peek(addr))
        return result

    def poke(self, addr: int, value: int) -> None:
        """Store ``value`` at ``addr`` (a write touch with a chosen byte)."""
        self._request(self._req_poke(addr, value))

    def maps(self) -> str:
        """The child's /proc/self/maps, only the lines that overlap the arena."""
        data: bytes = self._request(self._req_maps())
        return data.decode("utf-8", "surrogateescape")

    def smaps(self) -> str:
        """The child's /proc/self/smaps, only the blocks that overlap the arena."""
        data: bytes = self._request(self._req_smaps())
        return data.decode("utf-8", "surrogateescape")

    def vmas(self) -> list[VmaView]:
        """VmaViews built from smaps: pgoff only for file VMAs, no anon_vma identity, and
        the File the caller mapped for that inode (None for anonymous and /dev/zero)."""
        views = []
        for entry in parse_smaps(self.smaps()):
            header = entry.header
            has_file = header.has_file
            views.append(VmaView(
                vm_start=header.start,
                vm_end=header.end,
                vm_pgoff=header.offset >> 12 if has_file else None,
                vm_flags=VM(entry.vm_flags),
                file=self._by_inode.get((header.dev, header.inode)) if has_file else None,
                anon_vma=None,
                name=header.name,
            ))
        return views

    def fork(self) -> HostAddressSpace:
        """fork(2) the child; the new process is served by a new HostAddressSpace."""
        pid, write_fd, read_fd = self._request(("fork",))
        try:
            ours_w = os.open(f"/proc/{self.pid}/fd/{write_fd}", os.O_WRONLY)
            ours_r = os.open(f"/proc/{self.pid}/fd/{read_fd}", os.O_RDONLY)
        finally:
            self._request(("forked",))
        return HostAddressSpace._attach(self, Channel(ours_w, ours_r, self._timeout), pid)

    def exit(self) -> None:
        """exit(2): the process ends (the kernel's exit_mmap tears its VMAs down)."""
        self.close()

    def reset(self) -> None:
        """Empty the arena, put the break back at start_brk and undo mlockall (so one child
        can serve many test cases)."""
        if self.bounds is None:
            raise ValueError("reset() needs an arena")
        try:
            self.munmap(self.bounds[0], self.size)
        except OSError as exc:
            if exc.errno != EPERM:
                raise
            raise RuntimeError(
                "reset(): the arena holds sealed mappings (mseal), which only the exit of the "
                "process removes; use a new HostAddressSpace, or seal in a fork()"
            ) from exc
        self._request(("brk_reset",))
        self.munlockall()

    @staticmethod
    def _abi(call: Sequence[Any]) -> tuple[Any, ...]:
        """A batched call's arguments as the syscall ABI converts them (see vmamodel.abi)."""
        args = tuple(call[1:])
        return convert_args(call[0], args) if call[0] in SYSCALL_ARGS else args

    def run_batch(self, calls: Iterable[Sequence[Any]]) -> list[Any]:
        """Run ``(method_name, *args)`` calls in one round trip.

        Returns one item per call: its result, or the OSError / ValueError it failed with
        (returned, not raised). Guards run for all calls before any is sent.
        """
        requests = [self._build(call[0], self._abi(call)) for call in calls]
        results: list[Any] = []
        for response in self._request(("batch", requests)):
            try:
                value = self._result(tuple(response))
            except (OSError, ValueError) as exc:
                value = exc
            if isinstance(value, bytes):
                value = value.decode("utf-8", "surrogateescape")
            results.append(value)
        return results
