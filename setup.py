"""An optional build that compiles the model's hot modules with mypyc.

By default (and always when mypyc cannot be imported) nothing is compiled: the package is the
pure-Python source, exactly as pyproject.toml describes it. With ``VMAMODEL_MYPYC=1`` the
modules below are compiled to C extensions, which Python then prefers to the .py files:

    VMAMODEL_MYPYC=1 pip install --no-build-isolation .      # mypy (mypyc) must be installed

Use a regular install in its own virtual environment for this: an editable install would put
the extensions beside the sources, where they shadow every later edit of those files.
``vmamodel bench`` names the compiled modules it runs on.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from setuptools import setup

#: The call path of mmap, munmap, mprotect, mremap, madvise and touch, from the AddressSpace
#: entry points down. Left out: access_fault.py (AccessFault subclasses OSError, which mypyc
#: cannot compile), events.py and inject.py, and everything off the hot path.
HOT_MODULES = (
    "accounting",
    "fault",
    "hooks",
    "madvise",
    "merge",
    "mm",
    "mmap",
    "mprotect",
    "mremap",
    "munmap",
    "pagetable",
    "populate",
    "stack",
    "tree",
    "unmapped_area",
    "vma",
)


def ext_modules() -> list[Any]:
    if os.environ.get("VMAMODEL_MYPYC") != "1":
        return []
    try:
        from mypyc.build import mypycify
    except ImportError:
        print("VMAMODEL_MYPYC=1 but mypyc is not installed: building pure Python",
              file=sys.stderr)
        return []
    paths = [f"src/vmamodel/{name}.py" for name in HOT_MODULES if
             os.path.exists(f"src/vmamodel/{name}.py")]
    return list(mypycify(paths, opt_level="3"))


setup(ext_modules=ext_modules())
