"""Real programs recorded on this machine: compiled C programs, this Python, node (helpers
and the session fixture that compiles the C programs)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from vmamodel.replay.record import record

PROGRAMS = Path(__file__).with_name("programs")


def compile_program(name: str, out: Path, *flags: str) -> Path:
    """gcc PROGRAMS/name.c -> out/name."""
    binary = out / name
    subprocess.run(
        ["gcc", "-O2", "-Wall", *flags, "-o", str(binary), str(PROGRAMS / f"{name}.c")],
        check=True, capture_output=True,
    )
    return binary


@pytest.fixture(scope="session")
def binaries(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("programs")
    return {
        "churn": compile_program("churn", out, "-pthread"),
        "files": compile_program("files", out),
        "shm": compile_program("shm", out),
        "fidelity": compile_program("fidelity", out),
        "unsupported": compile_program("unsupported", out),
    }


def python_binary() -> str:
    """The real interpreter (not a wrapper script): the helper is preloaded into it."""
    return os.path.realpath(sys.executable)


def node_binary() -> str | None:
    return shutil.which("node")


def record_into(out: Path, command: list[str], *, no_randomize: bool = True,
                faults: bool = True) -> Path:
    status = record(out, command, no_randomize=no_randomize, faults=faults)
    assert status == 0, f"{command} exited with {status}"
    return out
