"""The state dump and the lifecycle monitor on their own."""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, field

from vmamodel import AddressSpace
from vmamodel.check.detectors import Monitor, watching_injector
from vmamodel.check.state import describe, diff_state, direction, dump_state
from vmamodel.driver_error import DriverError
from vmamodel.drivers.ledger import Ledger
from vmamodel.events import HookCall, VmaCreated
from vmamodel.file import File


@dataclass(eq=False)
class Node:
    count: int = 0
    children: list[Node] = field(default_factory=list)
    ids: itertools.count[int] = field(default_factory=itertools.count, compare=False)
    lock: object = field(default_factory=threading.Lock)


def test_dump_skips_compare_false_and_survives_cycles_and_opaque_objects() -> None:
    root = Node()
    root.children.append(root)  # a cycle
    before = dump_state(root)
    next(root.ids)  # an id generator is not state
    assert dump_state(root) == before
    root.count += 1
    assert describe(diff_state(before, dump_state(root), "x")) == "x.count: 0 -> 1"


def test_a_ledger_is_its_balance_flags_and_underflows() -> None:
    ledger = Ledger("t")
    before = dump_state(ledger)
    ledger.acquire("ref", "mapped")
    ledger.release("ref", "close")
    assert dump_state(ledger) == before  # the history is a log
    ledger.release("ref", "close")
    diffs = diff_state(before, dump_state(ledger))
    assert direction(diffs) == "over-release"


def test_direction_of_counts_and_lists() -> None:
    assert direction([("a", 0, 2), ("b", [], [1])]) == "leak"
    assert direction([("a", 1, 0)]) == "over-release"
    assert direction([("a", "x", "y")]) == "state-not-restored"


def test_use_after_close_and_mapped_twice_are_detected() -> None:
    monitor = Monitor()
    monitor.begin("mmap")
    monitor.event("s", VmaCreated(1, 0, 4096, 0, 0))
    monitor.event("s", HookCall("mapped", "Ops", 1))
    monitor.end()
    monitor.begin("munmap")
    monitor.event("s", HookCall("mapped", "Ops", 1))
    monitor.event("s", HookCall("close", "Ops", 1))
    monitor.event("s", HookCall("open", "Ops", 1))
    monitor.end()
    kinds = {(d.kind, d.hook, d.origin) for d in monitor.finish()}
    assert kinds == {("mapped-twice", "mapped", "model"), ("use-after-close", "open", "driver")}


def test_a_crash_names_the_hook_it_came_from() -> None:
    class Ops:
        def mmap_prepare(self, desc: object) -> None:
            raise KeyError("window")

        mmap = None
        get_unmapped_area = None

    monitor = Monitor()
    mm = AddressSpace(profile="v4")
    mm.injector = watching_injector(monitor, None)
    monitor.attach("space0", mm)
    file = File("/dev/x", f_op=Ops(), private_data=Node())  # type: ignore[arg-type]
    monitor.watch(file)
    monitor.begin("mmap")
    try:
        mm.mmap(0x100000000000, 4096, 1, 0x11, file, 0)
    except DriverError as exc:  # the model rolls back and names the hook
        assert isinstance(exc.__cause__, KeyError)
        monitor.exception(exc)
    monitor.end()
    (detection,) = monitor.finish()
    assert (detection.kind, detection.hook, detection.rule) == ("crash", "mmap_prepare", "crash")
    assert "KeyError" in detection.detail
