"""A Herald stack whose parts are separate processes that a scenario may kill and restart:
the Temporal dev server (persistent file), the sandbox, the workflows worker, publisher workers
and the API, each started with herald.dev's own commands on free ports."""

from __future__ import annotations

import signal
import subprocess
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import httpx

from herald.dev import (
    Child,
    child_env,
    ensure_dev_key,
    free_port,
    herald_cmd,
    port_open,
    spawn,
    stop_all,
    temporal_command,
    wait_until,
)
from herald.settings import Settings
from store.migrate import upgrade


@dataclass
class ChaosStack:
    settings: Settings
    env: dict[str, str]
    data_dir: Path
    children: dict[str, Child] = field(default_factory=dict)
    commands: dict[str, list[str]] = field(default_factory=dict)
    key: str = ""

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.settings.api_port}"

    @property
    def sandbox(self) -> str:
        return self.settings.sandbox_base

    def start(self, name: str) -> None:
        self.children[name] = spawn(name, self.commands[name], self.env)

    def kill(self, name: str) -> None:
        """SIGKILL: no shutdown, no flushed heartbeats, exactly as a crash."""
        proc = self.children[name].proc
        proc.send_signal(signal.SIGKILL)
        proc.wait()

    def stop(self, name: str, sig: signal.Signals = signal.SIGTERM, timeout: float = 30) -> None:
        """Stop a process with `sig` and wait for it (SIGKILL if it outlives `timeout`)."""
        proc = self.children[name].proc
        proc.send_signal(sig)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def restart(self, name: str) -> None:
        if self.children[name].proc.poll() is None:
            self.kill(name)
        self.start(name)

    def wait_healthy(self, timeout: float = 120) -> None:
        wait_until("the API and the workers", lambda: httpx.get(f"{self.api}/health", timeout=10).status_code == 200,
                   [], timeout=timeout)


@contextmanager
def chaos_stack(publishers: int = 2, extra_env: dict[str, str] | None = None,
                database_url: str | None = None) -> Iterator[ChaosStack]:
    """`database_url`: the store for this stack and every child (else SQLite in the stack's data
    directory, unless the environment names one)."""
    root = Path(tempfile.mkdtemp(prefix="herald-chaos-"))
    data_dir = root / "data"
    data_dir.mkdir()
    settings = Settings(
        data_dir=data_dir, temporal_port=free_port(), temporal_ui_port=free_port(), sandbox_port=free_port(),
        api_port=free_port(), rate_limits_enabled=False,
        **({"database_url": database_url} if database_url else {}),
    )
    upgrade(settings.db_url)
    env = child_env(settings, data_dir) | {"HERALD_RATE_LIMITS_ENABLED": "false", "HERALD_LOG_LEVEL": "WARNING"}
    if database_url:
        env |= {"DATABASE_URL": database_url, "HERALD_DATABASE_URL": database_url}
    env |= extra_env or {}
    stack = ChaosStack(settings=settings, env=env, data_dir=data_dir)
    stack.commands = {
        "temporal": temporal_command(settings, data_dir),
        "sandbox": herald_cmd("sandbox"),
        "worker": herald_cmd("worker") + ["--role", "workflows"],
        "api": herald_cmd("api"),
    }
    for n in range(publishers):
        stack.commands[f"publisher{n + 1}"] = herald_cmd("worker") + ["--role", "publisher"]
    try:
        stack.start("temporal")
        wait_until("Temporal", lambda: port_open(settings.temporal_port), list(stack.children.values()))
        stack.start("sandbox")
        wait_until("the sandbox", lambda: httpx.get(f"{settings.sandbox_base}/_sandbox/health").status_code == 200,
                   list(stack.children.values()))
        for name in stack.commands:
            if name not in stack.children:
                stack.start(name)
        stack.wait_healthy()
        stack.key = ensure_dev_key(settings, data_dir)
        yield stack
    finally:
        stop_all(list(stack.children.values()))
        print(f"(chaos stack data: {root})")

