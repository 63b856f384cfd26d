"""``vmamodel record``: run a program under strace with the snapshot helper preloaded.

A recording is one directory (see docs/replay.md):

- ``trace.txt``: ``strace -f -o`` output (pid-prefixed lines) of the calls in :data:`TRACED`,
  with ``-X raw`` (numbers, not flag names), ``-y`` (fd paths), whole stat structs (device,
  inode and size of mapped files) but the environment of execve abbreviated, and mremap
  printed raw (its fifth argument);
- ``start.smaps`` / ``end.smaps``: /proc/self/smaps of the program when the helper's
  constructor ran (after the dynamic loader) and when its destructor ran (exit);
- ``mountinfo``: the lines of /proc/self/mountinfo for the devices the recording names (the
  filesystem of each mapped file);
- ``meta.json``: the command, the personality, the kernel traits of the machine.

The helper (snap.c) is compiled on first use with the system C compiler, like the placement
runner, into a directory under the temporary directory keyed by its source's hash.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import resource
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vmamodel.host.cbuild import CBuildError, build_c
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
    "?map_shadow_stack", "shmget", "shmat", "shmctl", "shmdt", "io_setup", "io_destroy",
    "?userfaultfd",
    "?io_uring_setup", "?memfd_secret", "?process_mrelease",
    # file descriptions
    "open", "openat", "?openat2", "creat", "dup", "dup2", "dup3", "fcntl", "close",
    "?close_range", "?memfd_create", "ftruncate", "truncate", "fstat", "newfstatat",
    "?statx", "unlink", "unlinkat",
    # tasks
    "fork", "vfork", "clone", "?clone3", "execve", "execveat", "exit", "exit_group",
)


#: x86-64 system call numbers of the traced calls (arch/x86/entry/syscalls/syscall_64.tbl):
#: perf's sys_enter events carry the number, strace's lines the name.
SYSCALL_NR: dict[str, int] = {
    "open": 2, "close": 3, "fstat": 5, "mmap": 9, "mprotect": 10, "munmap": 11, "brk": 12,
    "mremap": 25, "madvise": 28, "shmget": 29, "shmat": 30, "shmctl": 31, "dup": 32,
    "dup2": 33, "clone": 56,
    "fork": 57, "vfork": 58, "execve": 59, "exit": 60, "shmdt": 67, "fcntl": 72,
    "truncate": 76, "ftruncate": 77, "creat": 85, "mlock": 149, "munlock": 150,
    "mlockall": 151, "munlockall": 152, "prctl": 157, "io_setup": 206, "io_destroy": 207,
    "remap_file_pages": 216, "exit_group": 231, "mbind": 237, "openat": 257,
    "newfstatat": 262, "dup3": 292, "memfd_create": 319, "execveat": 322,
    "userfaultfd": 323, "mlock2": 325, "pkey_mprotect": 329, "pkey_alloc": 330,
    "pkey_free": 331, "statx": 332, "io_uring_setup": 425, "clone3": 435, "close_range": 436,
    "openat2": 437, "process_madvise": 440, "memfd_secret": 447, "process_mrelease": 448,
    "set_mempolicy_home_node": 450, "map_shadow_stack": 453, "mseal": 462, "unlink": 87,
    "unlinkat": 263,
}
#: The page faults the replay needs (user-mode faults, and kernel-mode faults on user
#: addresses such as copy_to_user), and the entries of the traced calls to line them up with.
PERF_EVENTS = ("exceptions:page_fault_user", "exceptions:page_fault_kernel")


class RecordError(RuntimeError):
    """The recording could not be made (no strace, no compiler, the helper did not run)."""


def helper_library(cc: str | None = None) -> Path:
    """The compiled snapshot helper (built once per source version, atomically)."""
    try:
        return build_c(HELPER_SOURCE, HELPER_CFLAGS, "libvmamodel-snap.so",
                       "the snapshot helper", cc)
    except CBuildError as err:
        raise RecordError(str(err)) from None


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
        # whole structs (-v) except the environment of execve, which may hold secrets
        strace_binary(), "-f", "-qq", "-X", "raw", "-y", "-e", "abbrev=execve,execveat",
        "-e", "raw=mremap",
        "-E", f"LD_PRELOAD={helper}", "-E", f"VMAMODEL_RECORD_DIR={out.resolve()}",
        "-e", "trace=" + ",".join(TRACED), "-o", str(out / "trace.txt"), "--", *command,
    ]
    if no_randomize:
        setarch = shutil.which("setarch")
        if setarch is None:
            raise RecordError("setarch is missing: install the Debian package util-linux")
        argv = [setarch, os.uname().machine, "-R", *argv]
    return argv


def perf_command(out: Path, inner: list[str]) -> list[str] | None:
    """``perf record`` around the strace command, or None without perf."""
    perf = shutil.which("perf")
    if perf is None:
        return None
    numbers = sorted({SYSCALL_NR[n.lstrip("?")] for n in TRACED if n.lstrip("?") in SYSCALL_NR})
    id_filter = " || ".join(f"id == {nr}" for nr in numbers)
    argv = [perf, "record", "-q", "-m", "1024", "-o", str(out / "perf.data")]
    for event in PERF_EVENTS:
        argv += ["-e", event]
    argv += ["-e", "raw_syscalls:sys_enter", "--filter", id_filter, "--", *inner]
    return argv


def _write_faults(out: Path) -> bool:
    """perf.data -> faults.txt (``TID fault ADDRESS ERROR_CODE [k]`` and ``TID enter NR``
    lines, in time order); perf.data is then removed. False when perf produced nothing."""
    data = out / "perf.data"
    if not data.exists():
        return False
    done = subprocess.run(
        ["perf", "script", "-i", str(data), "-F", "tid,event,trace"],
        capture_output=True, text=True, check=False,
    )
    data.unlink()
    if done.returncode != 0:
        return False
    lines = []
    for raw in done.stdout.splitlines():
        parts = raw.split()
        if len(parts) < 3:
            continue
        tid, event = parts[0], parts[1]
        if event == "raw_syscalls:sys_enter:" and len(parts) > 3 and parts[2] == "NR":
            lines.append(f"{tid} enter {parts[3]}")
        elif event.startswith("exceptions:page_fault_"):
            fields = dict(p.split("=", 1) for p in parts[2:] if "=" in p)
            kernel = " k" if "kernel" in event else ""
            lines.append(f"{tid} fault {fields.get('address', '0')} "
                         f"{fields.get('error_code', '0')}{kernel}")
    (out / "faults.txt").write_text("\n".join(lines) + "\n")
    return True


_ST_DEV = re.compile(r"st_dev=(0x[0-9a-f]+|[0-9]+)")
_SMAPS_DEV = re.compile(r"^[0-9a-f]+-[0-9a-f]+ \S+ [0-9a-f]+ ([0-9a-f]+):([0-9a-f]+) ", re.M)


def _relevant_mounts(out: Path) -> str:
    """The lines of /proc/self/mountinfo for the devices the recording names (snapshots and
    stat results): the filesystem of each mapped file, and nothing else of the machine."""
    devices: set[tuple[int, int]] = set()
    for name in ("start.smaps", "end.smaps"):
        path = out / name
        if path.exists():
            devices |= {(int(a, 16), int(b, 16)) for a, b in _SMAPS_DEV.findall(path.read_text())}
    trace = out / "trace.txt"
    if trace.exists():
        for raw in _ST_DEV.findall(trace.read_text(errors="surrogateescape")):
            value = int(raw, 0)
            devices.add((((value >> 8) & 0xFFF) | ((value >> 32) & ~0xFFF),
                         (value & 0xFF) | ((value >> 12) & 0xFFF00)))
    kept = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines(keepends=True):
        fields = line.split(" ")
        if len(fields) > 2 and ":" in fields[2]:
            major, _, minor = fields[2].partition(":")
            if major.isdigit() and minor.isdigit() and (int(major), int(minor)) in devices:
                kept.append(line)
    return "".join(kept)


def _traits() -> dict[str, Any]:
    traits = dict(host_kernel_kwargs())
    traits["shmem_huge"] = dataclasses.asdict(traits["shmem_huge"])
    return traits


def _rlimit_stack() -> int:
    """RLIMIT_STACK as the command inherits it (it decides mmap_base at exec)."""
    soft = resource.getrlimit(resource.RLIMIT_STACK)[0]
    return (1 << 64) - 1 if soft == resource.RLIM_INFINITY else soft


def record(
    out: Path, command: Sequence[str], *, no_randomize: bool = False, faults: bool = True
) -> int:
    """Run ``command`` and write a recording to directory ``out``; returns the command's exit
    status. ``faults``: also record page faults with perf (when perf is installed). Raises
    RecordError when nothing usable was recorded."""
    if not command:
        raise RecordError("no command to record")
    helper = helper_library()
    # resolve the program here: perf's wrapper puts its own directories first in PATH
    program = shutil.which(command[0]) if "/" not in command[0] else command[0]
    if program is None:
        raise RecordError(f"{command[0]}: command not found")
    command = [program, *command[1:]]
    out.mkdir(parents=True, exist_ok=True)
    for stale in ("trace.txt", "start.smaps", "end.smaps", "meta.json", "mountinfo",
                  "faults.txt", "perf.data"):
        (out / stale).unlink(missing_ok=True)
    argv = strace_command(out, command, no_randomize, helper)
    wrapped = perf_command(out, argv) if faults else None
    done = subprocess.run(wrapped or argv, check=False)
    if wrapped is not None and not (out / "trace.txt").exists():
        # perf could not start (no tracepoints, no permission): record without faults
        (out / "perf.data").unlink(missing_ok=True)
        wrapped = None
        done = subprocess.run(argv, check=False)
    have_faults = wrapped is not None and _write_faults(out)
    (out / "mountinfo").write_text(_relevant_mounts(out))
    meta = {
        "format": FORMAT_VERSION,
        "command": list(command),
        "no_randomize": no_randomize,
        "exit_status": done.returncode,
        "faults": have_faults,
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
