"""A private, throwaway PostgreSQL cluster for chaos runs, so a scenario can stop and restart the
database without touching the machine's shared Postgres service.

`initdb` into a temporary directory, a server on a free loopback port with trust
authentication, one database; `stop()`, `start()` and `restart()` for the scenario; everything
removed on exit. PostgreSQL refuses to run as root, so when we are root the binaries run as the
`postgres` system user (through `runuser`) and the directory belongs to that user.

    with private_postgres() as pg:
        pg.url          # postgresql+psycopg://postgres@127.0.0.1:PORT/herald
        pg.stop()       # fast shutdown: open transactions are rolled back, clients disconnected
        pg.start()
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from herald.dev import free_port

DATABASE = "herald"


def postgres_bin() -> Path:
    """The newest server binaries installed by the distribution's packages (or PG_BIN)."""
    if os.environ.get("PG_BIN"):
        return Path(os.environ["PG_BIN"])
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if not found:
        on_path = shutil.which("initdb")
        if on_path is None:
            raise RuntimeError("no PostgreSQL server binaries (initdb) under /usr/lib/postgresql/*/bin or on PATH")
        return Path(on_path).parent
    return Path(found[-1]).parent


@dataclass
class PrivatePostgres:
    root: Path
    port: int
    bin: Path
    run_as: str | None  # the system user the binaries run as (None: ourselves)

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        return self.root / "postgres.log"

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{DATABASE}"

    def _run(self, tool: str, *args: str) -> None:
        cmd = [str(self.bin / tool), *args]
        if self.run_as:
            cmd = ["runuser", "-u", self.run_as, "--", *cmd]
        done = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        if done.returncode != 0:
            raise RuntimeError(f"{tool} {' '.join(args)} failed ({done.returncode}): "
                               f"{done.stdout.decode(errors='replace')[-2000:]}")

    def init(self) -> None:
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync")

    def start(self) -> None:
        """Start and wait until it accepts connections."""
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60",
                  "-o", f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c max_connections=200",
                  "start")

    def stop(self, mode: str = "fast") -> None:
        """`fast`: roll back open transactions and disconnect clients (a clean restart);
        `immediate`: no shutdown checkpoint, like a crash (recovery runs at the next start)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def restart(self, mode: str = "fast") -> None:
        self.stop(mode)
        self.start()

    def running(self) -> bool:
        cmd = [str(self.bin / "pg_ctl"), "-D", str(self.data), "status"]
        if self.run_as:
            cmd = ["runuser", "-u", self.run_as, "--", *cmd]
        return subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0

    def create_database(self) -> None:
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", DATABASE)


@contextmanager
def private_postgres(keep: bool = False) -> Iterator[PrivatePostgres]:
    """A fresh cluster with an empty `herald` database; stopped and removed afterwards (kept on
    disk with keep=True, e.g. to read its log)."""
    run_as = "postgres" if os.geteuid() == 0 else None
    root = Path(tempfile.mkdtemp(prefix="herald-pg-"))
    if run_as:
        user = pwd.getpwnam(run_as)
        os.chown(root, user.pw_uid, user.pw_gid)
    pg = PrivatePostgres(root=root, port=free_port(), bin=postgres_bin(), run_as=run_as)
    try:
        pg.init()
        pg.start()
        pg.create_database()
        yield pg
    finally:
        if pg.running():
            pg.stop("immediate")
        if keep:
            print(f"(private postgres kept: {root})")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":  # a quick self-check: python -m chaos.pg
    import sqlalchemy as sa

    with private_postgres() as pg:
        engine = sa.create_engine(pg.url, pool_pre_ping=True)
        with engine.connect() as conn:
            print("up:", conn.execute(sa.text("select version()")).scalar())
        pg.restart()
        with engine.connect() as conn:
            print("after restart:", conn.execute(sa.text("select 1")).scalar())
        engine.dispose()
    print("removed:", not pg.root.exists())
