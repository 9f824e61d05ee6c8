"""OAuth connections through the real API and the sandbox's LinkedIn over HTTP: start, consent,
callback, accounts; a state that is forged, replayed, expired or denied; reconnecting in place;
tokens refreshed ahead of expiry and after refusal; needs_reauth; an unconfigured network."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timezone
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from api import oauth_flow
from api.app import create_app
from herald.account_tokens import TokenKeeper
from herald.crypto import CredentialCipher
from herald.settings import Settings
from providers.base import AccountIdentity, AuthExpired
from providers.linkedin import LinkedInPageAdapter
from sandbox.test_users import LINKEDIN_MEMBER, LINKEDIN_ORGS
from store import keys as key_store
from store.db import Database
from store.migrate import upgrade
from store.models import Account, Connection
from tests.support import free_port, serve_in_thread

SECRET = "oauth-flow-test-secret-0123456789abcdef"


@pytest.fixture(scope="module")
def api(tmp_path_factory, sandbox_url):
    tmp = tmp_path_factory.mktemp("oauth")
    port = free_port()
    settings = Settings(data_dir=tmp, database_url=f"sqlite:///{tmp / 'h.db'}", secret_key=SECRET,
                        sandbox_url=sandbox_url, public_base_url=f"http://127.0.0.1:{port}",
                        temporal_address=f"127.0.0.1:{free_port()}", rate_limits_enabled=False)
    upgrade(settings.db_url)
    db = Database(settings.db_url)
    with db.session() as s:
        ws = key_store.ensure_workspace(s, "oauth")
        _, secret = key_store.create_key(s, ws.id, "k")
        s.commit()
        ws_id = ws.id
    with serve_in_thread(create_app(settings), port) as url:
        client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {secret}"}, timeout=30)
        yield client, settings, db, ws_id
        client.close()
    db.dispose()


@pytest.fixture(autouse=True)
def _fresh(clean_sandbox):
    """Each test starts from an empty sandbox (no tokens, no switches)."""


def _consent(authorize_url: str) -> str:
    """The browser at the network: the sandbox approves at once and redirects back."""
    r = httpx.get(authorize_url, follow_redirects=False, timeout=10)
    assert r.status_code == 302, r.text
    return r.headers["location"]


def _connect(client: httpx.Client, provider: str = "linkedin_page") -> httpx.Response:
    started = client.post("/v1/connections/start", json={"provider": provider})
    assert started.status_code == 201, started.text
    callback = _consent(started.json()["connection"]["authorizeUrl"])
    return httpx.get(callback, timeout=30)


def test_start_gives_a_signed_state_and_the_documented_consent_request(api, sandbox_url) -> None:
    client, settings, _, _ = api
    r = client.post("/v1/connections/start", json={"provider": "linkedin_page"})
    assert r.status_code == 201
    conn = r.json()["connection"]
    assert conn["status"] == "pending" and conn["provider"] == "linkedin_page" and conn["expiresAt"]
    url = urlsplit(conn["authorizeUrl"])
    assert f"{url.scheme}://{url.netloc}{url.path}" == f"{sandbox_url}/linkedin/www/oauth/v2/authorization"
    q = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert q["redirect_uri"] == f"{settings.api_base}/oauth/linkedin_page/callback"
    assert q["client_id"] == "herald-sandbox-linkedin" and q["response_type"] == "code"
    assert "w_organization_social" in q["scope"].split(" ")
    conn_id, exp, sig = q["state"].split(".")
    assert conn_id == conn["id"] and int(exp) > time.time() + 500 and len(sig) >= 30


def test_callback_connects_every_administered_organization_and_shows_no_token(api) -> None:
    client, _, db, _ = api
    r = _connect(client)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["connection"]["status"] == "connected"
    handles = sorted(a["handle"] for a in body["accounts"])
    assert handles == sorted(f"linkedin_page:{o['id']}" for o in LINKEDIN_ORGS)
    assert body["connection"]["accountIds"] == [a["id"] for a in body["accounts"]]
    with db.session() as s:
        account = s.get(Account, body["accounts"][0]["id"])
        creds = CredentialCipher(SECRET).decrypt(account.credentials_encrypted)
        conn = s.get(Connection, body["connection"]["id"])
        assert "verifier" not in CredentialCipher(SECRET).decrypt(conn.oauth_secret_encrypted)  # gone once used
    assert creds["access_token"] and creds["access_token"] not in r.text
    assert creds["refresh_token"] not in r.text
    listed = client.get("/v1/accounts", params={"provider": "linkedin_page"}).text
    assert creds["access_token"] not in listed and body["accounts"][0]["tokenExpiresAt"]


def test_a_state_works_once_and_a_forged_one_never(api) -> None:
    client, _, _, _ = api
    started = client.post("/v1/connections/start", json={"provider": "linkedin"}).json()["connection"]
    callback = _consent(started["authorizeUrl"])
    parts = urlsplit(callback)
    q = {k: v[0] for k, v in parse_qs(parts.query).items()}
    conn_id, exp, sig = q["state"].split(".")
    forged = httpx.get(f"{parts.scheme}://{parts.netloc}{parts.path}",
                       params={"code": q["code"], "state": f"{conn_id}.{int(exp) + 3600}.{sig}"})
    assert forged.status_code == 400 and forged.json()["code"] == "oauth_state_invalid"
    assert client.get(f"/v1/connections/{conn_id}").json()["connection"]["status"] == "pending"
    first = httpx.get(callback, timeout=30)
    assert first.status_code == 200 and first.json()["accounts"][0]["handle"] == f"linkedin:{LINKEDIN_MEMBER['sub']}"
    again = httpx.get(callback, timeout=30)
    assert again.status_code == 409 and again.json()["code"] == "oauth_state_used"
    assert client.get(f"/v1/connections/{conn_id}").json()["connection"]["status"] == "connected"
    garbage = httpx.get(f"{parts.scheme}://{parts.netloc}{parts.path}", params={"code": "c", "state": "nonsense"})
    assert garbage.status_code == 400 and set(garbage.json()) == {"ok", "code", "message", "details"}


def test_denied_consent_fails_the_connection_readably(api, sandbox_url) -> None:
    client, _, _, _ = api
    httpx.post(f"{sandbox_url}/_sandbox/oauth", json={"network": "linkedin", "action": "deny_next"}).raise_for_status()
    r = _connect(client, "linkedin")
    assert r.status_code == 400 and r.json()["code"] == "oauth_denied"
    conn = client.get(f"/v1/connections/{r.json()['details']['connectionId']}").json()["connection"]
    assert conn["status"] == "failed" and "consent was not given" in conn["error"]


def test_an_expired_state_fails_the_connection(api) -> None:
    client, settings, db, ws_id = api
    with db.session() as s:
        adapter = LinkedInPageAdapter(httpx.AsyncClient(), settings.provider_base("linkedin_page"))
        conn = oauth_flow.start(s, settings.model_copy(update={"oauth_state_ttl_seconds": -5}), ws_id, adapter, {})
        s.commit()
        url = conn.authorize_url
    time.sleep(0.01)
    r = httpx.get(_consent(url), timeout=30)
    assert r.status_code == 400 and r.json()["code"] == "oauth_state_expired"
    assert client.get(f"/v1/connections/{r.json()['details']['connectionId']}").json()["connection"]["status"] == "failed"


def test_bad_start_requests_are_clear_400s(api) -> None:
    client, _, _, _ = api
    for body, code in (({"provider": "linkedin", "callbackScheme": "javascript"}, "invalid_request"),
                       ({"provider": "linkedin", "client": "a client hint with spaces"}, "invalid_request"),
                       ({"provider": "myspace"}, "provider_not_supported")):
        r = client.post("/v1/connections/start", json=body)
        assert r.status_code == 400 and r.json()["code"] == code, (body, r.text)
    assert client.post("/v1/connections/start", json={"provider": "linkedin", "client": "ios"}).status_code == 201


def test_reconnecting_updates_in_place_and_keeps_a_refresh_token_not_replaced(api) -> None:
    client, settings, db, ws_id = api
    first = _connect(client).json()["accounts"][0]
    second = _connect(client).json()["accounts"][0]
    assert second["id"] == first["id"]  # posts keep pointing at the same account
    cipher = CredentialCipher(SECRET)
    with db.write_session() as s:
        before = cipher.decrypt(s.get(Account, first["id"]).credentials_encrypted)
        identity = AccountIdentity(handle=first["handle"], external_id=first["externalId"],
                                   credentials={"access_token": "new-access", "expires_at": time.time() + 3600})
        oauth_flow.upsert_account(s, cipher, ws_id, "linkedin_page", identity, None, datetime.now(timezone.utc))
        s.commit()
        after = cipher.decrypt(s.get(Account, first["id"]).credentials_encrypted)
    assert after["access_token"] == "new-access" and after["refresh_token"] == before["refresh_token"]


async def test_token_keeper_refreshes_ahead_and_marks_needs_reauth_when_refused(api, sandbox_url) -> None:
    client, settings, db, _ = api
    account_id = _connect(client).json()["accounts"][0]["id"]
    cipher = CredentialCipher(SECRET)
    with db.write_session() as s:  # pretend the token ends in a minute
        a = s.get(Account, account_id)
        creds = cipher.decrypt(a.credentials_encrypted)
        creds["expires_at"] = time.time() + 60
        a.credentials_encrypted = cipher.encrypt(creds)
        a.token_expires_at = datetime.fromtimestamp(creds["expires_at"], tz=timezone.utc)
        s.add(a)
        s.commit()
    async with httpx.AsyncClient(timeout=10) as http:
        keeper = TokenKeeper(settings, db, http)
        counts = await keeper.refresh_expiring(within_seconds=600)
        assert counts == {"refreshed": 1, "failed": 0, "unchanged": 0}
        with db.session() as s:
            a = s.get(Account, account_id)
            fresh = cipher.decrypt(a.credentials_encrypted)
        assert fresh["access_token"] != creds["access_token"] and fresh["expires_at"] > time.time() + 86_400
        assert a.token_expires_at > datetime.now(timezone.utc)
        # Two refreshes racing in one process: the second sees the first's result.
        stale = a.credentials_encrypted
        results = await asyncio.gather(keeper.refresh(account_id, stale=stale), keeper.refresh(account_id, stale=stale))
        assert sorted(r.refreshed for r in results) == [False, True]
        # The network refuses: the account needs re-auth, with a reason and no token in it.
        httpx.post(f"{sandbox_url}/_sandbox/oauth", json={"network": "linkedin", "action": "fail_refresh"}).raise_for_status()
        with db.session() as s:
            stale = s.get(Account, account_id).credentials_encrypted
        with pytest.raises(AuthExpired):
            await keeper.refresh(account_id, stale=stale)
    got = client.get("/v1/accounts", params={"provider": "linkedin_page"}).json()["accounts"]
    mine = next(a for a in got if a["id"] == account_id)
    assert mine["status"] == "needs_reauth" and "refresh refused" in mine["statusReason"]
    caps = client.get(f"/v1/accounts/{account_id}/capabilities").json()["capabilities"][0]
    assert caps["canPublish"] is False and "needs_reauth" in caps["reason"]


def test_connections_health_checks_each_token_with_its_network(api, sandbox_url) -> None:
    client, _, _, _ = api
    account_id = _connect(client).json()["accounts"][0]["id"]
    health = client.get("/v1/connections/health", params={"provider": "linkedin_page"}).json()["health"]
    entry = next(a for a in health["accounts"] if a["id"] == account_id)
    assert entry["tokenOk"] is True and entry["status"] == "connected"
    # Every token and refresh token revoked at the network: the check fails, the refresh too.
    httpx.post(f"{sandbox_url}/_sandbox/oauth", json={"network": "linkedin", "action": "revoke"}).raise_for_status()
    health = client.get("/v1/connections/health", params={"provider": "linkedin_page"}).json()["health"]
    entry = next(a for a in health["accounts"] if a["id"] == account_id)
    assert entry["tokenOk"] is False and entry["status"] == "needs_reauth"
    assert health["failingAccounts"] >= 1


def test_discovery_actions_are_listed_and_run(api) -> None:
    client, _, _, _ = api
    account_id = _connect(client).json()["accounts"][0]["id"]
    actions = client.get(f"/v1/accounts/{account_id}/actions").json()["actions"]
    assert [a["id"] for a in actions] == ["sync_organizations"]
    r = client.post(f"/v1/accounts/{account_id}/actions/sync_organizations", json={})
    assert r.status_code == 200 and r.json()["ok"] is True, r.text
    # The sync stored what it found: the same account, updated in place, no token shown.
    synced = r.json()["result"]["accounts"]
    assert [a["id"] for a in synced] == [account_id] and "access_token" not in r.text
    unknown = client.post(f"/v1/accounts/{account_id}/actions/sync_boards", json={})
    assert unknown.status_code == 404 and unknown.json()["details"]["actions"] == ["sync_organizations"]


def test_an_unconfigured_network_is_a_clear_400_and_cannot_publish(tmp_path) -> None:
    settings = Settings(env="production", data_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'p.db'}",
                        secret_key="p" * 40, temporal_address=f"127.0.0.1:{free_port()}", rate_limits_enabled=False)
    upgrade(settings.db_url)
    db = Database(settings.db_url)
    with db.session() as s:
        ws = key_store.ensure_workspace(s, "prod")
        _, secret = key_store.create_key(s, ws.id, "k")
        s.commit()
    with serve_in_thread(create_app(settings)) as url:
        r = httpx.post(f"{url}/v1/connections/start", json={"provider": "linkedin"},
                       headers={"Authorization": f"Bearer {secret}"})
    db.dispose()
    assert r.status_code == 400 and r.json()["code"] == "provider_not_configured"
    assert r.json()["details"]["settings"] == ["HERALD_LINKEDIN_CLIENT_ID", "HERALD_LINKEDIN_CLIENT_SECRET"]
    from providers.capabilities import capability

    cap = capability("linkedin", settings=settings)
    assert cap["canPublish"] is False and "HERALD_LINKEDIN_CLIENT_ID" in cap["reason"]


def test_a_mobile_callback_scheme_gets_the_outcome_by_redirect(api) -> None:
    client, _, _, _ = api
    started = client.post("/v1/connections/start", json={"provider": "linkedin", "callbackScheme": "heraldapp"})
    assert started.status_code == 201, started.text
    done = httpx.get(_consent(started.json()["connection"]["authorizeUrl"]), follow_redirects=False, timeout=30)
    assert done.status_code == 303
    target = urlsplit(done.headers["location"])
    q = {k: v[0] for k, v in parse_qs(target.query).items()}
    assert (target.scheme, target.netloc, target.path) == ("heraldapp", "oauth", "/callback")
    assert q == {"status": "connected", "connectionId": started.json()["connection"]["id"], "provider": "linkedin"}


def test_a_failed_code_exchange_fails_the_connection(api) -> None:
    client, _, _, _ = api
    started = client.post("/v1/connections/start", json={"provider": "linkedin"}).json()["connection"]
    callback = urlsplit(_consent(started["authorizeUrl"]))
    q = {k: v[0] for k, v in parse_qs(callback.query).items()}
    r = httpx.get(f"{callback.scheme}://{callback.netloc}{callback.path}",
                  params={"code": "not-the-code-we-were-given", "state": q["state"]}, timeout=30)
    assert r.status_code == 400 and r.json()["code"] == "oauth_exchange_failed", r.text
    conn = client.get(f"/v1/connections/{started['id']}").json()["connection"]
    assert conn["status"] == "failed" and "refused the authorization" in conn["error"]
    assert "not-the-code" not in r.text


def test_each_network_gets_its_own_connection_pool_in_the_publisher(tmp_path) -> None:
    from activities.publishing import PublishActivities

    settings = Settings(data_dir=tmp_path, secret_key=SECRET)
    made: list[httpx.AsyncClient] = []

    def factory() -> httpx.AsyncClient:
        made.append(httpx.AsyncClient())
        return made[-1]

    acts = PublishActivities(settings, None, httpx.AsyncClient(), CredentialCipher(SECRET), client_factory=factory)  # type: ignore[arg-type]
    x1, x2, li = acts._adapter("x"), acts._adapter("x"), acts._adapter("linkedin")
    assert x1.http is x2.http and x1.http is not li.http and len(made) == 2
