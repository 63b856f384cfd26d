"""The scenario language: a small, C-like file of VMA system calls, its parser and executor.

A scenario is written by hand, one call per line::

    #! profile: v4
    # three adjacent anonymous ranges become one VMA
    a = mmap(BASE, 4K, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED)
    b = mmap(a + PAGE, 4K, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS) = BASE + 4K
    mprotect(a, 4K, 0x100) = -EINVAL
    maps
    fd = memfd_create("buf", 64K)
    child = fork()
    child.munmap(a, 4K) = 0

Grammar (one statement per line; ``#`` starts a comment, ``#!`` a directive)::

    line       := directive | marker | statement | (empty)
    directive  := "#!" KEY ":" VALUE            KEY: profile | layout | base | inject | check
    marker     := "maps" | "smaps"
    statement  := [NAME "="] [NAME "."] CALL "(" [arg ("," arg)*] ")" ["=" expect]
    expect     := "-" ERRNO | "-1" [ERRNO] | expr
    arg        := expr | STRING
    expr       := C expression over integers: | ^ & << >> + - * and unary - ~, parentheses
    atom       := NUMBER | NAME | "(" expr ")"
    NUMBER     := decimal | 0x hex | 0o octal | 0b binary, optionally followed by K, M or G

Names: every integer constant of :mod:`vmamodel.constants` (``PROT_READ``, ``MAP_FIXED``...),
``NULL`` (0), ``PAGE`` (the page size), ``BASE`` (the arena base) and the names the scenario
binds with ``x = call(...)``. A call on a forked child is written ``child.call(...)``; a
call without a prefix runs on the first address space.

``open(PATH)`` of a path listed in :mod:`vmamodel.drivers.devices` (``"/dev/hpet"``,
``"/dev/stm0?chans=2"``, ``"/dev/good0"``...) opens a built-in driver model instead of a
file. Only the model has those: :attr:`Scenario.model_only` lists such lines, ``vmamodel
diff`` refuses the scenario, and a model run reports the drivers' ledgers (``Run.ledgers``).

Model-only directives for drivers: ``#! inject: POINT nth=N`` fails the N-th reach of a failure
point of :mod:`vmamodel.inject` (one injector for a process and its forks), and ``#! check:
lifecycle`` watches the run with the detectors of :mod:`vmamodel.check`, whose findings end the
run (``Run.findings``). ``open("package.module:factory")`` opens the file a driver factory
returns; ``up = stacked(fd[, errno])`` is ``fd`` under a legacy ``.mmap`` that forwards to it
(:mod:`vmamodel.drivers.stacked`), its outer hook failing afterwards with ``errno`` if given.

A failing call is not fatal: its errno is the result and later lines continue, like a C program
that checks return values. A name bound by a failed call is an error only when used later.

Layouts (``#! layout:``): ``arena`` (the default) requires every address to lie in the arena
``[BASE, BASE + 1 TiB)`` so that the host oracle can run the scenario in a process that has
other mappings; ``process`` (reserved) will place mappings in a whole process.
"""


from __future__ import annotations

from vmamodel.host.arena import ARENA_BASE, ARENA_SIZE
from vmamodel.scenario.ast import (
    Binary,
    Call,
    Expect,
    ExpectErrno,
    ExpectValue,
    Marker,
    Name,
    Num,
    Scenario,
    Str,
)
from vmamodel.scenario.backends import (
    Backend,
    FileStore,
    HostBackend,
    ModelBackend,
)
from vmamodel.scenario.executor import (
    ExecOptions,
    Executor,
    Outcome,
    Run,
    Snapshot,
    StepRecord,
    execute,
    options_for,
)
from vmamodel.scenario.parser import (
    check,
    parse,
    parse_file,
)
from vmamodel.scenario.tokens import (
    ScenarioError,
    tokenize,
)

__all__ = [
    "ARENA_BASE",
    "ARENA_SIZE",
    "Backend",
    "Binary",
    "Call",
    "ExecOptions",
    "Executor",
    "Expect",
    "ExpectErrno",
    "ExpectValue",
    "FileStore",
    "HostBackend",
    "Marker",
    "ModelBackend",
    "Name",
    "Num",
    "Outcome",
    "Run",
    "Scenario",
    "ScenarioError",
    "Snapshot",
    "StepRecord",
    "Str",
    "check",
    "execute",
    "options_for",
    "parse",
    "parse_file",
    "tokenize",
]
