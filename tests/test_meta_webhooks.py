"""Meta's deauthorize and data-deletion callbacks over real HTTP: the signed_request signature is
verified (a bad one changes nothing), deauthorize disconnects the person's Meta accounts, data
deletion also erases what identifies them and answers a status URL and confirmation code."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import httpx
import pytest
from sqlmodel import select

from api.app import create_app
from herald.crypto import CredentialCipher
from herald.ids import new_id
from herald.settings import Settings
from store import keys as key_store
from store.db import Database
from store.migrate import upgrade
from store.models import Account, DataDeletionRequest
from tests.support import free_port, serve_in_thread

SECRETS = ("facebook-app-secret", "threads-app-secret")
KEY = "test-secret-key"


def signed(payload: dict, secret: str = SECRETS[0]) -> str:
    body = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()
    sig = hmac.new(secret.encode(), body.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(sig).rstrip(b"=").decode() + "." + body


def request_for(user_id: str, secret: str = SECRETS[0], **extra) -> dict:  # noqa: ANN003
    return {"signed_request": signed({"algorithm": "HMAC-SHA256", "user_id": user_id, "issued_at": 1_800_000_000,
                                      **extra}, secret)}


@pytest.fixture
def app(tmp_path):  # noqa: ANN001, ANN201
    settings = Settings(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'h.db'}", secret_key=KEY,
                        temporal_address=f"127.0.0.1:{free_port()}", meta_app_secret=",".join(SECRETS))
    upgrade(settings.db_url)
    db = Database(settings.db_url)
    cipher = CredentialCipher(KEY)
    ids = {}
    with db.session() as s:
        a, b = key_store.ensure_workspace(s, "a"), key_store.ensure_workspace(s, "b")
        rows = {
            "fb_page": Account(id=new_id("acct"), workspace_id=a.id, provider="facebook", handle="facebook:page:9",
                               display_name="Jane's Bakery", external_id="9", meta={"metaUserId": "1234"},
                               credentials_encrypted=cipher.encrypt({"page_token": "EAAB-secret"})),
            "ig_other_ws": Account(id=new_id("acct"), workspace_id=b.id, provider="instagram_business",
                                   handle="instagram_business:77", external_id="77", meta={"metaUserId": "1234"},
                                   credentials_encrypted=cipher.encrypt({"token": "IG-secret"})),
            "threads_self": Account(id=new_id("acct"), workspace_id=a.id, provider="threads", handle="threads:1234",
                                    external_id="1234", credentials_encrypted=cipher.encrypt({"token": "TH"})),
            "someone_else": Account(id=new_id("acct"), workspace_id=a.id, provider="facebook", handle="facebook:page:5",
                                    external_id="5", meta={"metaUserId": "999"},
                                    credentials_encrypted=cipher.encrypt({"page_token": "other"})),
            "not_meta": Account(id=new_id("acct"), workspace_id=a.id, provider="telegram", handle="telegram:1234",
                                external_id="1234", credentials_encrypted=cipher.encrypt({"bot_token": "tg"})),
        }
        s.add_all(rows.values())
        s.commit()
        ids = {k: v.id for k, v in rows.items()}
    with serve_in_thread(create_app(settings)) as url:
        yield url, db, ids, cipher
    db.dispose()


def _account(db: Database, account_id: str) -> Account:
    with db.session() as s:
        return s.get(Account, account_id)


def _error(r: httpx.Response, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    assert r.json() == {"ok": False, "code": code, "message": r.json()["message"], "details": r.json()["details"]}


def test_bad_signed_requests_change_nothing(app) -> None:  # noqa: ANN001
    url, db, ids, cipher = app
    forged = request_for("1234", secret="not-the-app-secret")
    wrong_algo = request_for("1234", algorithm="HMAC-MD5")
    tampered = request_for("1234")
    sig, body = tampered["signed_request"].split(".")
    other = base64.urlsafe_b64encode(json.dumps({"algorithm": "HMAC-SHA256", "user_id": "5"}).encode()).rstrip(b"=").decode()
    for path in ("/webhooks/meta/deauthorize", "/webhooks/meta/data-deletion"):
        for data in (forged, wrong_algo, {"signed_request": f"{sig}.{other}"}, {"signed_request": "garbage"},
                     {"signed_request": "a.b.c"}, {}):
            _error(httpx.post(url + path, data=data), 400, "invalid_signed_request")
    assert _account(db, ids["fb_page"]).status == "connected"
    assert cipher.decrypt(_account(db, ids["fb_page"]).credentials_encrypted) == {"page_token": "EAAB-secret"}
    with db.session() as s:
        assert s.exec(select(DataDeletionRequest)).all() == []


def test_deauthorize_disconnects_the_persons_meta_accounts(app) -> None:  # noqa: ANN001
    url, db, ids, cipher = app
    # Signed with the second configured secret (the Threads app).
    r = httpx.post(f"{url}/webhooks/meta/deauthorize", data=request_for("1234", secret=SECRETS[1]))
    assert r.status_code == 200 and r.json() == {"ok": True, "disconnected": 3}
    for name in ("fb_page", "ig_other_ws", "threads_self"):
        account = _account(db, ids[name])
        assert account.status == "disconnected" and cipher.decrypt(account.credentials_encrypted) == {}
    assert _account(db, ids["fb_page"]).display_name == "Jane's Bakery"  # deauthorize keeps the record
    for name in ("someone_else", "not_meta"):
        assert _account(db, ids[name]).status == "connected"


def test_data_deletion_erases_and_answers_a_status_page(app) -> None:  # noqa: ANN001
    url, db, ids, cipher = app
    r = httpx.post(f"{url}/webhooks/meta/data-deletion", data=request_for("1234"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"url", "confirmation_code"} and body["url"].endswith(f"/data-deletion/{body['confirmation_code']}")
    page = httpx.get(body["url"].replace("http://127.0.0.1:8000", url))
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "completed" in page.text and "3 connected account(s)" in page.text
    status = httpx.get(f"{url}/webhooks/meta/data-deletion/{body['confirmation_code']}",
                       headers={"Accept": "application/json"}).json()
    assert status["status"] == "completed" and status["accounts"] == 3
    page = _account(db, ids["fb_page"])
    assert (page.status, page.display_name, page.external_id, page.meta) == ("disconnected", None, None, {"forgotten": True})
    # The handle named the page ("facebook:page:9"); now it names only the row.
    assert page.handle == f"facebook:forgotten-{ids['fb_page']}" and cipher.decrypt(page.credentials_encrypted) == {}
    other = _account(db, ids["someone_else"])
    assert (other.status, other.external_id, other.meta) == ("connected", "5", {"metaUserId": "999"})
    assert _account(db, ids["not_meta"]).external_id == "1234"
    with db.session() as s:
        row = s.get(DataDeletionRequest, body["confirmation_code"])
        assert row.user_id_hash != "1234" and "1234" not in row.user_id_hash
    _error(httpx.get(f"{url}/webhooks/meta/data-deletion/del_nope"), 404, "not_found")


def test_unconfigured_callbacks_say_so(tmp_path) -> None:
    settings = Settings(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'h.db'}", secret_key=KEY,
                        temporal_address=f"127.0.0.1:{free_port()}")
    upgrade(settings.db_url)
    with serve_in_thread(create_app(settings)) as url:
        _error(httpx.post(f"{url}/webhooks/meta/deauthorize", data=request_for("1")), 400, "not_configured")
