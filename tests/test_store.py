"""The store on both databases: migrations, UTC round trips, uniqueness, key hashing, scoping."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from sqlmodel import select

from herald.crypto import CredentialCipher
from herald.ids import new_id
from store import keys as key_store
from store.db import Database
from store.migrate import upgrade
from store.models import Account, Post, Run, Workspace


@pytest.fixture(params=["sqlite", "postgres"])
def db(request, tmp_path) -> Database:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'store.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    upgrade(url)
    upgrade(url)  # idempotent
    database = Database(url)
    yield database
    if request.param == "postgres":
        with database.engine.begin() as conn:
            for table in ("post_assets", "asset_renditions", "media_tasks", "assets", "jobs", "post_attempts", "posts", "runs",
                          "accounts", "connections", "api_keys", "workspaces"):
                conn.execute(sa.text(f"DELETE FROM {table}"))
    database.dispose()


def _workspace(s, name: str = "acme") -> Workspace:  # noqa: ANN001
    ws = key_store.ensure_workspace(s, name)
    s.commit()
    return ws


def _account(s, ws: Workspace, handle: str = "discord:1") -> Account:  # noqa: ANN001
    a = Account(id=new_id("acct"), workspace_id=ws.id, provider="discord", handle=handle,
                credentials_encrypted=CredentialCipher("k").encrypt({"webhook_token": "secret"}))
    s.add(a)
    s.commit()
    return a


def test_migrations_create_every_table(db: Database) -> None:
    names = set(sa.inspect(db.engine).get_table_names())
    assert {"workspaces", "api_keys", "connections", "accounts", "runs", "posts", "post_attempts", "jobs",
            "alembic_version"} <= names


def test_times_round_trip_as_aware_utc(db: Database) -> None:
    paris = timezone(timedelta(hours=2))
    with db.session() as s:
        ws = _workspace(s)
        acct = _account(s, ws)
        run = Run(id=new_id("run"), workspace_id=ws.id)
        s.add(run)
        s.flush()
        post = Post(id=new_id("post"), workspace_id=ws.id, run_id=run.id, account_id=acct.id,
                    account_handle=acct.handle, provider="discord",
                    publish_at=datetime(2026, 6, 1, 20, 0, tzinfo=paris), media=[{"url": "https://x/y.png"}])
        s.add(post)
        s.commit()
        pid = post.id
    with db.session() as s:
        got = s.get(Post, pid)
        assert got.publish_at == datetime(2026, 6, 1, 18, 0, tzinfo=timezone.utc)
        assert got.publish_at.tzinfo is not None
        assert got.media == [{"url": "https://x/y.png"}]


def test_naive_datetimes_are_refused(db: Database) -> None:
    with db.session() as s:
        ws = _workspace(s)
        run = Run(id=new_id("run"), workspace_id=ws.id, created_at=datetime(2026, 1, 1))
        s.add(run)
        with pytest.raises(sa.exc.StatementError):
            s.commit()


def test_idempotency_key_is_unique_per_workspace(db: Database) -> None:
    with db.session() as s:
        a, b = _workspace(s, "a"), _workspace(s, "b")
        s.add(Run(id=new_id("run"), workspace_id=a.id, idempotency_key="k1"))
        s.add(Run(id=new_id("run"), workspace_id=b.id, idempotency_key="k1"))  # other workspace: fine
        s.commit()
        s.add(Run(id=new_id("run"), workspace_id=a.id, idempotency_key="k1"))
        with pytest.raises(sa.exc.IntegrityError):
            s.commit()
        s.rollback()
        # Runs without a key never collide.
        s.add(Run(id=new_id("run"), workspace_id=a.id))
        s.add(Run(id=new_id("run"), workspace_id=a.id))
        s.commit()


def test_api_keys_store_only_a_hash(db: Database) -> None:
    with db.session() as s:
        ws = _workspace(s)
        key, secret = key_store.create_key(s, ws.id, "ci")
        s.commit()
        row = s.exec(sa.text("SELECT * FROM api_keys")).mappings().one()
        assert secret not in str(dict(row))
        assert row["secret_hash"] == key_store.hash_secret(secret)
        assert secret.startswith(row["prefix"])
        assert key_store.find_key(s, secret).id == key.id
        assert key_store.find_key(s, secret + "x") is None
        key.revoked_at = datetime.now(timezone.utc)
        s.add(key)
        s.commit()
        assert key_store.find_key(s, secret) is None


def test_bootstrap_key_is_idempotent(db: Database) -> None:
    with db.session() as s:
        k1 = key_store.ensure_bootstrap_key(s, "hk_live_bootstrap_secret_123")
        s.commit()
        k2 = key_store.ensure_bootstrap_key(s, "hk_live_bootstrap_secret_123")
        s.commit()
        assert k1.id == k2.id
        assert len(s.exec(select(Workspace).where(Workspace.name == "default")).all()) == 1


def test_account_handle_unique_per_workspace(db: Database) -> None:
    with db.session() as s:
        ws = _workspace(s)
        _account(s, ws, "discord:9")
        with pytest.raises(sa.exc.IntegrityError):
            _account(s, ws, "discord:9")


def test_credentials_are_encrypted_and_rotatable() -> None:
    old = CredentialCipher("old-secret")
    token = old.encrypt({"bot_token": "123:abc"})
    assert "123:abc" not in token
    rotated = CredentialCipher("new-secret,old-secret")
    assert rotated.decrypt(token) == {"bot_token": "123:abc"}
    with pytest.raises(ValueError) as err:
        CredentialCipher("other").decrypt(token)
    assert token not in str(err.value)
