"""The scenario language: tokenizer, parser, static checks and the executor (on a fake backend).

The fake backend at the top is also used by test_compare.py and test_cli.py.
"""


from __future__ import annotations

import errno
import itertools
import textwrap
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from vmamodel import File, memfd_create, open_file
from vmamodel.constants import (
    MAP_ANONYMOUS,
    MAP_FIXED_NOREPLACE,
    MAP_SHARED,
    MAP_TYPE,
    PAGE_SIZE,
    PROT_EXEC,
    PROT_READ,
    PROT_WRITE,
)
from vmamodel.events import Syscall
from vmamodel.scenario import (
    ARENA_BASE,
    Binary,
    Call,
    ExecOptions,
    Executor,
    Expect,
    ExpectErrno,
    ExpectValue,
    ModelBackend,
    Name,
    Num,
    Outcome,
    Run,
    Scenario,
    ScenarioError,
    Str,
    execute,
    options_for,
    parse,
    parse_file,
    tokenize,
)
from vmamodel.scenario.executor import SpaceRef

# A tiny stand-in backend: anonymous and file VMAs that merge naively.


@dataclass(frozen=True)
class FakeVma:
    start: int
    end: int
    prot: int
    shared: bool
    file: File | None = None
    pgoff: int = 0

    def mergeable(self, other: FakeVma) -> bool:
        same_file = self.file is other.file and (
            self.file is None or self.pgoff + (self.end - self.start) // PAGE_SIZE == other.pgoff
        )
        return (self.end == other.start and self.prot == other.prot
                and self.shared == other.shared and same_file)


@dataclass
class FakeSpace:
    vmas: list[FakeVma] = field(default_factory=list)
    calls: list[tuple[object, ...]] = field(default_factory=list)
    exited: bool = False
    ino_base: int = 0

    def mmap(self, addr: int, length: int, prot: int, flags: int, file: File | None = None,
             offset: int = 0) -> int:
        self.calls.append(("mmap", addr, length, prot, flags, file, offset))
        if length == 0 or flags & MAP_TYPE not in (1, 2) or addr % PAGE_SIZE:
            raise OSError(errno.EINVAL, "bad")
        end = addr + _round(length)
        if flags & MAP_FIXED_NOREPLACE and any(v.start < end and addr < v.end for v in self.vmas):
            raise OSError(errno.EEXIST, "exists")
        self._remove(addr, end)
        anon = flags & MAP_ANONYMOUS
        self.vmas.append(FakeVma(addr, end, prot, bool(flags & MAP_SHARED),
                                 None if anon else file, 0 if anon else offset // PAGE_SIZE))
        self._merge()
        return addr

    def munmap(self, addr: int, length: int) -> None:
        self.calls.append(("munmap", addr, length))
        if addr % PAGE_SIZE or length == 0:
            raise OSError(errno.EINVAL, "bad")
        self._remove(addr, addr + _round(length))

    def mprotect(self, addr: int, length: int, prot: int) -> None:
        self.calls.append(("mprotect", addr, length, prot))
        if prot & ~7:
            raise OSError(errno.EINVAL, "bad")
        end = addr + _round(length)
        inside = [v for v in self._split(addr, end) if addr <= v.start and v.end <= end]
        self.vmas = [replace(v, prot=prot) if v in inside else v for v in self.vmas]
        self._merge()

    def touch(self, addr: int, write: bool = False) -> None:
        self.calls.append(("touch", addr, write))
        if not any(v.start <= addr < v.end for v in self.vmas):
            raise OSError(errno.EFAULT, "fault")

    def mremap(self, old: int, old_len: int, new_len: int, flags: int = 0,
               new_addr: int = 0) -> int:
        self.calls.append(("mremap", old, old_len, new_len, flags, new_addr))
        return old

    def madvise(self, addr: int, length: int, advice: int) -> None:
        self.calls.append(("madvise", addr, length, advice))

    def mlock(self, addr: int, length: int) -> None:
        self.calls.append(("mlock", addr, length))

    def mlock2(self, addr: int, length: int, flags: int) -> None:
        self.calls.append(("mlock2", addr, length, flags))

    def munlock(self, addr: int, length: int) -> None:
        self.calls.append(("munlock", addr, length))

    def mlockall(self, flags: int) -> None:
        self.calls.append(("mlockall", flags))

    def munlockall(self) -> None:
        self.calls.append(("munlockall",))

    def brk(self, addr: int) -> int:
        self.calls.append(("brk", addr))
        return addr

    def fork(self) -> FakeSpace:
        self.calls.append(("fork",))
        return FakeSpace(list(self.vmas), ino_base=self.ino_base)

    def exit(self) -> None:
        self.calls.append(("exit",))
        self.exited = True

    def maps(self) -> str:
        return "".join(self._line(v) + "\n" for v in sorted(self.vmas, key=lambda v: v.start))

    def smaps(self) -> str:
        out = []
        for vma in sorted(self.vmas, key=lambda v: v.start):
            flags = "rd " if vma.prot & PROT_READ else ""
            flags += "wr " if vma.prot & PROT_WRITE else ""
            out.append(f"{self._line(vma)}\nRss:                   0 kB\nVmFlags: {flags}\n")
        return "".join(out)

    def _line(self, vma: FakeVma) -> str:
        perms = ("r" if vma.prot & PROT_READ else "-") + ("w" if vma.prot & PROT_WRITE else "-")
        perms += ("x" if vma.prot & PROT_EXEC else "-") + ("s" if vma.shared else "p")
        head = f"{vma.start:08x}-{vma.end:08x} {perms} "
        if vma.file is None:
            return head + "00000000 00:00 0 "
        dev = f"{vma.file.dev[0]:02x}:{vma.file.dev[1]:02x}"
        prefix = f"{head}{vma.pgoff * PAGE_SIZE:08x} {dev} {vma.file.ino + self.ino_base} "
        return prefix.ljust(72) + " " + vma.file.display_name()

    def _split(self, start: int, end: int) -> list[FakeVma]:
        out = []
        for vma in self.vmas:
            cuts = sorted({vma.start, vma.end, *(c for c in (start, end)
                                                 if vma.start < c < vma.end)})
            for lo, hi in itertools.pairwise(cuts):
                pgoff = vma.pgoff + (lo - vma.start) // PAGE_SIZE
                out.append(replace(vma, start=lo, end=hi, pgoff=pgoff))
        self.vmas = out
        return out

    def _remove(self, start: int, end: int) -> None:
        self.vmas = [v for v in self._split(start, end) if not (start <= v.start and v.end <= end)]

    def _merge(self) -> None:
        merged: list[FakeVma] = []
        for vma in sorted(self.vmas, key=lambda v: v.start):
            if merged and merged[-1].mergeable(vma):
                merged[-1] = replace(merged[-1], end=vma.end)
            else:
                merged.append(vma)
        self.vmas = merged


def _round(length: int) -> int:
    return (length + PAGE_SIZE - 1) // PAGE_SIZE * PAGE_SIZE


@dataclass
class FakeBackend:
    """Makes FakeSpaces; ``ino_base`` shifts every inode number (as a host would)."""

    name: str = "fake"
    ino_base: int = 0
    spaces: list[FakeSpace] = field(default_factory=list)
    closed: bool = False

    def new_space(self) -> FakeSpace:
        space = FakeSpace(ino_base=self.ino_base)
        self.spaces.append(space)
        return space

    def adopt(self, space: FakeSpace) -> None:
        self.spaces.append(space)

    def memfd_create(self, name: str, size: int) -> File:
        return memfd_create(name, size)

    def open_file(self, path: str, flags: int, size: int) -> File:
        return open_file("/data/" + path, flags, size)

    def close(self) -> None:
        self.closed = True

    def ledger_lines(self) -> list[str]:
        return []

    def findings(self) -> list[str]:
        return []


# ---------------------------------------------------------------------------------------------
# Helpers

B = ARENA_BASE
RW = "PROT_READ|PROT_WRITE"
ANON = "MAP_PRIVATE|MAP_ANONYMOUS"


def scenario(text: str, path: str = "t.vmas") -> Scenario:
    return parse(textwrap.dedent(text), path)


def run_fake(text: str, backend: FakeBackend | None = None, **options: object) -> Run:
    return execute(scenario(text), backend or FakeBackend(), ExecOptions(**options))  # type: ignore[arg-type]


def call(text: str) -> Call:
    statement = scenario(text).statements[0]
    assert isinstance(statement, Call)
    return statement


def value(expr: str, **names: int) -> int:
    """Evaluate one expression through the executor: the fake brk() returns its argument."""
    lines = ["#! layout: process", *(f"{n} = brk({v})" for n, v in names.items())]
    result = run_fake("\n".join([*lines, f"brk({expr})"]))
    assert result.error is None
    outcome = result.steps[-1].outcome
    assert outcome is not None and outcome.value is not None
    return outcome.value


def error_of(text: str, path: str = "x.vmas") -> str:
    with pytest.raises(ScenarioError) as info:
        parse(textwrap.dedent(text), path)
    return str(info.value)


# ---------------------------------------------------------------------------------------------
# Tokens and numbers


@pytest.mark.parametrize(
    ("literal", "expected"),
    [("0", 0), ("4096", 4096), ("0x1000", 0x1000), ("0X1f", 31), ("16K", 16 << 10),
     ("2M", 2 << 20), ("1G", 1 << 30), ("0x10K", 16 << 10), ("0o17", 15), ("0b101", 5)],
)
def test_number_literals(literal: str, expected: int) -> None:
    assert value(literal) == expected


def test_leading_zero_decimal_is_refused() -> None:
    assert error_of("munmap(010, 4K)") == "x.vmas:1: bad number '010': write octal as 0o10"


def test_tokenize_stops_at_comment() -> None:
    tokens = tokenize('a = f("x#y", 1) # c')
    assert [t.text for t in tokens] == ["a", "=", "f", "(", '"x#y"', ",", "1", ")", ""]
    assert tokens[-1].kind == "end"


@pytest.mark.parametrize(
    ("expr", "expected"),
    [("1 + 2*3", 7), ("(1+2)*3", 9), ("PROT_READ|PROT_WRITE", 3), ("-1", -1), ("~0", -1),
     ("1<<12", 4096), ("0x3000 >> 12", 3), ("7 & 2", 2), ("6 ^ 3", 5), ("1 | 2 + 4", 7),
     ("10 - 3 - 2", 5), ("+5", 5), ("NULL", 0), ("PAGE", 4096), ("BASE", B),
     ("BASE + 3*PAGE", B + 0x3000), ("MAP_FIXED_NOREPLACE", 0x100000), ("O_RDONLY", 0),
     ("MADV_DONTFORK", 10), ("PAGE_SIZE", 4096)],
)
def test_expressions(expr: str, expected: int) -> None:
    assert value(expr) == expected


def test_bound_names_in_expressions() -> None:
    assert value("a+4K", a=B) == B + 0x1000
    assert value("a + 3*PAGE", a=B) == B + 0x3000


# ---------------------------------------------------------------------------------------------
# Statements


def test_call_with_binding_and_expectation() -> None:
    statement = call(f"a = mmap(BASE, 16K, {RW}, {ANON}) = BASE + 0x10000  # why")
    assert statement.bind == "a"
    assert statement.func == "mmap"
    assert statement.target is None
    assert len(statement.args) == 4
    assert statement.expect == ExpectValue(Binary("+", Name("BASE"), Num(0x10000)))
    assert statement.text == f"a = mmap(BASE, 16K, {RW}, {ANON}) = BASE + 0x10000"


@pytest.mark.parametrize(
    ("suffix", "expected"),
    [("-EINVAL", ExpectErrno(errno.EINVAL)), ("-1 EINVAL", ExpectErrno(errno.EINVAL)),
     ("-1", ExpectErrno(None)), ("0", ExpectValue(Num(0))), ("-ENOMEM", ExpectErrno(12))],
)
def test_expectations(suffix: str, expected: Expect) -> None:
    assert call(f"munmap(BASE, 4K) = {suffix}").expect == expected


def test_string_arguments_and_escapes() -> None:
    statement = call(r'fd = memfd_create("a \"b\"", 64K)')
    assert statement.args == (Str('a "b"'), Num(64 << 10))


def test_comments_blank_lines_and_markers() -> None:
    parsed = scenario("""
        # a comment

        munmap(BASE, 4K)   # trailing
        maps
          smaps
    """)
    assert [type(s).__name__ for s in parsed.statements] == ["Call", "Marker", "Marker"]
    assert [s.line for s in parsed.statements] == [4, 5, 6]
    assert parsed.has_markers


def test_calls_on_a_child() -> None:
    parsed = scenario("""
        child = fork()
        child.munmap(BASE, 4K) = 0
        x = child.mmap(BASE, 4K, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS)
        grandchild = child.fork()
        grandchild.exit()
    """)
    calls = parsed.calls
    assert calls[1].target == "child"
    assert (calls[2].bind, calls[2].target) == ("x", "child")
    assert calls[4].target == "grandchild"


def test_directives() -> None:
    parsed = scenario("""
        #! profile: 6.18
        #! layout: process
        #!base: 0x200000000000
        munmap(BASE, 4K)
    """)
    assert (parsed.profile, parsed.layout, parsed.base) == ("6.18", "process", 0x200000000000)
    assert not parsed.has_markers
    default = scenario("munmap(BASE, 4K)")
    assert (default.profile, default.layout, default.base) == (None, "arena", None)


def test_touch_words_and_fd_arguments() -> None:
    parsed = scenario(f"""
        fd = memfd_create("buf", 64K)
        f = open("data.bin", O_RDONLY, 16K)
        a = mmap(BASE, 4K, PROT_READ, MAP_SHARED, fd, 0)
        b = mmap(BASE + 8K, 4K, PROT_READ, MAP_PRIVATE, f)
        c = mmap(BASE + 16K, 4K, {RW}, {ANON}, -1, 0)
        touch(a, write)
        touch(a, read)
        touch(a)
        touch(a, 1)
    """)
    assert len(parsed.calls) == 9


# ---------------------------------------------------------------------------------------------
# Error messages: always file:line


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("munmap(b, 4K)", "x.vmas:1: unknown name 'b'"),
        ("\n\nmunmap(BASE, 4K)\nmunmap(b + 1, 4K)", "x.vmas:4: unknown name 'b'"),
        ("frobnicate(1)", "x.vmas:1: unknown call 'frobnicate' (known: brk, exit, fork, "
         "madvise, memfd_create, mlock, mlock2, mlockall, mmap, mprotect, mremap, munlock, "
         "munlockall, munmap, open, stacked, touch)"),
        ("munmap(BASE)", "x.vmas:1: munmap(addr, length) takes 2 arguments, 1 given"),
        ("mmap(BASE, 4K)", "x.vmas:1: mmap(addr, length, prot, flags, [fd], [offset]) takes "
         "4 to 6 arguments, 2 given"),
        ("munmap(BASE, 4K", "x.vmas:1: expected ',', found end of line"),
        ("munmap(BASE, 4K))", "x.vmas:1: unexpected ')'"),
        ("munmap(BASE $ 4K)", "x.vmas:1: unexpected character '$'"),
        ("munmap(BASE, )", "x.vmas:1: expected a number or a name, found ')'"),
        ("= munmap(BASE, 4K)", "x.vmas:1: expected a call, found '='"),
        ('munmap("x", 4K)', "x.vmas:1: munmap(): addr must be a number, not a string"),
        ('munmap(BASE + "x", 4K)', "x.vmas:1: a string is only allowed as a whole argument"),
        ("memfd_create(buf)", "x.vmas:1: memfd_create(): name must be a string in double quotes"),
        ("memfd_create(1)", "x.vmas:1: memfd_create(): name must be a string in double quotes"),
        ('fd = memfd_create("b")\nmunmap(fd + 1, 4K)', "x.vmas:2: 'fd' is a file, not a number"),
        ('fd = memfd_create("b")\nmunmap(fd, 4K)',
         "x.vmas:2: munmap(): addr must be a number, not a file"),
        ("c = fork()\nmmap(BASE, 4K, 1, 2, c)",
         "x.vmas:2: mmap(): fd must be a file or -1, not an address space"),
        ("PAGE = mmap(BASE, 4K, 1, 2)", "x.vmas:1: cannot bind 'PAGE': it is a reserved name"),
        ("write = brk(0)", "x.vmas:1: cannot bind 'write': it is a reserved name"),
        ("x = munmap(BASE, 4K)", "x.vmas:1: munmap() returns no value to bind to 'x'"),
        ("child.munmap(BASE, 4K)", "x.vmas:1: unknown name 'child'"),
        ("a = brk(0)\na.munmap(BASE, 4K)",
         "x.vmas:2: 'a' is not an address space (bind one with fork())"),
        ('c = fork()\nc.memfd_create("x")',
         "x.vmas:2: memfd_create() is not called on an address space"),
        ("c = fork() = 0", "x.vmas:1: fork() returns an address space: only an errno can be "
         "expected"),
        ("munmap(BASE, 4K) = -1 ENOTANERRNO", "x.vmas:1: unknown errno 'ENOTANERRNO'"),
        ("munmap(BASE, 4K) = -EBOGUS", "x.vmas:1: unknown name 'EBOGUS'"),
        ("#! colour: blue", "x.vmas:1: unknown directive 'colour' (known: base, check, inject, "
         "layout, profile)"),
        ("#! profile: v99", "x.vmas:1: unknown profile 'v99' (known: 6.18, mainline, v4)"),
        ("#! layout: heap", "x.vmas:1: unknown layout 'heap' (known: arena, process)"),
        ("#! layout arena", "x.vmas:1: a directive is written '#! key: value'"),
        ("#! base: BASE", "x.vmas:1: base must be a number, not 'BASE'"),
        ("#! layout: arena\n#! layout: arena", "x.vmas:2: directive 'layout' given twice"),
        ("maps child", "x.vmas:1: expected '(', found 'child'"),
    ],
)
def test_error_messages(text: str, message: str) -> None:
    assert error_of(text) == message


def test_error_names_the_path_given() -> None:
    assert error_of("munmap(b, 4K)", "examples/x.vmas") == "examples/x.vmas:1: unknown name 'b'"


def test_parse_file(tmp_path: Path) -> None:
    path = tmp_path / "s.vmas"
    path.write_text("munmap(BASE, 4K)\nmunmap(nope, 4K)\n")
    with pytest.raises(ScenarioError) as info:
        parse_file(path)
    assert (info.value.path, info.value.line) == (str(path), 2)
    assert info.value.message == "unknown name 'nope'"


def test_no_python_eval() -> None:
    # Python syntax that is not part of the language is refused, not evaluated.
    assert "unexpected" in error_of("munmap(__import__('os'), 4K)")
    assert "unexpected character" in error_of("munmap(BASE, 4K) ; munmap(BASE, 4K)")


# ---------------------------------------------------------------------------------------------
# Executor


def test_results_and_snapshots() -> None:
    result = run_fake(f"""
        a = mmap(BASE, 12K, {RW}, {ANON})
        mprotect(a + 4K, 4K, PROT_READ)
        mprotect(a + 4K, 4K, {RW})
    """)
    assert result.error is None
    outcomes = [s.outcome for s in result.steps]
    assert [o.describe() for o in outcomes if o] == [hex(B), "0", "0"]
    assert outcomes[0] == Outcome(B, 0, hex(B))
    middle = result.steps[1].snapshots[0]
    assert middle.space == "main"
    assert middle.maps.count("\n") == 3
    assert result.steps[2].snapshots[0].maps == f"{B:x}-{B + 0x3000:x} rw-p 00000000 00:00 0 \n"
    assert result.steps[2].snapshots[0].smaps is not None


def test_failing_call_is_not_fatal() -> None:
    result = run_fake(f"""
        mprotect(BASE, 4K, 0x100)
        a = mmap(BASE, 4K, {RW}, {ANON})
    """)
    assert result.steps[0].outcome == Outcome(None, errno.EINVAL)
    assert result.steps[0].outcome.describe() == "-1 EINVAL"
    assert result.steps[1].outcome is not None and result.steps[1].outcome.ok
    assert result.error is None


def test_expectations_are_checked() -> None:
    result = run_fake(f"""
        a = mmap(BASE, 4K, {RW}, {ANON}) = BASE
        b = mmap(BASE + 8K, 4K, {RW}, {ANON}) = BASE + 4K
        mprotect(a, 4K, 0x100) = -EINVAL
        mprotect(a, 4K, 0x100) = -1
        mprotect(a, 4K, 0x100) = -ENOMEM
        munmap(a, 4K) = 0
        munmap(a, 4K) = -1 EINVAL
    """)
    failed = {s.line: s.failed_expectation for s in result.failed_expectations}
    assert failed == {
        3: "expected 0x100001000, got 0x100002000".replace("0x100001000", hex(B + 0x1000))
        .replace("0x100002000", hex(B + 0x2000)),
        6: "expected -1 ENOMEM, got -1 EINVAL",
        8: "expected -1 EINVAL, got 0",
    }


def test_name_bound_by_failed_call() -> None:
    result = run_fake(f"""
        a = mmap(BASE, 0, {RW}, {ANON})
        munmap(BASE, 4K)
        munmap(a, 4K)
        munmap(BASE, 4K)
    """)
    assert len(result.steps) == 2
    assert str(result.error) == (
        "t.vmas:4: 'a' has no value: its call on line 2 failed (-1 EINVAL)")


def test_rebinding_after_failure_clears_it() -> None:
    result = run_fake(f"""
        a = mmap(BASE, 0, {RW}, {ANON})
        a = mmap(BASE, 4K, {RW}, {ANON})
        munmap(a, 4K) = 0
    """)
    assert result.error is None and not result.failed_expectations


def test_files_reach_the_backend() -> None:
    backend = FakeBackend()
    result = run_fake(f"""
        fd = memfd_create("buf", 64K)
        f = open("data.bin", O_RDONLY, 16K)
        a = mmap(BASE, 8K, PROT_READ, MAP_SHARED, fd, 4K)
        b = mmap(BASE + 16K, 4K, PROT_READ, MAP_PRIVATE, f, 0)
        c = mmap(BASE + 32K, 4K, {RW}, {ANON}, -1, 0)
    """, backend)
    assert [s.outcome.describe() for s in result.steps if s.outcome][:2] == [
        "/memfd:buf (deleted)", "/data/data.bin"]
    mmaps = [c for c in backend.spaces[0].calls if c[0] == "mmap"]
    memfd, regular, anon = (c[5] for c in mmaps)
    assert isinstance(memfd, File) and memfd.path == "/memfd:buf" and memfd.size == 64 << 10
    assert isinstance(regular, File) and regular.flags == 0 and regular.size == 16 << 10
    assert anon is None
    assert mmaps[0][6] == 4096
    assert "/memfd:buf (deleted)" in result.steps[-1].snapshots[0].maps


def test_touch_modes() -> None:
    backend = FakeBackend()
    run_fake(f"""
        a = mmap(BASE, 4K, {RW}, {ANON})
        touch(a, write)
        touch(a, read)
        touch(a)
        touch(a, 1)
        touch(a + 8K, write) = -EFAULT
    """, backend)
    touches = [c for c in backend.spaces[0].calls if c[0] == "touch"]
    assert [t[2] for t in touches] == [True, False, False, True, True]


def test_fork_child_calls_and_exit() -> None:
    backend = FakeBackend()
    result = run_fake(f"""
        a = mmap(BASE, 8K, {RW}, {ANON})
        child = fork()
        child.munmap(a, 4K)
        maps
        child.exit()
        maps
        child.munmap(a, 4K)
    """, backend)
    assert [s.space for s in result.steps[3].snapshots] == ["main", "child"]
    parent, child = (s.maps for s in result.steps[3].snapshots)
    assert parent.count("\n") == 1 and f"{B + 0x1000:x}-" in child
    assert [s.space for s in result.steps[5].snapshots] == ["main"]
    assert str(result.error) == "t.vmas:8: address space 'child' has exited"
    assert backend.spaces[0].calls[-1] == ("fork",)


def test_fork_labels_are_unique() -> None:
    result = run_fake("""
        c = fork()
        c = fork()
        maps
    """)
    assert [s.space for s in result.steps[-1].snapshots] == ["main", "c", "c#2"]


def test_every_call_reaches_the_backend() -> None:
    backend = FakeBackend()
    result = run_fake("""
        #! layout: process
        mremap(BASE, 4K, 8K, MREMAP_MAYMOVE)
        mremap(BASE, 4K, 8K)
        madvise(BASE, 4K, MADV_DONTFORK)
        mlock(BASE, 4K)
        mlock2(BASE, 4K, MLOCK_ONFAULT)
        mlock2(BASE, 4K)
        munlock(BASE, 4K)
        mlockall(MCL_CURRENT|MCL_FUTURE)
        munlockall()
        b = brk(0x1000000)
    """, backend)
    assert result.error is None
    assert backend.spaces[0].calls == [
        ("mremap", B, 4096, 8192, 1, 0), ("mremap", B, 4096, 8192, 0, 0),
        ("madvise", B, 4096, 10), ("mlock", B, 4096), ("mlock2", B, 4096, 1),
        ("mlock2", B, 4096, 0), ("munlock", B, 4096), ("mlockall", 3), ("munlockall",),
        ("brk", 0x1000000)]
    assert result.steps[-1].outcome == Outcome(0x1000000, 0, "0x1000000")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (f"mmap(NULL, 4K, {RW}, {ANON})",
         "mmap() address 0x0 must be fixed or hinted inside [0x100000000000, 0x110000000000)"),
        (f"mmap(BASE - 4K, 4K, {RW}, {ANON})", "mmap() address 0xffffffff000 must be"),
        (f"mmap(BASE + (1 << 40) - 4K, 8K, {RW}, {ANON}|MAP_FIXED)", "mmap() address"),
        ("munmap(BASE + (1 << 40) - 4K, 8K)", "munmap() range at 0x10fffffff000 is not inside"),
        ("mprotect(0, 4K, 0)", "mprotect() range at 0x0"),
        ("mremap(0, 4K, 8K)", "mremap() old range at 0x0"),
        ("mremap(BASE, 4K, 8K, MREMAP_MAYMOVE|MREMAP_FIXED, 0)", "mremap() new range at 0x0"),
        ("touch(0x1000)", "touch() address 0x1000"),
        ("brk(0x1000)", "brk() break 0x1000 must lie inside"),
    ],
)
def test_arena_layout_confines_addresses(line: str, message: str) -> None:
    result = run_fake(line)
    assert result.error is not None
    assert str(result.error).startswith(f"t.vmas:1: layout arena: {message}")
    assert result.steps == []


def test_arena_allows_hints_beyond_the_end_without_fixed() -> None:
    result = run_fake(f"mmap(BASE, 1 << 50, {RW}, {ANON})")
    assert result.error is None


def test_custom_base() -> None:
    result = run_fake(f"a = mmap(BASE, 4K, {RW}, {ANON}) = 0x200000000000", base=0x200000000000)
    assert result.error is None and not result.failed_expectations
    assert options_for(scenario("#! base: 0x300000000000\nmunmap(BASE, 4K)")).base == 0x3 << 44
    assert options_for(scenario("#! base: 0x3K\nmunmap(BASE, 4K)"), base=7).base == 7
    assert options_for(scenario("munmap(BASE, 4K)")).base == ARENA_BASE


def test_snapshots_are_confined_to_the_arena() -> None:
    backend = FakeBackend()
    result = execute(scenario(f"mmap(BASE, 4K, {RW}, {ANON})"), backend, ExecOptions())
    backend.spaces[0].vmas.append(FakeVma(0x1000, 0x2000, 1, False))
    executor = Executor(scenario("maps"), backend, ExecOptions())
    executor.spaces.append(SpaceRef("main", backend.spaces[0]))
    snap = executor.snapshots()[0]
    assert snap.maps.startswith(f"{B:x}-") and "00001000-" not in snap.maps
    assert snap.smaps is not None and "00001000-" not in snap.smaps
    assert "VmFlags: rd wr" in snap.smaps
    assert result.error is None


class _Broken(FakeSpace):
    def mprotect(self, addr: int, length: int, prot: int) -> None:
        raise NotImplementedError("mprotect is not modelled yet")


def test_backend_crash_stops_the_run() -> None:
    backend = FakeBackend()
    backend.new_space = lambda: _Broken()  # type: ignore[method-assign]
    result = run_fake(f"""
        a = mmap(BASE, 4K, {RW}, {ANON})
        mprotect(a, 4K, PROT_READ) = 0
        munmap(a, 4K)
    """, backend)
    assert len(result.steps) == 2 and result.crashed
    outcome = result.steps[1].outcome
    assert outcome is not None and not outcome.ok
    assert outcome.describe() == "crashed: NotImplementedError: mprotect is not modelled yet"
    assert result.steps[1].failed_expectation is None


def test_trace_collects_events_per_step() -> None:
    text = "munmap(BASE, 4K)\nc = fork()\nc.munmap(BASE, 8K)\nmaps"
    traced = execute(scenario(text), ModelBackend(), ExecOptions(trace=True))
    assert traced.steps[0].events[0] == Syscall("munmap", (B, 4096))
    assert traced.steps[1].events[0] == Syscall("fork", ())
    assert traced.steps[2].events[0] == Syscall("munmap", (B, 8192))
    # the child's call is traced by the child's tracer alone, not twice
    assert [e for e in traced.steps[2].events if isinstance(e, Syscall)] == [
        Syscall("munmap", (B, 8192))
    ]
    quiet = execute(scenario(text), ModelBackend(), ExecOptions())
    assert all(step.events == () for step in quiet.steps)
