"""With Temporal unreachable, the API still answers: reads work, apply refuses with 503 in the
documented shape and stores nothing, and /health says what is wrong."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import httpx
import pytest

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
def api_without_temporal(tmp_path):
    settings = Settings(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'h.db'}", secret_key="s",
                        temporal_address=f"127.0.0.1:{free_port()}")
    upgrade(settings.db_url)
    db = Database(settings.db_url)
    with db.session() as s:
        ws = key_store.ensure_workspace(s, "acme")
        _, secret = key_store.create_key(s, ws.id, "t")
        s.add(Account(id=new_id("acct"), workspace_id=ws.id, provider="discord", handle="discord:1",
                      credentials_encrypted=CredentialCipher("s").encrypt({"webhook_id": "1", "webhook_token": "t"})))
        s.commit()
    db.dispose()
    with serve_in_thread(create_app(settings)) as url:
        yield url, secret


def test_apply_refuses_cleanly_and_stores_nothing(api_without_temporal) -> None:
    url, secret = api_without_temporal
    c = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {secret}"}, timeout=60)
    when = (datetime.now(timezone.utc) + timedelta(minutes=5)).isoformat()
    r = c.post("/v1/posts/apply", json={"posts": [{"account": "discord:1", "text": "hi", "publish_at": when}]})
    assert r.status_code == 503, r.text
    body = r.json()
    assert body["ok"] is False and body["code"] == "temporal_unavailable" and r.headers["retry-after"]
    assert c.get("/v1/posts").json()["total"] == 0
    # Validation and reads do not need Temporal.
    assert c.post("/v1/posts/validate", json={"posts": [{"account": "discord:1", "text": "hi", "publish_at": when}]}).status_code == 200
    health = httpx.get(f"{url}/health", timeout=30)
    assert health.status_code == 503
    details = health.json()["details"]
    assert details["db"]["ok"] is True and details["temporal"]["ok"] is False and details["workers"]["ok"] is False
