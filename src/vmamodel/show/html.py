"""The HTML view: one self-contained page (inline CSS, JS and data; no network at all).

The page's script and style are package data (``page.js``, ``page.css``) inlined when a page is
built. The film goes in as compact JSON columns (gzipped, in base64): one entry per VMA version and
per step, so a step costs what it changed, never a whole snapshot.
"""

from __future__ import annotations

import base64
import gc
import gzip
import html
import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from importlib import resources
from os import PathLike
from typing import Any

from vmamodel.events import Event
from vmamodel.mm import AddressSpace
from vmamodel.procfs import NAME_PAD
from vmamodel.scenario import parse_file
from vmamodel.show.model import CHANGES, Film, VmaRecord, film_from_events, film_of
from vmamodel.show.runs import film_of_scenario

Source = Film | AddressSpace | Iterable[Event] | str | PathLike[str]


def _table(values: Iterable[str]) -> tuple[list[str], dict[str, int]]:
    table: list[str] = []
    index: dict[str, int] = {}
    for value in values:
        if value not in index:
            index[value] = len(table)
            table.append(value)
    return table, index


def film_data(film: Film) -> dict[str, Any]:
    """The film as JSON-ready columns (what page.js reads)."""
    vmas, steps = film.vmas, film.steps
    flags, flag_index = _table(r.flags for r in vmas)
    ops, ops_index = _table(r.vm_ops or "" for r in vmas)
    reasons, reason_index = _table(["", *(r.end_reason for r in vmas)])
    rules, rule_index = _table(rule for s in steps for f in s.frag.values()
                               for rule in f.refusals)
    change_index = {name: i for i, name in enumerate(CHANGES)}
    parts = [_maps_parts(r) for r in vmas]
    perms, perm_index = _table(p[0] for p in parts)
    offsets, offset_index = _table(p[1] for p in parts)
    devs, dev_index = _table(p[2] for p in parts)
    names, name_index = _table(p[3] for p in parts)
    return {
        "title": film.title,
        "spaces": film.spaces,
        "changes": list(CHANGES),
        "flags": flags,
        "ops": ops,
        "reasons": reasons,
        "rules": rules,
        "perms": perms,
        "offsets": offsets,
        "devs": devs,
        "names": names,
        "namePad": NAME_PAD,
        "v": {
            "s": [r.space for r in vmas],
            "a": [r.start for r in vmas],
            "e": [r.end for r in vmas],
            # the maps line in pieces (page.js puts it back together), or whole ("mx") where
            # it would not come back byte for byte
            "pm": [perm_index[p[0]] for p in parts],
            "of": [offset_index[p[1]] for p in parts],
            "dv": [dev_index[p[2]] for p in parts],
            "nm": [name_index[p[3]] for p in parts],
            "mx": {str(r.key): r.maps for r in vmas if _maps_line(r, *_maps_parts(r)) != r.maps},
            "f": [flag_index[r.flags] for r in vmas],
            "an": [-1 if r.anon_vma is None else r.anon_vma for r in vmas],
            "o": [ops_index[r.vm_ops or ""] for r in vmas],
            "id": [r.vma_id for r in vmas],
            "b": [r.born for r in vmas],
            "d": [-1 if r.died is None else r.died for r in vmas],
            "c": [change_index[r.change] for r in vmas],
            "p": [-1 if r.prev is None else r.prev for r in vmas],
            "r": [reason_index[r.end_reason] for r in vmas],
        },
        "st": {
            "l": [s.line for s in steps],
            "t": [s.text for s in steps],
            "r": [s.result for s in steps],
            "ok": [int(s.ok) for s in steps],
            "x": [s.expectation for s in steps],
            # per space: [space, count, largest gap, [rule index, pairs]...]
            "fr": [[[space, f.count, f.largest_gap,
                     *[x for rule, n in f.refusals.items() for x in (rule_index[rule], n)]]
                    for space, f in s.frag.items()] for s in steps],
        },
    }


#: addresses above this lose digits as JavaScript numbers; their maps line is kept whole
EXACT_IN_JS = 1 << 53


def _maps_parts(record: VmaRecord) -> tuple[str, str, str, str]:
    """(perms, offset, "dev inode", name) of a record's maps line."""
    fields = record.maps.split(maxsplit=5)
    if len(fields) < 5:
        return "", "", "", ""
    return fields[1], fields[2], f"{fields[3]} {fields[4]}", fields[5] if len(fields) > 5 else ""


def _maps_line(record: VmaRecord, perms: str, offset: str, dev: str, name: str) -> str | None:
    """The maps line as page.js rebuilds it from its pieces (None where it cannot)."""
    if record.end >= EXACT_IN_JS:
        return None
    prefix = f"{record.start:08x}-{record.end:08x} {perms} {offset} {dev} "
    return prefix.ljust(NAME_PAD) + " " + name if name else prefix


def detail_data(film: Film) -> dict[str, Any]:
    """What only the side panel needs (parsed by the page after its first drawing): each
    step's events, merge decisions and hook calls, and each record's events as indices into
    the events of the step it was born at."""
    steps = film.steps
    positions = [{text: i for i, text in reversed(list(enumerate(s.events)))} for s in steps]
    return {
        "ev": [list(s.events) for s in steps],
        "mg": [list(s.merges) for s in steps],
        "hk": [list(s.hooks) for s in steps],
        "vev": [[positions[r.born][text] for text in r.events] for r in film.vmas],
    }


def packed(data: Any) -> str:
    """JSON, gzipped and in base64: a tenth of the size for the browser to read (it unpacks
    with its own DecompressionStream), and safe inside a <script> element by construction
    (base64 has no ``<``, so no ``</script>`` in a file name can close the element)."""
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()
    return base64.b64encode(gzip.compress(text, compresslevel=6, mtime=0)).decode("ascii")


def _asset(name: str) -> str:
    return resources.files("vmamodel.show").joinpath(name).read_text(encoding="utf-8")


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while the columns are built: they allocate only
    acyclic lists and strings, and each collection would walk the whole film (3.5x faster at
    10,000 steps)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def page(film: Film) -> str:
    """The whole page of ``film``."""
    with _collector_paused():
        data, detail = packed(film_data(film)), packed(detail_data(film))
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        # No request may leave the page, whatever a file name in the data says.
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
        "script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        f"<title>{html.escape(film.title)} · vmamodel show</title>\n"
        f"<style>\n{_asset('page.css')}</style>\n</head>\n<body>\n{_asset('page.html')}"
        f"<script type=\"application/gzip\" id=\"vmamodel-data\">{data}</script>\n"
        f"<script type=\"application/gzip\" id=\"vmamodel-detail\">{detail}</script>\n"
        f"<script>\n{_asset('page.js')}</script>\n</body>\n</html>\n"
    )


def film_for(source: Source, title: str | None = None) -> Film:
    """The film of a source: a film, an address space (as it is now), a collected trace, or the
    path of a scenario file (run on the model)."""
    if isinstance(source, Film):
        film = source
    elif isinstance(source, AddressSpace):
        film = film_of(source)
    elif isinstance(source, str | PathLike):
        scenario = parse_file(str(source))
        film, run = film_of_scenario(scenario)
        if run.error is not None:
            raise run.error
    else:
        film = film_from_events(source)
    if title is not None:
        film.title = title
    return film


def to_html(source: Source, path: str | PathLike[str] | None = None, *,
            title: str | None = None) -> str:
    """The page of ``source`` (see :func:`film_for`); written to ``path`` when given."""
    text = page(film_for(source, title))
    if path is not None:
        with open(path, "w", encoding="utf-8") as out:
            out.write(text)
    return text


__all__ = ["detail_data", "film_data", "film_for", "packed", "page", "to_html"]
