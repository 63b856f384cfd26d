"""``vmamodel record``: run a program under strace with the snapshot helper preloaded.

A recording is one directory (see docs/replay.md):

- ``trace.txt``: ``strace -f -o`` output (pid-prefixed lines) of the calls in :data:`TRACED`,
  with ``-X raw`` (numbers, not flag names), ``-y`` (fd paths), ``-v`` (whole stat structs:
  device, inode and size of mapped files), and mremap printed raw (its fifth argument);
- ``start.smaps`` / ``end.smaps``: /proc/self/smaps of the program when the helper's
  constructor ran (after the dynamic loader) and when its destructor ran (exit);
- ``mountinfo``: /proc/self/mountinfo of the recording machine (filesystem of each device);
- ``meta.json``: the command, the personality, the kernel traits of the machine.

The helper (snap.c) is compiled on first use with the system C compiler, like the placement
runner, into a directory under the temporary directory keyed by its source's hash.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import resource
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vmamodel.host.traits import host_kernel_kwargs

__all__ = ["TRACED", "RecordError", "helper_library", "record"]

HELPER_SOURCE = Path(__file__).with_name("snap.c")
HELPER_CFLAGS = ("-O2", "-Wall", "-shared", "-fPIC", "-nostartfiles")
FORMAT_VERSION = 1

#: What strace records: every call that changes VMAs or names a file a mapping can use, the
#: calls that create other tasks (threads share the mm; fork children and execs do not), and
#: the calls the replay reports as unsupported (so that they are named rather than missed).
#: A leading "?" lets an older strace that does not know a name skip it.
TRACED = (
    # memory management
    "mmap", "munmap", "mprotect", "?pkey_mprotect", "?pkey_alloc", "?pkey_free", "mremap",
    "madvise", "?process_madvise", "brk", "mlock", "?mlock2", "munlock", "mlockall",
    "munlockall", "?mseal", "prctl", "remap_file_pages", "mbind", "?set_mempolicy_home_node",
    "?map_shadow_stack", "shmat", "shmdt", "io_setup", "io_destroy", "?userfaultfd",
    "?io_uring_setup", "?memfd_secret", "?process_mrelease",
    # file descriptions
    "open", "openat", "?openat2", "creat", "dup", "dup2", "dup3", "fcntl", "close",
    "?close_range", "?memfd_create", "ftruncate", "truncate", "fstat", "newfstatat",
    "?statx",
    # tasks
    "fork", "vfork", "clone", "?clone3", "execve", "execveat", "exit", "exit_group",
)


class RecordError(RuntimeError):
    """The recording could not be made (no strace, no compiler, the helper did not run)."""


def helper_library(cc: str | None = None) -> Path:
    """The compiled snapshot helper (built once per source version, atomically)."""
    source = HELPER_SOURCE.read_bytes()
    digest = hashlib.sha256(source + " ".join(HELPER_CFLAGS).encode()).hexdigest()[:16]
    target = Path(tempfile.gettempdir()) / f"vmamodel-snap-{digest}" / "libvmamodel-snap.so"
    if target.exists():
        return target
    compiler = cc or shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise RecordError("no C compiler (cc or gcc) to build the snapshot helper: "
                          "install the Debian package gcc")
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, scratch = tempfile.mkstemp(dir=target.parent)
    os.close(fd)
    done = subprocess.run(
        [compiler, *HELPER_CFLAGS, "-o", scratch, str(HELPER_SOURCE)],
        capture_output=True, text=True, check=False,
    )
    if done.returncode != 0:
        os.unlink(scratch)
        raise RecordError(f"building the snapshot helper failed:\n{done.stderr}")
    os.replace(scratch, target)
    return target


def strace_binary() -> str:
    found = shutil.which("strace")
    if found is None:
        raise RecordError("strace is not installed: install the Debian package strace "
                          "(apt-get install strace)")
    return found


def strace_command(
    out: Path, command: Sequence[str], no_randomize: bool, helper: Path
) -> list[str]:
    """strace's command line; the helper and its directory reach only the traced command
    (``-E``), never setarch or strace themselves."""
    argv = [
        strace_binary(), "-f", "-qq", "-X", "raw", "-y", "-v", "-e", "raw=mremap",
        "-E", f"LD_PRELOAD={helper}", "-E", f"VMAMODEL_RECORD_DIR={out.resolve()}",
        "-e", "trace=" + ",".join(TRACED), "-o", str(out / "trace.txt"), "--", *command,
    ]
    if no_randomize:
        setarch = shutil.which("setarch")
        if setarch is None:
            raise RecordError("setarch is missing: install the Debian package util-linux")
        argv = [setarch, os.uname().machine, "-R", *argv]
    return argv


def _traits() -> dict[str, Any]:
    traits = dict(host_kernel_kwargs())
    traits["shmem_huge"] = dataclasses.asdict(traits["shmem_huge"])
    return traits


def _rlimit_stack() -> int:
    """RLIMIT_STACK as the command inherits it (it decides mmap_base at exec)."""
    soft = resource.getrlimit(resource.RLIMIT_STACK)[0]
    return (1 << 64) - 1 if soft == resource.RLIM_INFINITY else soft


def record(out: Path, command: Sequence[str], *, no_randomize: bool = False) -> int:
    """Run ``command`` and write a recording to directory ``out``; returns the command's exit
    status. Raises RecordError when nothing usable was recorded."""
    if not command:
        raise RecordError("no command to record")
    helper = helper_library()
    out.mkdir(parents=True, exist_ok=True)
    for stale in ("trace.txt", "start.smaps", "end.smaps", "meta.json", "mountinfo"):
        (out / stale).unlink(missing_ok=True)
    argv = strace_command(out, command, no_randomize, helper)
    done = subprocess.run(argv, check=False)
    (out / "mountinfo").write_text(Path("/proc/self/mountinfo").read_text())
    meta = {
        "format": FORMAT_VERSION,
        "command": list(command),
        "no_randomize": no_randomize,
        "exit_status": done.returncode,
        "strace": argv[argv.index(strace_binary()):argv.index("--")],
        "traits": _traits(),
        "rlimit_stack": _rlimit_stack(),
        "dir": str(out.resolve()),
    }
    (out / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    if not (out / "trace.txt").exists():
        raise RecordError(f"strace wrote no trace (exit status {done.returncode})")
    if not (out / "start.smaps").exists():
        raise RecordError(
            "the snapshot helper did not run: is the command a static binary, or "
            "setuid? (it is loaded with LD_PRELOAD)"
        )
    return done.returncode
