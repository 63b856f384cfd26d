"""Steps as a scenario file (the language of vmamodel.scenario), for ``vmamodel diff``.

Addresses in the arena are written ``BASE + 0x...``, flags by their names, memfds by the name
they are bound to; each call carries the host kernel's result as its expectation, so the file
documents what the kernel does and a model that disagrees fails it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from vmamodel import constants as c
from vmamodel.fuzz.generate import MEMFD_BYTES, Step
from vmamodel.host.arena import ARENA_BASE, ARENA_SIZE


def _names(prefix: str, exclude: Iterable[str] = ()) -> dict[int, str]:
    """value -> NAME of the constants with a prefix (the first name of each value)."""
    out: dict[int, str] = {}
    for name, value in vars(c).items():
        if name.startswith(prefix) and isinstance(value, int) and name not in exclude:
            out.setdefault(value, name)
    return out


_MAP_BITS = {v: k for k, v in _names("MAP_", ("MAP_TYPE", "MAP_FILE", "MAP_SHARED_VALIDATE",
                                               "MAP_HUGE_SHIFT", "MAP_HUGE_2MB",
                                               "MAP_HUGE_1GB")).items()}
_PROT_BITS = {v: k for k, v in _names("PROT_", ("PROT_NONE",)).items()}
_MREMAP_BITS = {v: k for k, v in _names("MREMAP_").items()}
_MCL_BITS = {v: k for k, v in _names("MCL_").items()}
_MLOCK_BITS = {v: k for k, v in _names("MLOCK_").items()}
_ADVICE = _names("MADV_")


def bits(value: int, names: Mapping[str, int], zero: str = "0") -> str:
    """``MAP_PRIVATE|MAP_ANONYMOUS|0x400000``: named bits first, the rest in hex."""
    if value == 0:
        return zero
    parts = []
    rest = value
    for name, bit in sorted(names.items(), key=lambda item: item[1]):
        if bit and rest & bit == bit:
            parts.append(name)
            rest &= ~bit
    if rest:
        parts.append(hex(rest))
    return "|".join(parts)


def address(value: int) -> str:
    """``BASE + 0x3000`` inside the arena, hex elsewhere."""
    if ARENA_BASE <= value < ARENA_BASE + ARENA_SIZE:
        offset = value - ARENA_BASE
        return f"BASE + {offset:#x}" if offset else "BASE"
    return hex(value) if value >= 0x1000 else str(value)


def number(value: int) -> str:
    return hex(value) if value >= 0x1000 else str(value)


def call_text(step: Step) -> str:
    """The call of one step, without binding or expectation."""
    a = step.args
    func = step.func
    if func == "mmap":
        addr, length, prot, flags, fd, off = a
        assert isinstance(addr, int) and isinstance(length, int) and isinstance(prot, int)
        assert isinstance(flags, int) and isinstance(off, int)
        args = [address(addr), number(length), bits(prot, _PROT_BITS, "PROT_NONE"),
                _map_flags(flags), fd if isinstance(fd, str) else "-1", number(off)]
    elif func == "mremap":
        old, old_len, new_len, flags, new_addr = (int(x or 0) for x in a)
        args = [address(old), number(old_len), number(new_len), bits(flags, _MREMAP_BITS),
                address(new_addr)]
    elif func in ("munmap", "mlock", "munlock"):
        args = [address(int(a[0] or 0)), number(int(a[1] or 0))]
    elif func == "mprotect":
        args = [address(int(a[0] or 0)), number(int(a[1] or 0)),
                bits(int(a[2] or 0), _PROT_BITS, "PROT_NONE")]
    elif func == "madvise":
        advice = int(a[2] or 0)
        args = [address(int(a[0] or 0)), number(int(a[1] or 0)), _ADVICE.get(advice, str(advice))]
    elif func == "mlock2":
        args = [address(int(a[0] or 0)), number(int(a[1] or 0)), bits(int(a[2] or 0), _MLOCK_BITS)]
    elif func == "mlockall":
        args = [bits(int(a[0] or 0), _MCL_BITS)]
    elif func == "touch":
        args = [address(int(a[0] or 0)), "write" if a[1] else "read"]
    elif func == "brk":
        args = [address(int(a[0] or 0))]
    else:
        args = [str(x) for x in a]
    target = "" if step.space == "main" else f"{step.space}."
    return f"{target}{func}({', '.join(str(x) for x in args)})"


def _map_flags(flags: int) -> str:
    kind = flags & c.MAP_TYPE
    shown = {c.MAP_SHARED: "MAP_SHARED", c.MAP_PRIVATE: "MAP_PRIVATE",
             c.MAP_SHARED_VALIDATE: "MAP_SHARED_VALIDATE"}.get(kind, hex(kind) if kind else "")
    rest = bits(flags & ~c.MAP_TYPE, {k: v for k, v in _MAP_BITS.items() if v & ~c.MAP_TYPE})
    return "|".join(p for p in (shown, rest if flags & ~c.MAP_TYPE else "") if p) or "0"


def expectation(step: Step, host: str | None) -> str:
    """`` = <host result>`` (host as outcome_text shows it), or nothing."""
    if host is None or step.func in ("fork", "exit"):
        return ""
    if host.startswith("-1 "):
        return f" = -{host[3:]}"
    return f" = {address(int(host, 0))}"


def scenario_text(steps: Sequence[Step], host_results: Sequence[str | None],
                  header: Sequence[str]) -> str:
    """A scenario file: the header as comments, the memfds it uses, then one line per step."""
    lines = [f"# {line}" if line else "#" for line in header]
    lines.append("")
    used = sorted({arg for step in steps for arg in step.args if isinstance(arg, str)})
    for name in used:
        lines.append(f'{name} = memfd_create("{name}", {MEMFD_BYTES // 1024}K)')
    for step, host in zip(steps, host_results, strict=True):
        bind = f"{step.bind} = " if step.bind else ""
        lines.append(f"{bind}{call_text(step)}{expectation(step, host)}")
    lines.append("maps")
    return "\n".join(lines) + "\n"
