"""The film a scenario run makes: its state at every step is the model's maps at that step."""

from __future__ import annotations

import contextlib
import random
from pathlib import Path
from typing import Any

import pytest

import vmamodel as v
from vmamodel.host import heap_start
from vmamodel.scenario import ARENA_SIZE, ModelBackend, execute, options_for, parse_file
from vmamodel.show import Recorder, film_from_events, film_of, film_of_scenario
from vmamodel.show.model import human_size

ROOT = Path(__file__).parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.vmas"))
RW = v.PROT_READ | v.PROT_WRITE
ANON = v.MAP_PRIVATE | v.MAP_ANONYMOUS | v.MAP_FIXED
BASE = 0x100000000000


def calls_maps(path: Path) -> list[str]:
    """The maps text after every call of a plain run (no observer)."""
    scenario = parse_file(str(path))
    options = options_for(scenario, smaps=False)
    start_brk = heap_start((options.base, ARENA_SIZE))
    backend = ModelBackend(scenario.profile, config={"start_brk": start_brk})
    run = execute(scenario, backend, options)
    assert run.error is None
    return ["".join(s.maps for s in step.snapshots) for step in run.steps
            if step.outcome is not None]


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_the_state_at_each_step_is_the_maps_of_that_step(path: Path) -> None:
    film, _run = film_of_scenario(parse_file(str(path)), verify=True)
    expected = calls_maps(path)
    states = [vmas for _step, vmas in film.states()]
    assert len(states) == len(expected) == len(film.steps)
    for index, (vmas, maps) in enumerate(zip(states, expected, strict=True)):
        assert "".join(r.maps + "\n" for r in vmas) == maps, f"step {index}"
        assert film.alive_at(index) == vmas


def test_merge_and_split_changes_and_rules() -> None:
    film, _run = film_of_scenario(parse_file(str(ROOT / "examples/merge_and_split.vmas")))
    changes = [sorted({film.vmas[k].change for k in s.born}) for s in film.steps]
    assert changes[:5] == [["created"], ["merged"], ["merged"], ["split"], []]
    split = film.steps[3]
    assert split.text == "mprotect(a + 4K, 4K, PROT_READ)" and split.result == "0"
    assert split.frag[0].count == 3 and split.frag[0].refusals == {"vm_flags": 2}
    merge = film.steps[5]
    assert merge.frag[0].refusals == {} and merge.frag[0].count == 1
    assert any("merged into" in m for m in merge.merges)
    removed = [film.vmas[k] for k in merge.died if film.vmas[k].end_reason]
    assert {r.end_reason for r in removed} == {"merged"} and len(removed) == 2
    # The arena is 1 TiB and holds 12 KiB: the largest gap is the rest of it.
    assert merge.frag[0].largest_gap == (1 << 40) - 3 * 4096
    # The middle piece became read-only; the record names the events that made it.
    middle = next(film.vmas[k] for k in split.born if film.vmas[k].perms == "r--p")
    assert middle.flags == "rd mr mw me" and middle.anon_vma is None
    assert any(e.startswith("Split") for e in middle.events)


def test_a_fault_and_vm_ops_show_in_the_record() -> None:
    mm = v.AddressSpace()
    fd = v.memfd_create("buf", 1 << 16)
    mm.mmap(BASE, 8192, RW, ANON)
    mm.touch(BASE, write=True)
    mm.mmap(BASE + 8192, 4096, RW, v.MAP_SHARED | v.MAP_FIXED, fd, 0)
    film = film_of(mm)
    anon, shared = film.alive_at(0)
    assert anon.anon_vma is not None and anon.vm_ops is None
    assert shared.vm_ops is not None and "/memfd:buf" in shared.name
    assert film.steps[0].frag[0].refusals == {"vm_flags": 1}


def test_a_trace_alone_makes_a_film() -> None:
    mm = v.AddressSpace()
    with mm.tracer.collect() as events:
        mm.mmap(BASE, 3 * 4096, RW, ANON)
        mm.mprotect(BASE + 4096, 4096, v.PROT_READ)
        mm.munmap(BASE, 4096)
        with pytest.raises(OSError):
            mm.mprotect(BASE, 4096, v.PROT_READ)
    assert type(events).__name__ == "Trace"
    film = film_from_events(events)
    assert [s.text.split("(")[0] for s in film.steps] == ["mmap", "mprotect", "munmap",
                                                          "mprotect"]
    assert not film.steps[3].ok and film.steps[3].errno == 12
    last = film.alive_at(len(film.steps) - 1)
    assert [(r.start, r.end, r.perms) for r in last] == [
        (BASE + 4096, BASE + 8192, "r--p"), (BASE + 8192, BASE + 3 * 4096, "rw-p")]


@pytest.mark.parametrize(("size", "text"), [(4096, "4K"), (12288, "12K"), (3 << 19, "1.5M"),
                                            (1 << 47, "128T"), (100, "100B")])
def test_human_size(size: int, text: str) -> None:
    assert human_size(size) == text


def random_calls(seed: int, count: int) -> list[tuple[str, tuple[object, ...]]]:
    """A deterministic jumble of calls over 64 pages, most of them valid."""
    rng = random.Random(seed)
    page = 4096
    calls: list[tuple[str, tuple[object, ...]]] = []
    for _ in range(count):
        addr = BASE + rng.randrange(64) * page
        length = rng.randrange(1, 9) * page
        prot = rng.choice([v.PROT_READ, RW, v.PROT_NONE, v.PROT_READ | v.PROT_EXEC])
        name = rng.choice(["mmap", "mmap", "mmap_hint", "munmap", "mprotect", "mprotect",
                           "mremap", "madvise", "mlock", "munlock", "touch", "anon_name",
                           "shared"])
        if name == "mmap":
            calls.append(("mmap", (addr, length, prot, ANON)))
        elif name == "mmap_hint":
            calls.append(("mmap", (addr, length, prot, v.MAP_PRIVATE | v.MAP_ANONYMOUS)))
        elif name == "shared":
            calls.append(("shared", (addr, length)))
        elif name == "mremap":
            new = BASE + rng.randrange(64) * page
            calls.append(("mremap", (addr, length, rng.randrange(1, 9) * page,
                                     v.MREMAP_MAYMOVE | rng.choice([0, v.MREMAP_FIXED]), new)))
        elif name == "madvise":
            calls.append(("madvise", (addr, length, rng.choice([v.MADV_DONTFORK,
                                                                v.MADV_DOFORK]))))
        elif name == "touch":
            calls.append(("touch", (addr + rng.randrange(page), rng.random() < 0.5)))
        elif name == "anon_name":
            calls.append(("set_vma_anon_name", (addr, length, rng.choice(["a", "b", None]))))
        elif name == "mprotect":
            calls.append(("mprotect", (addr, length, prot)))
        else:
            calls.append((name, (addr, length)))
    return calls


@pytest.mark.parametrize("seed", range(6))
def test_recording_what_changed_equals_a_pass_over_every_vma(seed: int) -> None:
    """The recorder looks only at what the events name; verify compares each step with a
    pass over all VMAs (ids, attributes, VMA count, largest gap, rules of touching pairs)."""
    mm = v.AddressSpace()
    fd = v.memfd_create("buf", 1 << 20)
    recorder = Recorder("random", (BASE, BASE + (1 << 30)), verify=True)
    spaces: list[tuple[str, v.AddressSpace]] = [("main", mm)]
    for index, (name, args) in enumerate(random_calls(seed, 150)):
        with contextlib.ExitStack() as stack:
            events = [stack.enter_context(s.tracer.collect()) for _label, s in spaces]
            try:
                if name == "shared":
                    mm.mmap(args[0], args[1], RW, v.MAP_SHARED | v.MAP_FIXED, fd, 0)
                else:
                    getattr(mm, name)(*args)
            except OSError:
                pass
            if index == 75:
                spaces.append(("child", mm.fork()))
        recorder.record(spaces, text=name, events=[e for trace in events for e in trace])
    film = recorder.film
    assert [r.maps + "\n" for r in film.alive_at(len(film.steps) - 1) if r.space == 0] == \
        mm.maps().splitlines(keepends=True)


def test_the_executor_calls_its_observer_after_every_step() -> None:
    scenario = parse_file(str(ROOT / "examples/merge_and_split.vmas"))
    seen: list[tuple[int, int, list[str]]] = []

    def observe(index: int, record: Any, spaces: Any) -> None:
        seen.append((index, record.line, [label for label, _space in spaces]))

    options = options_for(scenario, observe=observe)
    options.snapshots = "none"
    run = execute(scenario, ModelBackend(scenario.profile), options)
    assert [i for i, _line, _labels in seen] == list(range(len(run.steps)))
    assert [line for _i, line, _labels in seen] == [s.line for s in run.steps]
    assert all(labels == ["main"] for _i, _line, labels in seen)
    assert all(step.snapshots == () for step in run.steps)
