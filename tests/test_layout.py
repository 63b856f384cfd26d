"""The package's shape: the model core imports no tool, and tools import each other one way.

The core is every module of ``vmamodel`` outside the tool packages; the package root
(``vmamodel/__init__.py``) is the public facade and names ``HostAddressSpace`` lazily.
Function-level imports count as much as module-level ones.
"""

from __future__ import annotations

import ast
from pathlib import Path

import vmamodel

ROOT = Path(vmamodel.__file__).parent
#: Packages that are tools around the model, not the model.
TOOLS = ("scenario", "bench", "cli", "host", "check", "show", "replay", "fuzz", "campaign")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name.split(".")[0] == "vmamodel"}


def _tool_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in TOOLS else None


def _modules() -> dict[str, set[str]]:
    return {_module_name(p): _imports(p) for p in sorted(ROOT.rglob("*.py"))}


def test_the_core_imports_no_tool() -> None:
    offenders = {
        module: sorted(name for name in imported if _tool_of(name))
        for module, imported in _modules().items()
        if module != "vmamodel" and _tool_of(module) is None
    }
    assert {m: names for m, names in offenders.items() if names} == {}


def test_the_core_is_most_of_the_package() -> None:
    """Guards the test above against a TOOLS list that swallows the model."""
    core = [m for m in _modules() if _tool_of(m) is None]
    assert {"vmamodel.mm", "vmamodel.mmap", "vmamodel.merge", "vmamodel.vma"} <= set(core)
    assert len(core) > 30


def test_only_the_command_line_imports_the_command_line() -> None:
    offenders = sorted(
        module for module, imported in _modules().items()
        if _tool_of(module) != "cli" and any(_tool_of(name) == "cli" for name in imported)
    )
    assert offenders == []


def test_the_benchmark_does_not_import_the_scenario_language() -> None:
    imported = set().union(*(v for m, v in _modules().items() if _tool_of(m) == "bench"))
    assert not {name for name in imported if _tool_of(name) in ("scenario", "cli")}
