"""Which build runs: vmamodel.buildinfo and ``vmamodel --version``; the processes the tests
start run the suite's build, and ``PYTHONPATH=src`` (CI's second run) selects the pure
sources whatever is installed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

import vmamodel
from vmamodel import buildinfo
from vmamodel.cli.main import cli

PACKAGE = Path(vmamodel.__file__).parent
SRC = Path(__file__).parent.parent / "src"
#: The console script of the environment that runs the tests.
VMAMODEL = Path(sys.executable).parent / "vmamodel"
PROBE = "import vmamodel; from vmamodel import buildinfo; print(buildinfo.build_name(), " \
    "vmamodel.__file__)"


def run(argv: list[str], env: dict[str, str] | None = None) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=True,
                          env=env)
    return done.stdout


def test_every_hot_module_exists_and_none_is_listed_twice() -> None:
    assert len(set(buildinfo.HOT_MODULES)) == len(buildinfo.HOT_MODULES)
    for name in buildinfo.HOT_MODULES:
        assert (PACKAGE.parent / buildinfo.source_path(name)).is_file(), name


def test_source_path_of_a_module_in_a_subpackage() -> None:
    assert buildinfo.source_path("tree") == "vmamodel/tree.py"
    assert buildinfo.source_path("replay.step") == "vmamodel/replay/step.py"


def extension_name(path: Path) -> str:
    """The dotted module name (below vmamodel) of an extension file of the package."""
    relative = path.relative_to(PACKAGE)
    return ".".join((*relative.parent.parts, relative.name.split(".")[0]))


def test_compiled_modules_are_those_loaded_from_an_extension() -> None:
    extensions = {extension_name(p) for p in PACKAGE.rglob("*.so")}
    assert set(buildinfo.compiled_modules()) == extensions & set(buildinfo.HOT_MODULES)
    expected = ("pure" if not extensions else
                "compiled" if extensions >= set(buildinfo.HOT_MODULES) else "mixed")
    assert buildinfo.build_name() == expected


def test_version_names_the_build() -> None:
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert result.output.startswith("vmamodel ")
    assert buildinfo.describe() in result.output
    if buildinfo.build_name() == "pure":
        assert "pure Python" in result.output
    else:
        assert "mypyc" in result.output


def test_child_processes_run_the_build_of_the_suite() -> None:
    """A CLI subprocess or a campaign worker imports the very package this process runs (the
    environment, PYTHONPATH included, is inherited)."""
    assert run([sys.executable, "-c", PROBE]).split() == [buildinfo.build_name(),
                                                         vmamodel.__file__]
    assert buildinfo.describe() in run([str(VMAMODEL), "--version"])


def test_pythonpath_src_selects_the_pure_sources() -> None:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    name, where = run([sys.executable, "-c", PROBE], env).split()
    assert (name, Path(where)) == ("pure", SRC / "vmamodel" / "__init__.py")
    assert "pure Python (no module compiled)" in run([str(VMAMODEL), "--version"], env)
