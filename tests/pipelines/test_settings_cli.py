"""A `cartflow.toml` or `CARTFLOW_*` variable that cannot be used stops every command before it
does anything: exit status 2, the file (or variable), the key, what was expected and what was
probably meant, and no traceback. Real `cartflow` processes, as a technician runs them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.home import LabHome
from pipelines.service import Child, Service, ServiceError, ServiceSettings
from pipelines.settings import SETTINGS_FILE
from tests.faults.runs import cartflow_command, processes_of

TIMEOUT = 120
GATING_TEMPLATE = Path(__file__).resolve().parents[2] / "gating" / "templates" / "tcell_panel.xml"


def run_cartflow(*args: str, **environ: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARTFLOW_")}
    return subprocess.run(
        cartflow_command(*args), env={**env, **environ}, capture_output=True, text=True,
        timeout=TIMEOUT, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def refused(result: subprocess.CompletedProcess, *words: str) -> str:
    """The refusal's text, once it is known to be exit 2, without a traceback, saying `words`."""
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert "Traceback" not in output
    for word in words:
        assert word in output, output
    return output


@pytest.fixture
def lab(tmp_path: Path) -> LabHome:
    home = LabHome(tmp_path / "lab")
    home.root.mkdir()
    return home


@pytest.fixture
def export(tmp_path: Path) -> Path:
    """A file to ingest: it must still be where it was after a refusal."""
    path = tmp_path / "plate.txt"
    path.write_text("* Instrument Type = QuantStudio 7 Flex\n")
    return path


def nothing_done(lab: LabHome) -> None:
    assert sorted(p.name for p in lab.root.iterdir()) == [SETTINGS_FILE]


def commands(lab: LabHome, export: Path) -> dict[str, list[str]]:
    """Every command of `pipelines.cli`, with arguments it would otherwise run with."""
    home = ["--home", str(lab.root)]
    return {
        "ingest": ["ingest", str(export), *home], "run": ["run", *home],
        "status": ["status", *home], "verify": ["verify", *home],
        "query": ["query", "select 1", *home], "report": ["report", *home],
        "demo": ["demo", *home], "watch": ["watch", *home], "serve": ["serve", *home],
        "gate": ["gate", str(export), "--template", str(GATING_TEMPLATE), *home],
        "tables": ["tables"],  # reads the table registry only, no lab home or settings
    }  # fmt: skip


def test_every_command_of_the_cli_is_covered() -> None:
    from typer.main import get_command

    from pipelines import cli

    listed = commands(LabHome(Path("lab")), Path("plate.txt"))
    assert sorted(get_command(cli.app).commands) == sorted(listed)


@pytest.mark.parametrize(
    "command",
    ["ingest", "run", "status", "verify", "query", "report", "demo", "watch", "serve", "gate"],
)
def test_every_command_refuses_a_misspelled_section(lab, export, command) -> None:
    path = lab.root / SETTINGS_FILE
    path.write_text("[qcpr]\nefficiency_min_pct = 85\n")
    result = run_cartflow(*commands(lab, export)[command])
    refused(result, f"{path}: [qcpr] is not a section; did you mean [qpcr]?")
    nothing_done(lab)
    assert export.exists()


@pytest.mark.parametrize(
    ("toml", "words"),
    [
        ('[identity]\nsample_name_patern = "^(?P<patient>P1)_(?P<timepoint>D1)$"\n',
         "[identity] sample_name_patern is not a setting; did you mean sample_name_pattern?"),
        ("[qpcr]\nefficency_min_pct = 85\n",
         "[qpcr] efficency_min_pct is not a setting; did you mean efficiency_min_pct?"),
        ("[derived]\naplasia_treshold_cells_per_ul = 5\n",
         "[derived] aplasia_treshold_cells_per_ul is not a setting; "
         "did you mean aplasia_threshold_cells_per_ul?"),
        ("[flow]\nbeads_per_tests = 50000\n",
         "[flow] beads_per_tests is not a setting; did you mean beads_per_test?"),
        ("[cba]\nweigthing = '1/y'\n", "[cba] weigthing is not a setting; did you mean weighting?"),
        ("[ingest]\nclaim_expiry = 5\n",
         "[ingest] claim_expiry is not a setting; did you mean claim_expiry_minutes?"),
        ('[qpcr]\nr_squared_min = "0.98"\n', "[qpcr] r_squared_min = '0.98': expected a number"),
        ('[qpcr]\ncar_targets = "CAR"\n',
         "[qpcr] car_targets = 'CAR': expected a list of texts in quotes"),
        ("[identity]\nsample_name_pattern = '^(?P<patient>P\\d+'\n",
         "[identity] sample_name_pattern = '^(?P<patient>P\\\\d+' is not a valid regular expression"),
        ("[identity]\nsample_name_pattern = '^(?P<patient>P\\d+)_(.+)$'\n",
         "[identity] sample_name_pattern = '^(?P<patient>P\\\\d+)_(.+)$': expected the named "
         "groups (?P<patient>...) and (?P<timepoint>...); missing timepoint"),
    ],
)  # fmt: skip
def test_ingest_refuses_a_bad_setting_before_taking_the_file(lab, export, toml, words) -> None:
    path = lab.root / SETTINGS_FILE
    path.write_text(toml)
    result = run_cartflow("ingest", str(export), "--home", str(lab.root))
    refused(result, f"{path}: {words}", "nothing was done: fix the settings above")
    nothing_done(lab)
    assert export.exists()


def test_serve_refuses_before_it_starts_anything(lab) -> None:
    (lab.root / SETTINGS_FILE).write_text("[qpcr]\nefficency_min_pct = 85\n")
    result = run_cartflow("serve", "--home", str(lab.root), "--port", "4391")
    refused(result, "did you mean efficiency_min_pct?")
    assert "started" not in result.stdout
    nothing_done(lab)  # no logs/, no prefect/: no server, worker or watcher was started
    assert processes_of(lab) == []


@pytest.mark.parametrize(
    ("args", "environ", "words"),
    [
        (["run"], {"CARTFLOW_LOCAL_WORKERS": "two"},
         "CARTFLOW_LOCAL_WORKERS='two': expected a whole number, 1 or more"),
        (["status"], {"CARTFLOW_GATING_THREADS": "0"},
         "CARTFLOW_GATING_THREADS='0': expected a whole number, 1 or more"),
        (["serve"], {"CARTFLOW_PORT": "99999"},
         "CARTFLOW_PORT='99999': expected a whole number from 1 to 65535"),
        (["serve"], {"CARTFLOW_TIMEZONE": "Europe/Pariss"},
         "CARTFLOW_TIMEZONE='Europe/Pariss': expected a time zone name such as Europe/Paris"),
        (["watch"], {"CARTFLOW_WATCH_SUBMIT": "pigeon"},
         "CARTFLOW_WATCH_SUBMIT='pigeon': expected inline or deployment"),
        (["serve", "--cron", "every night"], {},
         "--cron 'every night': expected a five-field cron schedule"),
    ],
)  # fmt: skip
def test_a_bad_variable_or_option_is_refused_by_name(lab, args, environ, words) -> None:
    (lab.root / SETTINGS_FILE).write_text("")
    result = run_cartflow(*args, "--home", str(lab.root), **environ)
    refused(result, words)
    nothing_done(lab)


def test_the_service_does_not_restart_a_child_that_refuses_its_settings(lab) -> None:
    """A watcher started by `serve` that exits 2 (its settings were broken after the service
    started) stops the service with a reason instead of being restarted into the same refusal."""
    service = Service(lab, ServiceSettings(), lambda line: None)
    watcher = Child("watcher", [sys.executable, "-c", "raise SystemExit(2)"], None)
    service.children.append(watcher)
    watcher.start(dict(os.environ))
    watcher.process.wait(timeout=TIMEOUT)
    with pytest.raises(ServiceError, match="watcher refused its settings or options"):
        service.supervise()
    assert watcher.restarts == []
