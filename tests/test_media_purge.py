"""Deleting assets: blobs are purged once the retention window ends, never while a post that is
not done yet uses the asset; abandoned multipart uploads go too. Both databases."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from activities.media import purge_due_assets
from herald import assets as a
from herald.crypto import CredentialCipher
from herald.ids import new_id
from herald.settings import Settings
from store import keys as key_store
from store.db import Database
from store.migrate import upgrade
from store.models import Account, Asset, Post, PostAsset, Run

TABLES = ("post_assets", "asset_renditions", "media_tasks", "assets", "jobs", "post_attempts", "posts", "runs",
          "accounts", "connections", "api_keys", "workspaces")


@pytest.fixture(params=["sqlite", "postgres"])
def env(request, tmp_path):  # noqa: ANN001, ANN201
    url = f"sqlite:///{tmp_path / 'store.db'}" if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    upgrade(url)
    db = Database(url)
    settings = Settings(data_dir=tmp_path, database_url=url)
    yield settings, db
    if request.param == "postgres":
        with db.engine.begin() as conn:
            for table in TABLES:
                conn.execute(sa.text(f"DELETE FROM {table}"))
    db.dispose()


def _asset(settings: Settings, db: Database, ws_id: str, purge_at: datetime | None, status: str = "pending_delete") -> Asset:
    asset = Asset(id=new_id("asset"), workspace_id=ws_id, storage="local", delivery_token=a.new_delivery_token(),
                  status=status, purge_at=purge_at, mime="image/png", kind="image", size=3)
    asset.object_key = a.original_key(ws_id, asset.id, "png")
    storage = a.storage_for(settings)
    storage.put_bytes(asset.object_key, b"png", "image/png")
    storage.put_bytes(a.preview_key(ws_id, asset.id, "thumbnail.jpg"), b"jpg", "image/jpeg")
    with db.session() as s:
        s.add(asset)
        s.commit()
        s.refresh(asset)
        s.expunge(asset)
    return asset


def _stored(settings: Settings, asset: Asset) -> bool:
    return a.storage_for(settings).stat(asset.object_key) is not None


def test_purge_respects_retention_and_posts_in_use(env) -> None:  # noqa: ANN001
    settings, db = env
    now = datetime.now(timezone.utc)
    with db.session() as s:
        ws = key_store.ensure_workspace(s, "acme")
        s.commit()
        account = Account(id=new_id("acct"), workspace_id=ws.id, provider="telegram", handle="telegram:1",
                          credentials_encrypted=CredentialCipher("k").encrypt({"x": 1}))
        run = Run(id=new_id("run"), workspace_id=ws.id, status="running", mode="scheduled")
        s.add_all([account, run])
        s.commit()
        ws_id, account_id, run_id = ws.id, account.id, run.id
    due = _asset(settings, db, ws_id, now - timedelta(seconds=1))
    later = _asset(settings, db, ws_id, now + timedelta(days=7))
    in_use = _asset(settings, db, ws_id, now - timedelta(days=1))
    ready = _asset(settings, db, ws_id, None, status="ready")
    with db.session() as s:
        post = Post(id=new_id("post"), workspace_id=ws_id, run_id=run_id, account_id=account_id,
                    account_handle="telegram:1", provider="telegram", status="scheduled", publish_at=now)
        s.add(post)
        s.flush()
        s.add(PostAsset(post_id=post.id, asset_id=in_use.id, workspace_id=ws_id))
        s.commit()
        post_id = post.id

    result = purge_due_assets(settings, db, now)
    assert (result.purged, result.kept_in_use) == (1, 1)
    assert not _stored(settings, due) and _stored(settings, later) and _stored(settings, in_use) and _stored(settings, ready)
    assert list(a.storage_for(settings).root.rglob(f"*{due.id}*")) == []  # previews too
    with db.session() as s:
        row = s.get(Asset, due.id)
        assert (row.status, row.object_key) == ("deleted", None) and row.deleted_at is not None
        assert s.get(Asset, in_use.id).status == "pending_delete"

    # Once the post is done the asset goes at the next pass; a second pass changes nothing.
    with db.session() as s:
        p = s.get(Post, post_id)
        p.status = "published"
        s.add(p)
        s.commit()
    assert purge_due_assets(settings, db, now).purged == 1 and not _stored(settings, in_use)
    assert purge_due_assets(settings, db, now).purged == 0
