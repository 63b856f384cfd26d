"""Syscall arguments as the kernel's C types (vmamodel.abi), on the model and on the host.

An ``unsigned long`` keeps the register's 64 bits (negative numbers are their two's complement,
bits past 2**64 are lost), an ``int`` keeps the low 32 bits, signed; something no register could
hold is a TypeError at the entry point, with nothing changed.
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from typing import Any

import pytest

import vmamodel as v
from vmamodel.constants import PR_GET_MEMORY_MERGE
from vmamodel.events import Syscall
from vmamodel.mempolicy import MPOL_DEFAULT
from vmamodel.msync import MS_SYNC
from vmamodel.shm import IPC_CREAT, IPC_PRIVATE
from vmamodel.userfaultfd import UFFDIO_REGISTER_MODE_MISSING

from .util import ANON, FIXED, NOREPLACE, RO, RW, P, at, layout

U64 = 1 << 64
BIT32 = 1 << 32
ONE_PAGE = [(0, 1, "rw-p")]
HUGE = v.MAP_HUGETLB | NOREPLACE


def _outcome(fn: Callable[[], Any]) -> object:
    try:
        result = fn()
    except OSError as exc:
        return errno.errorcode[exc.errno or 0]
    return "ok" if result is None else result


# (name, setup, call, expected outcome, expected layout afterwards)
CASES: list[tuple[str, bool, Callable[[Any], Any], object, list[tuple[int, int, str]]]] = [
    ("munmap negative address", True, lambda mm: mm.munmap(-P, P), "EINVAL",
     [(0, 1, "rw-p")]),
    ("munmap negative length", True, lambda mm: mm.munmap(at(0), -P), "EINVAL",
     [(0, 1, "rw-p")]),
    ("munmap address past 2**64 wraps", True, lambda mm: mm.munmap(at(0) + U64, P), "ok", []),
    ("mmap fixed at -0x1000", False, lambda mm: mm.mmap(-0x1000, P, RW, FIXED), "ENOMEM", []),
    ("mmap fixed past 2**64 wraps", False, lambda mm: mm.mmap(at(2) + U64, P, RW, FIXED),
     at(2), [(2, 3, "rw-p")]),
    ("mmap length -1", False, lambda mm: mm.mmap(at(0), -1, RW, NOREPLACE), "ENOMEM", []),
    ("mmap offset -4096 of anonymous memory", False,
     lambda mm: mm.mmap(at(0), P, RW, NOREPLACE, None, -P), at(0), [(0, 1, "rw-p")]),
    ("mmap prot bit 32 is ignored", False,
     lambda mm: mm.mmap(at(0), P, v.PROT_READ | 1 << 32, NOREPLACE), at(0), [(0, 1, "r--p")]),
    ("mmap flags past 2**64 wrap", False,
     lambda mm: mm.mmap(at(0), P, RW, NOREPLACE + U64), at(0), [(0, 1, "rw-p")]),
    ("mprotect prot is unsigned long: bit 32 is unknown", True,
     lambda mm: mm.mprotect(at(0), P, RO | 1 << 32), "EINVAL", [(0, 1, "rw-p")]),
    ("mprotect prot past 2**64 wraps", True,
     lambda mm: mm.mprotect(at(0), P, RO + U64), "ok", [(0, 1, "r--p")]),
    ("mprotect negative length", True, lambda mm: mm.mprotect(at(0), -P, RO), "ENOMEM",
     [(0, 1, "rw-p")]),
    ("pkey_mprotect pkey is int: 2**32-1 is -1", True,
     lambda mm: mm.pkey_mprotect(at(0), P, RO, (1 << 32) - 1), "ok", [(0, 1, "r--p")]),
    ("madvise advice is int: 2**32+DONTNEED", True,
     lambda mm: mm.madvise(at(0), P, (1 << 32) + v.MADV_DONTNEED), "ok", [(0, 1, "rw-p")]),
    ("madvise advice -1", True, lambda mm: mm.madvise(at(0), P, -1), "EINVAL",
     [(0, 1, "rw-p")]),
    ("madvise negative length", True, lambda mm: mm.madvise(at(0), -P, v.MADV_DONTNEED),
     "EINVAL", [(0, 1, "rw-p")]),
    ("mlock2 flags is int: 2**32 is 0", True, lambda mm: mm.mlock2(at(0), P, 1 << 32), "ok",
     [(0, 1, "rw-p")]),
    ("mlock2 flags -1", True, lambda mm: mm.mlock2(at(0), P, -1), "EINVAL", [(0, 1, "rw-p")]),
    ("mseal flags is unsigned long: bit 32", True, lambda mm: mm.mseal(at(0), P, 1 << 32),
     "EINVAL", [(0, 1, "rw-p")]),
    ("mremap old address past 2**64 wraps", True,
     lambda mm: mm.mremap(at(0) + U64, P, P), at(0), [(0, 1, "rw-p")]),
    ("mremap negative new length", True, lambda mm: mm.mremap(at(0), P, -P), "EINVAL",
     [(0, 1, "rw-p")]),
    ("mremap flags bit 64 wraps to MAYMOVE", True,
     lambda mm: mm.mremap(at(0), P, 2 * P, v.MREMAP_MAYMOVE + U64), at(0),
     [(0, 2, "rw-p")]),
    ("munlock negative address: the range wraps", True, lambda mm: mm.munlock(-P, P), "EINVAL",
     [(0, 1, "rw-p")]),
    ("touch past 2**64 wraps", True, lambda mm: mm.touch(at(0) + U64, True), "ok",
     [(0, 1, "rw-p")]),
    ("hugetlb: size 2**22 has no hstate", False,
     lambda mm: mm.mmap(at(0), P, RW, HUGE | 22 << v.MAP_HUGE_SHIFT), "EINVAL", []),
    ("hugetlb: size 2**63 has no hstate", False,
     lambda mm: mm.mmap(at(0), P, RW, HUGE | 63 << v.MAP_HUGE_SHIFT), "EINVAL", []),
    ("hugetlb: 2 MiB, none reserved", False,
     lambda mm: mm.mmap(at(0), P, RW, HUGE | v.MAP_HUGE_2MB), "ENOMEM", []),
    ("hugetlb: 1 GiB, none reserved", False,
     lambda mm: mm.mmap(at(0), P, RW, HUGE | v.MAP_HUGE_1GB), "ENOMEM", []),
    ("hugetlb: zero length", False, lambda mm: mm.mmap(at(0), 0, RW, HUGE), "EINVAL", []),
    ("hugetlb: length wraps to zero at the huge page size", False,
     lambda mm: mm.mmap(at(0), -P, RW, HUGE), "EINVAL", []),
    # The calls beyond the VMA syscalls proper (msync, mincore, mbind, prctl, aio, SysV shm,
    # map_shadow_stack) take their prototypes' C types too.
    ("msync flags is int: bit 32 is cut off", True,
     lambda mm: mm.msync(at(0), P, BIT32 | MS_SYNC), "ok", ONE_PAGE),
    ("msync flags -1", True, lambda mm: mm.msync(at(0), P, -1), "EINVAL", ONE_PAGE),
    ("msync address past 2**64 wraps", True,
     lambda mm: mm.msync(at(0) + U64, P, MS_SYNC), "ok", ONE_PAGE),
    ("mincore length past 2**64 wraps", True,
     lambda mm: len(mm.mincore(at(0), P + U64)), 1, ONE_PAGE),
    ("mbind flags is unsigned int: bit 32 is cut off", True,
     lambda mm: mm.mbind(at(0), P, MPOL_DEFAULT, None, 0, BIT32), "ok", ONE_PAGE),
    # mode is an unsigned long, but kernel_mbind() keeps it in an int: bit 32 is lost there.
    ("mbind mode: bit 32 is lost in kernel_mbind", True,
     lambda mm: mm.mbind(at(0), P, BIT32), "ok", ONE_PAGE),
    ("set_mempolicy_home_node flags is unsigned long: bit 32 stays", True,
     lambda mm: mm.set_mempolicy_home_node(at(0), P, 0, BIT32), "EINVAL", ONE_PAGE),
    ("prctl option is int: bit 32 is cut off", True,
     lambda mm: mm.prctl(BIT32 | PR_GET_MEMORY_MERGE), 0, ONE_PAGE),
    ("io_setup nr_events is unsigned int: 2**32 is 0", True,
     lambda mm: mm.io_setup(BIT32), "EINVAL", ONE_PAGE),
    ("shmat shmid is int: -1 + 2**32 is -1", True, lambda mm: mm.shmat(BIT32 - 1), "EINVAL",
     ONE_PAGE),
    ("shmctl IPC_RMID shmid is int: -1 + 2**32 is -1", True,
     lambda mm: mm.shmctl_rmid(BIT32 - 1), "EINVAL", ONE_PAGE),
    ("shmget size past 2**64 wraps to 0", True,
     lambda mm: mm.shmget(IPC_PRIVATE, U64, IPC_CREAT | 0o600), "EINVAL", ONE_PAGE),
    ("map_shadow_stack flags is unsigned int", True,
     lambda mm: mm.map_shadow_stack(0, P, BIT32), "ENOSYS", ONE_PAGE),
]


@pytest.mark.parametrize(("setup", "call", "expected", "after"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_arguments_are_c_types(mm, setup, call, expected, after):
    if setup:
        mm.mmap(at(0), P, RW, NOREPLACE)
    assert _outcome(lambda: call(mm)) == expected
    assert layout(mm) == after


def test_set_vma_anon_name_address_past_2_64_wraps(mm):
    # The host may lack CONFIG_ANON_VMA_NAME (EINVAL): either way the wrapped address
    # behaves as the address itself.
    mm.mmap(at(0), P, RW, NOREPLACE)
    wrapped = _outcome(lambda: mm.set_vma_anon_name(at(0) + U64, P, "x"))
    assert wrapped == _outcome(lambda: mm.set_vma_anon_name(at(0), P, "x"))


def test_userfaultfd_flags_is_int_and_ranges_wrap(mm):
    mm.mmap(at(0), P, RW, NOREPLACE)
    uffd = mm.userfaultfd(BIT32)  # flags 0
    assert _outcome(lambda: mm.uffdio_register(uffd, at(0) + U64, P + U64,
                                               UFFDIO_REGISTER_MODE_MISSING)) != "EINVAL"
    assert _outcome(lambda: mm.uffdio_unregister(uffd, at(0) + U64, P)) == "ok"
    mm.uffd_close(uffd)


def test_brk_negative_leaves_the_break(mm):
    start = mm.brk(0)
    assert mm.brk(-1) == start


def test_mlockall_flags_is_int(mm):
    # Bit 32 is cut off: MCL_FUTURE alone, valid; then undone.
    assert _outcome(lambda: mm.mlockall((1 << 32) | v.MCL_FUTURE)) == "ok"
    mm.munlockall()
    assert _outcome(lambda: mm.mlockall(1 << 32)) == "EINVAL"


class Index:
    """Not an int, but usable as one (like a numpy integer): C would take it."""

    def __index__(self) -> int:
        return at(0)


def test_index_objects_and_bools_are_integers(mm):
    assert mm.mmap(Index(), P, True, NOREPLACE) == at(0)
    assert layout(mm) == [(0, 1, "r--p")]


BAD_CALLS: list[tuple[str, str, Callable[[Any], Any], type[Exception]]] = [
    ("mmap", "addr", lambda mm: mm.mmap(float(at(0)), P, RW, NOREPLACE), TypeError),
    ("mmap", "length", lambda mm: mm.mmap(at(0), "4096", RW, NOREPLACE), TypeError),
    ("mmap", "prot", lambda mm: mm.mmap(at(0), P, None, NOREPLACE), TypeError),
    ("mmap", "flags", lambda mm: mm.mmap(at(0), P, RW, [NOREPLACE]), TypeError),
    ("mmap", "file", lambda mm: mm.mmap(at(0), P, RW, ANON, "/etc/passwd"), TypeError),
    ("mmap", "offset", lambda mm: mm.mmap(at(0), P, RW, NOREPLACE, None, 0.0), TypeError),
    ("munmap", "length", lambda mm: mm.munmap(at(0), b"x"), TypeError),
    ("mprotect", "prot", lambda mm: mm.mprotect(at(0), P, 1.0), TypeError),
    ("pkey_mprotect", "pkey", lambda mm: mm.pkey_mprotect(at(0), P, RO, "0"), TypeError),
    ("pkey_alloc", "flags", lambda mm: mm.pkey_alloc(0.5), TypeError),
    ("pkey_free", "pkey", lambda mm: mm.pkey_free(None), TypeError),
    ("set_vma_anon_name", "name", lambda mm: mm.set_vma_anon_name(at(0), P, 5), TypeError),
    ("mseal", "addr", lambda mm: mm.mseal(complex(1, 1), P), TypeError),
    ("touch", "addr", lambda mm: mm.touch(None), TypeError),
    ("mremap", "new_addr", lambda mm: mm.mremap(at(0), P, P, 0, 1.5), TypeError),
    ("madvise", "advice", lambda mm: mm.madvise(at(0), P, "dontneed"), TypeError),
    ("mlock", "addr", lambda mm: mm.mlock(object(), P), TypeError),
    ("mlock2", "flags", lambda mm: mm.mlock2(at(0), P, 1e3), TypeError),
    ("munlock", "length", lambda mm: mm.munlock(at(0), None), TypeError),
    ("mlockall", "flags", lambda mm: mm.mlockall("MCL_CURRENT"), TypeError),
    ("brk", "addr", lambda mm: mm.brk(2.0**40), TypeError),
    ("msync", "flags", lambda mm: mm.msync(at(0), P, "MS_SYNC"), TypeError),
    ("mincore", "length", lambda mm: mm.mincore(at(0), 4096.0), TypeError),
    ("mbind", "nodemask", lambda mm: mm.mbind(at(0), P, MPOL_DEFAULT, "1", 2), TypeError),
    ("mbind", "nodemask", lambda mm: mm.mbind(at(0), P, MPOL_DEFAULT, -1, 2), ValueError),
    ("prctl", "option", lambda mm: mm.prctl(None), TypeError),
    ("io_setup", "move_to", lambda mm: mm.io_setup(1, 1.5), TypeError),
    ("shmat", "addr", lambda mm: mm.shmat(0, "0"), TypeError),
    ("userfaultfd", "features", lambda mm: mm.userfaultfd(0, 0.0), TypeError),
    ("map_shadow_stack", "size", lambda mm: mm.map_shadow_stack(0, None), TypeError),
]


@pytest.mark.parametrize(("entry", "arg", "call", "error"), BAD_CALLS,
                         ids=[f"{e}-{a}-{x.__name__}" for e, a, _, x in BAD_CALLS])
def test_non_integers_are_type_errors_at_the_entry(mm, entry, arg, call, error):
    mm.mmap(at(0), P, RW, NOREPLACE)
    before = mm.maps()
    with pytest.raises(error, match=rf"^{entry}\(\): argument '{arg}' must be"):
        call(mm)
    assert mm.maps() == before


@pytest.mark.parametrize(("call", "converted"), [
    (lambda mm: mm.munmap(-P, P), (U64 - P, P)),
    (lambda mm: mm.msync(-P, P, BIT32 | MS_SYNC), (U64 - P, P, MS_SYNC)),
], ids=["munmap", "msync"])
def test_model_traces_the_converted_values(call, converted):
    mm = v.AddressSpace()
    with mm.tracer.collect() as events, pytest.raises(OSError):
        call(mm)
    calls = [e for e in events if isinstance(e, Syscall)]
    assert calls[0].args == converted
