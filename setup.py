"""The build: a regular install compiles the model's hot modules with mypyc.

``pip install .`` and ``pip wheel .`` compile the modules of ``vmamodel.buildinfo.HOT_MODULES``
to C extensions (which Python then prefers to the .py files) when mypyc (mypy, a build
requirement in pyproject.toml) and a C compiler are there; without either, or when compiling
fails, the package is the pure-Python source and the build says so in one line. An editable
install (``pip install -e .``) stays pure, so that edits take effect, unless
``VMAMODEL_MYPYC=1`` asks for the extensions (which then shadow the edited files until they
are rebuilt). ``VMAMODEL_MYPYC=0`` builds pure Python everywhere. ``vmamodel --version`` says
which build runs.
"""

from __future__ import annotations

import os
import runpy
import shutil
import sys
import sysconfig
from collections.abc import Callable
from typing import Any

from setuptools import setup
from setuptools.command.build_ext import build_ext

#: Commands that put modules into a wheel or an install (not egg_info, sdist, dist_info:
#: pip runs those too, and they must not start mypy).
_BUILD_COMMANDS = {"bdist_wheel", "build", "build_ext", "install", "editable_wheel", "develop"}
_EDITABLE_COMMANDS = {"editable_wheel", "develop"}
_NOTICE = "vmamodel: {}: building pure Python (slower; see README, Speed)"

_BUILDINFO = runpy.run_path("src/vmamodel/buildinfo.py")
HOT_MODULES: tuple[str, ...] = _BUILDINFO["HOT_MODULES"]
source_path: Callable[[str], str] = _BUILDINFO["source_path"]


def notice(reason: str) -> None:
    print(_NOTICE.format(reason), file=sys.stderr)


def wanted(argv: list[str]) -> bool:
    """Compile? VMAMODEL_MYPYC decides when set; else a non-editable build command."""
    choice = os.environ.get("VMAMODEL_MYPYC", "")
    if choice in ("0", "1"):
        return choice == "1"
    commands = set(argv[1:])
    return bool(commands & _BUILD_COMMANDS) and not commands & _EDITABLE_COMMANDS


def c_compiler() -> str | None:
    """The C compiler build_ext would run (CC, else Python's own), if it is installed."""
    command = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    return shutil.which(command.split()[0])


class OptionalBuildExt(build_ext):
    """build_ext that falls back to pure Python (the .py files are in the wheel anyway)
    when compiling the extensions fails."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # any compiler or linker failure
            notice(f"compiling the mypyc extensions failed ({type(exc).__name__}: {exc})")
            self.extensions = []
            self.distribution.ext_modules = []

    def get_outputs(self) -> list[str]:
        return super().get_outputs() if self.extensions else []


def ext_modules() -> list[Any]:
    if not wanted(sys.argv):
        return []
    try:
        from mypyc.build import mypycify
    except ImportError:
        notice("mypyc (mypy) is not installed")
        return []
    if c_compiler() is None:
        notice("no C compiler found")
        return []
    paths = [f"src/{source_path(name)}" for name in HOT_MODULES]
    try:
        return list(mypycify(paths, opt_level="3"))
    except (Exception, SystemExit) as exc:  # mypy's type check exits on an error
        notice(f"mypyc failed ({exc})")
        return []


setup(ext_modules=ext_modules(), cmdclass={"build_ext": OptionalBuildExt})
