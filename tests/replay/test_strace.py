"""The strace parser on hand-written edge cases, and its one-match path against the general one."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vmamodel.replay import step
from vmamodel.replay.step import PLAIN_CALL_RE, call_ints
from vmamodel.replay.strace import (
    _PLAIN_CALL_RE,
    StraceCall,
    StraceError,
    _Parser,
    arg_int,
    arg_ints,
    fd_path,
    parse_strace,
    split_args,
    string_arg,
    struct_field,
)


def parse(text: str):  # type: ignore[no-untyped-def]
    return parse_strace(text.strip("\n").splitlines(), source="t.log", default_pid=7)


def test_plain_line_without_pid_uses_default_pid() -> None:
    log = parse("mmap(NULL, 8192, 0x3, 0x22, -1, 0) = 0x7f6083ff0000\n")
    (call,) = log.calls
    assert (call.pid, call.name, call.retval, call.error) == (7, "mmap", 0x7F6083FF0000, None)
    assert call.args == ("NULL", "8192", "0x3", "0x22", "-1", "0")
    assert [arg_int(a) for a in call.args] == [0, 8192, 3, 0x22, -1, 0]


def test_pid_prefix_forms() -> None:
    log = parse(
        "123 munmap(0x1000, 4096) = 0\n"
        "[pid 456] munmap(0x2000, 4096) = -1 EINVAL (Invalid argument)\n"
        "[pid  78] brk(NULL) = 0x5000\n"
    )
    assert [(c.pid, c.retval, c.error) for c in log.calls] == [
        (123, 0, None), (456, -1, "EINVAL"), (78, 0x5000, None),
    ]


def test_timestamps_are_skipped() -> None:
    log = parse("123 17:01:02.123456 brk(NULL) = 0x5000\n1700000000.5 brk(NULL) = 0x6000\n")
    assert [c.retval for c in log.calls] == [0x5000, 0x6000]


def test_unfinished_and_resumed_join_in_exit_order() -> None:
    log = parse(
        "10 mmap(NULL, 4096, 0x3, 0x22, -1, 0 <unfinished ...>\n"
        "11 munmap(0x7000, 4096 <unfinished ...>\n"
        "11 <... munmap resumed>) = 0\n"
        "10 <... mmap resumed>) = 0x9000\n"
    )
    assert [(c.name, c.line, c.end_line) for c in log.calls] == [
        ("munmap", 2, 3), ("mmap", 1, 4),
    ]
    mmap = log.calls[1]
    assert mmap.args == ("NULL", "4096", "0x3", "0x22", "-1", "0")
    assert mmap.overlapped and mmap.retval == 0x9000


def test_resumed_mid_argument_list() -> None:
    log = parse(
        '5 read(3</etc/x>, <unfinished ...>\n'
        '6 close(4) = 0\n'
        '5 <... read resumed>"a)b,c", 10) = 5\n'
    )
    read = log.calls[1]
    assert read.args == ("3</etc/x>", '"a)b,c"', "10")


def test_resume_of_wrong_call_is_an_error() -> None:
    with pytest.raises(StraceError, match=r"t.log:2: pid 5 resumes munmap but started mmap"):
        parse("5 mmap(NULL <unfinished ...>\n5 <... munmap resumed>) = 0\n")


def test_resume_without_start_is_an_error() -> None:
    with pytest.raises(StraceError, match=r"t.log:1: .*never started"):
        parse("5 <... munmap resumed>) = 0\n")


def test_log_ending_inside_a_call_leaves_it_pending() -> None:
    log = parse("5 exit_group(0 <unfinished ...>\n")
    assert log.calls == [] and [c.name for c in log.pending] == ["exit_group"]


def test_fd_paths_with_commas_parens_and_brackets() -> None:
    log = parse(
        "1 mmap(NULL, 4096, 0x1, 0x2, 3</tmp/a, b)>, 0) = 0x1000\n"
        "1 close(4</tmp/x[1]>) = 0\n"
        "1 openat(-100</tmp>, \"/tmp/q\\\"(,)\", 0x80000) = 5</tmp/q\"(,)>\n"
    )
    mmap, close, openat = log.calls
    assert mmap.args[4] == "3</tmp/a, b)>" and fd_path(mmap.args[4]) == "/tmp/a, b)"
    assert fd_path(close.args[0]) == "/tmp/x[1]"
    assert string_arg(openat.args[1]) == '/tmp/q"(,)'
    assert openat.retval == 5 and openat.ret_path == '/tmp/q"(,)'
    assert arg_int(openat.args[0]) == -100


def test_raw_hex_and_escaped_paths() -> None:
    log = parse('1 openat(AT_FDCWD, "/tmp/\\x41\\n", 0x80000) = 3</tmp/A\\n>\n')
    (call,) = log.calls
    assert string_arg(call.args[1]) == "/tmp/A\n" and call.ret_path == "/tmp/A\n"


def test_question_mark_results() -> None:
    log = parse(
        "1 exit_group(0) = ?\n"
        "2 futex(0x7f, 0x80, 2, NULL) = ? ERESTARTSYS (To be restarted if SA_RESTART is set)\n"
        "3 nanosleep({tv_sec=1, tv_nsec=0}, NULL) = ? ERESTART_RESTARTBLOCK (Interrupted by "
        "signal)\n"
        "4 close(3) = -1 EINTR (Interrupted system call)\n"
    )
    exit_group, futex, nano, close = log.calls
    assert exit_group.retval is None and exit_group.interrupted
    assert futex.retval is None and futex.error == "ERESTARTSYS" and futex.interrupted
    assert nano.error == "ERESTART_RESTARTBLOCK"
    assert close.retval == -1 and close.error == "EINTR" and not close.interrupted


def test_signals_exits_and_strace_messages_are_notes() -> None:
    log = parse(
        "strace: Process 99 attached\n"
        "99 --- SIGSEGV {si_signo=SIGSEGV, si_code=SEGV_MAPERR, si_addr=0x10} ---\n"
        "[pid 98] +++ exited with 0 +++\n"
        "99 +++ killed by SIGSEGV (core dumped) +++\n"
        "strace: Process 99 detached\n"
    )
    assert log.calls == []
    assert [n.kind for n in log.notes] == ["strace", "signal", "exit", "exit", "strace"]
    assert log.exits == {98: 3, 99: 4}


def test_signal_between_unfinished_and_resumed() -> None:
    log = parse(
        "1 mprotect(0x1000, 4096, 0x1 <unfinished ...>\n"
        "2 --- SIGCHLD {si_signo=17, si_code=0x1} ---\n"
        "1 <... mprotect resumed>) = 0\n"
    )
    assert [c.name for c in log.calls] == ["mprotect"] and len(log.notes) == 1


def test_structs_comments_and_clone_flags() -> None:
    log = parse(
        "1 newfstatat(3</lib/libc.so.6>, \"\", {st_dev=0xfe00, st_ino=339380, "
        "st_mode=0100755, st_size=1926232, st_atime=1 /* 2026-12-03T17:44:36+0000 */}, "
        "0x1000) = 0\n"
        "1 clone(child_stack=NULL, flags=0x1200000|17, child_tidptr=0x7f) = 1234\n"
        "1 clone3({flags=0x3d0f00, exit_signal=0, stack=0x7f0, stack_size=0x7fff80} => "
        "{parent_tid=[1235]}, 88) = 1235\n"
    )
    stat, clone, clone3 = log.calls
    assert struct_field(stat.args[2], "st_size") == "1926232"
    assert arg_int(struct_field(stat.args[2], "st_mode") or "") == 0o100755
    assert arg_int(struct_field(stat.args[2], "st_dev") or "") == 0xFE00
    assert clone.args[1] == "flags=0x1200000|17"
    assert arg_int(clone.args[1].partition("=")[2]) == 0x1200000 | 17
    assert clone3.retval == 1235 and len(clone3.args) == 2


def test_split_args_keeps_nested_parts() -> None:
    assert split_args('a, {b, [c, d]}, "e,f", g(h, i)') == [
        "a", "{b, [c, d]}", '"e,f"', "g(h, i)",
    ]
    assert split_args("") == []


@pytest.mark.parametrize(
    "line, message",
    [
        ("hello world", "not a system call"),
        ("mmap(NULL, 4096 = 0", "no closing"),
        ("mmap(NULL) 0x1000", "expected '= result'"),
        ("mmap(NULL) = bogus", "bad result"),
        ('openat(-100, "/tmp/x, 0) = 3', "unterminated string"),
        ("munmap(0x1000, 4096)) = 0", "expected '= result'"),
        ("+++ something +++", "unknown exit line"),
    ],
)
def test_garbage_is_an_error_naming_the_line(line: str, message: str) -> None:
    with pytest.raises(StraceError, match=rf"t.log:2: .*{message}"):
        parse("brk(NULL) = 0x1000\n" + line + "\n")


def test_never_evaluates() -> None:
    with pytest.raises(ValueError):
        arg_int("__import__('os').system('true')")
    with pytest.raises(ValueError):
        arg_int("1+1")


def test_deleted_fd_path() -> None:
    log = parse(
        "1 ftruncate(6</memfd:x>(deleted), 4194304) = 0\n"
        "1 memfd_create(\"x\", 0x1) = 6</memfd:x>(deleted)\n"
    )
    ftruncate, memfd = log.calls
    assert ftruncate.args == ("6</memfd:x>(deleted)", "4194304")
    assert fd_path(ftruncate.args[0]) == "/memfd:x (deleted)"
    assert arg_int(ftruncate.args[0]) == 6
    assert memfd.ret_path == "/memfd:x (deleted)"


@pytest.mark.parametrize(
    "line",
    [
        "mmap(NULL, 8192, 0x3, 0x22, -1, 0) = 0x7f6083ff0000",
        "123 munmap(0x1000, 4096) = 0\n",
        "[pid 456] munmap(0x2000, 4096) = -1 EINVAL (Invalid argument)",
        "[pid  78] brk(NULL) = 0x5000",
        "123 17:01:02.123456 brk(NULL) = 0x5000",
        "1700000000.5 brk(NULL) = 0x6000",
        "9 munlockall() = 0",
        "9 mremap(0x7f0000000000, 16384, 24576, 0x1, 0) = 0x7f0000100000",
        "9 madvise(0x1000,8192 ,  0x4) = 0",
        "9 mlock2(0x1000, 4096, 0) = -1 ENOMEM (Cannot allocate memory)",
        "9 fcntl(3, 0x3) = 0x8002 (flags O_RDWR|O_LARGEFILE)",
        "9 umask(022) = 0755",
        "9 close(3</tmp/a, b>) = 0",
        '9 openat(-100, "/etc/passwd", 0x80000) = 3</etc/passwd>',
        "9 exit_group(0) = ?",
        "9 mmap(NULL, 4096, 0x3, 0x22, -1, 0) = ? ERESTARTSYS (To be restarted)",
        "9 clone(child_stack=NULL, flags=0x1200011) = 4321",
        "9 shmat(3, NULL, 0) = 0x7f00 /* comment */",
    ],
)
def test_the_one_match_path_gives_what_the_general_path_gives(line: str) -> None:
    """parse_strace reads most lines with one regular expression; every line it takes that
    way must give the very call the general parser gives (and the others take the general
    path)."""
    general = _Parser(7)
    general.feed(1, line)
    (expected,) = general.log.calls
    (call,) = parse_strace([line], default_pid=7).calls
    assert call == expected


def test_the_one_match_path_takes_the_common_lines_only() -> None:
    assert _PLAIN_CALL_RE.fullmatch("9 munmap(0x2000, 4096) = -1 EINVAL (Invalid argument)")
    assert _PLAIN_CALL_RE.fullmatch("9 mmap(NULL, 8192, 0x3, 0x22, -1, 0) = 0x7f6083ff0000\n")
    for line in (
        '9 openat(-100, "/etc/passwd", 0x80000) = 3</etc/passwd>',
        "9 umask(022) = 0755",
        "9 fcntl(3, 0x3) = 0x8002 (flags O_RDWR|O_LARGEFILE)",
        "9 mmap(NULL, 4096, 0x3, 0x22, -1, 0 <unfinished ...>",
        "9 <... mmap resumed>) = 0x9000",
        "munmap(0x1000, 4096)) = 0",
        "9 madvise(0x1000,8192 ,  0x4) = 0",
    ):
        assert _PLAIN_CALL_RE.fullmatch(line) is None, line


def test_arg_ints() -> None:
    assert arg_ints(("0x1000", "4096", "-1", "0")) == (0x1000, 4096, -1, 0)
    assert arg_ints(("NULL", "8192", "0x1|0x2", "3</tmp/x>", "010")) == (0, 8192, 3, 3, 8)
    assert arg_ints(tuple(str(i) for i in range(12))) == tuple(range(12))
    with pytest.raises(ValueError):
        arg_ints(("0x1000", "1+1"))


def test_one_match_path_on_a_real_log() -> None:
    """Every line of a real recording (examples/fragment.rec) gives the same call through
    parse_strace as through the general parser, and most take the one-match path."""
    log = Path(__file__).parents[2] / "examples" / "fragment.rec" / "trace.txt"
    lines = log.read_text(encoding="utf-8", errors="surrogateescape").splitlines(keepends=True)
    general = _Parser(0)
    for number, line in enumerate(lines, 1):
        general.feed(number, line)
    assert parse_strace(lines).calls == general.log.calls
    plain = sum(1 for line in lines if _PLAIN_CALL_RE.fullmatch(line))
    assert plain > len(lines) // 2


def test_integer_arguments_are_converted_with_the_line() -> None:
    """Each call carries its arguments as integers (both parsing paths), or None when one
    of them is not an integer; a text seen before gives the same value again."""
    log = parse(
        "9 mmap(NULL, 8192, 0x3, 0x22, -1, 0) = 0x7f6083ff0000\n"
        "9 mmap(NULL, 8192, 0x3, 0x22, -1, 0) = 0x7f6083fee000\n"
        "9 madvise(0x7f6083ff0000, 8192, 0x4) = 0\n"
        "9 mprotect(0x1000, 4096, 0x1|0x2) = 0\n"
        "9 umask(022) = 0755\n"
        "9 munmap(0x2000, 4096</tmp/x>) = 0\n"
        '9 openat(-100, "/etc/passwd", 0x80000) = 3</etc/passwd>\n'
        "9 munlockall() = 0\n"
    )
    assert [c.ints for c in log.calls] == [
        (0, 8192, 3, 0x22, -1, 0), (0, 8192, 3, 0x22, -1, 0), (0x7F6083FF0000, 8192, 4),
        (0x1000, 4096, 3), (0o22,), (0x2000, 4096), None, (),
    ]
    assert [c.retval for c in log.calls][:2] == [0x7F6083FF0000, 0x7F6083FEE000]


def test_call_ints_with_known_texts_gives_what_arg_ints_gives() -> None:
    known: dict[str, int] = {}
    texts = [("NULL", "0x10", "-1"), ("0x10", "010", "NULL"), ("0x1|0x2", "AT_FDCWD"),
             ("0x10", "x")]
    for args in texts * 2:
        try:
            expected: tuple[int, ...] | None = arg_ints(args)
        except ValueError:
            expected = None
        assert call_ints(args, known) == expected == call_ints(args)
    assert "x" not in known


def test_a_strace_call_compares_and_shows_by_value() -> None:
    first = StraceCall(7, "munmap", ("0x1000", "4096"), 0, None, None, 3, 3, "", (0x1000, 4096))
    second = StraceCall(7, "munmap", ("0x1000", "4096"), 0, None, None, 3, 3, "", (0x1000, 4096))
    assert first == second and first != StraceCall(7, "munmap", (), 0, None, None, 3, 3)
    assert repr(first).startswith("StraceCall(pid=7, name='munmap', args=('0x1000', '4096')")
    assert first.describe() == "[pid 7] munmap(0x1000, 4096) = 0"


# -- the string-method path of the commonest lines (step._common_call) -------------------------

#: Each part of a line, well-formed or not: pids, times, names, arguments, separators,
#: results and tails, with characters the pattern refuses or reads its own way (Unicode
#: digits and spaces, tabs, CR, quotes, brackets, paths).
_PIDS = ["", "123 ", "9  ", "[pid 4] ", "[pid  4] ", "\u0663 ", "12a ", "1\t", " ", "9"]
_TIMES = ["", "", "17:01:02.5 ", "1700000000.5 ", "12 "]
_NAMES = ["mmap", "brk", "x1_", "_", "Mm", "1x", "", "m m", "\u00e9"]
_ARGS = ["NULL", "0x10", "-1", "4096", "010", "0x1|0x2", "a=b", "3</tmp/x>", '"s"', "{}",
         "[1]", "", " ", "x\u00a0", "\u0663", "(", "/"]
_SEPS = [", ", ", ", ",", " , ", ",  "]
_SPACES = [" ", " ", "    ", "", "\t", "\u00a0"]
_RESULTS = ["= 0", "= 0x7f00", "= -22", "= 18", "= 0X1", "= 01", "= ?", "=0", "= ", "= \u0663",
            "= 3</x>", "= 0x1F"]
_TAILS = ["", "\n", "", " EINVAL (Invalid argument)", " (flags x)", "\r\n", "\n\n", " ",
          " /* c */"]


@st.composite
def _lines(draw: st.DrawFn) -> str:
    args = draw(st.lists(st.sampled_from(_ARGS), max_size=4))
    seps = [draw(st.sampled_from(_SEPS)) for _ in args[1:]]
    inner = args[0] + "".join(sep + arg for sep, arg in zip(seps, args[1:], strict=True)) \
        if args else ""
    return (draw(st.sampled_from(_PIDS)) + draw(st.sampled_from(_TIMES))
            + draw(st.sampled_from(_NAMES)) + "(" + inner + ")"
            + draw(st.sampled_from(_SPACES)) + draw(st.sampled_from(_RESULTS))
            + draw(st.sampled_from(_TAILS)))


def _common_or_none(line: str, cache: step._LineCache) -> StraceCall | None:
    return step._common_call(line, 1, cache, 7)


@pytest.mark.parametrize(
    "line",
    [
        "4526  mmap(NULL, 8192, 0x3, 0x22, -1, 0) = 0x7ffff7fc0000\n",
        "4526  brk(NULL)                         = 0x555555559000\n",
        "mmap(NULL, 8192, 0x3, 0x22, -1, 0) = 0x7f6083ff0000",
        "9 munlockall() = 0",
        "9 madvise(0x1000, 8192, 0x4) = 0\n",
        "9 mprotect(0x1000, 4096, 0x1|0x2) = 0\n",
        "9 umask(022) = 18\n",
        "\u0663 munmap(0x2000, 4096) = 0",  # a Unicode digit is a pid digit for both
    ],
)
def test_the_string_method_path_gives_what_the_pattern_gives(line: str) -> None:
    """The commonest lines are cut with string methods: the same call as the pattern's
    path, the first time (each part checked) and again (the whole call text known)."""
    cache = step._LineCache()
    for _ in range(2):
        call = _common_or_none(line, cache)
        assert call is not None
        assert call == step._plain_call(line, 1, step._LineCache(), 7)


@pytest.mark.parametrize(
    "line",
    [
        "[pid 456] munmap(0x2000, 4096) = 0",  # the pattern takes these; the string path not
        "123 17:01:02.123456 brk(NULL) = 0x5000",
        "1700000000.5 brk(NULL) = 0x6000",
        "9 munmap(0x2000, 4096) = -1 EINVAL (Invalid argument)",
        "9 madvise(0x1000,8192 ,  0x4) = 0",  # nor these
        "9 madvise(0x1000, 8192, 0x4)  =  0",
        "9 madvise(0x1000, 8192, 0x4) = 0\r\n",
        "9 madvise(0x1000, 8192, 0x4) = 0\n\n",
        "9 madvise(0x1000, 8192, 0x4) = 00",
        "9 madvise(0x1000, 8192, 0x4) = 0X1",
        "9 munmap(0x2000, 4096\u00a0) = 0",
        "9 munmap(0x2000, 4096) = \u0663",
        "9 Munmap(0x2000, 4096) = 0",
        "9 close(3</tmp/a, b>) = 0",
        '9 openat(-100, "/etc/passwd", 0x80000) = 3</etc/passwd>',
        "9 exit_group(0) = ?",
        "9 munmap(0x2000, 4096) = 0 /* x */",
        "9 ",
        "9",
    ],
)
def test_the_string_method_path_leaves_the_other_lines(line: str) -> None:
    cache = step._LineCache()
    assert _common_or_none(line, cache) is None
    assert _common_or_none(line, cache) is None


@given(_lines(), st.integers(0, 2))
@settings(max_examples=1500)
def test_the_string_method_path_takes_only_what_the_pattern_takes(line: str, warm: int
                                                                   ) -> None:
    """Any line: the string-method path either leaves it, or gives exactly the call the
    pattern's path gives (the pattern takes it whole), with a cold cache and a warm one."""
    cache = step._LineCache()
    for _ in range(warm + 1):
        call = _common_or_none(line, cache)
        if call is not None:
            assert PLAIN_CALL_RE.fullmatch(line) is not None, line
            assert call == step._plain_call(line, 1, step._LineCache(), 7), line
