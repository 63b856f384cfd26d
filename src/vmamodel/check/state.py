"""A driver's state as plain data, so that "before the first mmap" and "after every mapping
is gone" can be compared, and the difference named field by field.

The dump walks ``File.private_data`` the way dataclass equality would: a field declared
``field(compare=False)`` (an event counter, an id generator, a log) is not state. Objects that
cannot be walked (functions, locks, iterators) are compared by identity. A
:class:`~vmamodel.drivers.ledger.Ledger` is dumped as its balance per resource, its flags and
its underflows - its history is a log. Shared objects and cycles are dumped once and then
referred to by the path where they first appeared.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
from collections.abc import Callable, Hashable
from typing import Any, cast

from vmamodel.drivers.ledger import Ledger

Dump = Any
_PLAIN = (type(None), bool, int, float, str, bytes)


def dump_state(obj: object) -> Dump:
    """The comparable plain-data form of ``obj`` (nested dicts, lists and scalars)."""
    return _Dumper().dump(obj, "")


class _Dumper:
    def __init__(self) -> None:
        self.seen: dict[int, str] = {}
        self.keep: list[object] = []  # keeps ids stable while dumping

    def dump(self, obj: object, path: str) -> Dump:
        if isinstance(obj, _PLAIN):
            return obj
        if isinstance(obj, enum.Enum):
            return f"{type(obj).__name__}.{obj.name}"
        if id(obj) in self.seen:
            return f"<same as {self.seen[id(obj)] or 'the root'}>"
        self.seen[id(obj)] = path
        self.keep.append(obj)
        if isinstance(obj, Ledger):
            return _ledger(obj)
        if isinstance(obj, dict):
            return {repr(k): self.dump(v, f"{path}[{k!r}]") for k, v in _sorted_items(obj)}
        if isinstance(obj, list | tuple):
            return [self.dump(v, f"{path}[{i}]") for i, v in enumerate(obj)]
        if isinstance(obj, set | frozenset):
            return sorted(repr(v) for v in obj)
        fields = _fields_of(obj)
        if fields is None:
            name = getattr(obj, "__qualname__", None)
            return f"<{name}>" if callable(obj) and name else f"<{type(obj).__name__} object>"
        out: dict[str, Dump] = {"__type__": type(obj).__name__}
        for name, value in fields:
            out[name] = self.dump(value, f"{path}.{name}")
        return out


def _sorted_items(obj: dict[Any, Any]) -> list[tuple[Any, Any]]:
    try:
        return sorted(obj.items())
    except TypeError:
        return sorted(obj.items(), key=lambda kv: repr(kv[0]))


def _ledger(ledger: Ledger) -> Dump:
    return {
        "__type__": "Ledger",
        **{f"count[{name}]": n for name, n in sorted(ledger.balance().items()) if n},
        "flags": [f"{flag.message} in {flag.cause}" for flag in ledger.flags()],
        "releases with nothing held": len(ledger.double_releases()),
    }


def _fields_of(obj: Any) -> list[tuple[str, object]] | None:
    """(name, value) of the state fields of an object, or None when it is opaque."""
    if callable(obj) or isinstance(obj, type):
        return None
    names = _field_names(cast(Hashable, type(obj)))
    values = [(n, _read(obj, n)) for n in names if hasattr(obj, n)]
    if not dataclasses.is_dataclass(obj) and hasattr(obj, "__dict__"):
        values += sorted((k, v) for k, v in vars(obj).items() if not k.startswith("__"))
    elif not names:
        return None
    return values


def _read(obj: object, name: str) -> object:
    """A field's value; one whose property raises is shown as such, not a crash of the check."""
    try:
        return getattr(obj, name)
    except Exception as err:  # a driver's property: its failure is the value
        return f"<unreadable: {type(err).__name__}>"


@functools.lru_cache(maxsize=1024)
def _field_names(key: Hashable) -> tuple[str, ...]:
    """A dataclass's compared fields, or a class's slots (per class, once)."""
    cls = cast(type, key)
    if dataclasses.is_dataclass(cls):
        return tuple(f.name for f in dataclasses.fields(cls) if f.compare)
    names: list[str] = []
    for klass in cls.__mro__:
        slots = klass.__dict__.get("__slots__", ())
        names += [slots] if isinstance(slots, str) else list(slots)
    return tuple(n for n in names if n != "__weakref__")


Difference = tuple[str, Dump, Dump]  # path, before, after


def diff_state(before: Dump, after: Dump, path: str = "") -> list[Difference]:
    """(path, before, after) for each leaf that differs; a key only one side has is
    ``"<absent>"`` on the other."""
    out: list[Difference] = []
    _diff(before, after, path, out.append)
    return out


def _diff(a: Dump, b: Dump, path: str, emit: Callable[[Difference], None]) -> None:
    if a == b:
        return
    if isinstance(a, dict) and isinstance(b, dict) and a.get("__type__") == b.get("__type__"):
        for key in list(a) + [k for k in b if k not in a]:
            sub = f"{path}.{key}" if not key.startswith("'") else f"{path}[{key}]"
            _diff(a.get(key, ABSENT), b.get(key, ABSENT), sub, emit)
        return
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _diff(x, y, f"{path}[{i}]", emit)
        return
    emit((path or "state", a, b))


ABSENT = "<absent>"


def direction(differences: list[Difference]) -> str:
    """"leak" when every differing number or list grew, "over-release" when every one
    shrank (a count of releases with nothing held counts the other way), else
    "state-not-restored"."""
    moves = []
    for path, a, b in differences:
        size_a, size_b = _size(a), _size(b)
        if size_a is None or size_b is None:
            return "state-not-restored"
        grew = size_b > size_a
        moves.append(not grew if "nothing held" in path else grew)
    if all(moves):
        return "leak"
    if not any(moves):
        return "over-release"
    return "state-not-restored"


def growth(differences: list[Difference]) -> int:
    """How much the numbers and lists grew in total (negative: shrank); releases with
    nothing held count as shrinking."""
    total = 0
    for path, a, b in differences:
        size_a, size_b = _size(a), _size(b)
        if size_a is not None and size_b is not None:
            total += (size_a - size_b) if "nothing held" in path else (size_b - size_a)
    return total


def _size(value: Dump) -> int | None:
    if value == ABSENT:
        return 0
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, list):
        return len(value)
    return None


def describe(differences: list[Difference], limit: int = 6) -> str:
    """``path: before -> after; ...`` (at most ``limit``)."""
    parts = [f"{path}: {_short(a)} -> {_short(b)}" for path, a, b in differences[:limit]]
    if len(differences) > limit:
        parts.append(f"... {len(differences) - limit} more")
    return "; ".join(parts)


def _short(value: Dump) -> str:
    if value == ABSENT:
        return "none"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
