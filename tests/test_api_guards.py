"""API guards over real HTTP: the body-size limit (413) and per-key rate limits by route group
(429 with Retry-After), in memory and shared through the machine's Redis."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from typing import Iterator

import httpx
import pytest

from api.app import create_app
from herald.crypto import CredentialCipher
from herald.settings import Settings
from store import keys as key_store
from store.db import Database
from store.migrate import upgrade
from store.models import Account
from tests.support import free_port, serve_in_thread

REDIS_URL = "redis://127.0.0.1:6379/0"


def _settings(tmp_path, **overrides) -> Settings:  # noqa: ANN001, ANN003
    # Temporal is not running: the guards act before any route reaches it.
    return Settings(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'h.db'}", secret_key="s",
                    temporal_address=f"127.0.0.1:{free_port()}", **overrides)


def _workspace_with_keys(settings: Settings, n: int = 2) -> list[str]:
    upgrade(settings.db_url)
    db = Database(settings.db_url)
    with db.session() as s:
        ws = key_store.ensure_workspace(s, "acme")
        secrets = [key_store.create_key(s, ws.id, f"k{i}")[1] for i in range(n)]
        if s.get(Account, "acct_guard") is None:
            s.add(Account(id="acct_guard", workspace_id=ws.id, provider="discord", handle="discord:1",
                          credentials_encrypted=CredentialCipher("s").encrypt({"webhook_id": "1", "webhook_token": "t"})))
        s.commit()
    db.dispose()
    return secrets


@contextmanager
def _client(url: str, secret: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {secret}"}, timeout=30) as c:
        yield c


def _is_error(r: httpx.Response, status: int, code: str) -> dict:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"ok", "code", "message", "details"} and body["ok"] is False and body["code"] == code
    return body


def test_a_body_over_the_limit_is_413_and_stores_nothing(tmp_path) -> None:
    settings = _settings(tmp_path, max_body_bytes=4096)
    (secret, _) = _workspace_with_keys(settings)
    when = (datetime.now(timezone.utc) + timedelta(hours=1)).isoformat()
    with serve_in_thread(create_app(settings)) as url, _client(url, secret) as c:
        big = {"posts": [{"account": "discord:1", "text": "x" * 5000, "publish_at": when}]}
        body = _is_error(c.post("/v1/posts/apply", json=big), 413, "payload_too_large")
        assert body["details"] == {"limitBytes": 4096} and "4,096" in body["message"]
        # Streamed without a Content-Length, the limit holds too.
        chunks = (b'{"posts": [' + b" " * 1024 for _ in range(8))
        _is_error(c.post("/v1/posts/validate", content=chunks, headers={"content-type": "application/json"}),
                  413, "payload_too_large")
        assert c.get("/v1/posts").json()["total"] == 0
        small = {"posts": [{"account": "discord:1", "text": "fits", "publish_at": when}]}
        assert c.post("/v1/posts/validate", json=small).status_code == 200


def test_rate_limits_per_key_and_group_answer_429_with_retry_after(tmp_path) -> None:
    settings = _settings(tmp_path, rate_limit_auth="2/minute", rate_limit_reads="3/hour")
    first, second = _workspace_with_keys(settings)
    with serve_in_thread(create_app(settings)) as url, _client(url, first) as a, _client(url, second) as b:
        assert [a.post("/v1/keys/validate").status_code for _ in range(2)] == [200, 200]
        r = a.post("/v1/keys/validate")
        body = _is_error(r, 429, "rate_limited")
        assert 1 <= int(r.headers["retry-after"]) <= 60
        assert body["details"]["group"] == "auth" and body["details"]["retryAfterSeconds"] == int(r.headers["retry-after"])
        assert b.post("/v1/keys/validate").status_code == 200  # another key has its own budget
        # Groups are separate: reads still work for the key that used up its auth budget.
        assert [a.get("/v1/posts").status_code for _ in range(3)] == [200, 200, 200]
        r = a.get("/v1/posts", params={"status": "scheduled"})
        _is_error(r, 429, "rate_limited")
        assert int(r.headers["retry-after"]) > 60  # an hourly window
        # Unlimited routes stay open.
        assert a.post("/v1/posts/validate", json={"posts": []}).status_code == 422


def test_redis_shares_the_counters_between_api_replicas(tmp_path) -> None:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL).ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis at {REDIS_URL} is required for this test: {exc}")
    settings = _settings(tmp_path, rate_limit_auth="3/minute", redis_url=REDIS_URL)
    (secret, _) = _workspace_with_keys(settings)
    with serve_in_thread(create_app(settings)) as one, serve_in_thread(create_app(settings)) as two:
        with _client(one, secret) as a, _client(two, secret) as b:
            codes = [c.post("/v1/keys/validate").status_code for c in (a, b, a, b)]
            assert codes == [200, 200, 200, 429]


def test_an_unreachable_redis_lets_requests_through(tmp_path) -> None:
    settings = _settings(tmp_path, rate_limit_auth="1/minute", redis_url=f"redis://127.0.0.1:{free_port()}/0")
    (secret, _) = _workspace_with_keys(settings)
    with serve_in_thread(create_app(settings)) as url, _client(url, secret) as c:
        assert [c.post("/v1/keys/validate").status_code for _ in range(3)] == [200, 200, 200]


def test_a_malformed_limit_is_refused_at_start(tmp_path) -> None:
    with pytest.raises(ValueError, match="HERALD_RATE_LIMIT_READS"):
        _settings(tmp_path, rate_limit_reads="lots")


def test_disabled_limits_never_answer_429(tmp_path) -> None:
    settings = _settings(tmp_path, rate_limit_auth="1/minute", rate_limits_enabled=False)
    (secret, _) = _workspace_with_keys(settings)
    with serve_in_thread(create_app(settings)) as url, _client(url, secret) as c:
        assert {c.post("/v1/keys/validate").status_code for _ in range(3)} == {200}



def test_asset_limits_answer_4xx_before_anything_is_stored(tmp_path) -> None:
    import base64

    settings = _settings(tmp_path, max_asset_bytes=1000)
    (secret, _) = _workspace_with_keys(settings)
    with serve_in_thread(create_app(settings)) as url, _client(url, secret) as c:
        big = {"filename": "a.png", "contentBase64": base64.b64encode(b"x" * 1001).decode()}
        body = _is_error(c.post("/v1/assets/upload", json=big), 413, "payload_too_large")
        assert body["details"]["limitBytes"] == 1000
        body = _is_error(c.post("/v1/assets/upload/initiate", json={"filename": "v.mp4", "size": 5000}), 413,
                         "payload_too_large")
        assert body["details"]["limitBytes"] == 1000
        _is_error(c.post("/v1/media/prepare", json={"urls": ["https://e.com/a.png"] * 11}), 422, "too_many_urls")
        _is_error(c.post("/v1/media/prepare", json={"urls": ["file:///etc/passwd"]}), 422, "validation_error")
        _is_error(c.post("/v1/assets", json={"objectKey": "other-ws/x.png"}), 422, "validation_error")
        # A valid upload while Temporal is down: 503, and nothing stored or listed.
        ok = {"filename": "a.png", "contentBase64": base64.b64encode(b"x" * 10).decode()}
        _is_error(c.post("/v1/assets/upload", json=ok), 503, "temporal_unavailable")
        assert c.get("/v1/assets").json()["total"] == 0
        assert c.get("/health").json()["details"]["maxAssetBytes"] == 1000
    assert not [p for p in (tmp_path / "storage").rglob("*") if p.is_file()]
