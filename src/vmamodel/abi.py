"""The x86-64 system-call ABI: how a syscall's arguments reach the kernel's C code.

Every argument travels in a 64-bit register; the wrapper that SYSCALL_DEFINEn generates
(include/linux/syscalls.h, __SC_CAST) casts it to the C type of the prototype. So an
``unsigned long`` or ``size_t`` is the register's 64 bits (a negative Python int is its two's
complement, anything past 2**64 loses its high bits) and an ``int`` is its low 32 bits, signed.
The model and the host oracle convert their arguments here, with the table ``SYSCALL_ARGS``,
so that both see the values the kernel would. A Python value that no register could hold (a
float, a string, None where a number is due) is a ``TypeError`` naming the argument, raised
at the entry point before anything changes. ``bool`` is an ``int`` in Python and passes as 0
or 1, as C's ``_Bool`` does.
"""

from __future__ import annotations

import inspect
import operator
from collections.abc import Callable
from typing import Any, Final, TypeVar

from vmamodel.constants import ULONG_MAX
from vmamodel.file import File

__all__ = ["SYSCALL_ARGS", "as_int", "as_uint", "as_ulong", "convert_args", "syscall_abi"]

F = TypeVar("F", bound=Callable[..., Any])

INT_MIN: Final = -(1 << 31)
INT_MAX: Final = (1 << 31) - 1

#: C types: "ulong" (unsigned long, size_t, a user pointer, __u64), "int", "uint" (unsigned
#: int), "bool" (a flag the model takes, 0/1), "file" (a File or None: the descriptor),
#: "name" (a str or None: a user string), "mask" (a bit mask the kernel copies from user
#: memory, as a non-negative int, or None for a NULL pointer), "optaddr" (an address or None:
#: a model argument, not a register), "handle" (an object the model gave out: a descriptor).
ULONG: Final = "ulong"
INT: Final = "int"
UINT: Final = "uint"
BOOL: Final = "bool"
FILE: Final = "file"
NAME: Final = "name"
MASK: Final = "mask"
OPTADDR: Final = "optaddr"
HANDLE: Final = "handle"

#: Each entry point's parameters with the C type of its kernel prototype (SYSCALL_DEFINE in
#: arch/x86/kernel/sys_x86_64.c for mmap, mm/mmap.c, mm/mprotect.c, mm/mremap.c,
#: mm/madvise.c, mm/mlock.c, mm/mseal.c, mm/mempolicy.c, mm/msync.c, mm/mincore.c,
#: fs/userfaultfd.c, ipc/shm.c, fs/aio.c, arch/x86/kernel/shstk.c, kernel/sys.c for prctl).
#: touch and find_vma are not syscalls: their address is a user pointer, an unsigned long.
#: The userfaultfd ioctls take a struct of __u64 fields (struct uffdio_register).
SYSCALL_ARGS: Final[dict[str, tuple[tuple[str, str], ...]]] = {
    "mmap": (
        ("addr", ULONG), ("length", ULONG), ("prot", ULONG), ("flags", ULONG),
        ("file", FILE), ("offset", ULONG),
    ),
    "munmap": (("addr", ULONG), ("length", ULONG)),
    "mprotect": (("addr", ULONG), ("length", ULONG), ("prot", ULONG)),
    "pkey_mprotect": (("addr", ULONG), ("length", ULONG), ("prot", ULONG), ("pkey", INT)),
    "pkey_alloc": (("flags", ULONG), ("access_rights", ULONG)),
    "pkey_free": (("pkey", INT),),
    "set_vma_anon_name": (("addr", ULONG), ("length", ULONG), ("name", NAME)),
    "mseal": (("addr", ULONG), ("length", ULONG), ("flags", ULONG)),
    "touch": (("addr", ULONG), ("write", BOOL)),
    "mremap": (
        ("old_addr", ULONG), ("old_len", ULONG), ("new_len", ULONG), ("flags", ULONG),
        ("new_addr", ULONG),
    ),
    "madvise": (("addr", ULONG), ("length", ULONG), ("advice", INT)),
    "mlock": (("addr", ULONG), ("length", ULONG)),
    "mlock2": (("addr", ULONG), ("length", ULONG), ("flags", INT)),
    "munlock": (("addr", ULONG), ("length", ULONG)),
    "mlockall": (("flags", INT),),
    "munlockall": (),
    "brk": (("addr", ULONG),),
    "find_vma": (("addr", ULONG),),
    "fork": (),
    "exit": (),
    "prctl": (
        ("option", INT), ("arg2", ULONG), ("arg3", ULONG), ("arg4", ULONG), ("arg5", ULONG),
    ),
    "mbind": (
        ("addr", ULONG), ("length", ULONG), ("mode", ULONG), ("nodemask", MASK),
        ("maxnode", ULONG), ("flags", UINT),
    ),
    "set_mempolicy_home_node": (
        ("addr", ULONG), ("length", ULONG), ("home_node", ULONG), ("flags", ULONG),
    ),
    "userfaultfd": (("flags", INT), ("features", ULONG)),
    "uffdio_register": (("uffd", HANDLE), ("addr", ULONG), ("length", ULONG), ("mode", ULONG)),
    "uffdio_unregister": (("uffd", HANDLE), ("addr", ULONG), ("length", ULONG)),
    "uffd_close": (("uffd", HANDLE),),
    "shmget": (("key", INT), ("size", ULONG), ("shmflg", INT)),
    "shmat": (("shmid", INT), ("addr", ULONG), ("shmflg", INT)),
    "shmdt": (("addr", ULONG),),
    "shmctl_rmid": (("shmid", INT),),
    "msync": (("addr", ULONG), ("length", ULONG), ("flags", INT)),
    "mincore": (("addr", ULONG), ("length", ULONG)),
    "io_setup": (("nr_events", UINT), ("move_to", OPTADDR)),
    "io_destroy": (("ctx_id", ULONG),),
    "map_shadow_stack": (("addr", ULONG), ("size", ULONG), ("flags", UINT)),
}


def _integer(value: object, where: str, arg: str) -> int:
    """The value as a Python int (anything with __index__, as a C integer would take it)."""
    try:
        return operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(
            f"{where}(): argument {arg!r} must be an integer, not {type(value).__name__}"
        ) from None


def as_ulong(value: object, where: str = "syscall", arg: str = "arg") -> int:
    """An ``unsigned long`` (or ``size_t``) argument: the register's 64 bits."""
    return _integer(value, where, arg) & ULONG_MAX


def as_int(value: object, where: str = "syscall", arg: str = "arg") -> int:
    """An ``int`` argument: the register's low 32 bits, signed."""
    number = _integer(value, where, arg) & 0xFFFFFFFF
    return number - (1 << 32) if number & 0x80000000 else number


def as_uint(value: object, where: str = "syscall", arg: str = "arg") -> int:
    """An ``unsigned int`` argument: the register's low 32 bits."""
    return _integer(value, where, arg) & 0xFFFFFFFF


def as_bool(value: object, where: str = "syscall", arg: str = "arg") -> bool:
    """A yes/no argument of the model (0 or not 0)."""
    return bool(_integer(value, where, arg))


def as_file(value: object, where: str = "syscall", arg: str = "file") -> File | None:
    """The file a mapping is of: a ``File`` or None (the model's file descriptor)."""
    if value is None or isinstance(value, File):
        return value
    raise TypeError(f"{where}(): argument {arg!r} must be a File or None, not "
                    f"{type(value).__name__}")


def as_name(value: object, where: str = "syscall", arg: str = "name") -> str | None:
    """A user string: a ``str`` or None (NULL)."""
    if value is None or isinstance(value, str):
        return value
    raise TypeError(f"{where}(): argument {arg!r} must be a str or None, not "
                    f"{type(value).__name__}")


def as_mask(value: object, where: str = "syscall", arg: str = "mask") -> int | None:
    """A bit mask read from user memory (any number of bits), or None for NULL. A negative
    number has no finite bit pattern: ValueError."""
    if value is None:
        return None
    mask = _integer(value, where, arg)
    if mask < 0:
        raise ValueError(f"{where}(): argument {arg!r} must be a non-negative bit mask")
    return mask


def as_optaddr(value: object, where: str = "syscall", arg: str = "addr") -> int | None:
    """An address (an unsigned long) or None."""
    return None if value is None else as_ulong(value, where, arg)


def as_handle(value: object, where: str = "syscall", arg: str = "fd") -> object:
    """A descriptor the space gave out: passed as it is (the call checks what it is)."""
    return value


_CONVERTERS: Final[dict[str, Callable[[object, str, str], Any]]] = {
    ULONG: as_ulong, INT: as_int, UINT: as_uint, BOOL: as_bool, FILE: as_file, NAME: as_name,
    MASK: as_mask, OPTADDR: as_optaddr, HANDLE: as_handle,
}


def convert_args(name: str, args: tuple[Any, ...]) -> tuple[Any, ...]:
    """``args`` (positional, possibly fewer than the table lists) of the entry point ``name``
    as the kernel would see them."""
    return tuple(
        _CONVERTERS[ctype](value, name, arg)
        for value, (arg, ctype) in zip(args, SYSCALL_ARGS[name], strict=False)
    )


# What a value already in range looks like, so that the common call converts nothing:
# ``type(x) is int`` keeps bool and int subclasses on the slow path, which makes them ints.
# vmamodel.syscalls writes these tests out in its native entry points (the busiest calls);
# tests/core/test_syscall_entry.py checks that those agree with convert_args.
_IN_RANGE: Final[dict[str, str]] = {
    ULONG: f"type({{0}}) is int and 0 <= {{0}} <= {ULONG_MAX}",
    INT: f"type({{0}}) is int and {INT_MIN} <= {{0}} <= {INT_MAX}",
    UINT: "type({0}) is int and 0 <= {0} <= 0xFFFFFFFF",
    MASK: "{0} is None or (type({0}) is int and {0} >= 0)",
    OPTADDR: f"{{0}} is None or (type({{0}}) is int and 0 <= {{0}} <= {ULONG_MAX})",
    BOOL: "type({0}) is bool",
    FILE: "{0} is None or type({0}) is _File",
    NAME: "{0} is None or type({0}) is str",
}


def _raise_pending(obj: object, attr: str) -> None:
    """Raise (and clear) the exception a call left pending on ``obj``."""
    error: BaseException = getattr(obj, attr)
    setattr(obj, attr, None)
    raise error from error.__cause__


def syscall_abi(name: str, pending: str | None = None) -> Callable[[F], F]:
    """Decorate an entry point (a method) whose parameters are those of ``SYSCALL_ARGS[name]``:
    each argument is converted to its C type before the method runs. The wrapper is generated
    with the method's own signature, so that an in-range call costs a type test and a compare
    per argument and one extra call.

    ``pending``: the name of an attribute of the object where the call may leave an
    exception to raise once it has finished or failed (the model's DriverError)."""
    table = SYSCALL_ARGS[name]

    def decorate(fn: F) -> F:
        params = list(inspect.signature(fn).parameters.values())[1:]
        if [p.name for p in params] != [arg for arg, _ in table]:
            raise TypeError(f"{fn.__qualname__}: parameters differ from SYSCALL_ARGS[{name!r}]")
        namespace: dict[str, Any] = {"_fn": fn, "_File": File}
        header = ["self"]
        body = []
        for param, (arg, ctype) in zip(params, table, strict=True):
            if param.default is inspect.Parameter.empty:
                header.append(arg)
            else:
                namespace[f"_d_{arg}"] = param.default
                header.append(f"{arg}=_d_{arg}")
            if ctype == HANDLE:
                continue
            namespace[f"_c_{arg}"] = _CONVERTERS[ctype]
            body.append(
                f"    if not ({_IN_RANGE[ctype].format(arg)}):\n"
                f"        {arg} = _c_{arg}({arg}, {name!r}, {arg!r})\n"
            )
        call = f"_fn({', '.join(['self', *(arg for arg, _ in table)])})"
        if pending is None:
            body.append(f"    return {call}\n")
        else:
            namespace["_raise_pending"] = _raise_pending
            check = f"if self.{pending} is not None: _raise_pending(self, {pending!r})"
            body.append(
                f"    try:\n        result = {call}\n    except OSError:\n        {check}\n"
                f"        raise\n    {check}\n    return result\n"
            )
        source = f"def {fn.__name__}({', '.join(header)}):\n{''.join(body)}"
        exec(source, namespace)  # generated from the table above, as dataclasses does
        wrapper: F = namespace[fn.__name__]
        wrapper.__doc__ = fn.__doc__
        wrapper.__qualname__ = fn.__qualname__
        wrapper.__module__ = getattr(fn, "__module__", __name__)
        wrapper.__wrapped__ = fn  # type: ignore[attr-defined]
        return wrapper

    return decorate
