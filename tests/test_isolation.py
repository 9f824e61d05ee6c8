"""Tenant isolation, table-driven over the API's own route table (its OpenAPI document): every
route that takes an id answers 404 in the documented shape for another workspace's id and changes
nothing, and no list shows another workspace's rows. A new route with a new kind of id fails
here until the table below knows how to make one."""

from __future__ import annotations

import re
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
from store.models import Account, ApiKey, Asset, Connection, MediaTask, Post, Run
from tests.support import free_port, serve_in_thread


@pytest.fixture(scope="module")
def two_workspaces(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("isolation")
    settings = Settings(data_dir=tmp, database_url=f"sqlite:///{tmp / 'h.db'}", secret_key="s",
                        temporal_address=f"127.0.0.1:{free_port()}", rate_limits_enabled=False)
    upgrade(settings.db_url)
    db = Database(settings.db_url)
    ids: dict[str, str] = {}
    with db.session() as s:
        a = key_store.ensure_workspace(s, "alpha")
        b = key_store.ensure_workspace(s, "bravo")
        key_a, secret_a = key_store.create_key(s, a.id, "a")
        _, secret_b = key_store.create_key(s, b.id, "b")
        account = Account(id=new_id("acct"), workspace_id=a.id, provider="discord", handle="discord:4242",
                          credentials_encrypted=CredentialCipher("s").encrypt({"webhook_id": "4242", "webhook_token": "t"}))
        connection = Connection(id=new_id("conn"), workspace_id=a.id, provider="discord", status="connected",
                                account_id=account.id)
        run = Run(id=new_id("run"), workspace_id=a.id, status="draft", mode="draft", total_posts=1)
        s.add_all([account, connection, run])
        s.flush()
        post = Post(id=new_id("post"), workspace_id=a.id, run_id=run.id, account_id=account.id,
                    account_handle=account.handle, provider="discord", description="alpha's secret plan",
                    publish_at=datetime.now(timezone.utc) + timedelta(days=1), status="draft",
                    requires_approval=True, review_state="pending")
        # An asset mid-way through a multipart upload: every asset route (detail, delete, the
        # multipart calls) must refuse it to another workspace.
        asset = Asset(id=new_id("asset"), workspace_id=a.id, storage="local", delivery_token="dlv_alpha",
                      status="uploading", object_key=f"{a.id}/x/original.png", original_filename="alpha.png",
                      upload={"uploadId": "up-alpha", "partSize": 8 << 20, "totalParts": 1, "size": 10})
        task = MediaTask(id=new_id("task"), workspace_id=a.id, items=[{"url": "https://e.com/a.png", "assetId": asset.id}])
        s.add_all([post, asset, task])
        s.commit()
        ids = {"key_id": key_a.id, "account_id": account.id, "connection_id": connection.id, "run_id": run.id,
               "post_id": post.id, "handle": account.handle, "asset_id": asset.id, "task_id": task.id,
               "action_id": "sync_pages"}
    with serve_in_thread(create_app(settings)) as url:
        yield url, secret_a, secret_b, ids, db
    db.dispose()


# Routes whose body has required fields: a well-formed body, so the answer is about the id (a
# malformed one gets 422 before any lookup, which reveals nothing either).
BODIES = {
    "/v1/assets/upload/{asset_id}/part": {"uploadId": "up-alpha", "partNumber": 1},
    "/v1/assets/upload/{asset_id}/complete": {"uploadId": "up-alpha", "parts": [{"ETag": '"x"', "PartNumber": 1}]},
    "/v1/assets/upload/{asset_id}/abort": {"uploadId": "up-alpha"},
}


def _routes(url: str) -> list[tuple[str, str]]:
    schema = httpx.get(f"{url}/openapi.json").json()
    return [(method.upper(), path) for path, ops in schema["paths"].items() for method in ops]


def test_every_route_with_an_id_is_404_for_another_workspace(two_workspaces) -> None:
    url, _, secret_b, ids, db = two_workspaces
    checked = 0
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {secret_b}"}, timeout=30) as rival:
        for method, path in _routes(url):
            params = re.findall(r"{(\w+)}", path)
            if not params or not path.startswith("/v1/"):
                # Outside /v1 are capability URLs with no API key at all (delivery URLs, signed
                # part uploads): their secret is a token in the URL, checked in their own tests.
                continue
            missing = [p for p in params if p not in ids]
            assert not missing, f"{method} {path}: teach this test to make a {missing} of workspace alpha"
            body = BODIES.get(path.replace("/v1/dashboard/assets/", "/v1/assets/"),
                              {} if method in ("POST", "PATCH", "PUT") else None)
            r = rival.request(method, path.format(**ids), json=body)
            assert r.status_code == 404, (method, path, r.status_code, r.text)
            err = r.json()
            assert set(err) == {"ok", "code", "message", "details"} and err["code"] == "not_found", (method, path, err)
            assert "alpha's secret plan" not in r.text
            checked += 1
    assert checked >= 20  # the table really was walked
    with db.session() as s:  # and nothing of alpha's changed
        post = s.get(Post, ids["post_id"])
        assert (post.status, post.description, post.review_state) == ("draft", "alpha's secret plan", "pending")
        assert s.get(ApiKey, ids["key_id"]).revoked_at is None
        assert s.get(Account, ids["account_id"]).status == "connected"
        assert s.get(Run, ids["run_id"]).mode == "draft"
        asset = s.get(Asset, ids["asset_id"])
        assert (asset.status, asset.upload["uploadId"], asset.purge_at) == ("uploading", "up-alpha", None)


def test_no_list_shows_another_workspaces_rows(two_workspaces) -> None:
    url, secret_a, secret_b, ids, _ = two_workspaces
    secrets = [str(v) for k, v in ids.items()]
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {secret_b}"}, timeout=30) as rival, \
         httpx.Client(base_url=url, headers={"Authorization": f"Bearer {secret_a}"}, timeout=30) as owner:
        lists = [path for method, path in _routes(url) if method == "GET" and "{" not in path and path != "/health"]
        assert "/v1/posts" in lists and "/v1/accounts" in lists
        for path in lists:
            theirs = rival.get(path)
            assert theirs.status_code == 200, (path, theirs.text)
            leaked = [v for v in secrets if v in theirs.text]
            assert not leaked, (path, leaked)
        # The owner does see them (the check above would pass on an empty list otherwise).
        assert ids["post_id"] in owner.get("/v1/posts").text
        assert ids["account_id"] in owner.get("/v1/accounts").text
        assert ids["connection_id"] in owner.get("/v1/connections").text
        assert ids["asset_id"] in owner.get("/v1/assets", params={"status": "uploading"}).text
        assert ids["asset_id"] not in rival.get("/v1/assets", params={"status": "uploading"}).text
        # Filters do not reach across either.
        assert rival.get("/v1/posts", params={"runId": ids["run_id"]}).json()["total"] == 0
        assert rival.get("/v1/posts", params={"account": ids["handle"]}).json()["total"] == 0
