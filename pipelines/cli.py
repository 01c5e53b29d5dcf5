"""The `cartflow` command line.

Exit status: 0 when every file was taken, 3 when any was quarantined (its reason printed),
2 for a usage error. Prefect is imported only after the environment below is set, so the
embedded server keeps its history in the lab home and nothing phones home.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from pipelines.home import LabHome
from pipelines.memory import tune_malloc

EXIT_OK, EXIT_USAGE, EXIT_QUARANTINED = 0, 2, 3

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


def prepare_environment(home: LabHome) -> None:
    """Settings that must be in place before Prefect or Great Expectations are imported."""
    defaults = {
        "PREFECT_HOME": str(home.prefect_home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "GX_ANALYTICS_ENABLED": "false",
        # The technician reads our one line per file; Prefect's own console lines are kept in
        # the run history (the server database), not printed.
        "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL": "ERROR",
        "PREFECT_LOGGING_HANDLERS_CONSOLE_FLOW_RUNS_LEVEL": "ERROR",
        "PREFECT_LOGGING_HANDLERS_CONSOLE_TASK_RUNS_LEVEL": "ERROR",
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


def _print_outcome(outcome) -> None:
    from pipelines.ingest import BUSY, DUPLICATE, INGESTED

    if outcome.status == INGESTED:
        where = ", ".join(f"{p}/{t}" for p, t in outcome.partitions[:4])
        if len(outcome.partitions) > 4:
            where += f" +{len(outcome.partitions) - 4} more"
        rows = sum(outcome.rows.values())
        what = f"{outcome.kind} ({outcome.instrument_format})"
        replaced = f"; replaces {outcome.supersedes}" if outcome.supersedes else ""
        console.print(
            f"[green]taken[/]       {outcome.name}: {what}, {rows} rows"
            + (f", {where}" if where else "")
            + replaced
        )
    elif outcome.status == DUPLICATE:
        console.print(f"[cyan]already had[/] {outcome.name}: {outcome.reason}")
    elif outcome.status == BUSY:
        console.print(f"[yellow]skipped[/]     {outcome.name}: {outcome.reason}")
    else:
        console.print(
            f"[red]quarantined[/] {outcome.name}: {outcome.reason}\n"
            "            → the file is in quarantine/ with this reason; fix it and drop it into "
            "the inbox again"
        )


def run_files(home: LabHome, paths: list[Path] | None) -> list:
    """Run the sweep flow over `paths` (or the inbox) in the embedded Prefect, printing as it goes."""
    prepare_environment(home)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from pipelines import flows

    files = flows.manifests_first(paths) if paths is not None else flows.inbox_files(home.ensure())
    if not files:
        console.print(f"nothing to do: the inbox {home.inbox} is empty")
        return []
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
        console=console, transient=True, disable=len(files) <= 3,
    ) as progress:  # fmt: skip
        bar = progress.add_task("processing", total=len(files))

        def done(outcome) -> None:
            progress.advance(bar)
            _print_outcome(outcome)

        flows.on_file_done(done)
        try:
            outcomes = flows.process_inbox(home=str(home.root), paths=[str(p) for p in files])
        finally:
            flows.on_file_done(None)
    return outcomes


def _exit_for(outcomes: list) -> int:
    from pipelines.ingest import QUARANTINED

    quarantined = [o for o in outcomes if o.status == QUARANTINED]
    taken = len(outcomes) - len(quarantined)
    console.print(f"{taken} file(s) taken, {len(quarantined)} quarantined")
    return EXIT_QUARANTINED if quarantined else EXIT_OK


@app.command()
def ingest(
    files: Annotated[list[Path], typer.Argument(help="Export files to process now.")],
    home: HomeOption = None,
) -> None:
    """Process these files now."""
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        err_console.print(f"no such file: {', '.join(missing)}")
        raise typer.Exit(EXIT_USAGE)
    lab = LabHome.locate(home)
    raise typer.Exit(_exit_for(run_files(lab, [f.resolve() for f in files])))


@app.command()
def run(home: HomeOption = None) -> None:
    """Sweep the inbox (what the nightly deployment runs)."""
    lab = LabHome.locate(home)
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

    lab = LabHome.locate(home)
    if not lab.ledger_path.exists():
        console.print(f"no ledger yet in {lab.root}: nothing has been ingested")
        return
    records = Ledger(lab.ledger_path).records()
    counts: dict[str, int] = {}
    for record in records:
        counts[record.status] = counts.get(record.status, 0) + 1
    console.print(
        f"{lab.root}: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) if counts
        else f"{lab.root}: no files yet"
    )  # fmt: skip
    shown = records if all_files else [r for r in records if r.status != "ingested"]
    for r in shown:
        what = ", ".join(x for x in (r.kind, r.instrument_format) if x)
        console.print(
            f"{r.status:<12}{r.original_name}  ({what or 'not recognised'}; {r.updated_at})"
        )
        reason = r.reason or (f"replaced by {r.superseded_by}" if r.superseded_by else "")
        if reason:
            console.print(f"            {reason}")


@app.command()
def query(
    sql: Annotated[
        str, typer.Argument(help='SQL over the tables, e.g. "select * from car_copies"')
    ],
    home: HomeOption = None,
    output_format: Annotated[str, typer.Option("--format", help="table, csv or json")] = "table",
) -> None:
    """DuckDB over the warehouse, one view per table."""
    import duckdb

    from pipelines.warehouse import connect

    if output_format not in ("table", "csv", "json"):
        err_console.print("--format must be table, csv or json")
        raise typer.Exit(EXIT_USAGE)
    lab = LabHome.locate(home)
    try:
        frame = connect(lab.warehouse).execute(sql).fetchdf()
    except duckdb.Error as err:
        err_console.print(f"query failed: {err}")
        raise typer.Exit(EXIT_USAGE) from err
    if output_format == "csv":
        sys.stdout.write(frame.to_csv(index=False))
    elif output_format == "json":
        sys.stdout.write(
            frame.to_json(orient="records", date_format="iso", force_ascii=False) + "\n"
        )
    else:
        from rich.table import Table

        table = Table()
        for column in frame.columns:
            table.add_column(str(column), overflow="fold")
        for row in frame.itertuples(index=False):
            table.add_row(*("" if v is None else _cell(v) for v in row))
        console.print(table)
        console.print(f"{len(frame)} row(s)")


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
    from pipelines.settings import Settings

    for path in (fcs, template):
        if not path.is_file():
            err_console.print(f"no such file: {path}")
            raise typer.Exit(EXIT_USAGE)
    settings = Settings.load(LabHome.locate(home).root).flow
    try:
        populations = gating.gate_file(fcs, template, settings)
    except (gating.FlowFormatError, gating.FlowTemplateError) as err:
        err_console.print(f"cannot gate {fcs.name}: {err}")
        raise typer.Exit(EXIT_QUARANTINED) from err
    from rich.table import Table

    table = Table(title=f"{fcs.name} gated with {template.name}")
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
) -> None:
    """Write a small demo trial's exports into the inbox, process them, print a summary."""
    from pipelines.demo.generate import write_demo_trial

    lab = LabHome.locate(home).ensure()
    written = write_demo_trial(lab.inbox, seed=seed)
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
    lab = LabHome.locate(home)
    if not lab.warehouse.is_dir():
        err_console.print(f"no warehouse in {lab.root}: ingest some files first")
        raise typer.Exit(EXIT_USAGE)
    prepare_environment(lab)
    from pipelines.derived.recompute import known_patients, recompute_patients
    from pipelines.settings import Settings
    from pipelines.warehouse import connect
    from validation.runner import Validator

    if patient and patient not in known_patients(connect(lab.warehouse)):
        err_console.print(f"no data for patient {patient} in {lab.root}")
        raise typer.Exit(EXIT_USAGE)
    validator = Validator(lab.gx, Settings.load(lab.root).qpcr)
    outcome = recompute_patients(lab, [patient] if patient else None, validator)
    for failure in outcome.failures:
        err_console.print(f"[red]not written[/]  {failure}")
    for path in outcome.reports:
        console.print(f"report      {path}")
    raise typer.Exit(1 if outcome.failures else EXIT_OK)


SteadyOption = Annotated[
    float,
    typer.Option(
        "--steady-seconds", envvar="CARTFLOW_STEADY_SECONDS",
        help="A closed file is taken once its size has not changed for this long.",
    ),
]  # fmt: skip
PollingOption = Annotated[
    bool,
    typer.Option(
        "--polling", envvar="CARTFLOW_WATCH_POLLING",
        help="Poll the inbox instead of inotify (network shares deliver no events).",
    ),
]  # fmt: skip
SubmitOption = Annotated[
    str,
    typer.Option(
        "--submit", envvar="CARTFLOW_WATCH_SUBMIT",
        help="inline: the watcher runs the ingest flow itself (seconds from drop to rows); "
        "deployment: it asks the ingest-file deployment's workers to.",
    ),
]  # fmt: skip


@app.command()
def watch(
    home: HomeOption = None,
    steady_seconds: SteadyOption = 1.0,
    polling: PollingOption = False,
    rescan_seconds: Annotated[
        float,
        typer.Option(envvar="CARTFLOW_RESCAN_SECONDS", help="Sweep the inbox this often too."),
    ] = 60.0,
    submit: SubmitOption = "inline",
) -> None:
    """Watch the inbox and ingest each file once it is complete."""
    import signal
    import threading

    from pipelines.watch import DEPLOYMENT, WatchSettings

    try:
        settings = WatchSettings(
            steady_seconds=steady_seconds, polling=polling, rescan_seconds=rescan_seconds,
            submit=submit,
        )  # fmt: skip
    except ValueError as err:
        err_console.print(str(err))
        raise typer.Exit(EXIT_USAGE) from err
    if settings.submit == DEPLOYMENT and not os.environ.get("PREFECT_API_URL"):
        err_console.print("--submit deployment needs a Prefect server: set PREFECT_API_URL")
        raise typer.Exit(EXIT_USAGE)
    lab = LabHome.locate(home).ensure()
    prepare_environment(lab)
    from pipelines.watch import Watcher, deployment_submitter, inline_submitter

    if settings.submit == DEPLOYMENT:
        submitter = deployment_submitter(
            lab, settings.deployment,
            lambda path, run: console.print(f"submitted   {path.name}: flow run {run}"),
        )  # fmt: skip
    else:
        submitter = inline_submitter(lab, _print_outcome)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    mode = f"polling every {settings.poll_interval_seconds:g} s" if polling else "inotify"
    console.print(
        f"watching {lab.inbox} ({mode}; a file is taken {steady_seconds:g} s after it is "
        f"complete; {settings.submit} runs); Ctrl-C stops"
    )
    Watcher(
        lab, settings, submitter,
        lambda path, err: err_console.print(f"[red]error[/]       {path.name}: {err}"),
    ).run(stop)  # fmt: skip


@app.command()
def serve(
    home: HomeOption = None,
    host: Annotated[
        str,
        typer.Option(envvar="CARTFLOW_HOST", help="Interface the Prefect server listens on."),
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="CARTFLOW_PORT", help="Prefect server port.")] = 4200,
    dask_address: Annotated[
        str | None,
        typer.Option(
            envvar="CARTFLOW_DASK_ADDRESS",
            help="Run the sweep's per-file tasks on this Dask scheduler (tcp://host:8786).",
        ),
    ] = None,
    cron: Annotated[
        str | None,
        typer.Option(envvar="CARTFLOW_NIGHTLY_CRON", help="Nightly schedule (prefect.yaml's)."),
    ] = None,
    timezone: Annotated[
        str | None,
        typer.Option(
            envvar="CARTFLOW_TIMEZONE", help="Time zone of the nightly schedule, e.g. Europe/Paris."
        ),
    ] = None,
    worker_query_seconds: Annotated[
        float,
        typer.Option(envvar="CARTFLOW_WORKER_QUERY_SECONDS", help="How often the worker polls."),
    ] = 5.0,
    steady_seconds: SteadyOption = 1.0,
    polling: PollingOption = False,
    submit: SubmitOption = "inline",
) -> None:
    """Start Prefect server, worker, deployments and watcher; stop all on Ctrl-C."""
    from pipelines.service import ServiceError, ServiceSettings, run_service

    lab = LabHome.locate(home).ensure()
    prepare_environment(lab)
    watch_args = ["--steady-seconds", str(steady_seconds), "--submit", submit]
    settings = ServiceSettings(
        host=host, port=port, dask_address=dask_address, timezone=timezone, cron=cron,
        worker_query_seconds=worker_query_seconds,
        watch_args=(*watch_args, *(["--polling"] if polling else [])),
    )  # fmt: skip
    try:
        run_service(lab, settings, console.print)
    except ServiceError as err:
        err_console.print(f"[red]cartflow serve: {err}[/]")
        raise typer.Exit(1) from err
    console.print("stopped")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
