"""The API on Postgres (the production database): racing applies with one idempotency key make
one run, and workspaces stay apart. Draft runs start no workflow, so no Temporal is needed."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import httpx
import pytest
import sqlalchemy as sa

from api.app import create_app
from herald.crypto import CredentialCipher
from herald.ids import new_id
from herald.settings import Settings
from store import keys as key_store
from store.db import Database
from store.migrate import upgrade
from store.models import Account
from tests.support import free_port, serve_in_thread


@pytest.fixture
def pg_api(postgres_url, tmp_path):
    settings = Settings(data_dir=tmp_path, database_url=postgres_url, secret_key="s",
                        temporal_address=f"127.0.0.1:{free_port()}")
    upgrade(settings.db_url)
    db = Database(settings.db_url)
    secrets = {}
    with db.session() as s:
        for name in ("alpha", "beta"):
            ws = key_store.ensure_workspace(s, f"{name}-{new_id('x')}")
            _, secrets[name] = key_store.create_key(s, ws.id, name)
            s.add(Account(id=new_id("acct"), workspace_id=ws.id, provider="telegram", handle="telegram:-1001",
                          credentials_encrypted=CredentialCipher("s").encrypt({"bot_token": "x", "chat_id": "-1001"})))
        s.commit()
    with serve_in_thread(create_app(settings)) as url:
        yield url, secrets
    with db.engine.begin() as conn:
        for table in ("post_assets", "asset_renditions", "media_tasks", "assets", "jobs", "post_attempts", "posts", "runs",
                          "accounts", "connections", "api_keys", "workspaces"):
            conn.execute(sa.text(f"DELETE FROM {table}"))
    db.dispose()


def test_racing_draft_applies_make_one_run_on_postgres(pg_api) -> None:
    url, secrets = pg_api
    when = (datetime.now(timezone.utc) + timedelta(days=1)).isoformat()
    body = {"mode": "draft", "idempotencyKey": "pg-race",
            "posts": [{"account": "telegram:-1001", "text": "draft", "publish_at": when}]}

    async def fire(secret: str) -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {secret}"}, timeout=60) as c:
            return await asyncio.gather(*(c.post("/v1/posts/apply", json=body) for _ in range(8)))

    responses = asyncio.run(fire(secrets["alpha"]))
    assert all(r.status_code in (200, 201) for r in responses), [r.text for r in responses]
    assert len({r.json()["run"]["id"] for r in responses}) == 1
    assert sorted(r.json()["duplicate"] for r in responses) == [False] + [True] * 7
    run = responses[0].json()
    assert run["run"]["status"] == "draft" and run["posts"][0]["status"] == "draft"

    alpha = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {secrets['alpha']}"})
    beta = httpx.Client(base_url=url, headers={"X-API-Key": secrets["beta"]})
    assert alpha.get("/v1/posts").json()["total"] == 1
    # The same key in another workspace is another run; ids do not cross workspaces.
    other = beta.post("/v1/posts/apply", json=body)
    assert other.status_code == 201 and other.json()["run"]["id"] != run["run"]["id"]
    assert beta.get(f"/v1/runs/{run['run']['id']}").status_code == 404
    assert beta.get(f"/v1/posts/{run['posts'][0]['id']}").status_code == 404
    # A draft post is canceled directly (no workflow exists for it).
    r = alpha.delete(f"/v1/posts/{run['posts'][0]['id']}")
    assert r.status_code == 200, r.text
    assert r.json()["post"]["status"] == "canceled"
