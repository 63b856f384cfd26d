"""A sequence of calls run on the model and on a fresh host oracle child, in lockstep.

After every call the two sides must agree on what ``vmamodel diff`` compares (see
:mod:`vmamodel.scenario.compare`): the result (value or errno), the ``/proc/PID/maps`` text of
the address space the call ran on (and of the new process after fork) up to the renumbering of
inodes, and the ``VmFlags:`` line of every VMA. The host is asked for the call, its maps and its
smaps in one round trip (HostAddressSpace.run_batch).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import vmamodel
from vmamodel.file import File
from vmamodel.fuzz.generate import MEMFD_BYTES, MEMFDS, CallGenerator, Step
from vmamodel.host import HostAddressSpace, HostChildError, HostCrash
from vmamodel.host.traits import host_model_kwargs
from vmamodel.scenario.compare import InodeNumbering, vmflags
from vmamodel.scenario.tokens import errno_name

#: Calls whose result is a number (the others give 0 on success), as in the scenario language.
INT_RESULTS = frozenset({"mmap", "mremap", "brk"})
#: Longest text kept of either side of a difference (a maps text can be long).
SHOWN = 4000


class InvalidStep(Exception):
    """The step cannot run: its address space does not exist, or the oracle refused it (a
    kernel-chosen address outside the arena). Happens while shrinking, never a difference."""


@dataclass(frozen=True, slots=True)
class Divergence:
    """The first disagreement of a sequence: at step ``index`` (0-based), of ``kind``
    "result", "maps", "vmflags", "model-crash" or "host-crash"."""

    index: int
    func: str
    kind: str
    space: str
    model: str
    host: str

    @property
    def signature(self) -> tuple[str, str]:
        """What a shrunk sequence must still show to count as the same difference."""
        return self.func, self.kind

    def to_json(self) -> dict[str, Any]:
        return {"index": self.index, "func": self.func, "kind": self.kind,
                "space": self.space, "model": self.model, "host": self.host}

    def describe(self) -> str:
        if self.kind in ("maps", "vmflags"):
            return f"step {self.index + 1} ({self.func}): {self.kind} of {self.space} differ"
        return (f"step {self.index + 1} ({self.func}): {self.kind}: model {self.model!r}, "
                f"host {self.host!r}")


def _short(text: str) -> str:
    return text if len(text) <= SHOWN else text[:SHOWN] + "..."


def outcome_text(func: str, value: Any) -> str:
    """A result as the scenario language shows it: a number, or ``-1 ENAME``."""
    if isinstance(value, OSError):
        return f"-1 {errno_name(value.errno or 0)}"
    return hex(int(value)) if func in INT_RESULTS else "0"


@dataclass
class _Side:
    """One side (model or host): its address spaces by name and its inode numbering."""

    spaces: dict[str, Any] = field(default_factory=dict)
    numbering: InodeNumbering = field(default_factory=InodeNumbering)

    def state(self, maps: str, smaps: str) -> tuple[str, dict[str, str]]:
        return self.numbering.text(maps), vmflags(smaps)


class Lockstep:
    """The model and (unless ``host=False``) a fresh oracle child, stepped together."""

    def __init__(self, *, host: bool = True, model_kwargs: dict[str, Any] | None = None) -> None:
        kwargs = host_model_kwargs() if model_kwargs is None else model_kwargs
        self.model = _Side({"main": vmamodel.AddressSpace(**kwargs)})
        self.host = _Side({"main": HostAddressSpace()} if host else {})
        self.files: dict[str, File] = {
            name: vmamodel.memfd_create(name, MEMFD_BYTES) for name in MEMFDS}
        for file in self.files.values() if host else ():
            # Created in the first process now, so that every fork inherits the same memfd
            # (the oracle would create it lazily in whichever process maps it first).
            self.host.spaces["main"].ftruncate(file, MEMFD_BYTES)
        #: The host's result of every step applied, as outcome_text shows it (None: fork,
        #: exit, or no host).
        self.host_results: list[str | None] = []

    @property
    def models(self) -> dict[str, Any]:
        return self.model.spaces

    def close(self) -> None:
        for space in reversed(list(self.host.spaces.values())):
            space.close()
        self.host.spaces.clear()

    def __enter__(self) -> Lockstep:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _args(self, step: Step) -> list[Any]:
        args = [self.files[arg] if isinstance(arg, str) else arg for arg in step.args]
        if step.func == "touch":
            args[1] = bool(args[1])  # touch(addr, write)
        return args

    def apply(self, step: Step, index: int) -> Divergence | None:
        """Run one step on both sides and compare; raises InvalidStep."""
        if step.space not in self.model.spaces:
            raise InvalidStep(f"no address space {step.space!r}")
        self.host_results.append(None)
        if step.func == "fork":
            return self._fork(step, index)
        if step.func == "exit":
            self.model.spaces.pop(step.space).exit()
            if self.host.spaces:
                self.host.spaces.pop(step.space).exit()
            return None
        mine = self._model_call(step)
        if not self.host.spaces:
            self.model.spaces[step.space].smaps()
            return None
        theirs, maps, smaps = self._host_call(step)
        got, want = outcome_text(step.func, mine), outcome_text(step.func, theirs)
        self.host_results[-1] = want
        if isinstance(mine, Exception) and not isinstance(mine, OSError):
            return Divergence(index, step.func, "model-crash", step.space,
                              f"{type(mine).__name__}: {mine}", want)
        if got != want:
            return Divergence(index, step.func, "result", step.space, got, want)
        return self._compare(step, index, maps, smaps)

    def _model_call(self, step: Step) -> Any:
        try:
            return getattr(self.model.spaces[step.space], step.func)(*self._args(step))
        except Exception as exc:  # OSError is the errno; anything else is a model bug
            return exc

    def _host_call(self, step: Step) -> tuple[Any, str, str]:
        host = self.host.spaces[step.space]
        try:
            value, maps, smaps = host.run_batch(
                [(step.func, *self._args(step)), ("maps",), ("smaps",)])
        except (HostCrash, HostChildError) as exc:
            raise _HostCrashed(f"{type(exc).__name__}: {exc}") from exc
        if isinstance(value, ValueError):
            raise InvalidStep(f"the oracle refused {step.func}: {value}")
        return value, maps, smaps

    def _fork(self, step: Step, index: int) -> Divergence | None:
        assert step.bind is not None
        try:
            self.model.spaces[step.bind] = self.model.spaces[step.space].fork()
        except Exception as exc:
            return Divergence(index, "fork", "model-crash", step.space,
                              f"{type(exc).__name__}: {exc}", "")
        if not self.host.spaces:
            return None
        try:
            self.host.spaces[step.bind] = self.host.spaces[step.space].fork()
        except (HostCrash, HostChildError) as exc:
            raise _HostCrashed(f"{type(exc).__name__}: {exc}") from exc
        for space in (step.space, step.bind):
            host = self.host.spaces[space]
            divergence = self._compare(Step("fork", (), space), index, host.maps(), host.smaps())
            if divergence is not None:
                return divergence
        return None

    def _compare(self, step: Step, index: int, host_maps: str,
                 host_smaps: str) -> Divergence | None:
        model = self.model.spaces[step.space]
        got_maps, got_flags = self.model.state(model.maps(), model.smaps())
        want_maps, want_flags = self.host.state(host_maps, host_smaps)
        if got_maps != want_maps:
            return Divergence(index, step.func, "maps", step.space, _short(got_maps),
                              _short(want_maps))
        for vma, line in got_flags.items():
            if want_flags.get(vma, line) != line:
                return Divergence(index, step.func, "vmflags", step.space,
                                  f"{vma} {line}", f"{vma} {want_flags[vma]}")
        return None


class _HostCrashed(Exception):
    """The oracle child died: reported as a host-crash divergence."""


@dataclass
class SequenceResult:
    """What one seed gave: the steps run (up to and including a divergence), the divergence
    if any, whether it stopped on an invalid step, and its wall time."""

    seed: int
    steps: list[Step]
    divergence: Divergence | None = None
    invalid: str | None = None
    seconds: float = 0.0


def run_steps(steps: Sequence[Step], *, host: bool = True) -> tuple[list[str | None],
                                                                   Divergence | None]:
    """Replay concrete steps on a fresh model and a fresh oracle child: (the host's results
    of the steps run, the divergence or None). Raises InvalidStep."""
    with Lockstep(host=host) as pair:
        for index, step in enumerate(steps):
            divergence = _apply(pair, step, index)
            if divergence is not None:
                return pair.host_results, divergence
        return pair.host_results, None


def _apply(pair: Lockstep, step: Step, index: int) -> Divergence | None:
    try:
        return pair.apply(step, index)
    except _HostCrashed as exc:
        return Divergence(index, step.func, "host-crash", step.space, "", str(exc))


def run_sequence(seed: int, length: int, *, host: bool = True,
                 on_step: Callable[[], None] | None = None) -> SequenceResult:
    """Generate and run ``length`` calls of seed ``seed``, stopping at the first divergence."""
    start = time.perf_counter()
    generator = CallGenerator(seed)
    result = SequenceResult(seed, [])
    with Lockstep(host=host) as pair:
        for index in range(length):
            step = generator.next_step(pair.models)
            result.steps.append(step)
            try:
                result.divergence = _apply(pair, step, index)
            except InvalidStep as exc:
                result.invalid = str(exc)
                break
            if on_step is not None:
                on_step()
            if result.divergence is not None:
                break
    result.seconds = time.perf_counter() - start
    return result
