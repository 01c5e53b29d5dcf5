"""`cartflow serve`: the lab service on one machine, started and stopped as one thing.

Children, each in its own process group so that a terminal's Ctrl-C reaches only this
supervisor, which then stops them in order:

1. `prefect server start` on loopback (SQLite in the lab home's `prefect/`, or PostgreSQL when
   `PREFECT_API_DATABASE_CONNECTION_URL` / `PREFECT_SERVER_DATABASE_CONNECTION_URL` is set);
2. the process work pool `cartflow` (created through the API) and a worker polling it;
3. `prefect deploy --all` from `prefect.yaml` (one shot): the nightly sweep and `ingest-file`;
4. `cartflow watch`, whose one line per file is the technician's console.

A child that dies is restarted (at most `MAX_RESTARTS` times in `RESTART_WINDOW_SECONDS`), unless
it refused its settings (exit status 2): then the service stops.
Stopping sends SIGTERM to every child's group and to every descendant (Prefect starts flow-run
processes in sessions of their own), waits `STOP_TIMEOUT_SECONDS`, then SIGKILLs what is left.
Server and worker output goes to `<home>/logs/`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import yaml

from pipelines.environment import DASK_ADDRESS
from pipelines.home import LabHome
from pipelines.runtime.memory import MALLOC_ENVIRON
from pipelines.runtime.server import note_service_api

REPO_ROOT = Path(__file__).resolve().parent.parent
PREFECT_YAML = REPO_ROOT / "prefect.yaml"
WORK_POOL = "cartflow"
NIGHTLY = "nightly"
DATABASE_URL_SETTINGS = (
    "PREFECT_API_DATABASE_CONNECTION_URL",
    "PREFECT_SERVER_DATABASE_CONNECTION_URL",
)
STARTUP_TIMEOUT_SECONDS = 240.0
STOP_TIMEOUT_SECONDS = 20.0
MAX_RESTARTS = 5
RESTART_WINDOW_SECONDS = 600.0
PREFECT = [sys.executable, "-m", "prefect"]
SETTINGS_REFUSED = 2
"""A child's exit status for settings or options it cannot use (cartflow's and click's usage
error): restarting it would only refuse them again, so the service stops and says so."""


class ServiceError(RuntimeError):
    """The service could not start or keep running; the message says why."""


@dataclass(frozen=True)
class ServiceSettings:
    host: str = "127.0.0.1"
    port: int = 4200
    dask_address: str | None = None
    timezone: str | None = None  # None: prefect.yaml's
    cron: str | None = None  # None: prefect.yaml's
    worker_query_seconds: float = 5.0
    worker_limit: int = os.cpu_count() or 1
    watch_args: tuple[str, ...] = ()

    @property
    def api_url(self) -> str:
        """Where the children reach the server (loopback when it listens on every interface)."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        return f"http://{host}:{self.port}/api"

    @property
    def ui_url(self) -> str:
        return self.api_url.removesuffix("/api")


@dataclass
class Child:
    """One supervised process, in a process group of its own."""

    name: str
    argv: list[str]
    log: Path | None  # None: share the service's console
    one_shot: bool = False
    process: subprocess.Popen | None = None
    restarts: list[float] = field(default_factory=list)

    def start(self, env: dict[str, str]) -> None:
        output = self.log.open("ab") if self.log else None
        try:
            self.process = subprocess.Popen(
                self.argv, env=env, cwd=REPO_ROOT, stdin=subprocess.DEVNULL,
                stdout=output, stderr=subprocess.STDOUT if output else None,
                process_group=0,
            )  # fmt: skip
        finally:
            if output:
                output.close()

    @property
    def exit_code(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def may_restart(self, now: float) -> bool:
        self.restarts = [t for t in self.restarts if now - t < RESTART_WINDOW_SECONDS]
        self.restarts.append(now)
        return len(self.restarts) <= MAX_RESTARTS


def service_environment(home: LabHome, settings: ServiceSettings) -> dict[str, str]:
    """The children's environment: the lab home, the server, the Dask address, no telemetry."""
    env = dict(os.environ)
    env.update(
        CARTFLOW_HOME=str(home.root),
        PREFECT_HOME=str(home.prefect_home),
        PREFECT_API_URL=settings.api_url,
        PREFECT_UI_URL=settings.ui_url,
        PREFECT_SERVER_API_HOST=settings.host,
        PREFECT_SERVER_API_PORT=str(settings.port),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        DO_NOT_TRACK="1",
        GX_ANALYTICS_ENABLED="false",
        PREFECT_CLI_PROMPT="false",
        PREFECT_WORKER_QUERY_SECONDS=str(settings.worker_query_seconds),
        PYTHONUNBUFFERED="1",
    )
    if settings.dask_address:
        env[DASK_ADDRESS.name] = settings.dask_address
    for name, value in MALLOC_ENVIRON.items():  # flow runs gate files in their own process
        env.setdefault(name, value)
    return env


def database_description(home: LabHome) -> str:
    """Which database the server uses, without printing a URL that may hold a password."""
    for name in DATABASE_URL_SETTINGS:
        if os.environ.get(name):
            return f"the database in {name}"
    return f"SQLite at {home.prefect_home / 'prefect.db'}"


def port_in_use(host: str, port: int) -> bool:
    probe = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    with socket.socket(socket.AF_INET6 if ":" in probe else socket.AF_INET) as sock:
        sock.settimeout(1)
        return sock.connect_ex((probe, port)) == 0


def server_healthy(api_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{api_url}/health", timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def deployment_file(home: LabHome, settings: ServiceSettings) -> Path:
    """prefect.yaml, or a copy in the lab home with the nightly cron or time zone overridden."""
    if settings.cron is None and settings.timezone is None:
        return PREFECT_YAML
    config = yaml.safe_load(PREFECT_YAML.read_text(encoding="utf-8"))
    for deployment in config["deployments"]:
        if deployment["name"] != NIGHTLY:
            continue
        for schedule in deployment["schedules"]:
            if settings.cron is not None:
                schedule["cron"] = settings.cron
            if settings.timezone is not None:
                schedule["timezone"] = settings.timezone
    rendered = home.prefect_home / "prefect.yaml"
    rendered.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return rendered


def ensure_work_pool(api_url: str) -> None:
    """Create the process work pool with Prefect's default job template, unless it exists."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists
    from prefect.settings import PREFECT_API_URL, temporary_settings
    from prefect.workers.process import ProcessWorker

    pool = WorkPoolCreate(
        name=WORK_POOL, type="process",
        base_job_template=ProcessWorker.get_default_base_job_template(),
    )  # fmt: skip
    with (
        temporary_settings({PREFECT_API_URL: api_url}),
        get_client(sync_client=True) as client,
        contextlib.suppress(ObjectAlreadyExists),
    ):
        client.create_work_pool(pool)


def log_tail(path: Path | None, lines: int = 20) -> str:
    if path is None or not path.exists():
        return ""
    return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])


class Service:
    def __init__(
        self, home: LabHome, settings: ServiceSettings, say: Callable[[str], None]
    ) -> None:
        self.home = home.ensure()
        self.settings = settings
        self.say = say
        self.logs = home.root / "logs"
        self.env = service_environment(home, settings)
        self.stopping = threading.Event()
        self.children: list[Child] = []

    # -- the children -----------------------------------------------------------------------
    def _server(self) -> Child:
        argv = [*PREFECT, "server", "start", "--host", self.settings.host,
                "--port", str(self.settings.port)]  # fmt: skip
        return Child("server", argv, self.logs / "server.log")

    def _worker(self) -> Child:
        argv = [*PREFECT, "worker", "start", "--pool", WORK_POOL, "--type", "process",
                "--name", f"cartflow-{socket.gethostname()}",
                "--limit", str(self.settings.worker_limit)]  # fmt: skip
        return Child("worker", argv, self.logs / "worker.log")

    def _deploy(self) -> Child:
        argv = [*PREFECT, "--no-prompt", "deploy", "--all",
                "--prefect-file", str(deployment_file(self.home, self.settings))]  # fmt: skip
        return Child("deploy", argv, self.logs / "deploy.log", one_shot=True)

    def _watcher(self) -> Child:
        argv = [sys.executable, "-m", "pipelines.cli", "watch", "--home", str(self.home.root),
                *self.settings.watch_args]  # fmt: skip
        return Child("watcher", argv, None)

    def _launch(self, child: Child) -> None:
        child.start(self.env)
        assert child.process is not None
        self.say(f"started {child.name} (pid {child.process.pid})")

    # -- running ----------------------------------------------------------------------------
    def start(self) -> None:
        """Start everything; raises ServiceError if the server or the work pool fails."""
        if port_in_use(self.settings.host, self.settings.port):
            raise ServiceError(
                f"port {self.settings.port} is already in use: is another service running? "
                "choose another with --port or CARTFLOW_PORT"
            )
        self.logs.mkdir(parents=True, exist_ok=True)
        server = self._server()
        self.children.append(server)
        self._launch(server)
        self._wait_for_server(server)
        if self.stopping.is_set():
            return  # asked to stop while the server was starting
        note_service_api(self.home, self.settings.api_url)  # the command line's runs go here
        ensure_work_pool(self.settings.api_url)
        for child in (self._worker(), self._deploy(), self._watcher()):
            self.children.append(child)
            self._launch(child)
        self.say(
            f"Prefect UI: {self.settings.ui_url}  (database: {database_description(self.home)})"
        )

    def _wait_for_server(self, server: Child) -> None:
        """Until the server answers, or the service is asked to stop."""
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while not server_healthy(self.settings.api_url):
            if self.stopping.is_set():
                return
            if server.exit_code is not None:
                raise ServiceError(f"the Prefect server exited:\n{log_tail(server.log)}")
            if time.monotonic() > deadline:
                raise ServiceError(
                    f"the Prefect server did not answer within {STARTUP_TIMEOUT_SECONDS:.0f} s; "
                    f"see {server.log}"
                )
            time.sleep(0.5)

    def supervise(self) -> None:
        """Until asked to stop: report the deployment, restart children that die."""
        while not self.stopping.wait(0.5):
            for child in list(self.children):
                code = child.exit_code
                if code is None:
                    continue
                if child.one_shot:
                    self.children.remove(child)
                    self._finished(child, code)
                elif code == SETTINGS_REFUSED:
                    raise ServiceError(
                        f"{child.name} refused its settings or options (exit {code}; its message "
                        f"is above{' and in ' + str(child.log) if child.log else ''}): fix them "
                        "and start the service again"
                    )
                elif child.may_restart(time.monotonic()):
                    self.say(f"{child.name} exited with code {code}; restarting it")
                    if child.name == "server":
                        self._launch(child)
                        self._wait_for_server(child)
                    else:
                        self._launch(child)
                else:
                    raise ServiceError(
                        f"{child.name} keeps exiting ({MAX_RESTARTS} restarts in "
                        f"{RESTART_WINDOW_SECONDS / 60:.0f} min); last output:\n{log_tail(child.log)}"
                    )

    def _finished(self, child: Child, code: int) -> None:
        if code != 0:
            raise ServiceError(f"{child.name} failed (exit {code}):\n{log_tail(child.log)}")
        self.say("deployments registered: nightly (cron) and ingest-file, work pool cartflow")

    def stop(self) -> None:
        """Watcher first (it finishes the file in hand), then worker and server; no orphans."""
        note_service_api(self.home, None)
        by_name = {c.name: c for c in self.children if c.process is not None}
        for names in (("watcher", "deploy"), ("worker",), ("server",)):
            _terminate([by_name[n].process for n in names if n in by_name])
        self.children.clear()


def _terminate(processes: list[subprocess.Popen]) -> None:
    """SIGTERM each process group and every descendant, then SIGKILL what outlives the timeout.

    A descendant in one of the groups gets the group's SIGTERM only: a second one would cut
    short the clean-up the first started (the watcher finishing or rolling back its file)."""
    groups = {process.pid for process in processes}
    victims: list[psutil.Process] = []
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            leader = psutil.Process(process.pid)
            victims += [leader, *leader.children(recursive=True)]
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGTERM)
    for victim in victims:
        with contextlib.suppress(psutil.NoSuchProcess, ProcessLookupError):
            if os.getpgid(victim.pid) not in groups:  # Prefect's flow runs: sessions of their own
                victim.terminate()
    _, alive = psutil.wait_procs(victims, timeout=STOP_TIMEOUT_SECONDS)
    for process in processes:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
    for victim in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            victim.kill()
    psutil.wait_procs(alive, timeout=5)
    for process in processes:
        process.wait(timeout=5)


def run_service(home: LabHome, settings: ServiceSettings, say: Callable[[str], None]) -> None:
    """Start the service, supervise it until SIGINT or SIGTERM, then stop all of it."""
    service = Service(home, settings, say)

    def request_stop(signum: int, frame: object) -> None:
        service.stopping.set()

    previous = {s: signal.signal(s, request_stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        service.start()
        service.supervise()
        say("stopping: watcher, worker, server")
    finally:
        service.stop()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
