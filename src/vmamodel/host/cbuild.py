"""Building the project's small C helpers with the system compiler, once per source version.

The placement runner (runner.c) and the recorder's snapshot helper (replay/snap.c) are built
on first use into a directory keyed by a hash of their source and flags, atomically (a
scratch file renamed into place), so that parallel test workers may race.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path


class CBuildError(RuntimeError):
    """No C compiler, or the compiler refused the source; the message says which."""


def build_c(source: Path, cflags: tuple[str, ...], name: str, what: str,
            cc: str | None = None) -> Path:
    """The binary ``name`` built from ``source`` with ``cflags`` (built now if it is not
    there yet). ``what`` names it in errors, e.g. "the placement runner"."""
    text = source.read_bytes()
    digest = hashlib.sha256(text + " ".join(cflags).encode()).hexdigest()[:16]
    target = Path(tempfile.gettempdir()) / f"vmamodel-{source.stem}-{digest}" / name
    if target.exists():
        return target
    compiler = cc or shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise CBuildError(f"no C compiler (cc or gcc) to build {what}: "
                          "install the Debian package gcc")
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, scratch = tempfile.mkstemp(dir=target.parent)
    os.close(fd)
    done = subprocess.run([compiler, *cflags, "-o", scratch, str(source)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        os.unlink(scratch)
        raise CBuildError(f"building {what} failed:\n{done.stderr}")
    os.replace(scratch, target)
    return target
