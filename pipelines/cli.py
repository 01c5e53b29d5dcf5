"""The `cartflow` command line.

Exit status: 0 when every file was taken, 3 when any was quarantined (its reason printed), 1 when
any failed for a reason outside the file (disk full, permission denied: it stays in the inbox),
2 for a usage error, a settings file or a `CARTFLOW_*` variable that cannot be used (every
command checks both before it does anything: `checked_lab`). Prefect is imported only after the
environment below is set, so the embedded server keeps its history in the lab home and nothing
phones home.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from pipelines import environment
from pipelines.environment import EnvironmentValueError, Variable, env_value, environment_problems
from pipelines.home import LabHome
from pipelines.runtime.memory import tune_malloc
from pipelines.runtime.signals import exit_status, interruptible
from pipelines.settings import Settings, SettingsError
from validation.names import shown

if TYPE_CHECKING:
    from pipelines.watch import WatchSettings

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_QUARANTINED = 0, 1, 2, 3

app = typer.Typer(
    name="cartflow",
    help="CAR-T trial lab pipeline: instrument exports in, validated Parquet tables out.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)

HomeOption = Annotated[
    Path | None,
    typer.Option("--home", help="Lab home directory (default: $CARTFLOW_HOME, else ./lab)."),
]
Value = TypeVar("Value")


def checked_lab(home: Path | None) -> tuple[LabHome, Settings]:
    """The lab home and its settings, once `cartflow.toml` and every `CARTFLOW_*` variable are
    known to be usable; otherwise one line per problem and exit status 2, before any work."""
    problems = environment_problems()
    if not problems:
        lab = LabHome.locate(home)
        try:
            return lab, Settings.load(lab.root)
        except SettingsError as err:
            problems = err.problems
    for problem in problems:
        err_console.print(f"[red]cartflow:[/] {_safe(problem)}")
    err_console.print("nothing was done: fix the settings above and run again")
    raise typer.Exit(EXIT_USAGE)


def readable_lab(home: Path | None) -> tuple[LabHome, Settings]:
    """`checked_lab` for the commands that read what a lab home holds (`query`, `report`,
    `status`): a folder that does not exist or never had a file ingested is a usage error
    naming the folder tried and how it was chosen, not an empty answer."""
    lab, settings = checked_lab(home)
    absent = lab.absence()
    if absent:
        err_console.print(
            f"[red]cartflow:[/] no lab home at {_safe(lab.root)} (chosen by {lab.chosen_by}): "
            f"{absent}"
        )
        err_console.print(
            "give --home DIR or set CARTFLOW_HOME to the lab home; "
            "`cartflow demo`, `ingest` or `run` create one"
        )
        raise typer.Exit(EXIT_USAGE)
    return lab, settings


def option_or_environment(
    given: Value | None, variable: Variable[Value], option: str, default: Value
) -> Value:
    """An option as given on the command line, checked by its variable's parser; else its
    `CARTFLOW_*` variable (`checked_lab` checked it); else `default`."""
    if given is None:
        return env_value(variable, default)
    try:
        return variable.parse(str(given))
    except ValueError as err:
        err_console.print(f"{option} {_safe(repr(given))}: expected {variable.expected}")
        raise typer.Exit(EXIT_USAGE) from err


def prepare_environment(home: LabHome) -> None:
    """Settings that must be in place before Prefect or Great Expectations are imported."""
    defaults = {
        "PREFECT_HOME": str(home.prefect_home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "GX_ANALYTICS_ENABLED": "false",
        # The technician reads our one line per file (and one line for what stops a command);
        # Prefect's own console lines, a failed run's traceback included, are kept in the run
        # history (the server database), not printed.
        "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL": "CRITICAL",
        "PREFECT_LOGGING_HANDLERS_CONSOLE_FLOW_RUNS_LEVEL": "CRITICAL",
        "PREFECT_LOGGING_HANDLERS_CONSOLE_TASK_RUNS_LEVEL": "CRITICAL",
        "PREFECT_LOGGING_LOGGERS_PREFECT_LEVEL": "ERROR",
        "PREFECT_SERVER_LOGGING_LEVEL": "ERROR",
        "PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW": "ignore",
        # the embedded server needs ~10 s on an idle 2-core machine, much more under load
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
    }
    for key, value in defaults.items():
        os.environ.setdefault(key, value)
    home.prefect_home.mkdir(parents=True, exist_ok=True)
    tune_malloc()  # files gated in this process (small batches, one file) reuse their pages


def _safe(text: object) -> str:
    """A file name or reason for the console: control characters escaped (`shown`), and no
    rich markup in it taken as markup."""
    return escape(shown(str(text)))


def _print_outcome(outcome) -> None:
    from pipelines.ingest import BUSY, DUPLICATE, FAILED, INGESTED
    from pipelines.ingest.reasons import advice

    if outcome.status == INGESTED:
        where = ", ".join(f"{p}/{t}" for p, t in outcome.partitions[:4])
        if len(outcome.partitions) > 4:
            where += f" +{len(outcome.partitions) - 4} more"
        rows = sum(outcome.rows.values())
        what = f"{outcome.kind} ({outcome.instrument_format})"
        replaced = f"; replaces {_safe(outcome.supersedes)}" if outcome.supersedes else ""
        console.print(
            f"[green]taken[/]       {_safe(outcome.name)}: {_safe(what)}, {rows} rows"
            + (f", {_safe(where)}" if where else "")
            + replaced
        )
    elif outcome.status == DUPLICATE:
        console.print(f"[cyan]already had[/] {_safe(outcome.name)}: {_safe(outcome.reason)}")
    elif outcome.status == BUSY:
        console.print(f"[yellow]skipped[/]     {_safe(outcome.name)}: {_safe(outcome.reason)}")
    elif outcome.status == FAILED:
        console.print(f"[red]failed[/]      {_safe(outcome.name)}: {_safe(outcome.reason)}")
    else:
        console.print(
            f"[red]quarantined[/] {_safe(outcome.reason)}\n"  # a reason starts with the name
            f"            → {advice(outcome.action)}"
        )


def _left_by_a_stopped_run(home: LabHome) -> bool:
    """Whether a run that stopped left work behind: a commit in the journal, a claim, derived
    tables waiting for their recompute, or files an identity correction has still to re-file (the sweep settles them even with an empty inbox)."""
    if not home.ledger_path.exists():
        return False
    from pipelines.ledger import Ledger

    ledger = Ledger(home.ledger_path)
    return bool(
        ledger.journal()
        or ledger.pending_derive()
        or ledger.dead_claims(0)
        or ledger.pending_refiles()
    )


def run_files(home: LabHome, paths: list[Path] | None) -> list:
    """Run the sweep flow over `paths` (or the inbox), printing a line per file as it goes and
    progress on a terminal; on the lab service's Prefect server when one runs for this home,
    else on a temporary one (`pipelines.runtime.server.prefect_server`)."""
    prepare_environment(home)
    from pipelines import flows
    from pipelines.ingest import inbox_files, manifests_first
    from pipelines.runtime.progress import RunProgress, WorkProgress
    from pipelines.runtime.run_records import outcomes_of

    files = manifests_first(paths) if paths is not None else inbox_files(home.ensure())
    if not files and not _left_by_a_stopped_run(home):
        console.print(f"nothing to do: the inbox {home.inbox} is empty")
        return []
    from pipelines.runtime.server import prefect_server

    with WorkProgress(err_console) as display:
        display.doing("starting", "Prefect")
        run = RunProgress(display, len(files))

        def done(outcome) -> None:
            run.on_outcome(outcome)
            _print_outcome(outcome)

        def notice(message: str) -> None:
            console.print(f"[yellow]note[/]        {_safe(message)}")

        with prefect_server(home):
            display.doing("starting", "the sweep")
            flows.on_file_done(done, notice, run.on_step)
            try:
                state = flows.process_inbox(
                    home=str(home.root), paths=[str(p) for p in files], return_state=True
                )
            finally:
                flows.on_file_done(None)
    return outcomes_of(state)


SUMMARY_WORDS = (
    ("ingested", "taken"), ("duplicate", "already taken"),
    ("busy", "skipped (another run holds them)"), ("quarantined", "quarantined"),
    ("failed", "failed (left in the inbox)"),
)  # fmt: skip


def run_summary(outcomes: list) -> str:
    """`12 file(s): 9 taken, 1 already taken, 2 quarantined`: what really happened."""
    from pipelines.ingest import counts

    tally = counts(outcomes)
    parts = [f"{tally[status]} {words}" for status, words in SUMMARY_WORDS if tally.get(status)]
    return f"{len(outcomes)} file(s): " + (", ".join(parts) or "nothing to do")


INTERRUPTED = "interrupted: files in flight were rolled back and will be taken by the next run"


def _interruptible(lab: LabHome, report=None, status=exit_status):
    """SIGINT and SIGTERM end the command through its `finally` blocks, then `INTERRUPTED` (or
    `report(signum)`) and exit status 130 or 143 (or `status(signum)`), no traceback
    (`pipelines.runtime.signals`). Prefect is imported first, in the lab's environment: its
    console logging then exists, to be kept quiet."""
    prepare_environment(lab)
    import prefect.main  # noqa: F401  (sets up Prefect's logging)

    return interruptible(report or (lambda signum: err_console.print(INTERRUPTED)), status)


def _exit_for(outcomes: list) -> int:
    """1 when any file failed (a resource error: fix the machine, run again), else 3 when any
    was quarantined (fix the file or the manifest), else 0."""
    from pipelines.ingest import FAILED, QUARANTINED

    console.print(run_summary(outcomes))
    statuses = {o.status for o in outcomes}
    if FAILED in statuses:
        return EXIT_FAILED
    return EXIT_QUARANTINED if QUARANTINED in statuses else EXIT_OK


@app.command()
def ingest(
    files: Annotated[list[Path], typer.Argument(help="Export files to process now.")],
    home: HomeOption = None,
) -> None:
    """Process these files now."""
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        err_console.print(f"no such file: {_safe(', '.join(missing))}")
        raise typer.Exit(EXIT_USAGE)
    lab, _ = checked_lab(home)
    with _interruptible(lab):
        raise typer.Exit(_exit_for(run_files(lab, [f.resolve() for f in files])))


@app.command()
def run(home: HomeOption = None) -> None:
    """Sweep the inbox (what the nightly deployment runs)."""
    lab, _ = checked_lab(home)
    with _interruptible(lab):
        raise typer.Exit(_exit_for(run_files(lab, None)))


@app.command()
def status(
    home: HomeOption = None,
    all_files: Annotated[
        bool, typer.Option("--all", help="List every file, not only problems.")
    ] = False,
) -> None:
    """The ledger: taken, superseded, quarantined with reasons."""
    from pipelines.ledger import Ledger

    lab, _ = readable_lab(home)
    records = Ledger(lab.ledger_path).records()
    names = {r.sha256: r.original_name for r in records}
    counts: dict[str, int] = {}
    for record in records:
        counts[_shown_status(record)] = counts.get(_shown_status(record), 0) + 1
    console.print(
        f"{lab.root}: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) if counts
        else f"{lab.root}: no files yet"
    )  # fmt: skip
    shown = records if all_files else [r for r in records if r.status != "ingested"]
    for r in shown:
        what = ", ".join(x for x in (r.kind, r.instrument_format) if x)
        console.print(
            f"{_shown_status(r):<12}{_safe(r.original_name)}  "
            f"({_safe(what or 'not recognised')}; {r.updated_at})"
        )
        reason = r.reason or (f"replaced by {r.superseded_by}" if r.superseded_by else "")
        if reason:
            console.print(f"            {_safe(reason)}")
        if r.resolved_by:
            repeat = names.get(r.resolved_by, r.resolved_by)
            console.print(
                f"            resolved by {_safe(repeat)}: a later run that passed QC gives "
                "these samples' results"
            )


def _shown_status(record) -> str:
    """The ledger status, except that a run quarantined for failing QC whose samples a passing
    repeat gave reads `resolved` (it stays in quarantine/, its QC figures in qpcr_runs)."""
    return "resolved" if record.status == "quarantined" and record.resolved_by else record.status


@app.command()
def verify(home: HomeOption = None) -> None:
    """Re-hash the raw store and the warehouse against the ledger.

    Exit status 0 when all is as the ledger says, 1 when a file changed, is missing or is
    unaccounted for, 2 when the lab home does not exist.
    """
    from pipelines.verify import NOT_HASHED, verify_home

    lab, _ = checked_lab(home)
    if not lab.root.is_dir():
        err_console.print(f"no lab home at {_safe(lab.root)} (--home DIR, else $CARTFLOW_HOME)")
        raise typer.Exit(EXIT_USAGE)
    report = verify_home(lab)
    if not report.ledger_found:
        console.print(f"no ledger in {_safe(lab.root)}: nothing was recorded to verify against")
    for finding in report.problems:
        console.print(f"[red]{finding.kind:<11}[/] {_safe(finding.path)}: {_safe(finding.detail)}")
    not_hashed = sum(1 for finding in report.notes if finding.kind == NOT_HASHED)
    for finding in report.notes:
        if finding.kind != NOT_HASHED:
            console.print(f"{finding.kind:<11} {_safe(finding.path)}: {_safe(finding.detail)}")
    if not_hashed:
        console.print(
            f"{NOT_HASHED:<11} {not_hashed} warehouse file(s): written before the ledger "
            "recorded hashes; their presence is checked, not their content"
        )
    console.print(
        f"verified {report.raw_files} raw files and {report.warehouse_files} warehouse files: "
        f"{len(report.problems)} problem(s)"
    )
    raise typer.Exit(EXIT_OK if report.ok else 1)


@app.command()
def query(
    sql: Annotated[
        str, typer.Argument(help='SQL over the tables, e.g. "select * from car_copies"')
    ],
    home: HomeOption = None,
    output_format: Annotated[
        str | None,
        typer.Option(
            "--format",
            help="On screen: table (default), csv or json. With --output: xlsx, csv, parquet "
            "or json (default: from the file's suffix).",
        ),
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", help="Write the result to this file.")
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace the --output file if it exists.")
    ] = False,
) -> None:
    """DuckDB over the warehouse, one view per table; timepoints sort by study day."""
    import duckdb
    import pyarrow as pa

    from pipelines.export import ExportError, csv_text, file_format, json_text, write_result
    from pipelines.warehouse import connect

    screen_format = output_format or "table"
    if output is None and screen_format not in ("table", "csv", "json"):
        err_console.print("--format must be table, csv or json (xlsx and parquet need --output)")
        raise typer.Exit(EXIT_USAGE)
    try:
        written_format = file_format(output, output_format) if output is not None else None
    except ExportError as err:
        err_console.print(_safe(err))
        raise typer.Exit(EXIT_USAGE) from err
    lab, _ = readable_lab(home)
    try:
        relation = connect(lab.warehouse, timepoints_as_enum=True).sql(sql)
        result = relation.to_arrow_table() if relation is not None else pa.table({})
    except duckdb.Error as err:
        err_console.print(f"query failed: {err}")
        raise typer.Exit(EXIT_USAGE) from err
    if output is not None and written_format is not None:
        try:
            write_result(result, output, written_format, replace=force)
        except ExportError as err:
            err_console.print(_safe(err))
            raise typer.Exit(EXIT_USAGE) from err
        console.print(f"{result.num_rows} row(s) written to {_safe(output)} ({written_format})")
    elif screen_format == "csv":
        sys.stdout.write(csv_text(result))
    elif screen_format == "json":
        sys.stdout.write(json_text(result))
    else:
        _print_result_table(result)


def _print_result_table(result) -> None:
    from rich.table import Table

    table = Table()
    for column in result.column_names:
        table.add_column(_safe(column), overflow="fold")
    for row in result.to_pylist():
        table.add_row(*("" if v is None else _safe(_cell(v)) for v in row.values()))
    console.print(table)
    console.print(f"{result.num_rows} row(s)")


@app.command()
def tables(
    name: Annotated[
        str | None, typer.Argument(help="A table's name; without it, the list of tables.")
    ] = None,
    markdown: Annotated[
        bool, typer.Option("--markdown", help="Print the README's table and column reference.")
    ] = False,
) -> None:
    """The tables, their columns, types, units and meaning (from validation/schemas.py)."""
    from pipelines import table_guide

    if markdown:
        sys.stdout.write(table_guide.markdown_reference())
        return
    if name is None:
        _print_rows(("table", "kind", "what a row is"), table_guide.table_rows())
        return
    try:
        table = table_guide.find_table(name)
    except table_guide.UnknownTable as err:
        err_console.print(f"[red]cartflow:[/] {_safe(err.args[0])}")
        raise typer.Exit(EXIT_USAGE) from err
    console.print(
        f"{table.name} ({table_guide.kind(table)}; {table_guide.partitioning(table)}): "
        f"{_safe(table.description)}"
    )
    _print_rows(
        ("column", "type", "unit", "meaning"),
        table_guide.column_rows(table.columns + table.view_columns),
    )


def _print_rows(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    """A rich table on a terminal; tab-separated lines with a header when piped, for grep,
    cut and spreadsheets."""
    if not console.is_terminal:
        for row in (header, *rows):
            sys.stdout.write("\t".join(row) + "\n")
        return
    from rich.table import Table

    table = Table()
    for column in header:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*(_safe(cell) for cell in row))
    console.print(table)


def _cell(value) -> str:
    if isinstance(value, float):
        return "" if value != value else f"{value:.6g}"
    return str(value)


@app.command()
def gate(
    fcs: Annotated[Path, typer.Argument(help="The FCS file to gate.")],
    template: Annotated[
        Path,
        typer.Option("--template", help="A Gating-ML 2.0 file or a FlowJo 10 workspace (.wsp)."),
    ],
    home: HomeOption = None,
) -> None:
    """Gate one file with a Gating-ML file or FlowJo workspace and print the populations."""
    import gating

    for path in (fcs, template):
        if not path.is_file():
            err_console.print(f"no such file: {_safe(path)}")
            raise typer.Exit(EXIT_USAGE)
    _, settings = checked_lab(home)
    try:
        populations = gating.gate_file(fcs, template, settings.flow)
    except (gating.FlowFormatError, gating.FlowTemplateError) as err:
        err_console.print(f"cannot gate {_safe(fcs.name)}: {_safe(err)}")
        raise typer.Exit(EXIT_QUARANTINED) from err
    from rich.table import Table

    table = Table(title=f"{_safe(fcs.name)} gated with {_safe(template.name)}")
    for column, justify in (("population", "left"), ("parent", "left"), ("count", "right"),
                            ("% parent", "right")):  # fmt: skip
        table.add_column(column, justify=justify)
    for row in populations.itertuples(index=False):
        pct = "" if row.pct_parent != row.pct_parent else f"{row.pct_parent:.2f}"
        depth = str(row.gate_path).count("/")
        table.add_row(
            "  " * depth + str(row.population), str(row.parent or ""), f"{row.count:,}", pct
        )
    console.print(table)


@app.command()
def demo(
    home: HomeOption = None,
    seed: Annotated[int, typer.Option(help="Random seed of the generated exports.")] = 7,
    patients: Annotated[
        int,
        typer.Option(
            "--patients",
            min=0,
            max=999,
            help="Add a generated CRS cohort of this many patients (bead-array plates and "
            "clinical observations, with a known rule linking early cytokine rises to severe "
            "CRS; its truth in crs-cohort-truth.json). 0: the small demo alone.",
        ),
    ] = 0,
) -> None:
    """Write a small demo trial's exports into the inbox, process them, print a summary."""
    from pipelines.demo.generate import write_demo_trial
    from pipelines.runtime.progress import WorkProgress

    lab = checked_lab(home)[0].ensure()
    with _interruptible(lab):
        with WorkProgress(err_console) as display:
            exports: list[Path] = []

            def one_more(path: Path) -> None:
                exports.append(path)
                display.doing("writing", f"export {len(exports)}: {path.name}")

            written = write_demo_trial(
                lab.inbox, seed=seed, on_written=one_more, cohort_patients=patients
            )
        console.print(f"demo trial: {len(written.files)} export(s) written to {lab.inbox}")
        outcomes = run_files(lab, None)
        _exit_for(outcomes)
        from pipelines.demo.summary import print_summary

        print_summary(console, lab, written)
        unexpected = written.unexpected_outcomes(outcomes)
        for problem in unexpected:
            err_console.print(f"[red]demo: {problem}[/]")
        raise typer.Exit(EXIT_QUARANTINED if unexpected else EXIT_OK)


@app.command()
def report(
    patient: Annotated[
        str | None, typer.Argument(help="Patient ID; without it the cohort and QC pages.")
    ] = None,
    home: HomeOption = None,
) -> None:
    """Recompute the derived tables and write the HTML report(s) to <home>/reports/."""
    lab, settings = readable_lab(home)
    prepare_environment(lab)
    from pipelines.derived.recompute import known_patients, recompute_patients
    from pipelines.thresholds import suite_thresholds
    from pipelines.warehouse import connect
    from validation.runner import Validator

    if patient and patient not in known_patients(connect(lab.warehouse)):
        err_console.print(f"no data for patient {patient} in {lab.root}")
        raise typer.Exit(EXIT_USAGE)
    validator = Validator(lab.gx, suite_thresholds(settings.qpcr))
    outcome = recompute_patients(lab, [patient] if patient else None, validator)
    for failure in outcome.failures:
        err_console.print(f"[red]not written[/]  {failure}")
    for note in outcome.notes:
        console.print(f"[yellow]note[/]        {_safe(note)}")
    for path in outcome.reports:
        console.print(f"report      {path}")
    raise typer.Exit(1 if outcome.failures else EXIT_OK)


SteadyOption = Annotated[
    float | None,
    typer.Option(
        "--steady-seconds",
        help="A closed file is taken once its size has not changed for this long "
        "(default: $CARTFLOW_STEADY_SECONDS, else 1).",
    ),
]  # fmt: skip
PollingOption = Annotated[
    bool | None,
    typer.Option(
        "--polling/--no-polling",
        help="Poll the inbox instead of inotify (network shares deliver no events; "
        "default: $CARTFLOW_WATCH_POLLING, else off).",
    ),
]  # fmt: skip
SubmitOption = Annotated[
    str | None,
    typer.Option(
        "--submit",
        help="inline: the watcher runs the ingest flow itself (seconds from drop to rows); "
        "deployment: it asks the ingest-file deployment's workers to "
        "(default: $CARTFLOW_WATCH_SUBMIT, else inline).",
    ),
]  # fmt: skip


def watch_settings(
    steady_seconds: float | None, polling: bool | None, rescan_seconds: float | None,
    submit: str | None,
) -> WatchSettings:  # fmt: skip
    """The watcher's settings from its options, else their `CARTFLOW_*` variables."""
    from pipelines.watch import WatchSettings

    default = WatchSettings()
    return WatchSettings(
        steady_seconds=option_or_environment(
            steady_seconds, environment.STEADY_SECONDS, "--steady-seconds", default.steady_seconds
        ),
        polling=option_or_environment(
            polling, environment.WATCH_POLLING, "--polling", default.polling
        ),
        rescan_seconds=option_or_environment(
            rescan_seconds, environment.RESCAN_SECONDS, "--rescan-seconds", default.rescan_seconds
        ),
        submit=option_or_environment(submit, environment.WATCH_SUBMIT, "--submit", default.submit),
    )  # fmt: skip


@app.command()
def watch(
    home: HomeOption = None,
    steady_seconds: SteadyOption = None,
    polling: PollingOption = None,
    rescan_seconds: Annotated[
        float | None,
        typer.Option(
            help="Sweep the inbox this often too (default: $CARTFLOW_RESCAN_SECONDS, else 60).",
        ),
    ] = None,
    submit: SubmitOption = None,
) -> None:
    """Watch the inbox and ingest each file once it is complete."""
    from pipelines.watch import DEPLOYMENT

    lab, _ = checked_lab(home)
    settings = watch_settings(steady_seconds, polling, rescan_seconds, submit)
    if settings.submit == DEPLOYMENT and not os.environ.get("PREFECT_API_URL"):
        err_console.print("--submit deployment needs a Prefect server: set PREFECT_API_URL")
        raise typer.Exit(EXIT_USAGE)
    lab.ensure()
    in_hand: list[Path] = []  # the file being processed, while it is

    def stopped(signum: int) -> None:
        for path in in_hand:
            console.print(
                f"stopped: {_safe(path.name)} was rolled back and will be taken by the next run"
            )

    # The first signal once watching lets the file in hand finish (Prefect's flow engine
    # turns a SIGTERM into an interruption of its run all the same); the next one abandons it.
    with _interruptible(lab, stopped, status=lambda signum: EXIT_OK) as signals:
        from pipelines.runtime.server import prefect_server
        from pipelines.watch import Watcher, deployment_submitter, inline_submitter

        if settings.submit == DEPLOYMENT:
            submitter = deployment_submitter(
                lab, settings.deployment,
                lambda path, run: console.print(f"submitted   {_safe(path.name)}: flow run {run}"),
            )  # fmt: skip
        else:
            submitter = inline_submitter(lab, _print_outcome)

        def submit_file(path: Path, key: str):
            in_hand.append(path)
            try:
                outcome = submitter(path, key)
            except Exception:
                in_hand.clear()
                raise
            in_hand.clear()
            return outcome

        with prefect_server(lab):
            stop = signals.graceful()
            mode = (
                f"polling every {settings.poll_interval_seconds:g} s" if settings.polling
                else "inotify"
            )  # fmt: skip
            console.print(
                f"watching {lab.inbox} ({mode}; a file is taken {settings.steady_seconds:g} s "
                f"after it is complete; {settings.submit} runs); Ctrl-C stops"
            )
            Watcher(
                lab, settings, submit_file,
                lambda path, err: err_console.print(
                    f"[red]error[/]       {_safe(path.name)}: {_safe(err)}"
                ),
            ).run(stop)  # fmt: skip


@app.command()
def serve(
    home: HomeOption = None,
    host: Annotated[
        str | None,
        typer.Option(
            help="Interface the Prefect server listens on (default: $CARTFLOW_HOST, else "
            "127.0.0.1)."
        ),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(help="Prefect server port (default: $CARTFLOW_PORT, else 4200)."),
    ] = None,
    dask_address: Annotated[
        str | None,
        typer.Option(
            help="Run the sweep's per-file tasks on this Dask scheduler (tcp://host:8786; "
            "default: $CARTFLOW_DASK_ADDRESS).",
        ),
    ] = None,
    cron: Annotated[
        str | None,
        typer.Option(
            help="Nightly schedule (default: $CARTFLOW_NIGHTLY_CRON, else prefect.yaml's)."
        ),
    ] = None,
    timezone: Annotated[
        str | None,
        typer.Option(
            help="Time zone of the nightly schedule, e.g. Europe/Paris (default: "
            "$CARTFLOW_TIMEZONE, else prefect.yaml's)."
        ),
    ] = None,
    worker_query_seconds: Annotated[
        float | None,
        typer.Option(
            help="How often the worker polls (default: $CARTFLOW_WORKER_QUERY_SECONDS, else 5).",
        ),
    ] = None,
    steady_seconds: SteadyOption = None,
    polling: PollingOption = None,
    submit: SubmitOption = None,
) -> None:
    """Start Prefect server, worker, deployments and watcher; stop all on Ctrl-C.

    Settings, variables and options are all checked first: a problem ends the command with
    exit status 2 before any process is started."""
    lab, _ = checked_lab(home)
    watching = watch_settings(steady_seconds, polling, None, submit)
    from pipelines.service import ServiceSettings

    settings = ServiceSettings(
        host=option_or_environment(host, environment.HOST, "--host", "127.0.0.1"),
        port=option_or_environment(port, environment.PORT, "--port", 4200),
        dask_address=option_or_environment(
            dask_address, environment.DASK_ADDRESS, "--dask-address", None
        ),
        timezone=option_or_environment(timezone, environment.TIMEZONE, "--timezone", None),
        cron=option_or_environment(cron, environment.NIGHTLY_CRON, "--cron", None),
        worker_query_seconds=option_or_environment(
            worker_query_seconds, environment.WORKER_QUERY_SECONDS, "--worker-query-seconds", 5.0
        ),
        watch_args=(
            "--steady-seconds", str(watching.steady_seconds), "--submit", watching.submit,
            "--polling" if watching.polling else "--no-polling",
        ),
    )  # fmt: skip
    lab.ensure()
    # run_service handles SIGINT and SIGTERM itself once it runs; before that, nothing to stop
    with _interruptible(lab, lambda signum: console.print("stopped"), lambda signum: EXIT_OK):
        from pipelines.service import ServiceError, run_service

        try:
            run_service(lab, settings, console.print)
        except ServiceError as err:
            err_console.print(f"[red]cartflow serve: {err}[/]")
            raise typer.Exit(1) from err
    console.print("stopped")


def main() -> None:
    """The command line; settings that stopped being usable while it ran end in exit status 2
    and their message, and a resource error that stops a command (the lab home's disk full, a
    permission, a read-only share, a locked database) ends in one line, not a traceback."""
    try:
        app()
    except (SettingsError, EnvironmentValueError) as err:  # changed while the command ran
        err_console.print(f"[red]cartflow:[/] {_safe(err)}")
        sys.exit(EXIT_USAGE)
    except Exception as err:
        from pipelines.ingest.processor import resource_problem

        problem = resource_problem(err)
        if problem is None:
            raise
        err_console.print(f"[red]cartflow: cannot go on:[/] {_safe(problem)}; fix it and run again")
        sys.exit(EXIT_FAILED)


if __name__ == "__main__":
    main()
