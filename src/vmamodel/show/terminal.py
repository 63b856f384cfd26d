"""The terminal view: after each step, the address space as a band of segments.

Each VMA is a bracketed segment ``[rw-p 12K]``; a gap between VMAs is written as its size
(``·1023.9G·``); touching VMAs sit side by side (``][``). What the step changed is marked with
a sign inside the bracket (``+`` created, ``/`` split, ``=`` merged, ``~`` flags changed, ``>``
resized, ``@`` anon_vma assigned) and, on a colour terminal, highlighted; so the picture reads
the same in plain text (pipes, ``NO_COLOR``).
"""

from __future__ import annotations

from collections.abc import Iterator

from rich.console import Console
from rich.text import Text

from vmamodel.show.model import Film, StepInfo, VmaRecord, human_size

MARKS = {"created": "+", "split": "/", "merged": "=", "flags": "~", "resized": ">",
         "anon_vma": "@", "changed": "*"}
CHANGE_STYLES = {"created": "bold green", "split": "bold yellow", "merged": "bold cyan",
                 "flags": "bold magenta", "resized": "bold blue", "anon_vma": "bold",
                 "changed": "bold"}
#: segment colours by protection (the first three characters of the maps perms)
PERM_STYLES = {"---": "white on grey30", "r--": "black on steel_blue1",
               "rw-": "black on pale_green3", "r-x": "black on light_salmon1",
               "rwx": "black on orange1", "-w-": "black on khaki1"}
INDENT = "    "


def segment(record: VmaRecord, new: bool) -> Text:
    """``[+rw-p 12K /memfd:buf]``: one VMA; the sign says how it changed at this step."""
    name = record.name.rsplit("/", 1)[-1]
    label = f"{record.perms} {human_size(record.size)}" + (f" {name}" if name else "")
    edge = CHANGE_STYLES[record.change] if new else "dim"
    text = Text("[", style=edge)
    if new:
        text.append(MARKS[record.change], style=edge)
    text.append(label, style=PERM_STYLES.get(record.perms[:3], "black on plum2"))
    text.append("]", style=edge)
    return text


def gap(size: int) -> Text:
    return Text(f" ·{human_size(size)}· ", style="dim")


def band(film: Film, step: StepInfo, vmas: list[VmaRecord]) -> list[list[Text]]:
    """The tokens of the band after ``step``: one list per live address space."""
    bands: list[list[Text]] = []
    born = set(step.born)
    for index, label in enumerate(film.spaces):
        if index not in step.frag:
            continue  # not alive after this step
        tokens: list[Text] = []
        mine = [r for r in vmas if r.space == index]
        if len(film.spaces) > 1:
            tokens.append(Text(f"{label}: ", style="magenta"))
        if not mine:
            tokens.append(Text("(no mappings)", style="dim"))
        for left, right in zip([None, *mine], mine, strict=False):
            if left is not None and left.end < right.start:
                tokens.append(gap(right.start - left.end))
            tokens.append(segment(right, right.key in born))
        bands.append(tokens)
    return bands


def pack(tokens: list[Text], width: int) -> Iterator[Text]:
    """Lines of at most ``width`` cells, breaking only between tokens."""
    line = Text(INDENT)
    for token in tokens:
        if line.cell_len + token.cell_len > width and line.cell_len > len(INDENT):
            yield line
            line = Text(INDENT)
        if line.cell_len + token.cell_len > width:
            token = token[: max(1, width - line.cell_len - 1)] + Text("…", style="dim")
        line.append_text(token)
    if line.cell_len > len(INDENT):
        yield line


def change_lines(film: Film, step: StepInfo) -> Iterator[Text]:
    """What the step did to the VMAs: created, split, merged, changed, removed."""
    def where(record: VmaRecord) -> str:
        return f"[{film.spaces[record.space]}] " if len(film.spaces) > 1 else ""

    for key in step.born:
        record = film.vmas[key]
        was = ""
        if record.prev is not None:
            old = film.vmas[record.prev]
            was = f" (was {old.maps.split()[0]} {old.perms})"
        yield Text(f"{INDENT}{MARKS[record.change]} {record.change:<8} {where(record)}"
                   f"{record.maps}{was}",
                   style=CHANGE_STYLES[record.change].replace("bold ", ""))
    for key in step.died:
        record = film.vmas[key]
        if record.end_reason:
            yield Text(f"{INDENT}- {'removed':<8} {where(record)}{record.maps} "
                       f"({record.end_reason})", style="red")


def detail_lines(step: StepInfo) -> Iterator[Text]:
    for merge in step.merges:
        style = "yellow" if merge.startswith("refused") else "cyan"
        yield Text(f"{INDENT}⋈ {merge}", style=style)
    for hook in step.hooks:
        yield Text(f"{INDENT}↪ hook {hook}", style="blue")


def frag_line(film: Film, step: StepInfo) -> Text:
    parts = []
    for index, frag in step.frag.items():
        who = f"{film.spaces[index]}: " if len(film.spaces) > 1 else ""
        apart = ", ".join(f"{rule} ({n} {'pair' if n == 1 else 'pairs'})"
                          for rule, n in sorted(frag.refusals.items()))
        plural = "" if frag.count == 1 else "s"
        parts.append(f"{who}{frag.count} VMA{plural}, largest gap {human_size(frag.largest_gap)}"
                     + (f", kept apart by {apart}" if apart else ""))
    return Text(INDENT + "; ".join(parts), style="dim")


def header(film: Film, step: StepInfo) -> Text:
    where = f"{film.title}:{step.line}" if step.line is not None else f"#{step.index}"
    text = Text(f"{where}  ", style="cyan")
    text.append(step.text)
    style = "green" if step.ok else "yellow"
    if step.result:
        text.append(f" = {step.result}", style=style)
    if step.expectation:
        text.append(f"  ✗ {step.expectation}", style="bold red")
    return text


def print_film(console: Console, film: Film, steps: range | None = None, *,
               events: bool = False) -> None:
    """Print every step of ``film`` (or those in ``steps``): its call, the band after it, and
    what it changed; with ``events``, every trace event of the step too."""
    for step, vmas in film.states():
        if steps is not None and step.index not in steps:
            continue
        console.print(header(film, step), overflow="fold")
        for tokens in band(film, step, vmas):
            for line in pack(tokens, console.width):
                console.print(line, no_wrap=True, overflow="ellipsis")
        for line in (*change_lines(film, step), *detail_lines(step)):
            console.print(line, overflow="fold")
        for event in step.events if events else ():
            console.print(Text(f"{INDENT}· {event}", style="dim"), overflow="fold")
        console.print(frag_line(film, step), overflow="fold")
