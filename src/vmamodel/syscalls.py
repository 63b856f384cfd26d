"""include/linux/syscalls.h: the entry points of the busiest memory-management system calls.

:class:`SyscallEntry` sits between :class:`vmamodel.mm_types.MmStruct` and
:class:`vmamodel.mm.AddressSpace` and holds mmap, munmap, mprotect, mremap, madvise, brk and
touch (a user access, the fault path's entry). The compiled build
(vmamodel.buildinfo.HOT_MODULES) compiles this module, so a call from Python lands in native
code at once: each argument is tested to be an in-range ``int`` and otherwise converted by
vmamodel.abi to the C type that ``SYSCALL_ARGS`` gives it (the cast of SYSCALL_DEFINEn's
wrapper), then, when nobody traces and ``debug`` is off, the model's function is called
directly. The other entry points of AddressSpace keep vmamodel.abi's generated wrappers; all
of them share the slow path :meth:`SyscallEntry._call` (the trace events, validate_mm) and
the DriverError check of :meth:`SyscallEntry.raise_pending`.

Each test below is the in-range test of ``vmamodel.abi`` for the argument's C type, written
out: ``type(x) is int`` keeps bool and int subclasses on the converter's path (which makes
them plain ints), ``not x >> 64`` is ``0 <= x < 2**64`` in one operation. The test suite
checks every entry against ``convert_args`` on edge values, so the two cannot drift apart.
In the pure build this is plain Python: the entry is one frame instead of two.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any, Final, SupportsIndex, TypeVar, cast

from vmamodel.abi import as_bool, as_file, as_int, as_ulong
from vmamodel.brk import sys_brk
from vmamodel.events import Syscall, SyscallReturn
from vmamodel.fault import do_user_addr_fault
from vmamodel.file import File
from vmamodel.madvise import do_madvise
from vmamodel.mm_types import MmStruct, mypyc_attr
from vmamodel.mmap import ksys_mmap_pgoff
from vmamodel.mprotect import do_mprotect_pkey
from vmamodel.mremap import do_mremap
from vmamodel.munmap import do_munmap
from vmamodel.page import PAGE_MASK

if TYPE_CHECKING:
    from vmamodel.mm import AddressSpace

_T = TypeVar("_T")

#: The bounds of a C ``int`` (the in-range test of madvise's advice).
INT_MIN: Final = -(1 << 31)
INT_MAX: Final = (1 << 31) - 1


@mypyc_attr(allow_interpreted_subclasses=True)
class SyscallEntry(MmStruct):
    """The system-call layer of the mm_struct: the hot entry points (each converts its
    arguments as ``vmamodel.abi.SYSCALL_ARGS`` says, then runs the call), the slow path they
    share with AddressSpace's other entry points (tracing, validate_mm) and the DriverError
    a driver hook left pending. Every entry raises ``OSError`` with the kernel's errno."""

    __slots__ = ()

    def mmap(
        self,
        addr: SupportsIndex,
        length: SupportsIndex,
        prot: SupportsIndex,
        flags: SupportsIndex,
        file: Any = None,
        offset: SupportsIndex = 0,
    ) -> int:
        """mmap(2). Returns the mapped address."""
        # All five in range at once (an OR of values in [0, 2**64) stays there, and a
        # negative one makes it negative): the common call, one test instead of five. The
        # small ones first: their OR is a cached small int, which allocates nothing.
        # Otherwise each is converted, in the order of the arguments.
        if not (type(addr) is int and type(length) is int and type(prot) is int
                and type(flags) is int and type(offset) is int
                and not (prot | flags | offset | addr | length) >> 64):
            addr = (addr if type(addr) is int and not addr >> 64
                    else as_ulong(addr, "mmap", "addr"))
            length = (length if type(length) is int and not length >> 64
                      else as_ulong(length, "mmap", "length"))
            prot = (prot if type(prot) is int and not prot >> 64
                    else as_ulong(prot, "mmap", "prot"))
            flags = (flags if type(flags) is int and not flags >> 64
                     else as_ulong(flags, "mmap", "flags"))
            if file is not None and type(file) is not File:
                file = as_file(file, "mmap", "file")
            offset = (offset if type(offset) is int and not offset >> 64
                      else as_ulong(offset, "mmap", "offset"))
        elif file is not None and type(file) is not File:
            file = as_file(file, "mmap", "file")
        try:
            if self.tracer.active or self.debug:
                args = (addr, length, prot, flags, file, offset)
                result = self._call("mmap", args, partial(ksys_mmap_pgoff, self, *args))
            else:
                result = ksys_mmap_pgoff(self, addr, length, prot, flags, file, offset)
        except OSError:
            if self.pending_driver_error is not None:
                self.raise_pending()
            raise
        if self.pending_driver_error is not None:
            self.raise_pending()
        return result

    def munmap(self, addr: SupportsIndex, length: SupportsIndex) -> None:
        """munmap(2)."""
        a = addr if type(addr) is int and not addr >> 64 else as_ulong(addr, "munmap", "addr")
        n = (length if type(length) is int and not length >> 64
             else as_ulong(length, "munmap", "length"))
        try:
            if self.tracer.active or self.debug:
                self._call("munmap", (a, n), partial(do_munmap, self, a, n))
            else:
                do_munmap(self, a, n)
        except OSError:
            if self.pending_driver_error is not None:
                self.raise_pending()
            raise
        if self.pending_driver_error is not None:
            self.raise_pending()

    def mprotect(self, addr: SupportsIndex, length: SupportsIndex, prot: SupportsIndex) -> None:
        """mprotect(2)."""
        a = addr if type(addr) is int and not addr >> 64 else as_ulong(addr, "mprotect", "addr")
        n = (length if type(length) is int and not length >> 64
             else as_ulong(length, "mprotect", "length"))
        p = prot if type(prot) is int and not prot >> 64 else as_ulong(prot, "mprotect", "prot")
        try:
            if self.tracer.active or self.debug:
                self._call("mprotect", (a, n, p), partial(do_mprotect_pkey, self, a, n, p))
            else:
                do_mprotect_pkey(self, a, n, p)
        except OSError:
            if self.pending_driver_error is not None:
                self.raise_pending()
            raise
        if self.pending_driver_error is not None:
            self.raise_pending()

    def mremap(
        self,
        old_addr: SupportsIndex,
        old_len: SupportsIndex,
        new_len: SupportsIndex,
        flags: SupportsIndex = 0,
        new_addr: SupportsIndex = 0,
    ) -> int:
        """mremap(2). Returns the new address."""
        a = (old_addr if type(old_addr) is int and not old_addr >> 64
             else as_ulong(old_addr, "mremap", "old_addr"))
        o = (old_len if type(old_len) is int and not old_len >> 64
             else as_ulong(old_len, "mremap", "old_len"))
        n = (new_len if type(new_len) is int and not new_len >> 64
             else as_ulong(new_len, "mremap", "new_len"))
        fl = (flags if type(flags) is int and not flags >> 64
              else as_ulong(flags, "mremap", "flags"))
        na = (new_addr if type(new_addr) is int and not new_addr >> 64
              else as_ulong(new_addr, "mremap", "new_addr"))
        try:
            if self.tracer.active or self.debug:
                result = self._call(
                    "mremap", (a, o, n, fl, na), partial(do_mremap, self, a, o, n, fl, na)
                )
            else:
                result = do_mremap(self, a, o, n, fl, na)
        except OSError:
            if self.pending_driver_error is not None:
                self.raise_pending()
            raise
        if self.pending_driver_error is not None:
            self.raise_pending()
        return result

    def madvise(self, addr: SupportsIndex, length: SupportsIndex, advice: SupportsIndex) -> None:
        """madvise(2)."""
        a = addr if type(addr) is int and not addr >> 64 else as_ulong(addr, "madvise", "addr")
        n = (length if type(length) is int and not length >> 64
             else as_ulong(length, "madvise", "length"))
        adv = (advice if type(advice) is int and INT_MIN <= advice <= INT_MAX
               else as_int(advice, "madvise", "advice"))
        try:
            if self.tracer.active or self.debug:
                self._call("madvise", (a, n, adv), partial(do_madvise, self, a, n, adv))
            else:
                do_madvise(self, a, n, adv)
        except OSError:
            if self.pending_driver_error is not None:
                self.raise_pending()
            raise
        if self.pending_driver_error is not None:
            self.raise_pending()

    def touch(self, addr: SupportsIndex, write: SupportsIndex = False) -> None:
        """A user read or write of one byte. Raises ``AccessFault`` (an ``OSError`` with
        EFAULT) where the access would raise SIGSEGV or SIGBUS, changing nothing."""
        a = addr if type(addr) is int and not addr >> 64 else as_ulong(addr, "touch", "addr")
        w = write if type(write) is bool else as_bool(write, "touch", "write")
        try:
            if self.tracer.active or self.debug:
                self._call("touch", (a, w), partial(do_user_addr_fault, self, a, w))
            else:
                do_user_addr_fault(self, a, w)
        except OSError:
            if self.pending_driver_error is not None:
                self.raise_pending()
            raise
        if self.pending_driver_error is not None:
            self.raise_pending()

    def brk(self, addr: SupportsIndex) -> int:
        """brk(2): returns the new break, or the old one when the request fails."""
        a = addr if type(addr) is int and not addr >> 64 else as_ulong(addr, "brk", "addr")
        try:
            result: int = self._call("brk", (a,), partial(sys_brk, cast("AddressSpace", self), a))
        except OSError:
            if self.pending_driver_error is not None:
                self.raise_pending()
            raise
        if self.pending_driver_error is not None:
            self.raise_pending()
        return result

    # -- what every entry point shares ---------------------------------------------------

    def _call(self, name: str, args: tuple[Any, ...], fn: Callable[[], _T]) -> _T:
        """Run ``fn`` (the system call ``name`` with ``args``, as the kernel's C types) with
        the Syscall/SyscallReturn trace events around it when tracing, and validate_mm()
        after it in debug mode (also after a failure)."""
        if not self.tracer.active:
            result = fn()
            if self.debug:
                self.validate_mm()
            return result
        self.tracer.emit(Syscall(name, args))
        try:
            result = fn()
        except OSError as exc:
            self.tracer.emit(SyscallReturn(name, None, exc.errno or 0))
            if self.debug:
                self.validate_mm()
            raise
        self.tracer.emit(SyscallReturn(name, result, 0))
        if self.debug:
            self.validate_mm()
        return result

    def raise_pending(self) -> None:
        """Raise (and clear) the DriverError a driver hook left pending during the call that
        just finished or failed (vmamodel.driver_error)."""
        error = self.pending_driver_error
        if error is None:
            return
        self.pending_driver_error = None
        raise error from error.__cause__

    def validate_mm(self) -> None:
        """validate_mm(): sorted, non-overlapping, page-aligned, counted, within limits."""
        prev_end = -1
        count = 0
        for vma in self.tree:
            if vma.vm_start >= vma.vm_end:
                raise AssertionError(f"empty or inverted {vma!r}")
            if (vma.vm_start | vma.vm_end) & ~PAGE_MASK:
                raise AssertionError(f"unaligned {vma!r}")
            if vma.vm_start < prev_end:
                raise AssertionError(f"overlap or disorder at {vma!r}")
            if vma.detached:
                raise AssertionError(f"detached VMA in the tree: {vma!r}")
            prev_end = vma.vm_end
            count += 1
        if count != self.map_count:
            raise AssertionError(f"map_count {self.map_count} but {count} VMAs")
        if count > self.max_map_count + 1:
            raise AssertionError(f"{count} VMAs exceed max_map_count {self.max_map_count}")
        self.tree.validate()
