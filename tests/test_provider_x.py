"""XAdapter against the real sandbox over HTTP (uvicorn on a loopback port): OAuth with PKCE,
chunked media upload with processing, posts, replies, delete, reconcile and the error taxonomy."""

from __future__ import annotations

import hashlib
import io
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from providers import x as x_module
from providers.base import (
    AuthExpired,
    ContentRejected,
    MediaFile,
    MediaRef,
    OutcomeUnknown,
    PostDraft,
    ProviderUnavailable,
    PublishRequest,
    RateLimited,
)
from providers.oauth import OAuthApp, new_pkce_pair
from providers.x import LIMITS, MEDIA_PROFILES, XAdapter, classify, retry_after_of
from sandbox.test_users import X_USER
from tests.support import SSL_CONTEXT

API = httpx.Client(timeout=10, verify=SSL_CONTEXT)
SECRET = "x-client-secret-do-not-leak"


# --- fixtures -------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _reset(clean_sandbox):
    # Media processing steps of 0.2 s (the default 1 s is exercised in one test).
    API.post(f"{clean_sandbox}/x/_sandbox", json={"processingSeconds": 0.2}).raise_for_status()


@pytest.fixture
def adapter(sandbox_url, http):
    a = XAdapter(http, f"{sandbox_url}/x/api")
    a.max_poll_wait = 0.25
    a.reconcile_settle_seconds = 0
    return a


@pytest.fixture
def app(sandbox_url) -> OAuthApp:
    return OAuthApp(app="x", client_id="herald-test-x", client_secret=SECRET,
                    redirect_uri="https://herald.example/oauth/x/callback",
                    auth_base=f"{sandbox_url}/x/www", token_base=f"{sandbox_url}/x/api")


async def consent(adapter: XAdapter, app: OAuthApp, state: str = "st-1") -> tuple[str, dict]:
    """Authorize in the sandbox (it approves at once) and read the code off the 302."""
    verifier, challenge = new_pkce_pair()
    url = adapter.authorize_url(app, state, challenge)
    response = API.get(url, follow_redirects=False)
    assert response.status_code == 302, response.text
    query = parse_qs(urlsplit(response.headers["location"]).query)
    return verifier, {k: v[0] for k, v in query.items()}


async def connect(adapter: XAdapter, app: OAuthApp) -> dict:
    verifier, query = await consent(adapter, app)
    creds = await adapter.exchange_code(app, query["code"], verifier)
    [identity] = await adapter.discover(app, creds)
    return identity.credentials


@pytest.fixture
async def creds(adapter, app):
    return await connect(adapter, app)


def deliveries(sandbox_url) -> list[dict]:
    return API.get(f"{sandbox_url}/_sandbox/deliveries", params={"provider": "x"}).json()["deliveries"]


def fault(sandbox_url, **body) -> None:
    API.post(f"{sandbox_url}/_sandbox/faults", json={"provider": "x", **body}).raise_for_status()


def oauth_switch(sandbox_url, action: str) -> None:
    API.post(f"{sandbox_url}/_sandbox/oauth", json={"network": "x", "action": action}).raise_for_status()


def media_file(tmp_path: Path, name: str, data: bytes, mime: str, kind: str, alt: str | None = None) -> MediaFile:
    path = tmp_path / name
    path.write_bytes(data)
    return MediaFile(path=str(path), filename=name, mime=mime, size=len(data),
                     sha256=hashlib.sha256(data).hexdigest(), kind=kind, alt_text=alt)


def png(width: int = 64, height: int = 48, color: str = "red") -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buf, "PNG")
    return buf.getvalue()


def gif() -> bytes:
    from PIL import Image

    frames = [Image.new("RGB", (40, 30), c) for c in ("red", "blue", "green")]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return buf.getvalue()


def mp4(width: int = 64, height: int = 48, frames: int = 5) -> bytes:
    """A real H.264 MP4 (PyAV): the sandbox, like X, decodes what it processes."""
    import av
    from PIL import Image

    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(frames):
            frame = av.VideoFrame.from_image(Image.new("RGB", (width, height), (i * 40, 0, 0)))
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buf.getvalue()


def req(**kw) -> PublishRequest:
    return PublishRequest(post_id=kw.pop("post_id", "p1"), **kw)


def assert_no_secret(exc: BaseException, *secrets: str) -> None:
    for text in (str(exc), repr(exc), getattr(exc, "message", "")):
        for secret in (SECRET, *secrets):
            assert secret not in text


# --- limits and check_post ----------------------------------------------------------------------------


def check(**kw) -> list[tuple[str, str]]:
    return [(p.field, p.message) for p in XAdapter.check_post(PostDraft(provider="x", **kw))]


def refs(*names: str, alt: str | None = None) -> list[MediaRef]:
    return [MediaRef(url=f"https://cdn.example/{n}", alt_text=alt) for n in names]


def test_limits_profile_and_capabilities_are_data():
    assert (LIMITS.max_text_chars, LIMITS.max_media, LIMITS.max_bytes_by_kind["image"]) == (280, 4, 5_000_000)
    assert "x-docs" in LIMITS.source and "introduction.mdx" in LIMITS.source
    profile = MEDIA_PROFILES["x"][None]
    assert profile.key == "x.v1" and profile.video.max_duration == 140 and profile.image.keep_animation
    assert XAdapter.oauth.pkce and "offline.access" in XAdapter.oauth.scopes
    assert {f["id"] for f in XAdapter.settings_fields} == {"replySettings", "quoteTweetId"}
    assert "reply" in XAdapter.shapes and "video" in XAdapter.shapes


def test_check_post_weighted_text_boundary():
    assert check(text="a" * 280) == []
    assert check(text="a" * 281) == [("description", "281 weighted characters, x allows 280")]
    assert check(text="の" * 140) == []
    assert check(text="の" * 141) == [("description", "282 weighted characters, x allows 280")]
    # A URL weighs 23 whatever its length; an emoji 2.
    assert check(text="a" * 256 + " https://example.com/" + "p" * 300) == []
    assert check(text="😷" * 141) == [("description", "282 weighted characters, x allows 280")]
    assert check(text="bad\ufeff") == [("description", "contains U+FEFF, which x refuses")]


def test_check_post_media_rules():
    assert check(text="", media=[]) == [("description", "the post is empty: x needs text or media")]
    assert check(text="   ") != []
    assert check(media=refs("a.png")) == []
    assert check(text="hi", media=refs("1.png", "2.jpg", "3.webp", "4.png")) == []
    assert check(text="hi", media=refs("1.png", "2.jpg", "3.webp", "4.png", "5.png")) == [
        ("assets", "5 images, x allows 4 per post")]
    both = "x allows 4 images, or 1 video or GIF, per post"
    assert check(text="hi", media=refs("a.mp4", "b.png")) == [("assets", both)]
    assert check(text="hi", media=refs("a.gif", "b.png")) == [("assets", both)]
    assert check(text="hi", media=refs("a.mp4", "b.mov")) == [("assets", both)]
    assert check(text="hi", media=refs("a.gif")) == [] and check(text="hi", media=refs("a.mp4")) == []
    assert check(text="hi", media=refs("a.mp3")) == [("assets[0]", "x takes images, GIFs and videos only")]
    assert check(text="hi", media=refs("a.png", alt="a" * 1000)) == []
    assert check(text="hi", media=refs("a.png", alt="a" * 1001)) == [
        ("assets[0]", "alt text is 1,001 characters, x allows 1,000")]


def test_check_post_settings():
    assert check(text="hi", settings={"replySettings": "following", "quoteTweetId": "1500000000000000001"}) == []
    problems = check(text="hi", settings={"replySettings": "everyone", "quoteTweetId": "abc", "poll": {}})
    assert [f for f, _ in problems] == ["settings.poll", "settings.replySettings", "settings.quoteTweetId"]
    assert "following, mentionedUsers, subscribers, verified" in problems[1][1]


# --- OAuth --------------------------------------------------------------------------------------------


async def test_oauth_round_trip(adapter, app, sandbox_url):
    verifier, challenge = new_pkce_pair()
    url = adapter.authorize_url(app, "state-42", challenge)
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{sandbox_url}/x/www/i/oauth2/authorize"
    params = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert params["response_type"] == "code" and params["client_id"] == "herald-test-x"
    assert params["redirect_uri"] == app.redirect_uri and params["state"] == "state-42"
    assert params["code_challenge"] == challenge and params["code_challenge_method"] == "S256"
    assert params["scope"].split() == ["tweet.read", "tweet.write", "users.read", "media.write", "offline.access"]

    response = API.get(url, follow_redirects=False)
    assert response.status_code == 302
    location = urlsplit(response.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == app.redirect_uri
    query = {k: v[0] for k, v in parse_qs(location.query).items()}
    assert query["state"] == "state-42"
    seen = API.get(f"{sandbox_url}/_sandbox/oauth/authorizations").json()["authorizations"]
    assert seen[-1]["network"] == "x" and seen[-1]["code_challenge"] == challenge

    before = time.time()
    creds = await adapter.exchange_code(app, query["code"], verifier)
    assert creds["access_token"] and creds["refresh_token"] and "media.write" in creds["scope"]
    assert before + 7190 < creds["expires_at"] < time.time() + 7210  # 2 hours

    [identity] = await adapter.discover(app, creds)
    assert identity.handle == f"x:{X_USER['id']}" and identity.external_id == X_USER["id"]
    assert identity.metadata == {"username": "herald_sandbox", "name": "Herald Sandbox"}
    assert identity.credentials["user_id"] == X_USER["id"] and identity.credentials["username"] == "herald_sandbox"
    assert identity.credentials["access_token"] == creds["access_token"]
    await adapter.check_credentials(identity.credentials)
    assert await adapter.run_action(app, identity.credentials, "sync_profile") == {
        "userId": X_USER["id"], "username": "herald_sandbox", "name": "Herald Sandbox"}


async def test_oauth_refusals(adapter, app, sandbox_url):
    # A code redeemed with the wrong verifier (PKCE), then the same code again: both refused.
    _, query = await consent(adapter, app)
    with pytest.raises(AuthExpired) as err:
        await adapter.exchange_code(app, query["code"], "wrong-verifier-" + "v" * 40)
    assert "invalid_request" in err.value.message and err.value.http_status == 400
    assert_no_secret(err.value)
    # The user says no: the redirect carries error=access_denied and our state.
    oauth_switch(sandbox_url, "deny_next")
    _, denied = await consent(adapter, app, state="s-deny")
    assert denied == {"error": "access_denied", "error_description": "The user denied the request", "state": "s-deny"}
    # Without PKCE the consent page refuses (X requires it).
    bare = API.get(f"{sandbox_url}/x/www/i/oauth2/authorize", params={
        "response_type": "code", "client_id": "c", "redirect_uri": app.redirect_uri, "scope": "tweet.read",
        "state": "s"}, follow_redirects=False)
    assert bare.status_code == 400 and bare.json()["error"] == "invalid_request"


async def test_refresh_rotates_and_the_old_token_dies(adapter, app, creds):
    fresh = await adapter.refresh(app, creds)
    assert fresh["refresh_token"] != creds["refresh_token"] and fresh["access_token"] != creds["access_token"]
    assert fresh["user_id"] == creds["user_id"] and fresh["username"] == creds["username"]  # kept
    await adapter.check_credentials(fresh)
    with pytest.raises(AuthExpired) as err:  # the rotated-out refresh token is dead
        await adapter.refresh(app, creds)
    assert_no_secret(err.value, creds["refresh_token"], creds["access_token"])
    again = await adapter.refresh(app, fresh)
    assert again["refresh_token"] not in (fresh["refresh_token"], creds["refresh_token"])
    assert await adapter.refresh(app, {"access_token": "a"}) is None  # no offline.access: reconnect


async def test_fail_refresh_and_expired_access_are_auth_expired(adapter, app, creds, sandbox_url):
    oauth_switch(sandbox_url, "fail_refresh")
    with pytest.raises(AuthExpired):
        await adapter.refresh(app, creds)
    oauth_switch(sandbox_url, "expire_access")
    with pytest.raises(AuthExpired) as err:
        await adapter.check_credentials(creds)
    assert err.value.http_status == 401
    assert_no_secret(err.value, creds["access_token"])
    with pytest.raises(AuthExpired):
        await adapter.publish(creds, req(text="after expiry"))
    assert deliveries(sandbox_url) == []


# --- publishing ---------------------------------------------------------------------------------------


async def test_publish_text(adapter, creds, sandbox_url):
    result = await adapter.publish(creds, req(text="Hello from Herald & friends <3 https://example.com/a"))
    assert result.http_status == 201 and result.provider_post_id.isdigit()
    assert result.provider_url == f"https://x.com/herald_sandbox/status/{result.provider_post_id}"
    [d] = deliveries(sandbox_url)
    assert (d["id"], d["target"], d["text"]) == (
        result.provider_post_id, X_USER["id"], "Hello from Herald & friends <3 https://example.com/a")
    assert d["media"] == [] and d["kind"] == "post" and d["receivedAt"].endswith("Z")
    # X keeps the text HTML-escaped with t.co links, as its API returns it.
    stored = API.get(f"{sandbox_url}/x/_sandbox").json()["tweets"][0]["text"]
    assert stored.startswith("Hello from Herald &amp; friends &lt;3 https://t.co/")


async def test_publish_four_images_with_alt_text(adapter, creds, sandbox_url, tmp_path):
    colors = ("red", "green", "blue", "white")
    files = [media_file(tmp_path, f"{i}.png", png(60 + i, 40 + i, c), "image/png", "image", alt=f"alt {i}")
             for i, c in enumerate(colors)]
    result = await adapter.publish(creds, req(text="four", media=files))
    [d] = deliveries(sandbox_url)
    assert d["id"] == result.provider_post_id and len(d["media"]) == 4
    for i, (f, got) in enumerate(zip(files, d["media"])):
        assert (got["sha256"], got["size"]) == (f.sha256, f.size)
        assert (got["image"]["width"], got["image"]["height"]) == (60 + i, 40 + i)
        assert got["altText"] == f"alt {i}" and got["category"] == "tweet_image"


async def test_publish_gif_and_chunked_upload(adapter, creds, sandbox_url, tmp_path, monkeypatch):
    monkeypatch.setattr(x_module, "CHUNK_BYTES", 100)  # several APPEND segments
    data = gif()
    assert len(data) > 250
    f = media_file(tmp_path, "a.gif", data, "image/gif", "image")
    await adapter.publish(creds, req(text="gif", media=[f]))
    [d] = deliveries(sandbox_url)
    [got] = d["media"]
    assert (got["sha256"], got["size"], got["category"]) == (f.sha256, len(data), "tweet_gif")
    assert got["image"]["format"] == "GIF"


async def test_publish_video_waits_for_processing(adapter, creds, sandbox_url, tmp_path):
    # The sandbox's default: each processing step takes 1 s and says check_after_secs=1.
    API.post(f"{sandbox_url}/x/_sandbox", json={"processingSeconds": 1.0}).raise_for_status()
    adapter.max_poll_wait = 10.0
    data = mp4()
    f = media_file(tmp_path, "clip.mp4", data, "video/mp4", "video")
    started = time.monotonic()
    prepared = await adapter.prepare_publish(creds, req(text="video", media=[f]))
    waited = time.monotonic() - started
    assert 1.9 < waited < 5  # pending -> in_progress -> succeeded, polled after the advertised waits
    [media] = API.get(f"{sandbox_url}/x/_sandbox").json()["media"]
    assert media["polls"] == 2 and media["state"] == "succeeded"  # no busy polling
    assert deliveries(sandbox_url) == []  # nothing is public before send()
    result = await prepared.send()
    [d] = deliveries(sandbox_url)
    [got] = d["media"]
    assert d["id"] == result.provider_post_id and got["category"] == "tweet_video"
    assert (got["sha256"], got["video"]["codec"], got["video"]["width"], got["video"]["height"]) == (
        f.sha256, "h264", 64, 48)


async def test_undecodable_video_is_rejected_before_send(adapter, creds, sandbox_url, tmp_path):
    f = media_file(tmp_path, "bad.mp4", b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 200, "video/mp4", "video")
    with pytest.raises(ContentRejected) as err:
        await adapter.prepare_publish(creds, req(text="bad video", media=[f]))
    assert "Invalid or Unsupported media" in err.value.message and err.value.code == "media_rejected"
    assert deliveries(sandbox_url) == []


async def test_processing_timeout_is_provider_unavailable(adapter, creds, sandbox_url, tmp_path):
    API.post(f"{sandbox_url}/x/_sandbox", json={"processingSeconds": 30}).raise_for_status()
    adapter.processing_timeout = 0.6
    f = media_file(tmp_path, "clip.mp4", mp4(), "video/mp4", "video")
    with pytest.raises(ProviderUnavailable, match="still processing"):
        await adapter.prepare_publish(creds, req(text="slow", media=[f]))


async def test_reply_chain_reply_settings_and_quote(adapter, creds, sandbox_url):
    parent = await adapter.publish(creds, req(text="1/ a thread"))
    reply = await adapter.publish(creds, req(post_id="p2", text="2/ the reply", reply_to=parent.provider_post_id,
                                             interaction="reply", settings={"replySettings": "following"}))
    quote = await adapter.publish(creds, req(post_id="p3", text="quoting",
                                             settings={"quoteTweetId": parent.provider_post_id}))
    d = {x["id"]: x for x in deliveries(sandbox_url)}
    assert d[reply.provider_post_id]["replyTo"] == parent.provider_post_id
    assert d[reply.provider_post_id]["replySettings"] == "following" and d[reply.provider_post_id]["kind"] == "reply"
    assert d[quote.provider_post_id]["quoteTweetId"] == parent.provider_post_id
    # Replying to a post that does not exist: X's 403, a content problem.
    with pytest.raises(ContentRejected, match="replying to has been deleted"):
        await adapter.publish(creds, req(post_id="p4", text="orphan", reply_to="1234", interaction="reply"))


async def test_delete(adapter, creds, sandbox_url):
    result = await adapter.publish(creds, req(text="short-lived"))
    request = req(text="short-lived")
    assert (await adapter.reconcile(creds, request, result.provider_post_id)).state == "found"
    await adapter.delete(creds, result.provider_post_id)
    assert (await adapter.reconcile(creds, request, result.provider_post_id)).state == "absent"
    await adapter.delete(creds, result.provider_post_id)  # already gone: not an error


# --- errors and reconcile -----------------------------------------------------------------------------


async def test_rate_limit_carries_the_exact_wait(adapter, creds, sandbox_url):
    fault(sandbox_url, kind="rate_limit", retryAfter=30)
    prepared = await adapter.prepare_publish(creds, req(text="limited"))
    with pytest.raises(RateLimited) as err:
        await prepared.send()
    # x-rate-limit-reset is a whole epoch second: the wait is 30 s, rounded up to it.
    assert 29.5 <= err.value.retry_after <= 31.5 and err.value.http_status == 429
    assert deliveries(sandbox_url) == []
    assert (await adapter.publish(creds, req(text="limited"))).provider_post_id  # the fault was one-shot


def test_retry_after_headers():
    now = 1_800_000_000.0

    def resp(status=429, **headers):
        return httpx.Response(status, headers={k.replace("_", "-"): v for k, v in headers.items()},
                              json={"title": "Too Many Requests", "detail": "Too Many Requests", "type": "about:blank"})

    assert retry_after_of(resp(x_rate_limit_reset=str(int(now) + 42), x_rate_limit_remaining="0"), now) == 42
    # The 24-hour cap is spent: its later reset wins over the 15-minute window's.
    r = resp(x_rate_limit_reset=str(int(now) + 60), x_rate_limit_remaining="3",
             x_user_limit_24hour_reset=str(int(now) + 5000), x_user_limit_24hour_remaining="0")
    assert retry_after_of(r, now) == 5000
    assert retry_after_of(resp(x_rate_limit_reset=str(int(now) - 5)), now) == 1.0  # at least 1 s
    assert retry_after_of(resp(), now) == 60.0
    capped = classify(httpx.Response(429, json={"title": "UsageCapExceeded", "detail": "Usage cap exceeded: Monthly",
                                                 "type": "https://api.x.com/2/problems/usage-capped"}))
    assert isinstance(capped, RateLimited) and capped.code == "usage_capped" and capped.retry_after == 3600.0


def test_classify_shapes():
    def problem(status, detail, ptype="about:blank"):
        return httpx.Response(status, json={"title": "T", "detail": detail, "type": ptype, "status": status})

    dup = classify(problem(403, "You are not allowed to create a Tweet with duplicate content."))
    assert isinstance(dup, ContentRejected) and dup.code == "duplicate_content"
    assert isinstance(classify(problem(403, "Your account is suspended", "https://api.x.com/2/problems/user-suspended")),
                      AuthExpired)
    assert isinstance(classify(problem(401, "Unauthorized")), AuthExpired)
    assert isinstance(classify(problem(503, "Service Unavailable")), ProviderUnavailable)
    assert isinstance(classify(problem(504, "Gateway Timeout"), publishing=True), OutcomeUnknown)
    assert isinstance(classify(problem(504, "Gateway Timeout")), ProviderUnavailable)
    long = classify(httpx.Response(400, json={"title": "Invalid Request", "detail": "x" * 5000}))
    assert isinstance(long, ContentRejected) and len(long.message) <= 301


async def test_auth_server_and_content_faults(adapter, creds, sandbox_url):
    fault(sandbox_url, kind="auth_error")
    with pytest.raises(AuthExpired) as auth:
        await adapter.publish(creds, req(text="one"))
    assert_no_secret(auth.value, creds["access_token"])
    fault(sandbox_url, kind="server_error")
    with pytest.raises(ProviderUnavailable) as down:
        await adapter.publish(creds, req(text="one"))
    assert down.value.http_status == 503
    fault(sandbox_url, kind="reject_content")
    with pytest.raises(ContentRejected) as rejected:
        await adapter.publish(creds, req(text="one"))
    assert rejected.value.code == "duplicate_content"
    fault(sandbox_url, kind="timeout", delaySeconds=0.3)
    with pytest.raises(OutcomeUnknown):  # X's 504 after holding the call: it may have posted
        await adapter.publish(creds, req(text="one"))
    assert deliveries(sandbox_url) == []


async def test_duplicate_text_is_refused_like_x(adapter, creds, sandbox_url):
    await adapter.publish(creds, req(text="Same words twice"))
    with pytest.raises(ContentRejected) as err:
        await adapter.publish(creds, req(post_id="p2", text="Same words twice"))
    assert err.value.code == "duplicate_content" and err.value.http_status == 403
    assert len(deliveries(sandbox_url)) == 1


async def test_drop_after_accept_then_reconcile_finds_it(adapter, creds, sandbox_url, tmp_path):
    text = "Launch day & a link: https://example.com/launch?ref=herald"
    f = media_file(tmp_path, "a.png", png(), "image/png", "image")
    request = req(text=text, media=[f])
    fault(sandbox_url, kind="drop_after_accept")
    with pytest.raises(OutcomeUnknown):
        await adapter.publish(creds, request)
    [d] = deliveries(sandbox_url)
    # X returns this post's text as "Launch day &amp; a link: https://t.co/… https://t.co/…".
    outcome = await adapter.reconcile(creds, request, None)
    assert outcome.state == "found" and outcome.result.provider_post_id == d["id"]
    assert outcome.result.provider_url == f"https://x.com/herald_sandbox/status/{d['id']}"
    assert len(deliveries(sandbox_url)) == 1  # found, so never posted twice


async def test_reconcile_matches_replies_by_parent_and_looks_back_a_day(adapter, creds, monkeypatch):
    a = await adapter.publish(creds, req(text="parent A"))
    b = await adapter.publish(creds, req(post_id="p2", text="parent B"))
    reply = await adapter.publish(creds, req(post_id="p3", text="thanks!", reply_to=a.provider_post_id,
                                             interaction="reply"))
    to_a = req(text="thanks!", reply_to=a.provider_post_id, interaction="reply")
    to_b = req(text="thanks!", reply_to=b.provider_post_id, interaction="reply")
    assert (await adapter.reconcile(creds, to_a, None)).result.provider_post_id == reply.provider_post_id
    assert (await adapter.reconcile(creds, to_b, None)).state == "absent"
    # Only posts since start_time count: a window reaching into the future sees none.
    monkeypatch.setattr(x_module, "RECONCILE_WINDOW", -120)
    assert (await adapter.reconcile(creds, to_a, None)).state == "absent"


async def test_reconcile_absent_and_unknowable(adapter, creds, sandbox_url, tmp_path):
    await adapter.publish(creds, req(text="something else"))
    assert (await adapter.reconcile(creds, req(text="never sent"), None)).state == "absent"
    assert (await adapter.reconcile(creds, req(text="never sent"), "1500000000000000999")).state == "absent"
    f = media_file(tmp_path, "a.png", png(), "image/png", "image")
    assert (await adapter.reconcile(creds, req(media=[f]), None)).state == "unknowable"


# --- the sandbox refuses what X refuses ----------------------------------------------------------------


def test_sandbox_refuses_malformed_requests_in_x_shapes(sandbox_url, creds):
    api = f"{sandbox_url}/x/api/2"
    auth = {"Authorization": f"Bearer {creds['access_token']}"}

    r = API.post(f"{api}/tweets", json={"text": "hi"})
    assert r.status_code == 401 and r.json() == {"title": "Unauthorized", "detail": "Unauthorized",
                                                 "type": "about:blank", "status": 401}
    assert r.headers["x-rate-limit-limit"] == "100" and "x-rate-limit-reset" in r.headers  # on errors too
    r = API.post(f"{api}/tweets", json={"text": "hi", "status": "v1 field"}, headers=auth)
    body = r.json()
    assert r.status_code == 400 and body["type"] == "https://api.x.com/2/problems/invalid-request"
    assert "$.status: is not defined in the schema" in body["errors"][0]["message"]
    r = API.post(f"{api}/tweets", json={"text": "a" * 281}, headers=auth)
    assert r.status_code == 400 and r.json()["errors"][0]["message"].startswith("Your Tweet text is too long.")
    assert API.post(f"{api}/tweets", json={"text": "の" * 140}, headers=auth).status_code == 201
    r = API.post(f"{api}/tweets", json={"text": "hi", "media": {"media_ids": ["123"]}}, headers=auth)
    assert r.status_code == 400 and r.json()["errors"][0]["message"] == "Your media IDs are invalid."
    assert API.post(f"{api}/tweets", json={"text": ""}, headers=auth).status_code == 400
    r = API.post(f"{api}/tweets", json={"text": "ok", "reply_settings": "everyone"}, headers=auth)
    assert r.status_code == 400

    init = API.post(f"{api}/media/upload/initialize", headers=auth,
                    json={"media_type": "image/png", "total_bytes": 100, "media_category": "tweet_image"})
    assert init.status_code == 200 and init.headers["x-rate-limit-limit"] == "1875"
    media_id = init.json()["data"]["id"]
    r = API.post(f"{api}/media/upload/{media_id}/append", headers=auth, files={"media": ("c", b"x" * 10)})
    assert r.status_code == 400 and "segment_index" in r.json()["errors"][0]["message"]
    API.post(f"{api}/media/upload/{media_id}/append", headers=auth, data={"segment_index": "0"},
             files={"media": ("c", b"x" * 10)}).raise_for_status()
    r = API.post(f"{api}/media/upload/{media_id}/finalize", headers=auth)
    assert r.status_code == 400 and "do not add up" in r.json()["errors"][0]["message"]
    big = API.post(f"{api}/media/upload/initialize", headers=auth,
                   json={"media_type": "image/png", "total_bytes": 6 * 1024 * 1024, "media_category": "tweet_image"})
    assert big.status_code == 400 and "5242880" in big.json()["errors"][0]["message"]
    r = API.get(f"{api}/users/{X_USER['id']}/tweets", params={"max_results": "500"}, headers=auth)
    assert r.status_code == 400
    me = API.get(f"{api}/users/me", headers=auth)
    reset = int(me.headers["x-rate-limit-reset"])
    assert me.headers["x-rate-limit-limit"] == "75" and time.time() < reset <= time.time() + 901


def test_sandbox_accepts_the_legacy_command_form(sandbox_url, creds):
    api = f"{sandbox_url}/x/api/2"
    auth = {"Authorization": f"Bearer {creds['access_token']}"}
    data = png()
    init = API.post(f"{api}/media/upload", headers=auth, data={
        "command": "INIT", "media_type": "image/png", "total_bytes": str(len(data))})
    media_id = init.json()["data"]["id"]
    API.post(f"{api}/media/upload", headers=auth, data={"command": "APPEND", "media_id": media_id,
                                                          "segment_index": "0"},
             files={"media": ("a.png", data)}).raise_for_status()
    final = API.post(f"{api}/media/upload", headers=auth, data={"command": "FINALIZE", "media_id": media_id})
    assert final.json()["data"]["image"] == {"image_type": "image/png", "w": 64, "h": 48}
    post = API.post(f"{api}/tweets", headers=auth, json={"text": "", "media": {"media_ids": [media_id]}})
    assert post.status_code == 201
    [d] = deliveries(sandbox_url)
    assert d["media"][0]["sha256"] == hashlib.sha256(data).hexdigest()
    # A media id is attached once.
    again = API.post(f"{api}/tweets", headers=auth, json={"text": "again", "media": {"media_ids": [media_id]}})
    assert again.status_code == 400
