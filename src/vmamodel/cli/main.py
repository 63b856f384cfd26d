"""``vmamodel run`` and ``vmamodel diff``: scenarios on the model, and the model against the host.

Exit status: 0 when everything matched, 1 on a difference, a failed expectation, a crash of a
backend or a lifecycle finding (``#! check: lifecycle``), 2 on a mistake in the scenario (syntax,
unknown names, addresses outside the arena).
"""

from __future__ import annotations

import difflib
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from itertools import zip_longest
from typing import NoReturn

import click
from rich import box
from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from rich.text import Text

from vmamodel.bench import Options
from vmamodel.bench import run as run_bench
from vmamodel.buildinfo import describe
from vmamodel.cli.check import check as check_command
from vmamodel.cli.fuzz import fuzz
from vmamodel.cli.help import help_command
from vmamodel.cli.options import parse_address
from vmamodel.cli.replay import COMMANDS as REPLAY_COMMANDS
from vmamodel.cli.show import console_for, show
from vmamodel.events import format_event
from vmamodel.host import heap_start
from vmamodel.host.traits import host_model_kwargs
from vmamodel.profiles import PROFILES
from vmamodel.scenario import (
    ARENA_SIZE,
    Call,
    FileStore,
    HostBackend,
    Marker,
    ModelBackend,
    Run,
    Scenario,
    ScenarioError,
    Snapshot,
    StepRecord,
    execute,
    options_for,
    parse_file,
)
from vmamodel.scenario.compare import Difference, compare, normalise, vmflags
from vmamodel.show import print_film
from vmamodel.show.runs import observer, recorder_for

EXIT_OK, EXIT_DIFFERENT, EXIT_SCENARIO = 0, 1, 2
EXIT_INTERRUPTED, EXIT_PIPE = 130, 141
DEFAULT_WIDTH = 200
#: A run of at least this many statements shows a progress bar (on a terminal).
PROGRESS_MIN_STATEMENTS = 2000


def _console(width: int | None, stderr: bool = False) -> Console:
    # Off a terminal rich would fold maps lines at 80 columns; keep them whole.
    probe = Console(stderr=stderr)
    if width is None and not probe.is_terminal:
        width = DEFAULT_WIDTH
    return Console(stderr=stderr, width=width, highlight=False, soft_wrap=width is None)


def _load(path: str) -> Scenario:
    try:
        return parse_file(path)
    except ScenarioError as err:
        _fail_scenario(err)


def _fail_scenario(err: ScenarioError) -> NoReturn:
    click.echo(f"error: {err}", err=True)
    raise click.exceptions.Exit(EXIT_SCENARIO)


_width_option = click.option("--width", type=click.IntRange(min=20), default=None,
                             help="Output width (default: the terminal's, or 200).")
_base_option = click.option("--base", default=None, callback=parse_address,
                            help="Arena base (BASE); default 0x100000000000 or '#! base:'.")
_profile_option = click.option("--profile", type=click.Choice(sorted(PROFILES)), default=None,
                               help="Kernel profile of the model (overrides '#! profile:').")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="vmamodel", prog_name="vmamodel",
                      message=f"%(prog)s %(version)s, {describe()}")
def cli() -> None:
    """An executable model of the Linux VMA layer, judged against the host kernel.

    \b
    Exit status: 0 all matched; 1 a difference, a failed expectation or a backend crash;
    2 a mistake in the input (scenario file:line, an option); 130 interrupted (Ctrl-C);
    141 the output pipe was closed. 'vmamodel help scenario' describes the scenario language.
    """


# ---------------------------------------------------------------------------------------------
# run


@cli.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@_profile_option
@click.option("--trace", is_flag=True, help="Show the model's events under each step.")
@click.option("--smaps", "show_smaps", is_flag=True, help="Show smaps instead of maps.")
@click.option("--show", "picture", is_flag=True,
              help="Draw each step as a band of VMAs (as 'vmamodel show' does).")
@_base_option
@_width_option
def run(file: str, profile: str | None, trace: bool, show_smaps: bool, picture: bool,
        base: int | None, width: int | None) -> None:
    """Run a scenario FILE on the model and show each step's result and the maps."""
    scenario = _load(file)
    options = options_for(scenario, base=base, trace=trace or picture, smaps=show_smaps,
                          snapshots="shown")
    recorder = recorder_for(scenario, options.base) if picture else None
    if recorder is not None:  # the picture replaces the maps text of each step
        options.observe, options.snapshots = observer(recorder), "none"
    backend = ModelBackend(profile or scenario.profile, config=_heap_of(options.base))
    has_markers = scenario.has_markers
    with _progress(len(scenario.statements)) as on_step:
        options.on_step = on_step
        result = execute(scenario, backend, options)
    console = console_for(width) if recorder is not None else _console(width)
    if recorder is not None:
        print_film(console, recorder.film, events=trace)
    for step in result.steps if recorder is None else ():
        _print_step(console, scenario, step, show_smaps, has_markers)
    _print_summary(console, result)
    for line in result.ledgers:
        style = "green" if line.endswith(": balanced") else "bold yellow"
        console.print(Text(line, style=style))
    for line in result.findings:
        console.print(Text(line, style="bold red"))
    if result.error is not None:
        _fail_scenario(result.error)
    if result.failed_expectations or result.crashed or result.findings:
        raise click.exceptions.Exit(EXIT_DIFFERENT)


def _heap_of(base: int) -> dict[str, int]:
    """The model's start_brk where the host oracle puts its child's heap for this arena, so
    that run and diff agree on brk()."""
    start = heap_start((base, ARENA_SIZE))
    return {} if start is None else {"start_brk": start}


def _emit(console: Console, text: Text) -> None:
    """One line of a run's output. Off a terminal it is written as it is, unstyled and never
    folded: rich's rendering would cost more than running the call the line shows."""
    if console.is_terminal:
        console.print(text)
    else:
        console.file.write(text.plain + "\n")


@contextmanager
def _progress(total: int) -> Iterator[Callable[[int, int], None] | None]:
    """A progress bar on stderr for a long run on a terminal (None: no bar)."""
    console = Console(stderr=True)
    if total < PROGRESS_MIN_STATEMENTS or not console.is_terminal:
        yield None
        return
    with Progress(*Progress.get_default_columns(), console=console, transient=True) as bar:
        task = bar.add_task("running", total=total)

        def advance(done: int, _total: int) -> None:
            if done % 256 == 0 or done == _total:
                bar.update(task, completed=done)

        yield advance


def _print_step(console: Console, scenario: Scenario, step: StepRecord, smaps: bool,
                has_markers: bool | None = None) -> None:
    statement = step.statement
    if isinstance(statement, Call):
        _emit(console, _call_line(scenario, step))
        if step.failed_expectation is not None:
            _emit(console, Text(f"    ✗ {step.failed_expectation}", style="bold red"))
        for event in step.events:
            _emit(console, Text(f"    · {format_event(event)}", style="dim"))
    shown = _shows_state(scenario, step, has_markers)
    if shown is not None:
        _print_snapshots(console, step.snapshots, smaps or shown == "smaps")


def _shows_state(scenario: Scenario, step: StepRecord,
                 has_markers: bool | None = None) -> str | None:
    """"maps" or "smaps" when the state after this step is shown, else None
    (``has_markers``: scenario.has_markers, computed once by the caller)."""
    if isinstance(step.statement, Marker):
        return step.statement.kind
    if has_markers is None:
        has_markers = scenario.has_markers
    return None if has_markers else "maps"


def _call_line(scenario: Scenario, step: StepRecord) -> Text:
    assert step.outcome is not None
    text = Text(f"{scenario.path}:{step.line}  ", style="cyan")
    text.append(_without_expectation(step))
    style = "green" if step.outcome.ok else "yellow"
    if step.outcome.crash is not None:
        style = "bold red"
    text.append(f" = {step.outcome.describe()}", style=style)
    return text


def _without_expectation(step: StepRecord) -> str:
    statement = step.statement
    if isinstance(statement, Call) and statement.expect is not None:
        return statement.text[: statement.text.rindex(")") + 1]
    return statement.text


def _print_snapshots(console: Console, snapshots: Iterable[Snapshot], smaps: bool) -> None:
    snapshots = list(snapshots)
    for snap in snapshots:
        if len(snapshots) > 1:
            _emit(console, Text(f"  [{snap.space}]", style="magenta"))
        text = snap.smaps if smaps and snap.smaps is not None else snap.maps
        for line in text.splitlines() or ["(no mappings)"]:
            _emit(console, Text(f"    {line}"))


def _print_summary(console: Console, result: Run) -> None:
    failed = len(result.failed_expectations)
    calls = sum(1 for s in result.steps if s.outcome is not None)
    style = "bold red" if failed or result.crashed else "bold green"
    _emit(console, Text(f"{calls} calls, {failed} failed expectations", style=style))


# ---------------------------------------------------------------------------------------------
# diff


@cli.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@_profile_option
@_base_option
@click.option("--all", "show_all", is_flag=True, help="Show the maps after every step.")
@_width_option
def diff(file: str, profile: str | None, base: int | None, show_all: bool,
         width: int | None) -> None:
    """Run a scenario FILE on the model and on the host kernel, and show the two side by side."""
    scenario = _load(file)
    if scenario.layout != "arena":
        _fail_scenario(ScenarioError(file, 1, f"layout {scenario.layout!r} cannot be run on "
                                     "the host yet; use '#! layout: arena'"))
    for line, path in scenario.model_only[:1]:
        _fail_scenario(ScenarioError(file, line, f"open({path!r}) reaches a built-in driver, "
                                     "which only the model has; use 'vmamodel run'"))
    options = options_for(scenario, base=base)
    with tempfile.TemporaryDirectory(prefix="vmamodel-") as tmp:
        model_backend = ModelBackend(profile or scenario.profile, FileStore(tmp),
                                     config={**host_model_kwargs(), **_heap_of(options.base)})
        model = execute(scenario, model_backend, options)
        # The host gets a file store of its own (same paths, so that maps lines compare):
        # nothing the model's run created or sized is there.
        _empty(tmp)
        host_backend = HostBackend(FileStore(tmp), (options.base, ARENA_SIZE))
        try:
            host = execute(scenario, host_backend, options)
        finally:
            host_backend.close()
    differences = compare(model, host)
    console = _console(width)
    _print_diff(console, scenario, normalise(model), normalise(host), differences, show_all)
    raise click.exceptions.Exit(_diff_status(model, host, differences))


def _empty(directory: str) -> None:
    for entry in os.scandir(directory):
        os.unlink(entry.path)


def _diff_status(model: Run, host: Run, differences: list[Difference]) -> int:
    if differences:
        return EXIT_DIFFERENT
    if model.error is not None:
        return EXIT_SCENARIO
    if model.failed_expectations or host.failed_expectations:
        return EXIT_DIFFERENT
    return EXIT_OK


def _print_diff(console: Console, scenario: Scenario, model: Run, host: Run,
                differences: list[Difference], show_all: bool) -> None:
    by_step: dict[int, list[Difference]] = {}
    for difference in differences:
        by_step.setdefault(difference.index, []).append(difference)
    for index, (mine, theirs) in enumerate(zip_longest(model.steps, host.steps)):
        step = mine or theirs
        step_differences = by_step.get(index, [])
        show = show_all or step_differences or _shows_state(scenario, step) is not None
        title = Text(f"{scenario.path}:{step.line}  {step.statement.text}", style="cyan")
        if not show and _agree(mine, theirs):
            # Nothing to look at: one line, the result both sides gave.
            console.print(title.append(f"   both = {_describe_outcome(mine)}", style="green"))
            continue
        console.print(title)
        console.print(_diff_table(mine, theirs, step_differences, bool(show)))
        console.print()
    for run in (model, host):
        if run.error is not None:
            console.print(Text(f"{run.backend}: error: {run.error}", style="bold red"))
    _print_diff_summary(console, model, host, differences)


def _agree(model: StepRecord | None, host: StepRecord | None) -> bool:
    if model is None or host is None or model.outcome is None:
        return False
    return _describe_outcome(model) == _describe_outcome(host) \
        and model.failed_expectation is None and host.failed_expectation is None


def _diff_table(model: StepRecord | None, host: StepRecord | None,
                differences: list[Difference], show_state: bool) -> Table:
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, expand=False)
    table.add_column("", width=1, no_wrap=True)
    table.add_column("model", no_wrap=True, overflow="fold")
    table.add_column("host", no_wrap=True, overflow="fold")
    for row in _result_rows(model, host):
        table.add_row(*row)
    if show_state:
        for row in _state_rows(model, host, differences):
            table.add_row(*row)
    return table


Row = tuple[Text, Text, Text]


def _row(model: str, host: str, differs: bool, style: str = "") -> Row:
    mark = Text("≠", style="bold red") if differs else Text(" ")
    cell_style = "red" if differs else style
    return mark, Text(model, style=cell_style), Text(host, style=cell_style)


def _result_rows(model: StepRecord | None, host: StepRecord | None) -> Iterator[Row]:
    if (model and model.outcome) is None and (host and host.outcome) is None:
        return
    mine = _describe_outcome(model)
    theirs = _describe_outcome(host)
    yield _row(f"= {mine}", f"= {theirs}", mine != theirs, "bold")
    expectations = (_expectation(model), _expectation(host))
    if any(expectations):
        # Both sides failing the line's expectation the same way is not a difference.
        yield _row(*expectations, differs=expectations[0] != expectations[1])


def _describe_outcome(step: StepRecord | None) -> str:
    if step is None:
        return "(not run)"
    return "" if step.outcome is None else step.outcome.describe()


def _expectation(step: StepRecord | None) -> str:
    if step is None or step.failed_expectation is None:
        return ""
    return f"✗ {step.failed_expectation}"


def _state_rows(model: StepRecord | None, host: StepRecord | None,
                differences: list[Difference]) -> Iterator[Row]:
    step = model or host
    flags = isinstance(step, StepRecord) and isinstance(step.statement, Marker) \
        and step.statement.kind == "smaps"
    mine = {s.space: s for s in model.snapshots} if model else {}
    theirs = {s.space: s for s in host.snapshots} if host else {}
    spaces = list(mine) + [s for s in theirs if s not in mine]
    for space in spaces:
        if len(spaces) > 1:
            yield _row(f"[{space}]", f"[{space}]", False, "magenta")
        yield from _maps_rows(_lines_of(mine.get(space), flags),
                              _lines_of(theirs.get(space), flags))
    if flags:
        return  # the VmFlags are already in the rows
    for difference in differences:
        if difference.kind == "vmflags":
            yield _row(f"{difference.detail} {difference.model}",
                       f"{difference.detail} {difference.host}", True)


def _lines_of(snapshot: Snapshot | None, with_flags: bool) -> list[str]:
    """The maps lines of a snapshot; at an smaps marker each followed by its VmFlags."""
    if snapshot is None:
        return []
    if not with_flags or snapshot.smaps is None:
        return snapshot.maps.splitlines()
    flags = vmflags(snapshot.smaps)
    lines = []
    for line in snapshot.maps.splitlines():
        lines.append(line)
        vma = line.split(" ", 1)[0]
        if vma in flags:
            lines.append("  " + flags[vma])
    return lines


def _maps_rows(model: list[str], host: list[str]) -> Iterator[Row]:
    """Lines aligned by difflib; equal lines share a row, the others are marked."""
    matcher = difflib.SequenceMatcher(None, model, host, autojunk=False)
    for tag, m1, m2, h1, h2 in matcher.get_opcodes():
        if tag == "equal":
            for line in model[m1:m2]:
                yield _row(_compact(line), _compact(line), False)
            continue
        for mine, theirs in zip_longest(model[m1:m2], host[h1:h2], fillvalue=""):
            yield _row(_compact(mine), _compact(theirs), mine != theirs)
    if not model and not host:
        yield _row("(no mappings)", "(no mappings)", False, "dim")


def _compact(line: str) -> str:
    # The padding before the name column only costs width on screen; it is compared exactly.
    return re.sub(r"(?<=\S) {2,}(?=\S)", " ", line)


def _print_diff_summary(console: Console, model: Run, host: Run,
                        differences: list[Difference]) -> None:
    for difference in differences:
        console.print(Text(f"≠ {difference.describe()}", style="red"))
    failed = len(model.failed_expectations) + len(host.failed_expectations)
    if differences or failed:
        console.print(Text(f"{len(differences)} differences, {failed} failed expectations",
                           style="bold red"))
    else:
        console.print(Text("no differences", style="bold green"))


# ---------------------------------------------------------------------------------------------
# bench


def _sizes(ctx: click.Context, param: click.Parameter, value: str) -> tuple[int, ...]:
    """--sizes: positive integers, comma-separated."""
    try:
        numbers = tuple(int(size.replace("_", "")) for size in value.split(","))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a list of numbers") from None
    if any(n < 1 for n in numbers):
        raise click.BadParameter(f"{value!r}: every size must be at least 1")
    return numbers


@cli.command()
@click.option("--sizes", default="1000,65530,1000000", show_default=True, callback=_sizes,
              help="Numbers of VMAs, comma-separated (each at least 1).")
@click.option("--rounds", type=click.IntRange(min=1), default=2000, show_default=True,
              help="Rounds of the call sequence (about 15 calls each).")
@click.option("--seed", type=click.IntRange(min=0), default=1, show_default=True)
@click.option("--repeats", type=click.IntRange(min=1), default=3, show_default=True,
              help="Passes over the sequence on each side; each call's least time counts.")
@click.option("--no-kernel", is_flag=True, help="Time the model only.")
@click.option("--no-c", is_flag=True, help="Do not compile the C runner; use ctypes only.")
@click.option("--memory-n", type=click.IntRange(min=0), default=65530, show_default=True,
              help="VMAs for the tracemalloc measurement (0: skip).")
@click.option("--pair-rounds", type=click.IntRange(min=0), default=2000, show_default=True,
              help="Rounds of the simple pairs (0: skip them).")
@click.option("--other-build", "other_build", default=None, metavar="PYTHON",
              envvar="VMAMODEL_BENCH_OTHER_PYTHON",
              help="The python of another vmamodel build (e.g. .venv-mypyc/bin/python): its "
                   "model runs the simple pairs too, against the same kernel run.")
@click.option("--placed-n", type=click.IntRange(min=0), default=1_000_000, show_default=True,
              help="VMAs to build by kernel-placed mmap (0: skip).")
@click.option("--trials", type=click.IntRange(min=1), default=3, show_default=True,
              help="Trials of the simple pairs: the kernel and each build in turn, each "
                   "side's least trial counts.")
def bench(sizes: tuple[int, ...], rounds: int, seed: int, repeats: int, no_kernel: bool,
          no_c: bool, memory_n: int, pair_rounds: int, other_build: str | None,
          placed_n: int, trials: int) -> None:
    """Time the model against the host kernel on one sequence of calls, at each size."""

    if other_build is not None and shutil.which(other_build) is None:
        raise click.BadParameter(f"{other_build!r} is not an executable",
                                 param_hint="--other-build")
    options = Options(sizes=sizes, rounds=rounds, seed=seed, kernel=not no_kernel,
                      use_c=not no_c, memory_n=memory_n, repeats=repeats,
                      pairs=pair_rounds > 0, pair_rounds=max(1, pair_rounds),
                      other_python=other_build, placed_n=placed_n, trials=trials)
    lines = run_bench(options, lambda line: click.echo(line, err=True))
    click.echo("\n".join(lines))


cli.add_command(check_command)
cli.add_command(show)
cli.add_command(fuzz)
cli.add_command(help_command)
for _command in REPLAY_COMMANDS:
    cli.add_command(_command)


def main() -> None:
    """The console script ``vmamodel``: click's usage errors exit 2; Ctrl-C exits 130; a
    closed output pipe ends the command quietly with 141 (128 + SIGPIPE, as a C tool)."""
    # click's own main() would turn both Ctrl-C and a closed pipe into status 1.
    code: int = EXIT_OK
    try:
        try:
            with cli.make_context("vmamodel", sys.argv[1:]) as ctx:
                cli.invoke(ctx)
        except click.exceptions.Exit as exc:
            code = exc.exit_code
        sys.stdout.flush()
    except (click.exceptions.Abort, KeyboardInterrupt):
        sys.exit(EXIT_INTERRUPTED)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except BrokenPipeError:
        # Nothing more can be written; point stdout at /dev/null so that the interpreter's
        # final flush does not complain either.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(EXIT_PIPE)
    sys.exit(code)
