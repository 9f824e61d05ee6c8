"""FacebookAdapter against the real sandbox over HTTP (Facebook Login + Pages Graph API)."""

from __future__ import annotations

import hashlib
import io
import json
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
from providers.facebook import LIMITS, MEDIA_PROFILES, FacebookAdapter
from providers.graph import GRAPH_VERSION, graph_error, regain_seconds
from providers.oauth import OAuthApp
from sandbox.test_users import FACEBOOK_PAGES, FACEBOOK_USER
from tests.support import SSL_CONTEXT

API = httpx.Client(timeout=10, verify=SSL_CONTEXT)
PAGE_ID = FACEBOOK_PAGES[0]["id"]
V = GRAPH_VERSION


@pytest.fixture(autouse=True)
def _reset(clean_sandbox):
    """Every test starts from an empty sandbox."""


@pytest.fixture
def app(sandbox_url) -> OAuthApp:
    return OAuthApp(app="facebook", client_id="fb-app-1234", client_secret="fb-secret-xyz",
                    redirect_uri="https://herald.test/oauth/facebook/callback",
                    auth_base=f"{sandbox_url}/facebook/www", token_base=f"{sandbox_url}/facebook/graph")


@pytest.fixture
def adapter(sandbox_url, http) -> FacebookAdapter:
    return FacebookAdapter(http, f"{sandbox_url}/facebook/graph")


async def login(adapter: FacebookAdapter, app: OAuthApp, http: httpx.AsyncClient) -> dict:
    url = adapter.authorize_url(app, "st-123", None)
    response = await http.get(url)
    assert response.status_code == 302
    query = parse_qs(urlsplit(response.headers["location"]).query)
    assert query["state"] == ["st-123"]
    return await adapter.exchange_code(app, query["code"][0], None)


@pytest.fixture
async def creds(adapter, app, http) -> dict:
    user = await login(adapter, app, http)
    accounts = await adapter.discover(app, user)
    return next(a for a in accounts if a.external_id == PAGE_ID).credentials


def deliveries(sandbox_url) -> list[dict]:
    return API.get(f"{sandbox_url}/_sandbox/deliveries", params={"provider": "facebook"}).json()["deliveries"]


def fault(sandbox_url, **body) -> None:
    API.post(f"{sandbox_url}/_sandbox/faults", json={"provider": "facebook", **body}).raise_for_status()


def jpeg(w: int, h: int, color=(200, 30, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), color).save(buf, "JPEG")
    return buf.getvalue()


def media_file(tmp_path: Path, name: str, data: bytes, mime: str, kind: str, alt: str | None = None) -> MediaFile:
    path = tmp_path / name
    path.write_bytes(data)
    return MediaFile(path=str(path), filename=name, mime=mime, size=len(data),
                     sha256=hashlib.sha256(data).hexdigest(), kind=kind, alt_text=alt)


@pytest.fixture(scope="module")
def clip() -> bytes:
    """A 3 s, 540x960, 24 fps H.264 MP4: the smallest video a reel or story takes [C specs]."""
    import av

    buf = io.BytesIO()
    container = av.open(buf, "w", format="mp4")
    stream = container.add_stream("libx264", rate=24)
    stream.width, stream.height, stream.pix_fmt = 540, 960, "yuv420p"
    stream.options = {"preset": "ultrafast"}
    for i in range(72):
        frame = av.VideoFrame.from_image(Image.new("RGB", (540, 960), (i * 3 % 255, 90, 40)))
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()
    return buf.getvalue()


def assert_no_secret(exc: BaseException, *secrets: str) -> None:
    for text in (str(exc), repr(exc), getattr(exc, "message", "")):
        for secret in secrets:
            assert secret not in text


# --- check_post -----------------------------------------------------------------------------------


def check(**kw) -> list[tuple[str, str]]:
    return [(p.field, p.message) for p in FacebookAdapter.check_post(PostDraft(provider="facebook", **kw))]


def test_limits_and_profiles_are_data_with_sources():
    assert LIMITS.max_text_chars == 63_206 and LIMITS.max_media == 10
    assert "postiz" in LIMITS.source and "page-stories-api" in LIMITS.source
    assert set(MEDIA_PROFILES["facebook"]) == {None, "feed", "reel", "story"}
    assert MEDIA_PROFILES["facebook"]["reel"].image is None
    assert MEDIA_PROFILES["facebook"]["story"].video.max_duration == 60.0
    assert FacebookAdapter.shapes and FacebookAdapter.settings_fields[0]["id"] == "link"


def test_check_post_text_boundary_and_empty():
    assert check(text="x" * 63_206) == []
    assert check(text="x" * 63_207) == [("description", "63,207 characters, facebook allows 63,206")]
    assert check(text="  ") == [("description", "the post is empty: facebook needs text, a link or media")]
    assert check(settings={"link": "https://example.com/a"}) == []


def test_check_post_media_rules():
    photos = [MediaRef(url=f"https://x/{i}.jpg") for i in range(11)]
    assert check(text="t", media=photos[:10]) == []
    assert check(text="t", media=photos) == [("assets", "11 photos, facebook allows 10 in one post")]
    mixed = [MediaRef(url="https://x/a.jpg"), MediaRef(url="https://x/b.mp4")]
    assert check(text="t", media=mixed) == [("assets", "a facebook post carries one video, or up to 10 photos, not both")]
    assert check(text="t", media=[MediaRef(url="https://x/a.pdf")]) == [("assets[0]", "facebook posts photos and videos only")]
    assert ("settings.link", "a facebook link post cannot carry photos or videos") in check(
        text="t", media=photos[:1], settings={"link": "https://e.com"})


def test_check_post_settings_and_comments():
    assert check(text="t", settings={"link": "ftp://x"}) == [("settings.link", "must be an http(s) URL")]
    assert check(text="t", settings={"lnk": "x"})[0][0] == "settings.lnk"
    assert check(text="nice", is_reply=True) == []
    two = [MediaRef(url="https://x/a.jpg"), MediaRef(url="https://x/b.jpg")]
    assert check(text="t", is_reply=True, media=two) == [("assets", "a facebook comment can carry one photo at most")]


# --- OAuth ----------------------------------------------------------------------------------------


async def test_oauth_round_trip_and_discovery(adapter, app, http, sandbox_url):
    url = adapter.authorize_url(app, "st-1", None)
    parts = urlsplit(url)
    assert parts.path == f"/facebook/www/{V}/dialog/oauth"
    query = parse_qs(parts.query)
    assert query["client_id"] == ["fb-app-1234"] and query["redirect_uri"] == [app.redirect_uri]
    assert query["response_type"] == ["code"] and query["state"] == ["st-1"]
    assert "pages_manage_posts" in query["scope"][0].split(",")
    before = time.time()
    user = await login(adapter, app, http)
    # The long-lived exchange happened: ~60 days, not the 1.5 h of the code's token.
    assert user["expires_at"] - before > 50 * 86400
    assert user["app_id"] == "fb-app-1234" and "refresh_token" not in user
    seen = API.get(f"{sandbox_url}/_sandbox/oauth/authorizations").json()["authorizations"]
    assert seen[-1]["network"] == "facebook" and "pages_show_list" in seen[-1]["scope"]

    accounts = await adapter.discover(app, user)
    assert [a.handle for a in accounts] == [f"facebook:{p['id']}" for p in FACEBOOK_PAGES]
    first = accounts[0]
    assert first.display_name == FACEBOOK_PAGES[0]["name"] and first.account_type == "page"
    c = first.credentials
    assert c["page_id"] == PAGE_ID and c["page_access_token"] == c["access_token"] != user["access_token"]
    assert c["user_access_token"] == user["access_token"] and c["user_expires_at"] == user["expires_at"]
    assert "expires_at" not in c  # Page tokens from a long-lived user token do not expire
    assert "CREATE_CONTENT" in first.metadata["tasks"]
    await adapter.check_credentials(c)
    assert await adapter.refresh(app, c) is None
    result = await adapter.run_action(app, c, "sync_pages")
    assert result["stillManaged"] is True and len(result["pages"]) == 2
    with pytest.raises(ValueError):
        await adapter.run_action(app, c, "nope")


async def test_consent_denied_and_code_reuse(adapter, app, http, sandbox_url):
    API.post(f"{sandbox_url}/_sandbox/oauth", json={"network": "facebook", "action": "deny_next"}).raise_for_status()
    response = await http.get(adapter.authorize_url(app, "st-2", None))
    assert parse_qs(urlsplit(response.headers["location"]).query)["error"] == ["access_denied"]
    response = await http.get(adapter.authorize_url(app, "st-3", None))
    code = parse_qs(urlsplit(response.headers["location"]).query)["code"][0]
    await adapter.exchange_code(app, code, None)
    with pytest.raises(AuthExpired) as err:
        await adapter.exchange_code(app, code, None)  # single use
    assert_no_secret(err.value, app.client_secret, code)


async def test_revoked_token_means_reauth(adapter, creds, sandbox_url):
    API.post(f"{sandbox_url}/_sandbox/oauth", json={"network": "facebook", "action": "revoke"}).raise_for_status()
    with pytest.raises(AuthExpired) as err:
        await adapter.check_credentials(creds)
    assert "190" in err.value.message
    assert_no_secret(err.value, creds["access_token"])


# --- publishing -----------------------------------------------------------------------------------


async def test_text_and_link_post(adapter, creds, sandbox_url):
    req = PublishRequest(post_id="p1", text="Hello Page", settings={"link": "https://example.com/x"})
    result = await adapter.publish(creds, req)
    assert result.provider_post_id.startswith(f"{PAGE_ID}_")
    assert result.provider_url == f"https://www.facebook.com/{PAGE_ID}/posts/{result.provider_post_id.split('_')[1]}"
    [d] = deliveries(sandbox_url)
    assert (d["id"], d["target"], d["text"], d["link"], d["kind"]) == (
        result.provider_post_id, PAGE_ID, "Hello Page", "https://example.com/x", "feed")
    found = await adapter.reconcile(creds, req, result.provider_post_id)
    assert found.state == "found"


async def test_photo_upload_is_prepared_and_send_attaches(adapter, creds, sandbox_url, tmp_path):
    data = jpeg(64, 48)
    req = PublishRequest(post_id="p2", text="one photo", media=[media_file(tmp_path, "a.jpg", data, "image/jpeg", "image")])
    prepared = await adapter.prepare_publish(creds, req)
    assert deliveries(sandbox_url) == []  # the unpublished upload left no post
    result = await prepared.send()
    [d] = deliveries(sandbox_url)
    assert d["id"] == result.provider_post_id and d["text"] == "one photo"
    [m] = d["media"]
    assert (m["sha256"], m["size"], m["image"]["width"], m["image"]["height"]) == (
        hashlib.sha256(data).hexdigest(), len(data), 64, 48)


async def test_multi_photo_post_keeps_order(adapter, creds, sandbox_url, tmp_path):
    blobs = [jpeg(30 + i, 20, (i * 60, 0, 0)) for i in range(3)]
    media = [media_file(tmp_path, f"{i}.jpg", b, "image/jpeg", "image") for i, b in enumerate(blobs)]
    result = await adapter.publish(creds, PublishRequest(post_id="p3", text="three", media=media))
    [d] = deliveries(sandbox_url)
    assert d["id"] == result.provider_post_id
    assert [m["sha256"] for m in d["media"]] == [hashlib.sha256(b).hexdigest() for b in blobs]
    assert [m["image"]["width"] for m in d["media"]] == [30, 31, 32]


async def test_video_goes_through_resumable_upload(adapter, creds, sandbox_url, tmp_path, clip):
    video = media_file(tmp_path, "v.mp4", clip, "video/mp4", "video")
    req = PublishRequest(post_id="p4", text="a video", title="Title", media=[video])
    prepared = await adapter.prepare_publish(creds, req)
    assert "fbuploader_video_file_chunk" in prepared._request.content.decode()  # the handle, no bytes
    assert len(prepared._request.content) < 1000
    result = await prepared.send()
    assert result.provider_url == f"https://www.facebook.com/{PAGE_ID}/videos/{result.provider_post_id}"
    [d] = deliveries(sandbox_url)
    assert (d["kind"], d["text"], d["title"]) == ("video", "a video", "Title")
    [m] = d["media"]
    assert m["sha256"] == hashlib.sha256(clip).hexdigest() and m["video"]["codec"] == "h264"
    # Without a user token (it expired) the bytes go with the publish call instead.
    creds_no_user = {k: v for k, v in creds.items() if k != "user_access_token"}
    await adapter.publish(creds_no_user, PublishRequest(post_id="p5", text="again", media=[video]))
    assert deliveries(sandbox_url)[-1]["media"][0]["size"] == len(clip)


async def test_comment_with_photo_and_reconcile(adapter, creds, sandbox_url, tmp_path):
    parent = await adapter.publish(creds, PublishRequest(post_id="p6", text="parent"))
    data = jpeg(20, 20)
    req = PublishRequest(post_id="p7", text="first comment", reply_to=parent.provider_post_id, interaction="comment",
                         media=[media_file(tmp_path, "c.jpg", data, "image/jpeg", "image")])
    result = await adapter.publish(creds, req)
    d = deliveries(sandbox_url)[-1]
    assert (d["id"], d["kind"], d["replyTo"], d["text"]) == (
        result.provider_post_id, "comment", parent.provider_post_id, "first comment")
    assert d["media"][0]["sha256"] == hashlib.sha256(data).hexdigest()
    found = await adapter.reconcile(creds, req, None)
    assert found.state == "found" and found.result.provider_post_id == result.provider_post_id


async def test_delete_then_absent(adapter, creds, sandbox_url):
    req = PublishRequest(post_id="p8", text="to delete")
    result = await adapter.publish(creds, req)
    await adapter.delete(creds, result.provider_post_id)
    assert (await adapter.reconcile(creds, req, result.provider_post_id)).state == "absent"
    assert (await adapter.reconcile(creds, req, None)).state == "absent"
    await adapter.delete(creds, result.provider_post_id)  # already gone: fine


async def test_photo_story_and_reel(adapter, creds, sandbox_url, tmp_path, clip):
    data = jpeg(90, 160)
    story = await adapter.publish(creds, PublishRequest(
        post_id="s1", post_type="story", media=[media_file(tmp_path, "s.jpg", data, "image/jpeg", "image")]))
    video = media_file(tmp_path, "r.mp4", clip, "video/mp4", "video")
    req = PublishRequest(post_id="r1", text="my reel", post_type="reel", media=[video])
    prepared = await adapter.prepare_publish(creds, req)
    assert len(deliveries(sandbox_url)) == 1  # the reel's bytes are uploaded, nothing published yet
    reel = await prepared.send()
    vstory = await adapter.publish(creds, PublishRequest(post_id="s2", post_type="story", media=[video]))
    d_story, d_reel, d_vstory = deliveries(sandbox_url)
    assert (d_story["kind"], d_story["id"], d_story["media"][0]["image"]["height"]) == ("story", story.provider_post_id, 160)
    assert (d_reel["kind"], d_reel["id"], d_reel["text"]) == ("reel", reel.provider_post_id, "my reel")
    assert reel.provider_url == f"https://www.facebook.com/reel/{reel.provider_post_id}"
    assert d_vstory["kind"] == "story" and d_vstory["media"][0]["video"]["height"] == 960
    assert vstory.provider_post_id == d_vstory["id"]
    assert (await adapter.reconcile(creds, req, None)).result.provider_post_id == reel.provider_post_id
    with pytest.raises(ContentRejected):
        await adapter.prepare_publish(creds, PublishRequest(post_id="r2", post_type="reel", media=[]))


# --- faults ---------------------------------------------------------------------------------------


async def test_rate_limit_uses_buc_regain_time(adapter, creds, sandbox_url):
    fault(sandbox_url, kind="rate_limit", retryAfter=120, target=PAGE_ID)
    with pytest.raises(RateLimited) as err:
        await adapter.publish(creds, PublishRequest(post_id="f1", text="throttled"))
    assert err.value.retry_after == 120.0 and "(#32)" in err.value.message
    assert deliveries(sandbox_url) == []


async def test_auth_server_and_content_faults(adapter, creds, sandbox_url):
    fault(sandbox_url, kind="auth_error")
    with pytest.raises(AuthExpired) as err:
        await adapter.publish(creds, PublishRequest(post_id="f2", text="a"))
    assert_no_secret(err.value, creds["access_token"])
    fault(sandbox_url, kind="server_error")
    with pytest.raises(ProviderUnavailable):
        await adapter.publish(creds, PublishRequest(post_id="f3", text="b"))
    fault(sandbox_url, kind="reject_content")
    with pytest.raises(ContentRejected) as err:
        await adapter.publish(creds, PublishRequest(post_id="f4", text="c"))
    assert "(#368" in err.value.message
    assert deliveries(sandbox_url) == []


async def test_drop_after_accept_then_reconcile_finds_it(adapter, creds, sandbox_url):
    fault(sandbox_url, kind="drop_after_accept")
    req = PublishRequest(post_id="f5", text="dropped but posted")
    with pytest.raises(OutcomeUnknown):
        await adapter.publish(creds, req)
    [d] = deliveries(sandbox_url)
    found = await adapter.reconcile(creds, req, None)
    assert found.state == "found" and found.result.provider_post_id == d["id"]
    assert len(deliveries(sandbox_url)) == 1  # nothing was posted twice


async def test_sandbox_refuses_malformed_requests(creds, sandbox_url):
    base = f"{sandbox_url}/facebook/graph/{V}"
    page_auth = {"Authorization": f"OAuth {creds['page_access_token']}"}
    empty = API.post(f"{base}/{PAGE_ID}/feed", headers=page_auth, data={})
    assert empty.status_code == 400
    err = empty.json()["error"]
    assert (err["code"], err["type"]) == (100, "OAuthException") and err["fbtrace_id"]
    assert json.loads(empty.headers["x-app-usage"])["call_count"] >= 0
    assert PAGE_ID in json.loads(empty.headers["x-business-use-case-usage"])
    as_user = API.post(f"{base}/{PAGE_ID}/feed", headers={"Authorization": f"OAuth {creds['user_access_token']}"},
                       data={"message": "x"})
    assert as_user.json()["error"]["code"] == 200
    bad_media = API.post(f"{base}/{PAGE_ID}/feed", headers=page_auth,
                         data={"message": "x", "attached_media[0]": json.dumps({"media_fbid": "999"})})
    assert bad_media.json()["error"]["code"] == 100
    query_token = API.post(f"{base}/upload:nope", params={"access_token": creds["user_access_token"]},
                           headers={"file_offset": "0"}, content=b"x")
    assert query_token.json()["error"]["code"] == 190  # the upload token must be in the header
    assert API.get(f"{base}/me", headers={"Authorization": "OAuth nope"}).json()["error"]["code"] == 190
    me = API.get(f"{base}/me", headers={"Authorization": f"OAuth {creds['user_access_token']}"}).json()
    assert me["id"] == FACEBOOK_USER["id"]


def test_graph_error_classification():
    def resp(status, body, headers=None):
        return httpx.Response(status, json=body, headers=headers or {},
                              request=httpx.Request("POST", "https://graph.facebook.com/x"))

    buc = {"X-Business-Use-Case-Usage": json.dumps({"1": [{"type": "pages", "call_count": 100,
                                                          "estimated_time_to_regain_access": 7}]})}
    limited = graph_error(resp(400, {"error": {"code": 80001, "message": "slow"}}, buc), network="facebook")
    assert isinstance(limited, RateLimited) and limited.retry_after == 420.0
    assert regain_seconds(resp(200, {})) is None
    assert isinstance(graph_error(resp(400, {"error": {"code": 4}}), network="facebook"), RateLimited)
    assert isinstance(graph_error(resp(400, {"error": {"code": 190, "error_subcode": 463}}), network="facebook"), AuthExpired)
    assert isinstance(graph_error(resp(500, {"error": {"code": 2, "is_transient": True}}), network="facebook"),
                      ProviderUnavailable)
    assert isinstance(graph_error(resp(400, {"error": {"code": 506}}), network="facebook"), ContentRejected)
    assert isinstance(graph_error(resp(504, None), network="facebook", publishing=True), OutcomeUnknown)
    secret = graph_error(resp(400, {"error": {"code": 100, "message": "bad tok-SECRET"}}), network="facebook",
                         secrets=["tok-SECRET"])
    assert "tok-SECRET" not in secret.message
