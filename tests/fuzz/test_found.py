"""What the first 10-minute campaign found: a memfd created before a fork and first mapped
after it was two files on the host (the oracle created it lazily, in each process that mapped
it) and one in the model. The oracle now creates it in the first process at once, as a C
program's memfd_create() would; these are the campaign's shrunk scenarios."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from vmamodel.cli.main import cli
from vmamodel.fuzz.generate import Step
from vmamodel.fuzz.lockstep import run_steps

pytestmark = pytest.mark.host

SEED_62 = """\
fuzz1 = memfd_create("fuzz1", 384K)
c1 = fork()
mmap(BASE + 0x4000, 0x8000, PROT_READ|PROT_WRITE|PROT_EXEC, MAP_PRIVATE|MAP_FIXED, fuzz1, 0x3000)
c1.mmap(BASE + 0xb000, 0x3000, PROT_WRITE, MAP_PRIVATE|MAP_FIXED, fuzz1, 0x20000) = BASE + 0xb000
maps
"""
SEED_53 = """\
fuzz1 = memfd_create("fuzz1", 384K)
c1 = fork()
c1.mmap(BASE + 0x27000, 0x7000, PROT_EXEC, MAP_PRIVATE|MAP_FIXED|MAP_LOCKED, fuzz1, 0x19000)
mmap(BASE + 0xb000, 0x4000, PROT_READ|PROT_EXEC, MAP_PRIVATE|MAP_FIXED|MAP_LOCKED, fuzz1, 0x2c000)
maps
"""


@pytest.mark.parametrize("text", [SEED_62, SEED_53], ids=["seed62", "seed53"])
def test_a_memfd_made_before_fork_is_one_file_in_both(tmp_path: Path, text: str) -> None:
    path = tmp_path / "found.vmas"
    path.write_text(text)
    result = CliRunner().invoke(cli, ["diff", str(path)])
    assert result.exit_code == 0, result.output
    assert result.output.count(" 00:01 1 /memfd:fuzz1 (deleted)") >= 4  # one inode, both sides


def test_the_fuzzer_maps_one_memfd_in_parent_and_child() -> None:
    steps = [
        Step("fork", (), "main", "c1"),
        Step("mmap", (0x100000004000, 0x8000, 7, 0x12, "fuzz1", 0x3000)),
        Step("mmap", (0x10000000b000, 0x3000, 2, 0x12, "fuzz1", 0x20000), "c1"),
    ]
    assert run_steps(steps)[1] is None
