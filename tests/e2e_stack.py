"""The end-to-end stack shared by the e2e test modules: one `herald dev` per test session (a
real Temporal dev server, workers, API and sandbox in their own processes), a local media server,
and helpers that drive it through the public API and the sandbox's inspection routes. The
fixtures are registered in conftest.py."""

from __future__ import annotations

import hashlib
import http.server
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest

from herald.dev import DevError, background_stack
from tests.support import DISCORD_WEBHOOK, TELEGRAM_TOKEN, wait_for


@dataclass
class Stack:
    api: str
    sandbox: str
    key: str
    data_dir: Path
    env: dict
    media: str

    def client(self, key: str | None = None) -> httpx.Client:
        return httpx.Client(base_url=self.api, headers={"Authorization": f"Bearer {key or self.key}"}, timeout=60)


def _media_server(root: Path):  # noqa: ANN202
    handler = lambda *a, **kw: http.server.SimpleHTTPRequestHandler(*a, directory=str(root), **kw)  # noqa: E731
    http.server.SimpleHTTPRequestHandler.log_message = lambda *a, **kw: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture(scope="session")
def stack(tmp_path_factory) -> Stack:
    root = tmp_path_factory.mktemp("stack")
    media_root = root / "media-src"
    media_root.mkdir()
    _write_media(media_root)
    media = _media_server(media_root)
    # The tests poll and apply far more than a person would: lift the per-key rate limits
    # (tests/test_api_guards.py checks them).
    extra = {"HERALD_ALLOW_PRIVATE_NETWORKS": "true", "HERALD_PUBLISH_LEAD_SECONDS": "5",
             "HERALD_RATE_LIMIT_READS": "100000/hour", "HERALD_RATE_LIMIT_PUBLISHING": "100000/hour",
             "HERALD_RATE_LIMIT_AUTH": "10000/minute", "HERALD_RATE_LIMIT_MEDIA": "100000/hour"}
    try:
        with background_stack(root, extra) as s:
            yield Stack(api=s.api, sandbox=s.sandbox, key=s.key, data_dir=s.data_dir, env=s.env,
                        media=f"http://127.0.0.1:{media.server_address[1]}")
    except DevError as exc:
        pytest.fail(str(exc))
    finally:
        media.shutdown()


def _write_media(root: Path) -> None:
    from PIL import Image

    for i, colour in enumerate(("red", "green", "blue")):
        Image.new("RGB", (64, 48), colour).save(root / f"pic{i}.png")


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def at(seconds: float) -> str:
    return (datetime.now(timezone.utc) + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def utc(value: str) -> datetime:
    """An API or sandbox timestamp ("...Z") as an aware datetime."""
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


@pytest.fixture
def api(stack: Stack) -> httpx.Client:
    httpx.delete(f"{stack.sandbox}/_sandbox").raise_for_status()
    with stack.client() as c:
        yield c


@pytest.fixture
def telegram(api: httpx.Client) -> dict:
    r = api.post("/v1/connections/start", json={"provider": "telegram", "botToken": TELEGRAM_TOKEN, "chatId": "@herald_e2e"})
    assert r.status_code == 201, r.text
    return r.json()["connection"]["account"]


@pytest.fixture
def discord(api: httpx.Client) -> dict:
    r = api.post("/v1/connections/start", json={"provider": "discord", "webhookUrl": DISCORD_WEBHOOK})
    assert r.status_code == 201, r.text
    return r.json()["connection"]["account"]


def deliveries(stack: Stack, provider: str | None = None) -> list[dict]:
    return httpx.get(f"{stack.sandbox}/_sandbox/deliveries", params={"provider": provider} if provider else None).json()["deliveries"]


def wait_post(api: httpx.Client, post_id: str, statuses: tuple[str, ...], timeout: float = 60) -> dict:
    def done():  # noqa: ANN202
        post = api.get(f"/v1/posts/{post_id}").json()["post"]
        return post if post["status"] in statuses else None
    return wait_for(done, timeout=timeout, interval=0.25, what=f"post {post_id} to reach {statuses}")


def assert_error(r: httpx.Response, status: int, code: str | None = None) -> dict:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["ok"] is False and set(body) == {"ok", "code", "message", "details"}, body
    assert isinstance(body["message"], str) and body["message"]
    if code:
        assert body["code"] == code, body
    return body
