"""The system calls beyond mmap/munmap/mprotect/... take their arguments as the kernel's C types
too (vmamodel.abi.SYSCALL_ARGS): an ``int`` or ``unsigned int`` keeps the register's low 32
bits, an ``unsigned long`` its 64 bits; a value no register could hold is a TypeError at the
entry, with nothing changed. Judged on the model and on the host kernel."""

from __future__ import annotations

import errno
from collections.abc import Callable
from typing import Any

import pytest

import vmamodel as v
from core.util import NOREPLACE, RW, P, at, layout
from vmamodel.constants import PR_GET_MEMORY_MERGE
from vmamodel.mempolicy import MPOL_DEFAULT
from vmamodel.msync import MS_SYNC
from vmamodel.shm import IPC_CREAT, IPC_PRIVATE
from vmamodel.userfaultfd import UFFDIO_REGISTER_MODE_MISSING

U64 = 1 << 64
BIT32 = 1 << 32


def _outcome(fn: Callable[[], Any]) -> object:
    try:
        result = fn()
    except OSError as exc:
        return errno.errorcode[exc.errno or 0]
    return "ok" if result is None else result


# (name, call on a space with one rw page at at(0), expected outcome)
CASES: list[tuple[str, Callable[[Any], Any], object]] = [
    ("msync flags is int: bit 32 is cut off", lambda mm: mm.msync(at(0), P, BIT32 | MS_SYNC),
     "ok"),
    ("msync flags -1", lambda mm: mm.msync(at(0), P, -1), "EINVAL"),
    ("msync address past 2**64 wraps", lambda mm: mm.msync(at(0) + U64, P, MS_SYNC), "ok"),
    ("mincore length past 2**64 wraps", lambda mm: len(mm.mincore(at(0), P + U64)), 1),
    ("mbind flags is unsigned int: bit 32 is cut off",
     lambda mm: mm.mbind(at(0), P, MPOL_DEFAULT, None, 0, BIT32), "ok"),
    # mode is an unsigned long, but kernel_mbind() keeps it in an int: bit 32 is lost there.
    ("mbind mode: bit 32 is lost in kernel_mbind", lambda mm: mm.mbind(at(0), P, BIT32), "ok"),
    ("set_mempolicy_home_node flags is unsigned long: bit 32 stays",
     lambda mm: mm.set_mempolicy_home_node(at(0), P, 0, BIT32), "EINVAL"),
    ("prctl option is int: bit 32 is cut off",
     lambda mm: mm.prctl(BIT32 | PR_GET_MEMORY_MERGE), 0),
    ("io_setup nr_events is unsigned int: 2**32 is 0", lambda mm: mm.io_setup(BIT32), "EINVAL"),
    ("shmat shmid is int: -1 + 2**32 is -1", lambda mm: mm.shmat(BIT32 - 1), "EINVAL"),
    ("shmctl IPC_RMID shmid is int: -1 + 2**32 is -1",
     lambda mm: mm.shmctl_rmid(BIT32 - 1), "EINVAL"),
    ("shmget size past 2**64 wraps to 0", lambda mm: mm.shmget(IPC_PRIVATE, U64,
                                                               IPC_CREAT | 0o600), "EINVAL"),
    ("map_shadow_stack flags is unsigned int",
     lambda mm: mm.map_shadow_stack(0, P, BIT32), "ENOSYS"),
]


@pytest.mark.parametrize(("call", "expected"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_arguments_are_c_types(mm, call, expected):
    mm.mmap(at(0), P, RW, NOREPLACE)
    assert _outcome(lambda: call(mm)) == expected
    assert layout(mm) == [(0, 1, "rw-p")]


def test_userfaultfd_flags_is_int_and_ranges_wrap(mm):
    mm.mmap(at(0), P, RW, NOREPLACE)
    uffd = mm.userfaultfd(BIT32)  # flags 0
    assert _outcome(lambda: mm.uffdio_register(uffd, at(0) + U64, P + U64,
                                               UFFDIO_REGISTER_MODE_MISSING)) != "EINVAL"
    assert _outcome(lambda: mm.uffdio_unregister(uffd, at(0) + U64, P)) == "ok"
    mm.uffd_close(uffd)


BAD_CALLS: list[tuple[str, str, Callable[[Any], Any], type[Exception]]] = [
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
def test_bad_values_fail_at_the_entry(mm, entry, arg, call, error):
    mm.mmap(at(0), P, RW, NOREPLACE)
    before = mm.maps()
    with pytest.raises(error, match=rf"^{entry}\(\): argument '{arg}' must be"):
        call(mm)
    assert mm.maps() == before


def test_the_model_traces_the_converted_values():
    mm = v.AddressSpace()
    with mm.tracer.collect() as events, pytest.raises(OSError):
        mm.msync(-P, P, BIT32 | MS_SYNC)
    assert [e.args for e in events if isinstance(e, v.events.Syscall)] == [
        (U64 - P, P, MS_SYNC)
    ]
