"""ThreadsAdapter against the real sandbox over HTTP, with media served from a loopback static
server the sandbox fetches like Threads' crawler does."""

from __future__ import annotations

import hashlib
import io
import logging
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from PIL import Image

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
from providers.oauth import OAuthApp
from providers.threads import LIMITS, MEDIA_PROFILES, ThreadsAdapter, classify, text_length
from sandbox.test_users import THREADS_USER
from tests.support import SSL_CONTEXT, serve_in_thread

USER_ID = THREADS_USER["id"]
SECRET = "th-app-secret-0123456789"
API = httpx.Client(timeout=10, verify=SSL_CONTEXT)


# --- media served over HTTP -----------------------------------------------------------------------


def _image(fmt: str, size: tuple[int, int], color: str = "red") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, fmt)
    return buf.getvalue()


def _clip(fps: int = 25, seconds: int = 1, size: tuple[int, int] = (64, 48)) -> bytes:
    import av

    buf = io.BytesIO()
    with av.open(buf, mode="w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        for i in range(fps * seconds):
            frame = av.VideoFrame.from_image(Image.new("RGB", size, (i * 9 % 256, 40, 90)))
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return buf.getvalue()


FILES = {
    "photo.jpg": (_image("JPEG", (640, 480)), "image/jpeg", "image"),
    "pic.png": (_image("PNG", (400, 300), "blue"), "image/png", "image"),
    "wide.png": (_image("PNG", (1100, 100)), "image/png", "image"),  # 11:1, over Threads' 10:1
    "anim.gif": (_image("GIF", (50, 50)), "image/gif", "image"),
    "clip.mp4": (_clip(), "video/mp4", "video"),
    "slow.mp4": (_clip(fps=10), "video/mp4", "video"),  # under Threads' 23 fps
}


@pytest.fixture(scope="module")
def media_url(tmp_path_factory):
    from starlette.applications import Starlette
    from starlette.routing import Mount
    from starlette.staticfiles import StaticFiles

    root = tmp_path_factory.mktemp("threads-media")
    for name, (data, _, _) in FILES.items():
        (root / name).write_bytes(data)
    app = Starlette(routes=[Mount("/media", app=StaticFiles(directory=root))])
    with serve_in_thread(app) as url:
        yield url + "/media", root


def mf(media_url, name: str, alt: str | None = None) -> MediaFile:
    base, root = media_url
    data, mime, kind = FILES.get(name, (b"", "video/mp4", "video"))
    return MediaFile(path=str(Path(root) / name), filename=name, mime=mime, size=len(data),
                     sha256=hashlib.sha256(data).hexdigest(), kind=kind, url=f"{base}/{name}", alt_text=alt)


# --- fixtures -------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _reset(clean_sandbox):
    """Every test starts from an empty sandbox."""


@pytest.fixture
def app(sandbox_url) -> OAuthApp:
    return OAuthApp(app="threads", client_id="990602627938098", client_secret=SECRET,
                    redirect_uri="https://herald.example/oauth/threads/callback",
                    auth_base=f"{sandbox_url}/threads/www", token_base=f"{sandbox_url}/threads/graph")


@pytest.fixture
def adapter(sandbox_url, http):
    return ThreadsAdapter(http, f"{sandbox_url}/threads/graph")


def consent(adapter: ThreadsAdapter, app: OAuthApp, state: str = "st-1") -> str:
    """Follow the consent page's 302 by hand; returns the Location."""
    response = API.get(adapter.authorize_url(app, state, None), follow_redirects=False)
    assert response.status_code == 302, response.text
    return response.headers["location"]


async def connect(adapter: ThreadsAdapter, app: OAuthApp) -> dict:
    code = parse_qs(urlsplit(consent(adapter, app)).query)["code"][0]
    credentials = await adapter.exchange_code(app, code, None)
    [identity] = await adapter.discover(app, credentials)
    return identity.credentials


@pytest.fixture
async def creds(adapter, app):
    return await connect(adapter, app)


def deliveries(sandbox_url) -> list[dict]:
    return API.get(f"{sandbox_url}/_sandbox/deliveries", params={"provider": "threads"}).json()["deliveries"]


def fault(sandbox_url, **body) -> None:
    API.post(f"{sandbox_url}/_sandbox/faults", json={"provider": "threads", **body}).raise_for_status()


def oauth_switch(sandbox_url, action: str) -> None:
    API.post(f"{sandbox_url}/_sandbox/oauth", json={"network": "threads", "action": action}).raise_for_status()


def req(**kw) -> PublishRequest:
    return PublishRequest(post_id=kw.pop("post_id", "p1"), **kw)


def assert_no_secret(exc: BaseException, *secrets: str) -> None:
    for text in (str(exc), repr(exc), getattr(exc, "message", "")):
        for secret in secrets:
            assert secret not in text


# --- pure parts -------------------------------------------------------------------------------------


def check(**kw) -> list[tuple[str, str]]:
    return [(p.field, p.message) for p in ThreadsAdapter.check_post(PostDraft(provider="threads", **kw))]


def test_limits_and_media_profile_are_data_with_sources():
    assert (LIMITS.max_text_chars, LIMITS.max_media, LIMITS.min_media_group) == (500, 20, 2)
    assert LIMITS.max_bytes_by_kind == {"image": 8_000_000} and LIMITS.max_file_bytes == 1_000_000_000
    assert "developers.facebook.com/docs/threads/posts" in LIMITS.source and "§5" in LIMITS.source
    profile = MEDIA_PROFILES["threads"][None]
    assert profile.key == "threads.v1" and "§5" in profile.source
    assert profile.image.formats == ("image/jpeg", "image/png") and profile.image.max_ratio == 10
    assert (profile.video.max_duration, profile.video.max_fps, profile.video.max_width) == (300, 60, 1920)
    assert profile.video.video_codecs == ("h264", "hevc") and profile.max_other_bytes is None
    assert ThreadsAdapter.shapes == ["text", "image", "video", "carousel", "reply"]
    assert ThreadsAdapter.settings_fields[0]["id"] == "replyControl"


def test_text_length_counts_emojis_as_utf8_bytes():
    assert text_length("hello") == 5
    assert text_length("é") == 1 and text_length("e\u0301") == 1  # combining accent joins its letter
    assert text_length("日本") == 2  # CJK is one character each
    assert text_length("😀") == 4  # U+1F600: 4 UTF-8 bytes
    assert text_length("❤️") == 6  # U+2764 U+FE0F: 3 + 3
    assert text_length("👍🏽") == 8  # thumbs up + skin tone modifier
    assert text_length("👨‍👩‍👧") == 18  # three people joined by two ZWJs


def test_check_post_text_boundaries():
    assert check(text="x" * 500) == []
    assert check(text="x" * 501) == [("description", "501 characters, threads allows 500 (emojis count as their UTF-8 bytes)")]
    assert check(text="x" * 496 + "😀") == []  # 496 + 4 = 500
    assert check(text="x" * 497 + "😀")[0][1].startswith("501 characters")
    assert check(text="") == [("description", "the post is empty: threads needs text or media")]
    assert check(text="  \n") != []
    assert check(media=[MediaRef(url="https://x/a.jpg")]) == []  # media without text is fine


def test_check_post_links():
    five = " ".join(f"https://example.com/{i}" for i in range(5))
    assert check(text=five) == []
    # repeats and variants of one URL count once
    assert check(text=five + " https://EXAMPLE.com/0/ (https://example.com/1).") == []
    assert check(text=five + " www.threads.net") == [("description", "6 links, threads allows 5 per post")]


def test_check_post_media_and_settings():
    refs = [MediaRef(url=f"https://x/{i}.jpg") for i in range(21)]
    assert check(text="t", media=refs[:20]) == []
    assert check(text="t", media=refs) == [("assets", "21 media items, threads allows up to 20 in one carousel")]
    problems = check(text="t", media=[MediaRef(url="https://x/a.jpg"), MediaRef(url="https://x/song.mp3")])
    assert problems == [("assets[1]", "threads takes only images and videos (this is audio)")]
    # a big original is not refused: Herald sends a rendition that fits
    assert check(text="t", media=[MediaRef(url="https://x/v.mp4", size=3_000_000_000)]) == []
    assert check(text="t", media=[MediaRef(url="https://x/a.jpg", alt_text="a" * 1001)])[0][0] == "assets[0]"
    assert check(text="t", settings={"replyControl": "mentioned_only"}) == []
    assert check(text="t", settings={"replyControl": "nobody"}) == [
        ("settings.replyControl", "must be one of everyone, accounts_you_follow, mentioned_only, "
         "parent_post_author_only, followers_only")]
    unknown = check(text="t", settings={"reply_control": "everyone"})
    assert unknown[0][0] == "settings.reply_control" and "replyControl" in unknown[0][1]


def test_classify_graph_codes():
    def resp(status, headers=None, **error):
        return httpx.Response(status, json={"error": error}, headers=headers)

    assert isinstance(classify(resp(400, code=190, message="Error validating access token")), AuthExpired)
    assert isinstance(classify(resp(403, code=200, message="Permissions error")), AuthExpired)
    limited = classify(resp(400, code=17, message="(#17) User request limit reached"))
    assert isinstance(limited, RateLimited) and limited.retry_after == 900.0  # no estimate: our default
    buc = {"X-Business-Use-Case-Usage": '{"1":[{"estimated_time_to_regain_access":7}]}'}
    assert classify(resp(400, buc, code=4, message="x")).retry_after == 420.0
    assert classify(resp(400, code=9, error_subcode=2207042, message="max posts")).retry_after == 3600.0
    assert isinstance(classify(resp(400, code=100, error_subcode=2207051, message="blocked")), ContentRejected)
    assert isinstance(classify(resp(400, code=9007, error_subcode=2207027, message="not ready")), ProviderUnavailable)
    assert isinstance(classify(resp(500, code=2, message="temporarily")), ProviderUnavailable)
    assert isinstance(classify(httpx.Response(504, text="<html>"), publishing=True), OutcomeUnknown)
    scrubbed = classify(resp(400, code=100, message="bad token TOKEN123 here"), ("TOKEN123",))
    assert "TOKEN123" not in scrubbed.message and "***" in scrubbed.message


# --- OAuth ------------------------------------------------------------------------------------------


def test_authorize_url(adapter, app):
    url = adapter.authorize_url(app, "st-9", "ignored-challenge")
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{app.auth_base}/oauth/authorize"
    q = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert q == {
        "response_type": "code", "client_id": app.client_id, "redirect_uri": app.redirect_uri,
        "scope": "threads_basic,threads_content_publish,threads_manage_replies,threads_read_replies,threads_delete",
        "state": "st-9",
    }  # no PKCE: Threads does not document it


async def test_oauth_round_trip(adapter, app, sandbox_url):
    location = consent(adapter, app, "st-42")
    assert location.startswith(app.redirect_uri + "?")
    q = parse_qs(urlsplit(location).query)
    assert q["state"] == ["st-42"]
    asked = API.get(f"{sandbox_url}/_sandbox/oauth/authorizations").json()["authorizations"][-1]
    assert asked["network"] == "threads" and asked["scope"].split(",")[0] == "threads_basic"

    before = time.time()
    credentials = await adapter.exchange_code(app, q["code"][0], None)
    assert set(credentials) >= {"access_token", "expires_at", "user_id"}
    assert credentials["user_id"] == USER_ID
    assert "refresh_token" not in credentials  # Threads refreshes the long-lived token itself
    # the long-lived token: 60 days, not the short-lived hour
    assert before + 59 * 86400 < credentials["expires_at"] < time.time() + 61 * 86400

    [identity] = await adapter.discover(app, credentials)
    assert identity.handle == f"threads:{USER_ID}" and identity.external_id == USER_ID
    assert identity.display_name == THREADS_USER["name"] and identity.account_type == "profile"
    assert identity.metadata["username"] == THREADS_USER["username"]
    assert identity.metadata["profile_url"] == f"https://www.threads.net/@{THREADS_USER['username']}"
    assert identity.credentials["access_token"] == credentials["access_token"]
    await adapter.check_credentials(identity.credentials)

    with pytest.raises(AuthExpired):  # a code is single use
        await adapter.exchange_code(app, q["code"][0], None)


async def test_consent_denied_and_bad_code(adapter, app, sandbox_url):
    oauth_switch(sandbox_url, "deny_next")
    q = parse_qs(urlsplit(consent(adapter, app)).query)
    assert q["error"] == ["access_denied"] and "code" not in q
    with pytest.raises(AuthExpired) as info:
        await adapter.exchange_code(app, "not-a-code", None)
    assert_no_secret(info.value, SECRET)


async def test_refresh_and_its_failures(adapter, app, creds, sandbox_url):
    fresh = await adapter.refresh(app, {**creds, "expires_at": 1.0})
    assert fresh["access_token"] != creds["access_token"]
    assert fresh["expires_at"] > time.time() + 59 * 86400 and fresh["user_id"] == USER_ID
    await adapter.check_credentials(fresh)

    oauth_switch(sandbox_url, "fail_refresh")
    with pytest.raises(AuthExpired) as info:
        await adapter.refresh(app, fresh)
    assert_no_secret(info.value, fresh["access_token"], SECRET)
    assert (await adapter.refresh(app, fresh))["access_token"]  # the switch is one-shot

    oauth_switch(sandbox_url, "expire_access")
    with pytest.raises(AuthExpired):
        await adapter.check_credentials(fresh)
    with pytest.raises(AuthExpired):  # an expired long-lived token cannot be refreshed
        await adapter.refresh(app, fresh)


async def test_token_endpoint_secrets_never_reach_logs(adapter, app, creds, caplog):
    caplog.set_level(logging.INFO, logger="httpx")
    fresh = await adapter.refresh(app, creds)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "refresh_access_token" in logged  # the request was logged...
    assert creds["access_token"] not in logged and fresh["access_token"] not in logged  # ...redacted


# --- publishing ---------------------------------------------------------------------------------------


async def test_publish_text(adapter, creds, sandbox_url):
    text = "Hello from Herald 👋 https://example.com"
    result = await adapter.publish(creds, req(text=text, settings={"replyControl": "accounts_you_follow"}))
    [d] = deliveries(sandbox_url)
    assert (d["id"], d["target"], d["text"], d["kind"]) == (result.provider_post_id, USER_ID, text, "TEXT_POST")
    assert d["replyControl"] == "accounts_you_follow" and d["media"] == [] and d["replyTo"] is None
    assert result.provider_url.startswith(f"https://www.threads.net/@{THREADS_USER['username']}/post/")
    assert result.http_status == 200


async def test_prepare_does_everything_but_publish(adapter, creds, sandbox_url, media_url):
    prepared = await adapter.prepare_publish(creds, req(text="later", media=[mf(media_url, "clip.mp4")]))
    assert deliveries(sandbox_url) == []  # containers made and FINISHED, nothing published yet
    status = API.get(f"{sandbox_url}/threads/graph/v1.0/{prepared.creation_id}",
                     params={"fields": "status"}, headers={"Authorization": f"Bearer {creds['access_token']}"})
    assert status.json()["status"] == "FINISHED"
    assert creds["access_token"] not in repr(prepared)
    t0 = time.time()
    result = await prepared.send()
    assert time.time() - t0 < 1.0  # the send is one call (plus the permalink read)
    assert [d["id"] for d in deliveries(sandbox_url)] == [result.provider_post_id]


async def test_publish_image_reaches_the_network_intact(adapter, creds, sandbox_url, media_url):
    result = await adapter.publish(creds, req(text="a photo", media=[mf(media_url, "photo.jpg", alt="red square")]))
    [d] = deliveries(sandbox_url)
    data = FILES["photo.jpg"][0]
    [m] = d["media"]
    assert (d["id"], d["kind"], d["text"], d["altText"]) == (result.provider_post_id, "IMAGE", "a photo", "red square")
    assert (m["sha256"], m["size"], m["mime"]) == (hashlib.sha256(data).hexdigest(), len(data), "image/jpeg")
    assert (m["image"]["width"], m["image"]["height"], m["filename"]) == (640, 480, "photo.jpg")


async def test_publish_video(adapter, creds, sandbox_url, media_url):
    await adapter.publish(creds, req(media=[mf(media_url, "clip.mp4")]))  # no text: fine for media
    [d] = deliveries(sandbox_url)
    [m] = d["media"]
    assert d["kind"] == "VIDEO" and d["text"] == ""
    assert m["sha256"] == hashlib.sha256(FILES["clip.mp4"][0]).hexdigest()
    assert (m["video"]["codec"], m["video"]["width"], m["video"]["height"]) == ("h264", 64, 48)


async def test_publish_carousel_keeps_order(adapter, creds, sandbox_url, media_url):
    names = ["pic.png", "clip.mp4", "photo.jpg"]
    result = await adapter.publish(creds, req(text="three", media=[mf(media_url, n) for n in names]))
    [d] = deliveries(sandbox_url)
    assert (d["id"], d["kind"], d["text"]) == (result.provider_post_id, "CAROUSEL_ALBUM", "three")
    assert [m["sha256"] for m in d["media"]] == [hashlib.sha256(FILES[n][0]).hexdigest() for n in names]


async def test_reply_then_reconcile_it(adapter, creds, sandbox_url):
    parent = await adapter.publish(creds, req(text="parent"))
    reply = req(post_id="p2", text="a reply", reply_to=parent.provider_post_id, interaction="reply")
    child = await adapter.publish(creds, reply)
    assert deliveries(sandbox_url)[1]["replyTo"] == parent.provider_post_id
    found = await adapter.reconcile(creds, reply, None)  # replies are found under /replies
    assert found.state == "found" and found.result.provider_post_id == child.provider_post_id
    with pytest.raises(ContentRejected):
        await adapter.prepare_publish(creds, req(text="c", reply_to=parent.provider_post_id, interaction="comment"))


async def test_delete(adapter, creds, sandbox_url):
    result = await adapter.publish(creds, req(text="short-lived"))
    await adapter.delete(creds, result.provider_post_id)
    assert deliveries(sandbox_url)[0]["deleted"] is True
    assert (await adapter.reconcile(creds, req(), result.provider_post_id)).state == "absent"
    await adapter.delete(creds, result.provider_post_id)  # already gone: not an error


async def test_reconcile_by_id_and_without_text(adapter, creds, media_url):
    result = await adapter.publish(creds, req(text="findable"))
    found = await adapter.reconcile(creds, req(text="findable"), result.provider_post_id)
    assert found.state == "found" and found.result.provider_url.startswith("https://www.threads.net/@")
    assert (await adapter.reconcile(creds, req(text="never posted"), None)).state == "absent"
    media_only = await adapter.reconcile(creds, req(media=[mf(media_url, "photo.jpg")]), None)
    assert media_only.state == "unknowable"


# --- faults at the irreversible call -------------------------------------------------------------------


async def test_rate_limit_with_the_exact_wait(adapter, creds, sandbox_url):
    prepared = await adapter.prepare_publish(creds, req(text="limited"))
    fault(sandbox_url, kind="rate_limit", retryAfter=120, target=USER_ID)
    with pytest.raises(RateLimited) as info:
        await prepared.send()
    assert info.value.retry_after == 120.0  # estimated_time_to_regain_access: 2 minutes
    assert deliveries(sandbox_url) == []
    assert (await prepared.send()).provider_post_id  # the same container publishes afterwards


async def test_auth_error_and_server_error(adapter, creds, sandbox_url):
    prepared = await adapter.prepare_publish(creds, req(text="x"))
    fault(sandbox_url, kind="auth_error")
    with pytest.raises(AuthExpired) as info:
        await prepared.send()
    assert_no_secret(info.value, creds["access_token"])
    fault(sandbox_url, kind="server_error")
    with pytest.raises(ProviderUnavailable):
        await prepared.send()
    fault(sandbox_url, kind="reject_content")
    with pytest.raises(ContentRejected) as info:
        await prepared.send()
    assert "2207051" in info.value.message
    assert deliveries(sandbox_url) == []


async def test_drop_after_accept_then_reconcile_finds_it(adapter, creds, sandbox_url):
    request = req(text="did it post?")
    prepared = await adapter.prepare_publish(creds, request)
    fault(sandbox_url, kind="drop_after_accept")
    with pytest.raises(OutcomeUnknown):
        await prepared.send()
    [d] = deliveries(sandbox_url)
    found = await adapter.reconcile(creds, request, None)
    assert found.state == "found" and found.result.provider_post_id == d["id"]
    with pytest.raises(OutcomeUnknown, match="already been published"):  # a blind resend cannot duplicate
        await prepared.send()
    assert len(deliveries(sandbox_url)) == 1  # no duplicate


async def test_timeout_is_outcome_unknown_then_absent(sandbox_url, creds):
    async with httpx.AsyncClient(timeout=0.5, verify=SSL_CONTEXT) as short:
        adapter = ThreadsAdapter(short, f"{sandbox_url}/threads/graph")
        request = req(text="slow network")
        prepared = await adapter.prepare_publish(creds, request)
        fault(sandbox_url, kind="timeout", delaySeconds=3)
        with pytest.raises(OutcomeUnknown):
            await prepared.send()
        assert (await adapter.reconcile(creds, request, None)).state == "absent"


async def test_spent_quota_is_refused_before_publishing(adapter, creds, sandbox_url):
    parent = await adapter.publish(creds, req(text="p"))
    API.post(f"{sandbox_url}/_sandbox/threads/quota", json={"quotaUsage": 249}).raise_for_status()
    with pytest.raises(RateLimited) as info:  # 249 + the post above = 250
        await adapter.prepare_publish(creds, req(text="one too many"))
    assert info.value.retry_after == 3600.0 and "250 of 250 posts" in info.value.message
    # replies have their own quota of 1,000
    await adapter.publish(creds, req(text="r", reply_to=parent.provider_post_id, interaction="reply"))
    API.post(f"{sandbox_url}/_sandbox/threads/quota", json={"replyQuotaUsage": 999}).raise_for_status()
    with pytest.raises(RateLimited):
        await adapter.prepare_publish(creds, req(text="r2", reply_to=parent.provider_post_id))
    quota = await adapter.run_action(None, creds, "publishing_quota")
    assert quota == {"quotaUsage": 250, "quotaTotal": 250, "quotaDurationSeconds": 86400,
                     "replyQuotaUsage": 1000, "replyQuotaTotal": 1000}


# --- the sandbox refuses what Threads refuses ---------------------------------------------------------


async def test_sandbox_refuses_malformed_requests_in_graph_shape(creds, sandbox_url):
    headers = {"Authorization": f"Bearer {creds['access_token']}"}
    base = f"{sandbox_url}/threads/graph/v1.0/{USER_ID}"
    missing = API.post(f"{base}/threads", data={"text": "no media_type"}, headers=headers)
    assert missing.status_code == 400
    assert missing.json()["error"]["code"] == 100 and missing.json()["error"]["type"] == "OAuthException"
    assert "fbtrace_id" in missing.json()["error"]
    # a container published before it is FINISHED, like an adapter that skips polling
    video = API.post(f"{base}/threads", headers=headers,
                     data={"media_type": "VIDEO", "video_url": "http://127.0.0.1:9/never.mp4"}).json()["id"]
    early = API.post(f"{base}/threads_publish", data={"creation_id": video}, headers=headers)
    assert early.status_code == 400 and early.json()["error"]["error_subcode"] == 2207027
    typo = API.get(f"{sandbox_url}/threads/graph/v1.0/me", params={"fields": "id,nmae"}, headers=headers)
    assert "nonexisting field (nmae)" in typo.json()["error"]["message"]
    anon = API.get(f"{sandbox_url}/threads/graph/v1.0/me", params={"access_token": "garbage"})
    assert anon.status_code == 400 and anon.json()["error"]["code"] == 190
    assert deliveries(sandbox_url) == []


async def test_adapter_maps_network_refusals(adapter, creds, media_url):
    with pytest.raises(ContentRejected) as info:  # check_post bypassed: the network says no
        await adapter.prepare_publish(creds, req(text="x" * 497 + "😀"))
    assert "at most 500 characters" in info.value.message
    with pytest.raises(ContentRejected, match="LINK_LIMIT_EXCEEDED"):
        await adapter.prepare_publish(creds, req(text=" ".join(f"http://e.com/{i}" for i in range(6))))
    with pytest.raises(ContentRejected, match="aspect ratio"):
        await adapter.prepare_publish(creds, req(media=[mf(media_url, "wide.png")]))
    with pytest.raises(ContentRejected, match="JPEG"):
        await adapter.prepare_publish(creds, req(media=[mf(media_url, "anim.gif")]))
    with pytest.raises(ContentRejected, match="INVALID_FRAME_RATE"):
        await adapter.prepare_publish(creds, req(media=[mf(media_url, "slow.mp4")]))
    with pytest.raises(ProviderUnavailable, match="FAILED_DOWNLOADING_VIDEO"):
        await adapter.prepare_publish(creds, req(media=[mf(media_url, "gone.mp4")]))
    with pytest.raises(ContentRejected, match="not a Threads post"):
        await adapter.prepare_publish(creds, req(text="orphan", reply_to="1234", interaction="reply"))
    no_url = mf(media_url, "photo.jpg").model_copy(update={"url": None})
    with pytest.raises(ContentRejected, match="public URL"):
        await adapter.prepare_publish(creds, req(media=[no_url]))


async def test_revoked_grant_is_auth_expired_everywhere(adapter, creds, sandbox_url):
    oauth_switch(sandbox_url, "revoke")
    for call in (adapter.check_credentials(creds), adapter.prepare_publish(creds, req(text="x")),
                 adapter.delete(creds, "1800000000000007919")):
        with pytest.raises(AuthExpired) as info:
            await call
        assert_no_secret(info.value, creds["access_token"])
