"""A whole-process host oracle for placement: the kernel chooses addresses anywhere.

:class:`PlacementChild` runs ``runner.c`` (compiled on first use with the system C compiler
into a directory under the temporary directory, keyed by the source's hash). The runner
re-executes itself with the requested personality (address randomisation off by default) and
stack limit, then serves raw syscalls. It allocates nothing after start, so its
/proc/self/maps changes only by the calls it is asked to make: a model seeded from that text
(``AddressSpace.from_maps``) must then return the same address for every call.

There is no arena: only calls that would change the runner's own mappings (the ones present
at start: its program, libraries, stack, vDSO) are refused with ``ValueError`` before anything
is sent, since they would kill it. Everything else, including every kernel-chosen placement,
is allowed.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from vmamodel.constants import (
    MAP_ANONYMOUS,
    MAP_FIXED,
    MAP_FIXED_NOREPLACE,
    MREMAP_FIXED,
    PAGE_SIZE,
)
from vmamodel.file import File
from vmamodel.host.cbuild import CBuildError, build_c
from vmamodel.parse import parse_maps

__all__ = [
    "ADDR_COMPAT_LAYOUT",
    "ADDR_NO_RANDOMIZE",
    "PlacementChild",
    "RunnerError",
    "runner_binary",
]

ADDR_NO_RANDOMIZE = 0x0040000
ADDR_COMPAT_LAYOUT = 0x0200000
RUNNER_SOURCE = Path(__file__).with_name("runner.c")
CFLAGS = ("-O2", "-Wall", "-Wl,-z,now")
U64 = (1 << 64) - 1

OP_EXIT = 0
OP_MMAP = 1
OP_MUNMAP = 2
OP_MREMAP = 3
OP_MPROTECT = 4
OP_MADVISE = 5
OP_READ_FILE = 6
OP_OPEN = 7
OP_MEMFD = 8
OP_FTRUNCATE = 9
OP_FSTAT = 11
OP_BRK = 13


class RunnerError(RuntimeError):
    """The runner could not be built, died, or stopped answering."""


def runner_binary(cc: str | None = None) -> Path:
    """The compiled runner, built once per source version (atomically, so that parallel test
    workers can race)."""
    try:
        return build_c(RUNNER_SOURCE, CFLAGS, "runner", "the placement runner", cc)
    except CBuildError as err:
        raise RunnerError(str(err)) from None


@dataclass(frozen=True, slots=True)
class _Opened:
    fd: int
    file: File


def _stack_arg(rlimit_stack: int | None) -> str:
    if rlimit_stack is None:
        return "-"
    return "inf" if rlimit_stack >= U64 else str(rlimit_stack)


class PlacementChild:
    """The host kernel serving one process with a stable address space.

    ``no_randomize`` sets ADDR_NO_RANDOMIZE, ``legacy_layout`` ADDR_COMPAT_LAYOUT (the
    bottom-up allocator); ``rlimit_stack`` (bytes, ``RLIM_INFINITY`` for unlimited, None to
    inherit) is in force at exec, so it decides mmap_base. ``timeout`` bounds each call.
    """

    def __init__(
        self,
        *,
        no_randomize: bool = True,
        legacy_layout: bool = False,
        rlimit_stack: int | None = None,
        timeout: float = 30.0,
    ) -> None:
        persona = (ADDR_NO_RANDOMIZE if no_randomize else 0) | (
            ADDR_COMPAT_LAYOUT if legacy_layout else 0
        )
        argv = [str(runner_binary()), f"{persona:x}", _stack_arg(rlimit_stack), "start"]
        self._timeout_ms = int(timeout * 1000)
        self._proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            cwd="/",
        )
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._wfd = self._proc.stdin.fileno()
        self._rfd = self._proc.stdout.fileno()
        self._files: dict[int, _Opened] = {}
        self._dead: str | None = None
        self.pid = self._proc.pid
        #: The runner's own mappings at start: calls that would touch them are refused.
        self.protected = [(e.start, e.end) for e in parse_maps(self.maps())]

    # ---- lifecycle ---------------------------------------------------------------------
    def close(self) -> None:
        """Ask the runner to exit, then reap it (killing it if it does not go)."""
        if self._proc.poll() is None and self._dead is None:
            with contextlib.suppress(RunnerError, OSError):
                self._call(OP_EXIT)
        with contextlib.suppress(OSError):
            self._proc.stdin.close()  # type: ignore[union-attr]
        try:
            self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        with contextlib.suppress(OSError):
            self._proc.stdout.close()  # type: ignore[union-attr]
        if self._dead is None:
            self._dead = f"runner {self.pid} was closed"

    def __enter__(self) -> PlacementChild:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"PlacementChild(pid {self.pid}{', dead' if self._dead else ''})"

    # ---- transport ---------------------------------------------------------------------
    def _call(self, op: int, *args: int, payload: bytes = b"") -> tuple[int, bytes]:
        if self._dead is not None:
            raise RunnerError(self._dead)
        words = [op, *(a & U64 for a in args), *([0] * (6 - len(args))), len(payload)]
        frame = b"".join(w.to_bytes(8, "little") for w in words) + payload
        try:
            self._write(frame)
            head = self._read(16)
            result = int.from_bytes(head[:8], "little", signed=True)
            data = self._read(int.from_bytes(head[8:], "little"))
        except (OSError, EOFError, TimeoutError) as exc:
            self._die(str(exc) or type(exc).__name__)
        return result, data

    def _die(self, why: str) -> None:
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGKILL)
        code = self._proc.wait()
        self._dead = f"runner {self.pid} failed ({why}; exit status {code})"
        raise RunnerError(self._dead)

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self._wfd, view):]

    def _read(self, n: int) -> bytes:
        chunks = []
        while n:
            ready, _, _ = select.select([self._rfd], [], [], self._timeout_ms / 1000)
            if not ready:
                raise TimeoutError("no answer in time")
            chunk = os.read(self._rfd, n)
            if not chunk:
                raise EOFError("the runner closed its output")
            chunks.append(chunk)
            n -= len(chunk)
        return b"".join(chunks)

    def _syscall(self, op: int, *args: int) -> int:
        result, _ = self._call(op, *args)
        if result < 0:
            raise OSError(-result, os.strerror(-result))
        return result

    # ---- guards ------------------------------------------------------------------------
    @contextlib.contextmanager
    def unguarded(self) -> Iterator[None]:
        """Let calls inside the block touch the runner's own mappings (for the ones it does
        not use, such as the vDSO)."""
        saved, self.protected = self.protected, []
        try:
            yield
        finally:
            self.protected = saved

    def _refuse_protected(self, what: str, start: int, length: int) -> None:
        end = start + ((length + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1))
        for lo, hi in self.protected:
            if start < hi and lo < end:
                raise ValueError(
                    f"{what} [{start:#x}, {end:#x}) would change the runner's own mapping "
                    f"[{lo:#x}, {hi:#x})"
                )

    # ---- files -------------------------------------------------------------------------
    def open(self, file: File) -> int:
        """The runner's descriptor for ``file`` (a memfd or a regular file), created on first
        use. The File's ``dev`` and ``ino`` are set to the kernel's, so that a model mapping
        the same File prints the same inode."""
        opened = self._files.get(id(file))
        if opened is not None and opened.file is file:
            return opened.fd
        if file.kind == "memfd":
            name = str(file.extra.get("name", file.path.removeprefix("/memfd:")))
            fd = self._syscall_payload(OP_MEMFD, name.encode(), 0)
            self._syscall(OP_FTRUNCATE, fd, file.size)
        elif file.kind == "regular":
            fd = self._syscall_payload(OP_OPEN, file.path.encode(), file.flags)
        else:
            raise ValueError(f"the placement runner cannot create a {file.kind!r} file")
        result, data = self._call(OP_FSTAT, fd)
        if result < 0:
            raise OSError(-result, os.strerror(-result))
        major, minor, ino = (int.from_bytes(data[i:i + 8], "little") for i in (0, 8, 16))
        file.dev, file.ino = (major, minor), ino
        self._files[id(file)] = _Opened(fd, file)
        return fd

    def _syscall_payload(self, op: int, payload: bytes, *args: int) -> int:
        result, _ = self._call(op, *args, payload=payload)
        if result < 0:
            raise OSError(-result, os.strerror(-result))
        return result

    def ftruncate(self, file: File, size: int) -> None:
        self._syscall(OP_FTRUNCATE, self.open(file), size)

    # ---- the AddressSpace API ----------------------------------------------------------
    def mmap(
        self, addr: int, length: int, prot: int, flags: int, file: File | None = None,
        offset: int = 0,
    ) -> int:
        """mmap(2); a File is materialised in the runner on first use (see :meth:`open`)."""
        if flags & (MAP_FIXED | MAP_FIXED_NOREPLACE):
            self._refuse_protected("mmap", addr & U64, length & U64)
        fd = -1 if file is None or flags & MAP_ANONYMOUS else self.open(file)
        return self._syscall(OP_MMAP, addr, length, prot, flags, fd, offset)

    def munmap(self, addr: int, length: int) -> None:
        self._refuse_protected("munmap", addr & U64, length & U64)
        self._syscall(OP_MUNMAP, addr, length)

    def mprotect(self, addr: int, length: int, prot: int) -> None:
        self._refuse_protected("mprotect", addr & U64, length & U64)
        self._syscall(OP_MPROTECT, addr, length, prot)

    def madvise(self, addr: int, length: int, advice: int) -> None:
        self._refuse_protected("madvise", addr & U64, length & U64)
        self._syscall(OP_MADVISE, addr, length, advice)

    def mremap(
        self, old_addr: int, old_len: int, new_len: int, flags: int = 0, new_addr: int = 0,
    ) -> int:
        self._refuse_protected("mremap", old_addr & U64, max(old_len & U64, PAGE_SIZE))
        if flags & MREMAP_FIXED:
            self._refuse_protected("mremap target", new_addr & U64, new_len & U64)
        return self._syscall(OP_MREMAP, old_addr, old_len, new_len, flags, new_addr)

    def brk(self, addr: int) -> int:
        """brk(2) as the kernel answers it: the new break, or the old one on failure (the
        break never goes below where exec put it, so the runner's data stays)."""
        return self._syscall(OP_BRK, addr)

    def _read_proc(self, path: str) -> str:
        result, data = self._call(OP_READ_FILE, payload=path.encode())
        if result < 0:
            raise OSError(-result, os.strerror(-result))
        return data.decode("utf-8", "surrogateescape")

    def maps(self) -> str:
        """The runner's whole /proc/self/maps."""
        return self._read_proc("/proc/self/maps")

    def smaps(self) -> str:
        """The runner's whole /proc/self/smaps."""
        return self._read_proc("/proc/self/smaps")
