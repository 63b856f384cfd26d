"""The host oracle's child: runs VMA syscalls on the real kernel in its own address space.

Standard library only, no vmamodel imports: it is started as
``python3 -I -S child.py REQ_FD RESP_FD ARENA_LO ARENA_HI [START_BRK]`` (arena bounds in hex,
``-`` for no arena; START_BRK in hex moves the heap there) and serves requests until EOF or an
``exit`` request. It keeps its own mappings few (``-S``, no json/socket/fcntl) because
/proc/self/smaps costs time per VMA. Before it moves the heap, a seccomp filter keeps
glibc's malloc off the break for good (malloc grows by mmap instead), so the break belongs to
the oracle's brk() alone; each brk request also checks that nobody else moved it.
Frames (both directions): 4-byte little-endian length, then a ``marshal`` payload.
Request: ``(op, *args)``; ints are already reduced to unsigned 64 bits by the parent.
Response: ``("ok", value)``, ``("err", errno)``, ``("out", addr, length)`` (the kernel chose
an address outside the arena; the range was unmapped again), ``("exc", traceback_text)``.

Syscalls go through libc ``syscall()`` with x86-64 numbers so that no glibc wrapper
adjusts arguments or results. Memory is touched from kernel mode through a pipe
(``write(pipe, addr, 1)`` reads the byte via copy_from_user, ``read(pipe, addr, 1)`` stores
one via copy_to_user): a bad address then yields EFAULT instead of SIGSEGV/SIGBUS, while the
page fault itself is the same one a user access would take.
"""

from __future__ import annotations

import contextlib
import ctypes
import marshal
import os
import sys
import traceback
from typing import Any

SYS_READ = 0
SYS_WRITE = 1
SYS_MMAP = 9
SYS_MPROTECT = 10
SYS_MUNMAP = 11
SYS_BRK = 12
SYS_MREMAP = 25
SYS_MADVISE = 28
SYS_MLOCK = 149
SYS_PRCTL = 157
SYS_MUNLOCK = 150
SYS_MLOCKALL = 151
SYS_MUNLOCKALL = 152
SYS_SECCOMP = 317
SYS_MLOCK2 = 325
SYS_PKEY_MPROTECT = 329
SYS_PKEY_ALLOC = 330
SYS_PKEY_FREE = 331
SYS_MBIND = 237
SYS_SET_MEMPOLICY_HOME_NODE = 450
SYS_USERFAULTFD = 323
SYS_IOCTL = 16
SYS_CLOSE = 3
UFFDIO_API = 0xC018AA3F
UFFDIO_REGISTER = 0xC020AA00
UFFDIO_UNREGISTER = 0x8010AA01
SYS_SHMGET = 29
SYS_SHMAT = 30
SYS_SHMCTL = 31
SYS_SHMDT = 67
IPC_RMID = 0
SYS_MSYNC = 26
SYS_MINCORE = 27
SYS_MAP_SHADOW_STACK = 453
SYS_IO_SETUP = 206
SYS_IO_DESTROY = 207
MREMAP_MAYMOVE_FIXED = 3
SYS_MSEAL = 462

U64 = (1 << 64) - 1
PAGE = 4096
PR_SET_MM = 35
PR_SET_MM_MAP = 14
PR_SET_NO_NEW_PRIVS = 38
PR_SET_VMA = 0x53564D41
PR_SET_VMA_ANON_NAME = 0
SECCOMP_SET_MODE_FILTER = 1
SECCOMP_RET_ALLOW = 0x7FFF0000
SECCOMP_RET_ERRNO = 0x00050000
BPF_LD_W_ABS, BPF_JEQ_K, BPF_RET_K = 0x20, 0x15, 0x06
#: /proc/self/stat field numbers (proc(5)) of the struct prctl_mm_map members, in order;
#: None for start_brk and brk, which move_heap() sets.
MM_MAP_FIELDS = (26, 27, 45, 46, None, None, 28, 48, 49, 50, 51)

_libc = ctypes.CDLL(None, use_errno=True)
_syscall = _libc.syscall
_syscall.restype = ctypes.c_long
_syscall.argtypes = (ctypes.c_long,) + (ctypes.c_ulong,) * 6


class Fail(Exception):
    """A syscall failed with this errno."""

    def __init__(self, errno: int) -> None:
        super().__init__(errno)
        self.errno = errno


class Outside(Exception):
    """The kernel placed a mapping outside the arena (it has been unmapped again)."""

    def __init__(self, addr: int, length: int) -> None:
        super().__init__(addr, length)
        self.addr = addr
        self.length = length


def sys6(nr: int, a: int = 0, b: int = 0, c: int = 0, d: int = 0, e: int = 0, f: int = 0) -> int:
    """syscall(nr, ...) with -1 meaning failure, as glibc reports it (errno in ctypes)."""
    result: int = _syscall(nr, a & U64, b & U64, c & U64, d & U64, e & U64, f & U64)
    if result == -1:
        raise Fail(ctypes.get_errno())
    return result


def read_all(fd: int, n: int) -> bytes:
    chunks = []
    while n:
        chunk = os.read(fd, n)
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def recv_frame(fd: int) -> Any:
    size = int.from_bytes(read_all(fd, 4), "little")
    return marshal.loads(read_all(fd, size))


def send_frame(fd: int, obj: Any) -> None:
    payload = marshal.dumps(obj)
    data = memoryview(len(payload).to_bytes(4, "little") + payload)
    while data:
        data = data[os.write(fd, data):]


class Child:
    """The state of one serving process: arena, open files, touch pipe, forked children."""

    def __init__(self, req: int, resp: int, arena: tuple[int, int] | None) -> None:
        self.req = req
        self.resp = resp
        self.arena = arena
        self.files: dict[int, int] = {}
        self.children: dict[int, int | None] = {}
        self.pending_fork: tuple[int, int] | None = None
        self.segments: set[int] = set()
        self.buffer = bytearray(1 << 18)
        self.brk_known = self.current_brk()
        self.new_pipe()

    def new_pipe(self) -> None:
        # Non-blocking so that a mistake in byte accounting can never hang the child.
        self.pipe_r, self.pipe_w = os.pipe()
        os.set_blocking(self.pipe_r, False)
        os.set_blocking(self.pipe_w, False)

    # ---- arena -------------------------------------------------------------------------
    def inside(self, start: int, end: int) -> bool:
        return self.arena is None or (self.arena[0] <= start and end <= self.arena[1])

    def overlaps(self, start: int, end: int) -> bool:
        return self.arena is None or (start < self.arena[1] and end > self.arena[0])

    def placed(self, addr: int, length: int) -> int:
        """Undo a kernel-chosen placement that left the arena (never touches other memory)."""
        end = addr + ((length + PAGE - 1) & ~(PAGE - 1))
        if not self.inside(addr, end):
            sys6(SYS_MUNMAP, addr, end - addr)
            raise Outside(addr, length)
        return addr

    # ---- syscalls ----------------------------------------------------------------------
    def op_mmap(self, addr: int, length: int, prot: int, flags: int, tok: int | None,
                offset: int) -> int:
        fd = U64 if tok is None else self.files[tok]
        return self.placed(sys6(SYS_MMAP, addr, length, prot, flags, fd, offset), length)

    def op_munmap(self, addr: int, length: int) -> None:
        sys6(SYS_MUNMAP, addr, length)

    def op_mprotect(self, addr: int, length: int, prot: int) -> None:
        sys6(SYS_MPROTECT, addr, length, prot)

    def op_mremap(self, old: int, old_len: int, new_len: int, flags: int, new: int) -> int:
        return self.placed(sys6(SYS_MREMAP, old, old_len, new_len, flags, new), new_len)

    def op_madvise(self, addr: int, length: int, advice: int) -> None:
        sys6(SYS_MADVISE, addr, length, advice)

    def op_mlock(self, addr: int, length: int) -> None:
        sys6(SYS_MLOCK, addr, length)

    def op_mlock2(self, addr: int, length: int, flags: int) -> None:
        sys6(SYS_MLOCK2, addr, length, flags)

    def op_munlock(self, addr: int, length: int) -> None:
        sys6(SYS_MUNLOCK, addr, length)

    def op_mlockall(self, flags: int) -> None:
        sys6(SYS_MLOCKALL, flags)

    def op_munlockall(self) -> None:
        sys6(SYS_MUNLOCKALL)

    def op_set_vma_anon_name(self, addr: int, length: int, name: bytes | None) -> None:
        """prctl(PR_SET_VMA, PR_SET_VMA_ANON_NAME, addr, length, name or NULL)."""
        buf = None if name is None else ctypes.create_string_buffer(name)
        ptr = 0 if buf is None else ctypes.addressof(buf)
        sys6(SYS_PRCTL, PR_SET_VMA, PR_SET_VMA_ANON_NAME, addr, length, ptr)

    def op_prctl(self, option: int, a2: int, a3: int, a4: int, a5: int) -> int:
        """prctl(2) of the options the parent lets through (the address-space ones)."""
        return sys6(SYS_PRCTL, option, a2, a3, a4, a5)

    def op_mbind(self, addr: int, length: int, mode: int, nodemask: bytes | None,
                 maxnode: int, flags: int) -> None:
        """mbind(2); the node mask arrives as little-endian bytes (None: NULL)."""
        buf = None if nodemask is None else ctypes.create_string_buffer(nodemask, len(nodemask))
        ptr = 0 if buf is None else ctypes.addressof(buf)
        sys6(SYS_MBIND, addr, length, mode, ptr, maxnode, flags)

    def op_set_mempolicy_home_node(self, addr: int, length: int, node: int, flags: int) -> None:
        sys6(SYS_SET_MEMPOLICY_HOME_NODE, addr, length, node, flags)

    def op_uffd_open(self, tok: int, flags: int, features: int) -> None:
        """userfaultfd(2), then UFFDIO_API with ``features``; the fd is kept under tok."""
        fd = sys6(SYS_USERFAULTFD, flags)
        api = (ctypes.c_uint64 * 3)(0xAA, features, 0)
        try:
            sys6(SYS_IOCTL, fd, UFFDIO_API, ctypes.addressof(api))
        except Fail:
            os.close(fd)
            raise
        self.files[tok] = fd

    def op_uffd_register(self, tok: int, start: int, length: int, mode: int) -> int:
        reg = (ctypes.c_uint64 * 4)(start, length, mode, 0)
        sys6(SYS_IOCTL, self.files[tok], UFFDIO_REGISTER, ctypes.addressof(reg))
        return int(reg[3])

    def op_uffd_unregister(self, tok: int, start: int, length: int) -> None:
        rng = (ctypes.c_uint64 * 2)(start, length)
        sys6(SYS_IOCTL, self.files[tok], UFFDIO_UNREGISTER, ctypes.addressof(rng))

    def op_close(self, tok: int) -> None:
        os.close(self.files.pop(tok))

    def op_shmget(self, key: int, size: int, shmflg: int) -> int:
        """shmget(2); segments this child creates are removed when it exits (main)."""
        shmid = sys6(SYS_SHMGET, key, size, shmflg)
        self.segments.add(shmid)
        return shmid

    def op_shmat(self, shmid: int, addr: int, shmflg: int) -> int:
        got = sys6(SYS_SHMAT, shmid, addr, shmflg)
        if not self.inside(got, got + PAGE):
            sys6(SYS_SHMDT, got)
            raise Outside(got, PAGE)
        return got

    def op_shmdt(self, addr: int) -> None:
        sys6(SYS_SHMDT, addr)

    def op_shmctl_rmid(self, shmid: int) -> None:
        sys6(SYS_SHMCTL, shmid, IPC_RMID, 0)

    def remove_segments(self) -> None:
        """IPC_RMID every segment made here, so that none outlives the oracle."""
        for shmid in self.segments:
            with contextlib.suppress(Fail):
                sys6(SYS_SHMCTL, shmid, IPC_RMID, 0)
        self.segments.clear()

    def op_msync(self, addr: int, length: int, flags: int) -> None:
        sys6(SYS_MSYNC, addr, length, flags)

    def op_mincore(self, addr: int, length: int) -> bytes:
        pages = (length + PAGE - 1) // PAGE
        vec = ctypes.create_string_buffer(min(max(pages, 1), 1 << 20))  # see the parent
        sys6(SYS_MINCORE, addr, length, ctypes.addressof(vec))
        return bytes(b & 1 for b in vec.raw[:pages])

    def op_io_setup(self, nr_events: int, move_to: int | None) -> int:
        """io_setup(2), then mremap of the ring to ``move_to``; a ring left outside the
        arena is destroyed again (Outside)."""
        ctx = ctypes.c_ulong(0)
        sys6(SYS_IO_SETUP, nr_events, ctypes.addressof(ctx))
        base = ctx.value
        size = self.vma_size(base)
        if move_to is not None:
            try:
                base = sys6(SYS_MREMAP, base, size, size, MREMAP_MAYMOVE_FIXED, move_to)
            except Fail:
                sys6(SYS_IO_DESTROY, ctx.value)
                raise
        if not self.inside(base, base + size):
            sys6(SYS_IO_DESTROY, base)
            raise Outside(base, size)
        return base

    def vma_size(self, start: int) -> int:
        """The length of the VMA starting at ``start`` (from /proc/self/maps)."""
        prefix = b"%x-" % start
        for line in self.read_proc("/proc/self/maps").split(b"\n"):
            if line.startswith(prefix):
                return int(line.split(b" ", 1)[0].split(b"-")[1], 16) - start
        raise RuntimeError(f"no VMA at {start:#x}")

    def op_map_shadow_stack(self, addr: int, size: int, flags: int) -> int:
        """map_shadow_stack(2); a kernel-chosen address outside the arena is unmapped."""
        got = sys6(SYS_MAP_SHADOW_STACK, addr, size, flags)
        return self.placed(got, size)

    def op_io_destroy(self, ctx: int) -> None:
        sys6(SYS_IO_DESTROY, ctx)

    def op_mseal(self, addr: int, length: int, flags: int) -> None:
        sys6(SYS_MSEAL, addr, length, flags)

    def op_pkey_mprotect(self, addr: int, length: int, prot: int, pkey: int) -> None:
        sys6(SYS_PKEY_MPROTECT, addr, length, prot, pkey)

    def op_pkey_alloc(self, flags: int, access_rights: int) -> int:
        return sys6(SYS_PKEY_ALLOC, flags, access_rights)

    def op_pkey_free(self, pkey: int) -> None:
        sys6(SYS_PKEY_FREE, pkey)

    # ---- files -------------------------------------------------------------------------
    def op_open(self, tok: int, kind: str, name: str, flags: int, size: int) -> tuple[int, ...]:
        """Materialise a File: a memfd (memfd_create + ftruncate) or an open(2) of a path."""
        try:
            if kind == "memfd":
                fd = os.memfd_create(name, 0)
                os.ftruncate(fd, size)
            else:
                fd = os.open(name, flags, 0o600)
        except OSError as exc:
            raise Fail(exc.errno or 0) from None
        self.files[tok] = fd
        st = os.fstat(fd)
        return (os.major(st.st_dev), os.minor(st.st_dev), st.st_ino)

    def op_ftruncate(self, tok: int, size: int) -> None:
        try:
            os.ftruncate(self.files[tok], size)
        except OSError as exc:
            raise Fail(exc.errno or 0) from None

    # ---- the program break -------------------------------------------------------------
    def current_brk(self) -> int:
        # brk(0) is below start_brk, so it changes nothing and answers the break.
        return sys6(SYS_BRK, 0)

    def check_brk(self) -> None:
        """Refuse to touch a break that glibc's malloc moved: the heap would be its memory."""
        if self.current_brk() != self.brk_known:
            raise RuntimeError(f"the break moved behind the oracle's back: {self.current_brk():#x}")

    def op_brk(self, addr: int) -> int:
        """brk(2): the new break, or the old one when the kernel refuses."""
        self.check_brk()
        self.brk_known = sys6(SYS_BRK, addr)
        return self.brk_known

    def op_brk_layout(self) -> tuple[int, int, int]:
        """(start_brk, start_data, end_data) from /proc/self/stat."""
        stat = proc_stat()
        return stat[47], stat[45], stat[46]

    def op_brk_reset(self) -> None:
        """Bring the break back to start_brk. A shrink needs a VMA in the range it gives up,
        so one page is mapped at start_brk first (brk() then unmaps it with the rest)."""
        self.check_brk()
        start = self.op_brk_layout()[0]
        if self.brk_known != start:
            sys6(SYS_MMAP, start, PAGE, 3, 0x32, U64, 0)  # MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED
            self.brk_known = sys6(SYS_BRK, start)
        if self.brk_known != start:
            raise RuntimeError(f"the break stays at {self.brk_known:#x}, not {start:#x}")

    # ---- memory access through the pipe ------------------------------------------------
    def op_peek(self, addr: int) -> int:
        """Read one byte at addr as a user read would fault it in (copy_from_user)."""
        sys6(SYS_WRITE, self.pipe_w, addr, 1)
        return os.read(self.pipe_r, 1)[0]

    def op_poke(self, addr: int, value: int) -> None:
        """Store one byte at addr as a user write would fault it in (copy_to_user)."""
        os.write(self.pipe_w, bytes((value & 0xFF,)))
        try:
            sys6(SYS_READ, self.pipe_r, addr, 1)
        except Fail:
            # pipe_read leaves the byte in the pipe when the copy faults: drain it.
            with contextlib.suppress(BlockingIOError):
                os.read(self.pipe_r, 16)
            raise

    def op_touch(self, addr: int, write: bool) -> None:
        if write:
            self.op_poke(addr, 0)
        else:
            self.op_peek(addr)

    # ---- /proc -------------------------------------------------------------------------
    def read_proc(self, name: str) -> bytes:
        """The whole file, read into one reused buffer (a fresh 1 MiB bytes per read would
        cost an mmap, page faults and a munmap every time)."""
        fd = os.open(name, os.O_RDONLY)
        try:
            buf = self.buffer
            view = memoryview(buf)
            used = 0
            while count := os.readv(fd, [view[used:]]):
                used += count
                if used == len(buf):
                    view.release()
                    buf.extend(bytes(len(buf)))
                    view = memoryview(buf)
            data = bytes(view[:used])
            view.release()
            return data
        finally:
            os.close(fd)

    def keep(self, header: bytes) -> bool:
        assert self.arena is not None
        start, _, rest = header.partition(b"-")
        end = rest.split(b" ", 1)[0]
        return int(start, 16) < self.arena[1] and int(end, 16) > self.arena[0]

    def op_maps(self) -> bytes:
        """/proc/self/maps, only the lines whose VMA overlaps the arena."""
        text = self.read_proc("/proc/self/maps")
        if self.arena is None:
            return text
        return b"".join(line + b"\n" for line in text.split(b"\n") if line and self.keep(line))

    def op_smaps(self) -> bytes:
        """/proc/self/smaps, only the blocks whose VMA overlaps the arena. Each block is a
        header line up to and including its VmFlags line, which show_smap prints last."""
        text = self.read_proc("/proc/self/smaps")
        if self.arena is None:
            return text
        out = []
        pos, size = 0, len(text)
        while pos < size:
            flags = text.find(b"\nVmFlags:", pos)
            end = size if flags < 0 else text.find(b"\n", flags + 1) + 1 or size
            if self.keep(text[pos:text.find(b"\n", pos)]):
                out.append(text[pos:end])
            pos = end
        return b"".join(out)

    # ---- processes ---------------------------------------------------------------------
    def op_fork(self) -> tuple[int, int, int]:
        """fork(2); the new process serves on fresh pipes that the parent opens through
        /proc/<this pid>/fd/N (a pipe reopened via procfs is the same pipe)."""
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(to_child_w)
            os.close(from_child_r)
            for fd in (self.req, self.resp, self.pipe_r, self.pipe_w):
                os.close(fd)
            self.op_forked()
            self.req, self.resp = to_child_r, from_child_w
            self.children = {}
            self.segments = set()  # the parent removes its segments
            self.new_pipe()
            try:
                serve(self)
            finally:
                os._exit(0)
        os.close(to_child_r)
        os.close(from_child_w)
        self.children[pid] = None
        self.pending_fork = (to_child_w, from_child_r)
        return pid, to_child_w, from_child_r

    def op_forked(self) -> None:
        """The parent has opened its ends: drop ours so EOF reaches each side properly."""
        if self.pending_fork is not None:
            for fd in self.pending_fork:
                os.close(fd)
            self.pending_fork = None

    def reap(self) -> None:
        for pid, status in self.children.items():
            if status is None:
                done, st = os.waitpid(pid, os.WNOHANG)
                if done:
                    self.children[pid] = st

    def op_status(self, pid: int) -> int | None:
        """The wait status of a forked child, waiting for it to exit (None if unknown)."""
        if pid not in self.children:
            return None
        if self.children[pid] is None:
            self.children[pid] = os.waitpid(pid, 0)[1]
        return self.children[pid]

    def op_getpid(self) -> int:
        return os.getpid()

    def op_batch(self, requests: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        return [self.handle(request) for request in requests]

    # ---- dispatch ----------------------------------------------------------------------
    def handle(self, request: tuple[Any, ...]) -> tuple[Any, ...]:
        op, *args = request
        try:
            return ("ok", getattr(self, "op_" + op)(*args))
        except Fail as exc:
            return ("err", exc.errno)
        except Outside as exc:
            return ("out", exc.addr, exc.length)
        except Exception:
            return ("exc", traceback.format_exc())


def serve(child: Child) -> None:
    """Answer one frame per request until EOF or ``exit``."""
    while True:
        try:
            request = recv_frame(child.req)
        except EOFError:
            return
        if request[0] == "exit":
            send_frame(child.resp, ("ok", None))
            return
        send_frame(child.resp, child.handle(request))


def proc_stat() -> dict[int, int]:
    """The numeric fields of /proc/self/stat by their proc(5) number (from 4 on)."""
    with open("/proc/self/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    return {number: int(value) for number, value in enumerate(fields[1:], start=4)}


def syscall_resume_address() -> int:
    """Where libc's syscall() continues after its syscall instruction: the instruction
    pointer seccomp sees for every call this oracle makes."""
    start = ctypes.cast(_syscall, ctypes.c_void_p).value or 0
    offset = ctypes.string_at(start, 64).find(b"\x0f\x05")
    if offset < 0:
        raise Fail(0)
    return start + offset + 2


def deny_foreign_brk() -> None:
    """A seccomp filter under which brk() from anywhere but the oracle's own syscall()
    returns 0, which glibc's sbrk reads as failure: malloc can never take memory from the
    heap the oracle moves into the arena (it falls back to mmap)."""
    resume = syscall_resume_address()
    program = (
        (BPF_LD_W_ABS, 0, 0, 0),  # seccomp_data.nr
        (BPF_JEQ_K, 0, 5, SYS_BRK),
        (BPF_LD_W_ABS, 0, 0, 8),  # instruction_pointer, low half
        (BPF_JEQ_K, 0, 2, resume & 0xFFFFFFFF),
        (BPF_LD_W_ABS, 0, 0, 12),  # instruction_pointer, high half
        (BPF_JEQ_K, 1, 0, resume >> 32),
        (BPF_RET_K, 0, 0, SECCOMP_RET_ERRNO),
        (BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW),
    )
    filters = (ctypes.c_uint64 * len(program))(
        *(code | jt << 16 | jf << 24 | k << 32 for code, jt, jf, k in program)
    )
    fprog = (ctypes.c_uint64 * 2)(len(program), ctypes.addressof(filters))
    sys6(SYS_PRCTL, PR_SET_NO_NEW_PRIVS, 1)
    sys6(SYS_SECCOMP, SECCOMP_SET_MODE_FILTER, 0, ctypes.addressof(fprog))


def move_heap(start_brk: int) -> None:
    """Put start_brk and the break at ``start_brk`` (prctl PR_SET_MM_MAP, which needs
    CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE), so that brk() works inside the arena, once
    malloc is kept off it. Best effort: otherwise the heap stays where exec put it."""
    stat = proc_stat()
    values = [start_brk if field is None else stat[field] for field in MM_MAP_FIELDS]
    # auxv = NULL, auxv_size = 0, exe_fd = -1 (keep /proc/self/exe)
    mm_map = (ctypes.c_uint64 * 13)(*values, 0, 0xFFFFFFFF << 32)
    with contextlib.suppress(Fail):
        deny_foreign_brk()
        sys6(SYS_PRCTL, PR_SET_MM, PR_SET_MM_MAP, ctypes.addressof(mm_map), ctypes.sizeof(mm_map))


def main(argv: list[str]) -> None:
    req, resp = int(argv[1]), int(argv[2])
    rest = argv[3:]
    arena = None if rest[0] == "-" else (int(rest[0], 16), int(rest[1], 16))
    heap = rest[1 if arena is None else 2:][:1]
    if heap and heap[0] != "-":
        move_heap(int(heap[0], 16))
    child = Child(req, resp, arena)
    try:
        serve(child)
    finally:
        child.remove_segments()
    child.reap()


if __name__ == "__main__":
    main(sys.argv)
