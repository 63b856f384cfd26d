"""Which build runs: vmamodel.buildinfo and ``vmamodel --version``."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

import vmamodel
from vmamodel import buildinfo
from vmamodel.cli.main import cli

PACKAGE = Path(vmamodel.__file__).parent


def test_every_hot_module_exists_and_none_is_listed_twice() -> None:
    assert len(set(buildinfo.HOT_MODULES)) == len(buildinfo.HOT_MODULES)
    for name in buildinfo.HOT_MODULES:
        assert any(PACKAGE.glob(f"{name}.*")), name


def test_compiled_modules_are_those_loaded_from_an_extension() -> None:
    extensions = {p.name.split(".")[0] for p in PACKAGE.glob("*.so")}
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
