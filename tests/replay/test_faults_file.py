"""faults.txt (perf's page faults and syscall entries, as ``vmamodel record`` writes them)."""

from __future__ import annotations

import pytest

from vmamodel.replay.recording import RecordingError, parse_faults

WRITTEN = (
    "4958 fault 0x55f0b7344128 0x2 k\n"
    "4958 enter 9\n"
    "4959 fault 7f4654cceb70 14\n"
    "4958 fault 0x7f4654ce7e06 0x6\n"
    "\n"
    "4959 enter 11\n"
)


def test_faults_file_events_by_thread() -> None:
    assert parse_faults(WRITTEN, "faults.txt") == {
        4958: [("fault", 0x55F0B7344128, True, True), ("enter", 9, False, False),
               ("fault", 0x7F4654CE7E06, True, False)],
        4959: [("fault", 0x7F4654CCEB70, False, False), ("enter", 11, False, False)],
    }


@pytest.mark.parametrize(("text", "expected"), [
    (WRITTEN.replace("4959 enter 11", "4959  enter\t11 "), ("enter", 11, False, False)),
    (WRITTEN.replace("4959 enter 11", "04959 enter 11"), ("enter", 11, False, False)),
    (WRITTEN.replace("4959 enter 11", "4959 fault 0X10 0x2 kernel"), ("fault", 16, True, True)),
])
def test_fields_split_at_whitespace_and_read_as_int_reads_them(
    text: str, expected: tuple[str, int, bool, bool]
) -> None:
    assert parse_faults(text, "f")[4959][-1] == expected


def test_a_repeated_line_gives_the_same_events() -> None:
    text = WRITTEN * 3
    assert parse_faults(text, "f") == {
        tid: events * 3 for tid, events in parse_faults(WRITTEN, "f").items()
    }


@pytest.mark.parametrize("line", ["4958 fault 0x10", "4958 leave 3", "x enter 3",
                                  "4958 fault zz 0x2"])
def test_bad_fault_line_names_the_line(line: str) -> None:
    with pytest.raises(RecordingError, match=r"faults.txt:5: not a fault line"):
        parse_faults(WRITTEN.replace("\n\n", f"\n{line}\n"), "faults.txt")
