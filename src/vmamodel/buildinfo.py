"""Which build of the model runs: the hot modules compiled by mypyc, or pure Python.

Standard library only, and no vmamodel imports: setup.py reads :data:`HOT_MODULES` from this
file before the package is installed.
"""

from __future__ import annotations

import importlib.util
from typing import Final

#: The call path of mmap, munmap, mprotect, mremap, madvise, brk and touch, from their entry
#: points down (syscalls: the entry points themselves, a native base class of AddressSpace;
#: ksm: the VM_MERGEABLE flags of every new VMA; page: PAGE_ALIGN and PFN_UP, which
#: constants.py re-exports; mm_types: the fields of the mm_struct those paths use, and the
#: trace and injection switches), and the replay's per-call step (replay.step), which a
#: regular install compiles with mypyc (setup.py). Names are module paths below ``vmamodel``,
#: dotted in a subpackage. Left out: access_fault.py and driver_error.py (subclasses of
#: built-in exceptions, which mypyc cannot compile), mm.py (its other entry points are
#: wrapped by vmamodel.abi's generated converters, which a native class cannot take:
#: AddressSpace is an interpreted subclass of syscalls.SyscallEntry), events.py and inject.py
#: (their Tracer and Injector subclass mm_types' native cores), and everything off the hot
#: path.
HOT_MODULES: Final = (
    "accounting",
    "fault",
    "hooks",
    "ksm",
    "madvise",
    "merge",
    "mm_types",
    "mman",
    "mmap",
    "mprotect",
    "mremap",
    "munmap",
    "page",
    "pagetable",
    "populate",
    "replay.step",
    "stack",
    "syscalls",
    "tree",
    "unmapped_area",
    "vma",
)


def source_path(name: str) -> str:
    """The source file of the hot module ``name``, relative to the package's parent
    (``replay.step`` -> ``vmamodel/replay/step.py``)."""
    return f"vmamodel/{name.replace('.', '/')}.py"


def compiled_modules() -> list[str]:
    """The hot modules that Python loads from a compiled extension (not from a .py file)."""
    compiled = []
    for name in HOT_MODULES:
        spec = importlib.util.find_spec(f"vmamodel.{name}")
        origin = spec.origin if spec is not None else None
        if origin is not None and not origin.endswith(".py"):
            compiled.append(name)
    return compiled


def build_name() -> str:
    """"compiled" when every hot module is compiled, "pure" when none is, else "mixed"."""
    compiled = compiled_modules()
    if not compiled:
        return "pure"
    return "compiled" if len(compiled) == len(HOT_MODULES) else "mixed"


def describe() -> str:
    """One line for ``vmamodel --version`` and the benchmark's header."""
    compiled = compiled_modules()
    if not compiled:
        return "pure Python (no module compiled)"
    if len(compiled) == len(HOT_MODULES):
        return f"compiled with mypyc ({len(compiled)} hot modules)"
    return f"partly compiled with mypyc: {', '.join(compiled)}"
