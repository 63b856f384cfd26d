"""``vmamodel explain``: why a process has so many VMAs.

Three sources: a live process (its /proc/PID/maps and smaps), a snapshot (maps text, with
smaps when given), or a recording (replayed on the model). The answer: the VMA count against
vm.max_map_count; the VMAs by kind; and for every pair of touching VMAs the kernel keeps
apart, the rule that does it, aggregated with counts and the longest runs of one rule.

On a recording the model knows every fact and asks ``vmamodel.merge.vma_pair_refusal``. On
/proc text the rule is inferred from what /proc shows, in the order is_mergeable_vma() checks
(VM_SPECIAL, vm_flags, file, userfaultfd context, anonymous name), then offsets; anon_vma
identity is not shown anywhere in /proc, so a pair that nothing visible keeps apart is
reported as "anon_vma (not shown by /proc)", with whether both sides hold anonymous pages.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vmamodel.constants import VM, VM_IGNORE_MERGE, VM_MNEMONICS, VM_SPECIAL
from vmamodel.merge import vma_pair_refusal
from vmamodel.mm import AddressSpace
from vmamodel.parse import NAME_PAD_WIDTH, parse_maps_line, unescape_name
from vmamodel.procfs import get_vma_name
from vmamodel.replay.recording import load_recording
from vmamodel.replay.replay import replay
from vmamodel.replay.strace import StraceCall

__all__ = ["ExplainError", "Explanation", "explain_model", "explain_source", "explain_text"]

SPECIAL_NAMES = frozenset({"[vdso]", "[vvar]", "[vvar_vclock]", "[vsyscall]"})
SHMEM_DEV = (0, 1)
_MNEMONIC_BITS = {name: bit for bit, name in VM_MNEMONICS.items() if name}
_UFFD = (1 << 9) | (1 << 12) | (1 << 41)  # um, uw, ui
_ACCESS = VM.READ | VM.WRITE | VM.EXEC
# Patterns that start with a literal, which the regex engine finds fast: 60,000 VMAs are 1.5
# million smaps lines. The line after each VmFlags: line is the next block's header.
_SMAPS_NEXT_HEAD = re.compile(r"VmFlags:[^\n]*\n([^\n]+)")
_SMAPS_ANON = re.compile(r"\nAnonymous: +(\d+) kB")
_SMAPS_FLAGS = re.compile(r"\nVmFlags:([^\n]*)")


def smaps_fields(smaps: str, source: str) -> tuple[list[str], list[str], list[str]]:
    """(header lines, Anonymous: kB values, VmFlags: texts) of every smaps block, in order."""
    if not smaps.strip():
        return [], [], []
    heads = [smaps[:smaps.find("\n")], *_SMAPS_NEXT_HEAD.findall(smaps)]
    anons = _SMAPS_ANON.findall(smaps)
    flags = _SMAPS_FLAGS.findall(smaps)
    if not len(heads) == len(anons) == len(flags):
        raise ExplainError(f"{source}: not an smaps text (blocks without Anonymous: or "
                           "VmFlags: lines)")
    return heads, anons, flags
DEFAULT_MAX_MAP_COUNT = 65530


class ExplainError(ValueError):
    """Input explain cannot read; the message names it."""


@dataclass(slots=True)
class VmaFacts:
    """What explain needs of one VMA."""

    start: int
    end: int
    flags: int | None  # None: no smaps, perms only
    perms: str
    pgoff: int
    file_key: tuple[Any, ...] | None
    name: str
    anon_pages: bool | None  # None: unknown


@dataclass(slots=True)
class Run:
    reason: str
    start: int
    end: int
    pairs: int


@dataclass(slots=True)
class Explanation:
    source: str
    exact: bool  # the rules come from the model (a recording) rather than /proc text
    vma_count: int
    max_map_count: int
    kinds: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)
    runs: list[Run] = field(default_factory=list)
    touching_pairs: int = 0
    notes: list[str] = field(default_factory=list)
    #: on a recording: reason -> call name (or "before the start") -> [count, first line,
    #: last line] of the calls that made the boundaries
    made_by: dict[str, dict[str, list[int]]] = field(default_factory=dict)

    def to_json(self, top: int = 10) -> dict[str, Any]:
        runs = sorted(self.runs, key=lambda r: -r.pairs)[:top]
        return {
            "source": self.source,
            "exact": self.exact,
            "vma_count": self.vma_count,
            "max_map_count": self.max_map_count,
            "headroom": self.max_map_count - self.vma_count,
            "kinds": dict(self.kinds.most_common()),
            "touching_pairs": self.touching_pairs,
            "pairs_apart": sum(self.reasons.values()),
            "reasons": dict(self.reasons.most_common()),
            "largest_runs": [
                {"reason": r.reason, "start": hex(r.start), "end": hex(r.end),
                 "pairs": r.pairs, "vmas": r.pairs + 1}
                for r in runs
            ],
            "notes": self.notes,
            "made_by": {
                reason: {name: {"count": c, "first_line": a, "last_line": b}
                         for name, (c, a, b) in calls.items()}
                for reason, calls in self.made_by.items()
            },
        }


# -- kinds and rules --------------------------------------------------------------------------


def kind_of(v: VmaFacts) -> str:
    """file, anonymous, heap, stack, guard / PROT_NONE, shared memory, special."""
    if v.name in SPECIAL_NAMES or (v.flags is not None and v.flags & VM_SPECIAL):
        return "special"
    if v.name == "[stack]":
        return "stack"
    if v.perms[:3] == "---":
        return "guard / PROT_NONE"
    if v.name == "[heap]":
        return "heap"
    if v.file_key is not None:
        dev = v.file_key[0]
        if v.perms[3] == "s" and (dev == SHMEM_DEV or v.name.startswith(("/memfd:", "/SYSV"))):
            return "shared memory"
        return "file"
    return "anonymous"


@functools.lru_cache(maxsize=1024)
def _flag_names(bits: int) -> str:
    return ",".join(VM_MNEMONICS.get(b, f"bit{b}") or f"bit{b}"
                    for b in range(64) if bits >> b & 1)


def _flags_reason(a: VmaFacts, b: VmaFacts, differ: int) -> str:
    names = _flag_names(differ)
    if differ & _UFFD:
        return f"userfaultfd registration differs ({names})"
    hint = ""
    if (a.perms[:3] == "---") != (b.perms[:3] == "---"):
        hint = " (PROT_NONE guard next to accessible memory)"
    elif differ & _ACCESS:
        hint = " (protections differ)"
    return f"VmFlags differ: {names}{hint}"


def proc_rule(a: VmaFacts, b: VmaFacts) -> str | None:
    """The rule that keeps touching VMAs ``a`` < ``b`` apart, as far as /proc shows it."""
    if a.name in SPECIAL_NAMES or b.name in SPECIAL_NAMES:
        return "VM_SPECIAL (special mapping: vDSO, vvar)"
    if a.flags is not None and b.flags is not None:
        if (a.flags | b.flags) & VM_SPECIAL:
            return f"VM_SPECIAL ({_flag_names((a.flags | b.flags) & VM_SPECIAL)})"
        differ = (a.flags ^ b.flags) & ~VM_IGNORE_MERGE
        if differ:
            return _flags_reason(a, b, differ)
    elif a.perms != b.perms:
        return f"protections differ ({a.perms} / {b.perms}; no smaps: other flags unknown)"
    if a.file_key != b.file_key:
        if a.file_key is None or b.file_key is None:
            return "file next to anonymous memory"
        return "different files"
    if a.name != b.name:
        return "anonymous names differ"
    if a.file_key is not None and a.pgoff + ((a.end - a.start) >> 12) != b.pgoff:
        return "file offsets not contiguous"
    if a.anon_pages and b.anon_pages:
        return "anon_vma (not shown by /proc; both sides hold anonymous pages)"
    if a.anon_pages is None:
        return "anon_vma or another fact /proc does not show (no smaps)"
    return "nothing /proc shows (anon_vma, or a driver's close hook)"


def model_rule(mm: AddressSpace, prev: Any, vma: Any) -> str | None:
    """vma_pair_refusal(), with the differing flags named."""
    rule = vma_pair_refusal(mm, prev, vma)
    if rule == "vm_flags":
        a, b = _facts_of_vma(mm, prev), _facts_of_vma(mm, vma)
        return _flags_reason(a, b, (prev.vm_flags ^ vma.vm_flags) & ~VM_IGNORE_MERGE)
    return rule


# -- facts from /proc text and from the model -------------------------------------------------


def _perms(flags: int, shared: bool) -> str:
    return ("r" if flags & VM.READ else "-") + ("w" if flags & VM.WRITE else "-") + (
        "x" if flags & VM.EXEC else "-") + ("s" if shared else "p")


def _facts_of_vma(mm: AddressSpace, vma: Any) -> VmaFacts:
    f = vma.vm_file
    flags = int(vma.vm_flags)
    return VmaFacts(
        vma.vm_start, vma.vm_end, flags, _perms(flags, bool(flags & VM.SHARED)),
        vma.vm_pgoff, (f.dev, f.ino, id(f)) if f is not None else None,
        get_vma_name(mm, vma) or "", vma.anon_vma is not None,
    )


@functools.lru_cache(maxsize=4096)
def _parse_flags(text: str) -> int:
    """The vm_flags of a VmFlags line's mnemonics."""
    bits = 0
    for name in text.split():
        bit = _MNEMONIC_BITS.get(name)
        if bit is not None:
            bits |= 1 << bit
    return bits


_MapsTuple = tuple[int, int, str, int, tuple[int, int], int, str, str]
_MAPS_LINE = re.compile(
    r"(([0-9a-f]+)-([0-9a-f]+)) ([-r][-w][-x][ps]) ([0-9a-f]+) ([0-9a-f]+):([0-9a-f]+) "
    r"([0-9]+) (.*)"
)


def _fast_maps(lines: list[str]) -> list[_MapsTuple] | None:
    """Every maps line by one pattern, or None when one does not match (the checked path
    then names it)."""
    out: list[_MapsTuple] = []
    match = _MAPS_LINE.fullmatch
    for line in lines:
        m = match(line)
        if m is None:
            if not line.strip():
                continue
            return None
        rest = m.group(9)
        prefix = m.start(9)
        name = rest[max(prefix, NAME_PAD_WIDTH) + 1 - prefix:] if rest else ""
        out.append((int(m.group(2), 16), int(m.group(3), 16), m.group(4), int(m.group(5), 16),
                    (int(m.group(6), 16), int(m.group(7), 16)), int(m.group(8)),
                    unescape_name(name), m.group(1)))
    return out


def _checked_maps(maps: str, source: str) -> list[_MapsTuple]:
    out: list[_MapsTuple] = []
    for number, line in enumerate(maps.splitlines(), 1):
        if not line.strip():
            continue
        try:
            e = parse_maps_line(line)
        except ValueError as exc:
            raise ExplainError(f"{source}:{number}: {exc}") from None
        out.append((e.start, e.end, e.perms, e.offset, e.dev, e.inode, e.name,
                    line.split(" ", 1)[0]))
    return out


def facts_from_text(maps: str, smaps: str | None, source: str) -> list[VmaFacts]:
    """One VmaFacts per maps line; flags and anonymous pages from smaps when given."""
    extra: dict[str, tuple[int, bool]] = {}
    if smaps is not None:
        heads, anons, flag_lines = smaps_fields(smaps, source)
        for head, anon_kb, names in zip(heads, anons, flag_lines, strict=True):
            extra[head.split(" ", 1)[0]] = (_parse_flags(names), anon_kb != "0")
    entries = _fast_maps(maps.splitlines())
    if entries is None:
        entries = _checked_maps(maps, source)
    facts = []
    for start, end, perms, offset, dev, inode, name, head in entries:
        flags: int | None = None
        anon: bool | None = None
        if head in extra:
            flags, anon = extra[head]
        key = (dev, inode, name) if inode or dev != (0, 0) else None
        facts.append(VmaFacts(start, end, flags, perms, offset >> 12, key, name, anon))
    return facts


# -- aggregation ------------------------------------------------------------------------------


def _aggregate(exp: Explanation, pairs: list[tuple[int, int, str | None]]) -> None:
    """pairs: (start of left, end of right, rule or None) of consecutive touching VMAs, in
    address order; a run is a chain of touching pairs kept apart by one rule."""
    run: Run | None = None
    last_end = -1
    for start, end, rule in pairs:
        exp.touching_pairs += 1
        if rule is None:
            run = None
            continue
        exp.reasons[rule] += 1
        if run is not None and run.reason == rule and start < last_end:
            run.end, run.pairs = end, run.pairs + 1
        else:
            run = Run(rule, start, end, 1)
            exp.runs.append(run)
        last_end = end


def explain_text(maps: str, smaps: str | None, *, source: str = "maps",
                 max_map_count: int = DEFAULT_MAX_MAP_COUNT) -> Explanation:
    """Explain a /proc maps text (and its smaps)."""
    facts = facts_from_text(maps, smaps, source)
    inside = [f for f in facts if f.name != "[vsyscall]"]
    exp = Explanation(source, False, len(inside), max_map_count)
    exp.kinds.update(kind_of(f) for f in facts)
    pairs = []
    for a, b in itertools.pairwise(inside):
        if a.end == b.start:
            pairs.append((a.start, b.end, proc_rule(a, b)))
    _aggregate(exp, pairs)
    if smaps is None:
        exp.notes.append("no smaps: flags inferred from perms only")
    exp.notes.append("anon_vma identity is not shown by /proc: pairs that only it keeps "
                     "apart are reported as such, with whether both hold anonymous pages")
    return exp


BEFORE_START = "before the start snapshot"


def _made_by(exp: Explanation, reason: str, call: StraceCall | None) -> None:
    name = BEFORE_START if call is None else call.name
    line = 0 if call is None else call.line
    entry = exp.made_by.setdefault(reason, {}).setdefault(name, [0, line, line])
    entry[0] += 1
    entry[1], entry[2] = min(entry[1], line), max(entry[2], line)


def explain_model(
    mm: AddressSpace, *, source: str = "model", edges: Mapping[int, StraceCall] | None = None
) -> Explanation:
    """Explain a model address space (exact: the model's own merge rules). ``edges`` (from a
    replay): the last call whose range began or ended at each address, named for each
    boundary kept apart."""
    exp = Explanation(source, True, mm.map_count, mm.max_map_count)
    vmas = list(mm.tree)
    exp.kinds.update(kind_of(_facts_of_vma(mm, vma)) for vma in vmas)
    pairs = []
    for prev, vma in itertools.pairwise(vmas):
        if prev.vm_end == vma.vm_start:
            rule = model_rule(mm, prev, vma)
            pairs.append((prev.vm_start, vma.vm_end, rule))
            if rule is not None and edges is not None:
                _made_by(exp, rule, edges.get(vma.vm_start))
    _aggregate(exp, pairs)
    return exp


# -- sources ----------------------------------------------------------------------------------


def _max_map_count() -> int:
    try:
        return int(Path("/proc/sys/vm/max_map_count").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return DEFAULT_MAX_MAP_COUNT


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="surrogateescape")
    except OSError as exc:
        raise ExplainError(f"{path}: {exc.strerror}") from None


def explain_source(sources: list[str]) -> Explanation:
    """PID, MAPS [SMAPS], or a recording directory."""
    first = Path(sources[0])
    if len(sources) == 1 and sources[0].isdigit() and not first.exists():
        proc = Path("/proc") / sources[0]
        # smaps alone: its headers are the maps lines, read in the same pass of the kernel
        text = _read(proc / "smaps")
        heads, _, _ = smaps_fields(text, str(proc / "smaps"))
        return explain_text("\n".join(heads) + "\n", text, source=f"pid {sources[0]}",
                            max_map_count=_max_map_count())
    if len(sources) == 1 and first.is_dir():
        rec = load_recording(first)
        result = replay(rec, keep_going=True)
        assert result.model is not None
        exp = explain_model(result.model, source=str(first), edges=result.edges)
        if result.divergences:
            exp.notes.append(f"the replay diverged {len(result.divergences)} time(s): "
                             "the model's final layout may differ from the program's")
        return exp
    if len(sources) > 2:
        raise ExplainError("explain takes PID, MAPS [SMAPS] or a recording directory")
    maps = _read(first)
    smaps: str | None = _read(Path(sources[1])) if len(sources) == 2 else None
    if smaps is None and "VmFlags:" in maps:
        heads, _, _ = smaps_fields(maps, sources[0])
        smaps, maps = maps, "\n".join(heads) + "\n"
    return explain_text(maps, smaps, source=sources[0], max_map_count=_max_map_count())


def render_explanation(exp: Explanation, top: int = 10) -> str:
    """The human-readable answer."""
    lines = []
    pct = 100.0 * exp.vma_count / exp.max_map_count if exp.max_map_count else 0.0
    lines.append(f"{exp.source}: {exp.vma_count:,} VMAs, {pct:.1f}% of vm.max_map_count "
                 f"({exp.max_map_count:,}; {exp.max_map_count - exp.vma_count:,} to go)")
    lines.append("by kind: " + ", ".join(f"{k} {n:,}" for k, n in exp.kinds.most_common()))
    apart = sum(exp.reasons.values())
    lines.append(f"{exp.touching_pairs:,} pairs of touching VMAs, {apart:,} kept apart"
                 + (" (rules from the model)" if exp.exact else " (rules inferred from /proc)"))
    for reason, count in exp.reasons.most_common(top):
        lines.append(f"  {count:>8,} pairs apart: {reason}")
        made = exp.made_by.get(reason)
        if made:
            parts = [
                f"{name} x{c:,}" + ("" if name == BEFORE_START else
                                     f" (line {a}" + (f"-{b})" if b != a else ")"))
                for name, (c, a, b) in sorted(made.items(), key=lambda kv: -kv[1][0])
            ]
            lines.append("           made by " + ", ".join(parts))
    runs = sorted(exp.runs, key=lambda r: -r.pairs)[:top]
    if runs:
        lines.append("largest runs:")
        for r in runs:
            lines.append(f"  {r.pairs + 1:>8,} VMAs {r.start:#x}-{r.end:#x}: {r.reason}")
    lines += [f"note: {n}" for n in exp.notes]
    return "\n".join(lines)
