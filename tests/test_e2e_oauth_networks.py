"""The OAuth networks end to end against `herald dev`: connect through the API and the sandbox's
consent page, publish every shape through /v1/posts/apply (with media prepared by the pipeline
and, for the networks that fetch media, served by Herald's delivery URLs), first comments and
replies, delete from the network, and what the sandbox received."""

from __future__ import annotations

import hashlib
from io import BytesIO

import httpx
import pytest
from PIL import Image

from tests.e2e_stack import Stack, assert_error, at, deliveries, utc, wait_post

pytestmark = pytest.mark.e2e


def connect(api: httpx.Client, provider: str) -> list[dict]:
    started = api.post("/v1/connections/start", json={"provider": provider})
    assert started.status_code == 201, started.text
    consent = httpx.get(started.json()["connection"]["authorizeUrl"], follow_redirects=False, timeout=30)
    assert consent.status_code == 302, consent.text
    done = httpx.get(consent.headers["location"], timeout=60)
    assert done.status_code == 200, done.text
    assert done.json()["connection"]["status"] == "connected"
    return done.json()["accounts"]


def upload_png(api: httpx.Client, size: tuple[int, int], colour: str) -> tuple[str, bytes]:
    """An asset through the API; returns its delivery URL once ready and the bytes."""
    import base64
    import time

    buf = BytesIO()
    Image.new("RGB", size, colour).save(buf, "PNG")
    data = buf.getvalue()
    r = api.post("/v1/assets/upload", json={"filename": f"{colour}.png", "contentBase64": base64.b64encode(data).decode()})
    assert r.status_code == 201, r.text
    asset_id = r.json()["asset"]["id"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        asset = api.get(f"/v1/assets/{asset_id}").json()["asset"]
        if asset["status"] == "ready":
            return asset["publicUrl"], data
        assert asset["status"] == "processing", asset
        time.sleep(0.2)
    raise AssertionError("asset never became ready")


def _apply(api: httpx.Client, posts: list[dict]) -> list[str]:
    r = api.post("/v1/posts/apply", json={"posts": posts})
    assert r.status_code == 201, r.text
    return [p["id"] for p in r.json()["posts"]]


def test_linkedin_page_text_image_first_comment_and_delete(stack: Stack, api: httpx.Client) -> None:
    accounts = connect(api, "linkedin_page")
    handle = accounts[0]["handle"]
    url, data = upload_png(api, (1200, 628), "teal")
    ids = _apply(api, [
        {"account": handle, "text": "Herald on LinkedIn (with a picture)", "publish_at": at(4), "assets": [url],
         "settings": {"firstComment": "The details, in the first comment"}},
        {"account": handle, "text": "Plain text for the page", "publish_at": at(4)},
    ])
    assert len(ids) == 3  # the first comment is a post of its own
    posts = [wait_post(api, pid, ("published", "failed"), timeout=90) for pid in ids]
    assert [p["status"] for p in posts] == ["published"] * 3, posts
    got = {d["text"]: d for d in deliveries(stack, "linkedin_page")}
    assert set(got) == {"Herald on LinkedIn (with a picture)", "Plain text for the page", "The details, in the first comment"}
    image = got["Herald on LinkedIn (with a picture)"]["media"]
    assert [m["sha256"] for m in image] == [hashlib.sha256(data).hexdigest()]
    assert posts[2]["parentPostId"] == ids[0] and posts[2]["interactionType"] == "comment"

    deleted = api.post(f"/v1/posts/{ids[1]}/delete")
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["post"]["status"] == "deleted" and deleted.json()["delete"]["state"] == "deleted"
    assert deleted.json()["post"]["deletedAt"]
    assert_error(api.post(f"/v1/posts/{ids[1]}/delete"), 409, "post_not_deletable")


def test_threads_image_with_a_reply_by_url_and_delete(stack: Stack, api: httpx.Client) -> None:
    handle = connect(api, "threads")[0]["handle"]
    url, data = upload_png(api, (1080, 1350), "orange")
    ids = _apply(api, [
        {"account": handle, "text": "A picture on Threads", "publish_at": at(4), "assets": [url],
         "settings": {"firstComment": "and a reply under it"}},
    ])
    posts = [wait_post(api, pid, ("published", "failed"), timeout=90) for pid in ids]
    assert [p["status"] for p in posts] == ["published", "published"], posts
    got = {d["text"]: d for d in deliveries(stack, "threads")}
    assert set(got) == {"A picture on Threads", "and a reply under it"}
    media = got["A picture on Threads"]["media"]
    assert len(media) == 1 and media[0]["image"]["width"] == 1080 and media[0]["image"]["height"] == 1350
    assert posts[1]["interactionType"] == "reply"
    r = api.post(f"/v1/posts/{ids[0]}/delete")
    assert r.status_code == 200 and r.json()["post"]["status"] == "deleted", r.text


def test_facebook_pages_photos_comment_sync_and_delete(stack: Stack, api: httpx.Client) -> None:
    accounts = connect(api, "facebook")
    handles = sorted(a["handle"] for a in accounts)
    assert handles == ["facebook:200000000000001", "facebook:200000000000002"]  # every Page with CREATE_CONTENT
    page = "facebook:200000000000001"
    a, data_a = upload_png(api, (800, 600), "navy")
    b, data_b = upload_png(api, (600, 800), "gold")
    ids = _apply(api, [
        {"account": page, "text": "Two photos on the Page", "publish_at": at(4), "assets": [a, b],
         "settings": {"firstComment": "Comment under the photos"}},
        {"account": page, "text": "Text on the Page", "publish_at": at(4)},
    ])
    posts = [wait_post(api, pid, ("published", "failed"), timeout=90) for pid in ids]
    assert [p["status"] for p in posts] == ["published"] * 3, posts
    got = {d["text"]: d for d in deliveries(stack, "facebook")}
    assert {"Two photos on the Page", "Text on the Page", "Comment under the photos"} <= set(got)
    photos = [m for d in deliveries(stack, "facebook") for m in d["media"]]
    assert {hashlib.sha256(x).hexdigest() for x in (data_a, data_b)} <= {m["sha256"] for m in photos}
    sync = api.post(f"/v1/accounts/{accounts[0]['id']}/actions/sync_pages", json={})
    assert sync.status_code == 200 and len(sync.json()["result"]["accounts"]) == 2, sync.text
    r = api.post(f"/v1/posts/{ids[1]}/delete")
    assert r.status_code == 200 and r.json()["post"]["status"] == "deleted", r.text


@pytest.mark.parametrize("provider", ["instagram_business", "instagram"])
def test_instagram_carousel_story_comment_and_no_delete(stack: Stack, api: httpx.Client, provider: str) -> None:
    handle = connect(api, provider)[0]["handle"]
    a, _ = upload_png(api, (1080, 1080), "purple")
    b, _ = upload_png(api, (1080, 1350), "olive")
    story, _ = upload_png(api, (1080, 1920), "maroon")
    ids = _apply(api, [
        {"account": handle, "text": f"A carousel on {provider}", "publish_at": at(5), "assets": [a, b],
         "settings": {"firstComment": "First!"}},
        {"account": handle, "text": "", "publish_at": at(5), "assets": [story], "post_type": "story"},
    ])
    posts = [wait_post(api, pid, ("published", "failed"), timeout=120) for pid in ids]
    assert [p["status"] for p in posts] == ["published"] * 3, posts
    got = deliveries(stack, provider)
    carousel = next(d for d in got if d["text"] == f"A carousel on {provider}")
    assert [(m["image"]["width"], m["image"]["height"]) for m in carousel["media"]] == [(1080, 1080), (1080, 1350)]
    assert any(d["text"] == "First!" for d in got)
    assert len([d for d in got if d["media"] and d["media"][0]["image"]["height"] == 1920]) == 1  # the story
    assert_error(api.post(f"/v1/posts/{ids[0]}/delete"), 409, "delete_not_supported")


def test_x_thread_by_campaign_with_media_refresh_on_401_and_reconcile(stack: Stack, api: httpx.Client) -> None:
    """The issue's offline promise: connect X and publish a thread. Then a token the network
    refuses is refreshed once and the post goes out; a send whose answer is lost is reconciled
    (X can be asked) and never sent twice."""
    handle = connect(api, "x")[0]["handle"]
    pic, data = upload_png(api, (1200, 675), "crimson")
    start = at(5)
    body = {"campaigns": [{"name": "launch thread", "targets": [{"account": handle, "publish_at": start, "steps": [
        {"id": "one", "text": "1/3 Herald ships today https://example.com/launch", "assets": [pic],
         "settings": {"replySettings": "following"}},
        {"id": "two", "interaction_type": "reply", "parent_step_id": "one", "text": "2/3 durable by design"},
        {"id": "three", "interaction_type": "reply", "parent_step_id": "two", "text": "3/3 try it"},
    ]}]}]}
    r = api.post("/v1/posts/apply", json=body)
    assert r.status_code == 201, r.text
    ids = [p["id"] for p in r.json()["posts"]]
    posts = [wait_post(api, pid, ("published", "failed"), timeout=90) for pid in ids]
    assert [p["status"] for p in posts] == ["published"] * 3, posts
    got = {d["id"]: d for d in deliveries(stack, "x")}
    one, two, three = (got[p["providerPostId"]] for p in posts)
    assert (two["replyTo"], three["replyTo"]) == (one["id"], two["id"])
    assert [m["sha256"] for m in one["media"]] == [hashlib.sha256(data).hexdigest()]
    assert one["replySettings"] == "following"

    # Every access token expires at X: the next publish gets a 401 (here from the media upload,
    # ahead of the post's time), refreshes, and goes out -- on its time, not early.
    httpx.post(f"{stack.sandbox}/_sandbox/oauth", json={"network": "x", "action": "expire_access"}).raise_for_status()
    due = at(8)
    (refreshed,) = _apply(api, [{"account": handle, "text": "after a refresh", "publish_at": due, "assets": [pic]}])
    post = wait_post(api, refreshed, ("published", "failed"), timeout=60)
    assert post["status"] == "published", post
    received = next(d for d in deliveries(stack, "x") if d["text"] == "after a refresh")["receivedAt"]
    assert utc(received) >= utc(due), (received, due)

    # The answer to the send is lost after X stored the post: reconcile finds it, no duplicate.
    httpx.post(f"{stack.sandbox}/_sandbox/faults", json={"provider": "x", "kind": "drop_after_accept"}).raise_for_status()
    (dropped,) = _apply(api, [{"account": handle, "text": "lost answer, one post", "publish_at": at(4)}])
    post = wait_post(api, dropped, ("published", "failed"), timeout=90)
    assert post["status"] == "published", post
    assert [d["text"] for d in deliveries(stack, "x")].count("lost answer, one post") == 1
    outcomes = [a["outcome"] for a in api.get(f"/v1/posts/{dropped}/attempts").json()["attempts"]]
    assert "reconciled" in outcomes, outcomes

    # The refresh is refused: the account needs re-auth and its due post fails clearly.
    httpx.post(f"{stack.sandbox}/_sandbox/oauth", json={"network": "x", "action": "revoke"}).raise_for_status()
    (refused,) = _apply(api, [{"account": handle, "text": "never sent", "publish_at": at(4)}])
    post = wait_post(api, refused, ("published", "failed"), timeout=60)
    assert (post["status"], post["errorCode"]) == ("failed", "account_reauth_required"), post
    account = next(a for a in api.get("/v1/accounts", params={"provider": "x"}).json()["accounts"] if a["handle"] == handle)
    assert account["status"] == "needs_reauth" and account["statusReason"]
    assert "never sent" not in [d["text"] for d in deliveries(stack, "x")]
    # Connecting again puts it back in service, in place.
    again = connect(api, "x")[0]
    assert again["id"] == account["id"] and again["status"] == "connected"


def test_zz_no_oauth_secret_in_any_log_line(stack: Stack, api: httpx.Client) -> None:
    """After every network above connected, refreshed and published: no access token, refresh
    token, authorization code or client secret in any process's log."""
    import sqlite3

    from herald.crypto import CredentialCipher
    from herald.settings import DEV_SECRET_KEY

    connect(api, "threads")  # one more flow right before the scan
    log = (stack.data_dir.parent / "dev.log").read_text(errors="replace")
    assert "/oauth/threads/callback" in log or "oauth" in log.lower()  # the flows did run and log
    cipher = CredentialCipher(DEV_SECRET_KEY)
    with sqlite3.connect(stack.data_dir / "herald.db") as db:
        rows = db.execute("SELECT provider, credentials_encrypted FROM accounts").fetchall()
    secrets = set()
    for provider, blob in rows:
        creds = cipher.decrypt(blob)
        secrets |= {str(v) for k, v in creds.items()
                    if k in ("access_token", "refresh_token", "page_access_token", "user_access_token") and v}
    assert len(secrets) >= 6, "the accounts of the tests above hold tokens"
    leaked = [s[:6] + "…" for s in secrets if s in log]
    assert leaked == [], f"tokens in the log: {leaked}"
    assert "herald-sandbox-secret" not in log
    import re

    unredacted = [line for line in log.splitlines() if re.search(r"[?&](code|code_verifier)=(?!<redacted>)", line)]
    assert unredacted == [], unredacted[:3]
