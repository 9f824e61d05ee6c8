"""Both Instagram adapters (Facebook Login: instagram_business; Instagram Login: instagram) against
the real sandbox over HTTP. Media is served to the sandbox by a small server of our own, since
Instagram only takes media by public URL."""

from __future__ import annotations

import hashlib
import io
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from PIL import Image
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from providers.base import (
    AuthExpired,
    ContentRejected,
    MediaFile,
    MediaRef,
    OutcomeUnknown,
    PostDraft,
    ProviderError,
    ProviderUnavailable,
    PublishRequest,
    RateLimited,
)
from providers.graph import GRAPH_VERSION
from providers.instagram import (
    LIMITS,
    MEDIA_PROFILES,
    InstagramBusinessAdapter,
    InstagramLoginAdapter,
)
from providers.oauth import OAuthApp
from sandbox.test_users import FACEBOOK_PAGES, INSTAGRAM_BUSINESS_ACCOUNTS, INSTAGRAM_LOGIN_USER
from tests.support import SSL_CONTEXT, serve_in_thread

API = httpx.Client(timeout=10, verify=SSL_CONTEXT)
V = GRAPH_VERSION
BIZ_IG = next(iter(INSTAGRAM_BUSINESS_ACCOUNTS))
LOGIN_IG = INSTAGRAM_LOGIN_USER["user_id"]
FILES: dict[str, tuple[bytes, str]] = {}


@pytest.fixture(scope="module")
def media_base():
    """A public-URL server for the media (what Herald's /media/... endpoint is in production)."""

    async def serve(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in FILES:
            return Response(status_code=404)
        data, mime = FILES[name]
        return Response(data, media_type=mime)

    with serve_in_thread(Starlette(routes=[Route("/m/{name}", serve)])) as url:
        yield url


@pytest.fixture(autouse=True)
def _reset(clean_sandbox):
    FILES.clear()


def jpeg(w: int, h: int, color=(10, 120, 200), fmt: str = "JPEG") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), color).save(buf, fmt)
    return buf.getvalue()


def make_clip(seconds: float, w: int = 108, h: int = 192) -> bytes:
    import av

    buf = io.BytesIO()
    container = av.open(buf, "w", format="mp4")
    stream = container.add_stream("libx264", rate=24)
    stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
    stream.options = {"preset": "ultrafast"}
    for i in range(int(seconds * 24)):
        for packet in stream.encode(av.VideoFrame.from_image(Image.new("RGB", (w, h), (i * 5 % 255, 30, 90)))):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()
    return buf.getvalue()


@pytest.fixture(scope="module")
def clip() -> bytes:
    return make_clip(3.0)  # reels are 3 s to 15 min [3P §3]


def served(tmp_path: Path, media_base: str, name: str, data: bytes, mime: str, kind: str,
           alt: str | None = None, url: bool = True) -> MediaFile:
    FILES[name] = (data, mime)
    path = tmp_path / name
    path.write_bytes(data)
    return MediaFile(path=str(path), filename=name, mime=mime, size=len(data), kind=kind, alt_text=alt,
                     sha256=hashlib.sha256(data).hexdigest(), url=f"{media_base}/m/{name}" if url else None)


def fb_app(sandbox_url: str) -> OAuthApp:
    return OAuthApp(app="facebook", client_id="fb-app-1234", client_secret="fb-secret-xyz",
                    redirect_uri="https://herald.test/oauth/instagram_business/callback",
                    auth_base=f"{sandbox_url}/facebook/www", token_base=f"{sandbox_url}/facebook/graph")


def ig_app(sandbox_url: str) -> OAuthApp:
    return OAuthApp(app="instagram", client_id="ig-app-77", client_secret="ig-secret-abc",
                    redirect_uri="https://herald.test/oauth/instagram/callback",
                    auth_base=f"{sandbox_url}/instagram/www", token_base=f"{sandbox_url}/instagram/api")


async def consent(adapter, app: OAuthApp, http: httpx.AsyncClient) -> dict:
    response = await http.get(adapter.authorize_url(app, "st-9", None))
    assert response.status_code == 302
    query = parse_qs(urlsplit(response.headers["location"]).query)
    assert query["state"] == ["st-9"]
    return await adapter.exchange_code(app, query["code"][0], None)


@pytest.fixture(params=["instagram_business", "instagram"])
async def ig(request, sandbox_url, http):
    """(adapter, account credentials, provider id, ig user id) for each way in."""
    if request.param == "instagram_business":
        adapter, app, ig_id = InstagramBusinessAdapter(http, f"{sandbox_url}/instagram_business/graph"), \
            fb_app(sandbox_url), BIZ_IG
    else:
        adapter, app, ig_id = InstagramLoginAdapter(http, f"{sandbox_url}/instagram/graph"), ig_app(sandbox_url), LOGIN_IG
    user = await consent(adapter, app, http)
    [account] = await adapter.discover(app, user)
    assert account.external_id == ig_id
    return adapter, account.credentials, request.param, ig_id


def deliveries(sandbox_url: str, provider: str) -> list[dict]:
    return API.get(f"{sandbox_url}/_sandbox/deliveries", params={"provider": provider}).json()["deliveries"]


def fault(sandbox_url: str, provider: str, **body) -> None:
    API.post(f"{sandbox_url}/_sandbox/faults", json={"provider": provider, **body}).raise_for_status()


def control(sandbox_url: str, provider: str, **body) -> None:
    API.post(f"{sandbox_url}/{provider}/_sandbox", json=body).raise_for_status()


# --- check_post -----------------------------------------------------------------------------------


def check(adapter_cls=InstagramLoginAdapter, **kw) -> list[tuple[str, str]]:
    return [(p.field, p.message) for p in adapter_cls.check_post(PostDraft(provider=adapter_cls.provider, **kw))]


ONE = [MediaRef(url="https://x/a.jpg")]


def test_limits_and_profiles():
    assert (LIMITS.max_text_chars, LIMITS.max_media) == (2200, 10) and "postiz" in LIMITS.source
    assert MEDIA_PROFILES["instagram"] is MEDIA_PROFILES["instagram_business"]
    feed = MEDIA_PROFILES["instagram"][None]
    assert feed.image.formats == ("image/jpeg",) and (feed.image.min_aspect, feed.image.max_aspect) == (0.8, 1.91)
    assert MEDIA_PROFILES["instagram"]["reel"].image is None
    assert MEDIA_PROFILES["instagram"]["story"].video.max_duration == 60.0
    assert InstagramLoginAdapter.can_delete is False and InstagramBusinessAdapter.can_delete is False


def test_check_post_caption_boundaries():
    assert check(text="x" * 2200, media=ONE) == []
    assert check(text="x" * 2201, media=ONE) == [("description", "2,201 characters, instagram allows 2,200")]
    assert check(text=" ".join(f"#t{i}" for i in range(30)), media=ONE) == []
    assert check(text=" ".join(f"#t{i}" for i in range(31)), media=ONE) == [("description", "31 hashtags, instagram allows 30")]
    assert check(text=" ".join(f"@u{i}" for i in range(21)), media=ONE) == [("description", "21 @mentions, instagram allows 20")]
    assert check(text="email a@b.c is not a mention", media=ONE) == []


def test_check_post_media_and_settings():
    assert check(text="hi") == [("assets", "instagram posts need at least one photo or video")]
    many = [MediaRef(url=f"https://x/{i}.jpg") for i in range(11)]
    assert check(media=many[:10]) == []
    assert check(media=many) == [("assets", "11 media items, instagram allows 10 in a carousel")]
    assert check(media=[MediaRef(url="https://x/a.pdf")]) == [("assets[0]", "instagram posts photos and videos only")]
    assert check(InstagramBusinessAdapter, media=ONE, settings={"shareToFeed": "yes", "thumbOffset": -1,
                                                                 "collaborators": ["a", "b", "c", "d"]}) == [
        ("settings.shareToFeed", "must be true or false"),
        ("settings.thumbOffset", "must be a whole number of milliseconds >= 0"),
        ("settings.collaborators", "4 collaborators, instagram allows 3"),
    ]
    assert check(media=ONE, settings={"caption": "x"})[0][0] == "settings.caption"
    assert check(text="nice", is_reply=True) == []
    assert check(text="nice", is_reply=True, media=ONE) == [("assets", "an instagram comment is text only")]


# --- OAuth ----------------------------------------------------------------------------------------


async def test_facebook_login_discovers_the_linked_account(sandbox_url, http):
    adapter = InstagramBusinessAdapter(http, f"{sandbox_url}/instagram_business/graph")
    app = fb_app(sandbox_url)
    parts = urlsplit(adapter.authorize_url(app, "s", None))
    assert parts.path == f"/facebook/www/{V}/dialog/oauth"
    scope = parse_qs(parts.query)["scope"][0].split(",")
    assert {"instagram_basic", "instagram_content_publish", "pages_show_list"} <= set(scope)
    user = await consent(adapter, app, http)
    assert user["expires_at"] - time.time() > 50 * 86400
    accounts = await adapter.discover(app, user)
    assert [a.handle for a in accounts] == [f"instagram_business:{BIZ_IG}"]  # the second Page has no IG
    c = accounts[0].credentials
    assert c["page_id"] == FACEBOOK_PAGES[0]["id"] and c["user_access_token"] == user["access_token"]
    assert c["access_token"] != user["access_token"]  # publishing uses the Page token
    assert accounts[0].metadata["username"] == INSTAGRAM_BUSINESS_ACCOUNTS[BIZ_IG]["username"]
    await adapter.check_credentials(c)
    assert await adapter.refresh(app, c) is None
    assert (await adapter.run_action(app, c, "sync_accounts"))["stillLinked"] is True


async def test_instagram_login_round_trip_and_refresh(sandbox_url, http):
    adapter = InstagramLoginAdapter(http, f"{sandbox_url}/instagram/graph")
    app = ig_app(sandbox_url)
    parts = urlsplit(adapter.authorize_url(app, "s", None))
    assert parts.path == "/instagram/www/oauth/authorize"
    query = parse_qs(parts.query)
    assert query["scope"] == ["instagram_business_basic,instagram_business_content_publish,"
                              "instagram_business_manage_comments"]
    assert query["client_id"] == ["ig-app-77"] and query["response_type"] == ["code"]
    user = await consent(adapter, app, http)
    assert 59 * 86400 < user["expires_at"] - time.time() <= 60 * 86400  # long-lived, not the 1 h token
    [account] = await adapter.discover(app, user)
    assert (account.handle, account.account_type) == (f"instagram:{LOGIN_IG}", "business")
    creds = account.credentials

    # Younger than 24 h: nothing to do yet, and no call is made (the token is still good).
    assert await adapter.refresh(app, creds) == creds
    # Our clock says old enough but Instagram says too young: refused, yet not a dead grant.
    with pytest.raises(ProviderError) as err:
        await adapter.refresh(app, {**creds, "issued_at": time.time() - 2 * 86400})
    assert not isinstance(err.value, AuthExpired) and err.value.code == "token_refused"
    assert creds["access_token"] not in err.value.message

    control(sandbox_url, "instagram", ageTokensSeconds=25 * 3600)
    old = {**creds, "issued_at": time.time() - 25 * 3600}
    fresh = await adapter.refresh(app, old)
    assert fresh["access_token"] != creds["access_token"] and fresh["ig_user_id"] == LOGIN_IG
    assert fresh["expires_at"] - time.time() > 59 * 86400 and time.time() - fresh["issued_at"] < 5
    await adapter.check_credentials(fresh)

    control(sandbox_url, "instagram", ageTokensSeconds=25 * 3600)
    API.post(f"{sandbox_url}/_sandbox/oauth", json={"network": "instagram", "action": "fail_refresh"}).raise_for_status()
    with pytest.raises(AuthExpired):
        await adapter.refresh(app, {**fresh, "issued_at": 0})


async def test_instagram_login_code_errors(sandbox_url, http):
    adapter = InstagramLoginAdapter(http, f"{sandbox_url}/instagram/graph")
    with pytest.raises(AuthExpired) as err:
        await adapter.exchange_code(ig_app(sandbox_url), "not-a-code", None)
    assert "ig-secret-abc" not in err.value.message


# --- publishing -----------------------------------------------------------------------------------


async def test_single_image_with_alt_text(ig, sandbox_url, tmp_path, media_base):
    adapter, creds, provider, ig_id = ig
    data = jpeg(100, 100)
    req = PublishRequest(post_id="p1", text="Hello #herald",
                         media=[served(tmp_path, media_base, "a.jpg", data, "image/jpeg", "image", alt="a blue square")])
    prepared = await adapter.prepare_publish(creds, req)
    assert deliveries(sandbox_url, provider) == []  # the container is invisible until published
    result = await prepared.send()
    assert result.provider_url.startswith("https://www.instagram.com/p/")
    [d] = deliveries(sandbox_url, provider)
    assert (d["id"], d["target"], d["text"], d["kind"], d["altText"]) == (
        result.provider_post_id, ig_id, "Hello #herald", "feed", "a blue square")
    [m] = d["media"]
    assert (m["sha256"], m["size"], m["image"]["width"], m["image"]["format"]) == (
        hashlib.sha256(data).hexdigest(), len(data), 100, "JPEG")
    assert (await adapter.reconcile(creds, req, result.provider_post_id)).state == "found"


async def test_carousel_of_images_and_a_video(ig, sandbox_url, tmp_path, media_base, clip):
    adapter, creds, provider, _ = ig
    blobs = [jpeg(80, 80, (200, 0, 0)), jpeg(80, 100, (0, 200, 0))]
    media = [served(tmp_path, media_base, f"c{i}.jpg", b, "image/jpeg", "image") for i, b in enumerate(blobs)]
    media.append(served(tmp_path, media_base, "c.mp4", clip, "video/mp4", "video"))
    result = await adapter.publish(creds, PublishRequest(post_id="p2", text="three", media=media))
    [d] = deliveries(sandbox_url, provider)
    assert d["kind"] == "carousel" and d["id"] == result.provider_post_id and d["text"] == "three"
    assert [m["sha256"] for m in d["media"]] == [hashlib.sha256(x).hexdigest() for x in (*blobs, clip)]
    assert d["media"][2]["video"]["codec"] == "h264"


async def test_reels_and_story(ig, sandbox_url, tmp_path, media_base, clip):
    adapter, creds, provider, _ = ig
    video = served(tmp_path, media_base, "r.mp4", clip, "video/mp4", "video")
    feed_video = await adapter.publish(creds, PublishRequest(post_id="p3", text="a feed video", media=[video]))
    reel = await adapter.publish(creds, PublishRequest(post_id="p4", text="a reel", media=[video], post_type="reel",
                                                       settings={"shareToFeed": False, "thumbOffset": 500}))
    story_img = served(tmp_path, media_base, "s.jpg", jpeg(90, 160), "image/jpeg", "image")
    story = await adapter.publish(creds, PublishRequest(post_id="p5", text="ignored", media=[story_img],
                                                        post_type="story"))
    d1, d2, d3 = deliveries(sandbox_url, provider)
    assert (d1["kind"], d1["shareToFeed"], d1["id"]) == ("reel", True, feed_video.provider_post_id)
    assert (d2["kind"], d2["shareToFeed"], d2["text"]) == ("reel", False, "a reel")
    assert d2["media"][0]["video"]["duration"] == pytest.approx(3.0, abs=0.2)
    assert (d3["kind"], d3["text"], d3["id"]) == ("story", None, story.provider_post_id)
    assert "/reel/" in reel.provider_url
    with pytest.raises(ContentRejected):
        await adapter.prepare_publish(creds, PublishRequest(post_id="p6", media=[story_img], post_type="reel"))


async def test_comment_and_reconcile_without_id(ig, sandbox_url, tmp_path, media_base):
    adapter, creds, provider, _ = ig
    parent = await adapter.publish(creds, PublishRequest(
        post_id="p7", text="parent", media=[served(tmp_path, media_base, "p.jpg", jpeg(50, 50), "image/jpeg", "image")]))
    req = PublishRequest(post_id="p8", text="first!", reply_to=parent.provider_post_id, interaction="comment")
    result = await adapter.publish(creds, req)
    d = deliveries(sandbox_url, provider)[-1]
    assert (d["id"], d["kind"], d["replyTo"], d["text"]) == (result.provider_post_id, "comment",
                                                              parent.provider_post_id, "first!")
    found = await adapter.reconcile(creds, req, None)
    assert found.state == "found" and found.result.provider_post_id == result.provider_post_id
    with pytest.raises(ContentRejected):
        await adapter.delete(creds, parent.provider_post_id)  # no delete through the API
    with pytest.raises(ContentRejected):
        await adapter.prepare_publish(creds, PublishRequest(post_id="p9", text="x", reply_to="404404",
                                                            interaction="comment"))


async def test_bad_media_is_refused_with_ig_subcodes(ig, sandbox_url, tmp_path, media_base):
    adapter, creds, provider, _ = ig
    png = served(tmp_path, media_base, "a.png", jpeg(60, 60, fmt="PNG"), "image/png", "image")
    with pytest.raises(ContentRejected) as err:
        await adapter.prepare_publish(creds, PublishRequest(post_id="b1", media=[png]))
    assert "2207005" in err.value.message
    wide = served(tmp_path, media_base, "w.jpg", jpeg(300, 100), "image/jpeg", "image")
    with pytest.raises(ContentRejected) as err:
        await adapter.prepare_publish(creds, PublishRequest(post_id="b2", media=[wide]))
    assert "2207009" in err.value.message
    short = served(tmp_path, media_base, "short.mp4", make_clip(1.0), "video/mp4", "video")
    with pytest.raises(ContentRejected) as err:  # a 1 s reel: the container ends in ERROR
        await adapter.prepare_publish(creds, PublishRequest(post_id="b3", media=[short], post_type="reel"))
    assert "2207026" in err.value.message
    no_url = served(tmp_path, media_base, "n.jpg", jpeg(50, 50), "image/jpeg", "image", url=False)
    with pytest.raises(ContentRejected):
        await adapter.prepare_publish(creds, PublishRequest(post_id="b4", media=[no_url]))
    assert deliveries(sandbox_url, provider) == []


# --- limits and faults ----------------------------------------------------------------------------


async def test_publishing_quota(ig, sandbox_url, tmp_path, media_base):
    adapter, creds, provider, _ = ig
    img = served(tmp_path, media_base, "q.jpg", jpeg(50, 50), "image/jpeg", "image")
    prepared = await adapter.prepare_publish(creds, PublishRequest(post_id="q1", text="q", media=[img]))
    control(sandbox_url, provider, quotaTotal=0)
    with pytest.raises(RateLimited) as err:  # used up between prepare and send: code 9 / 2207042
        await prepared.send()
    assert err.value.retry_after == 3600.0 and "(#9/2207042)" in err.value.message
    with pytest.raises(RateLimited):  # and prepare reads content_publishing_limit first
        await adapter.prepare_publish(creds, PublishRequest(post_id="q2", text="q", media=[img]))
    assert deliveries(sandbox_url, provider) == []


async def test_rate_limit_auth_and_server_faults(ig, sandbox_url, tmp_path, media_base):
    adapter, creds, provider, ig_id = ig
    img = served(tmp_path, media_base, "f.jpg", jpeg(50, 50), "image/jpeg", "image")
    req = PublishRequest(post_id="f1", text="faulty", media=[img])
    fault(sandbox_url, provider, kind="rate_limit", retryAfter=180, target=ig_id)
    with pytest.raises(RateLimited) as err:
        await adapter.publish(creds, req)
    assert err.value.retry_after == 180.0 and "80002" in err.value.message
    fault(sandbox_url, provider, kind="auth_error")
    with pytest.raises(AuthExpired) as err:
        await adapter.publish(creds, req)
    assert creds["access_token"] not in str(err.value)
    fault(sandbox_url, provider, kind="server_error")
    with pytest.raises(ProviderUnavailable):
        await adapter.publish(creds, req)
    fault(sandbox_url, provider, kind="reject_content")
    with pytest.raises(ContentRejected):
        await adapter.publish(creds, req)
    assert deliveries(sandbox_url, provider) == []


async def test_drop_after_accept_then_reconcile(ig, sandbox_url, tmp_path, media_base):
    adapter, creds, provider, _ = ig
    req = PublishRequest(post_id="d1", text="dropped caption",
                         media=[served(tmp_path, media_base, "d.jpg", jpeg(50, 50), "image/jpeg", "image")])
    fault(sandbox_url, provider, kind="drop_after_accept")
    with pytest.raises(OutcomeUnknown):
        await adapter.publish(creds, req)
    [d] = deliveries(sandbox_url, provider)
    found = await adapter.reconcile(creds, req, None)
    assert found.state == "found" and found.result.provider_post_id == d["id"]
    assert (await adapter.reconcile(creds, req.model_copy(update={"text": "never posted"}), None)).state == "absent"
    assert len(deliveries(sandbox_url, provider)) == 1


async def test_expired_token_means_reauth(ig, sandbox_url):
    adapter, creds, provider, _ = ig
    network = "facebook" if provider == "instagram_business" else "instagram"
    API.post(f"{sandbox_url}/_sandbox/oauth", json={"network": network, "action": "expire_access"}).raise_for_status()
    with pytest.raises(AuthExpired) as err:
        await adapter.check_credentials(creds)
    assert "(#190" in err.value.message


async def test_sandbox_refuses_malformed_requests(ig, sandbox_url, tmp_path, media_base, clip):
    adapter, creds, provider, ig_id = ig
    base = f"{sandbox_url}/{provider}/graph/{V}"
    auth = {"Authorization": f"{adapter.auth_scheme} {creds['access_token']}"}
    one = API.post(f"{base}/{ig_id}/media", headers=auth, data={"media_type": "CAROUSEL", "children": "1"}).json()
    assert (one["error"]["code"], one["error"]["error_subcode"]) == (100, 2207024)
    nothing = API.post(f"{base}/{ig_id}/media", headers=auth, data={"caption": "x"})
    assert nothing.status_code == 400 and nothing.json()["error"]["type"] == "OAuthException"
    FILES["v.mp4"] = (clip, "video/mp4")
    control(sandbox_url, provider, processingSeconds=30)
    container = API.post(f"{base}/{ig_id}/media", headers=auth,
                         data={"media_type": "REELS", "video_url": f"{media_base}/m/v.mp4"}).json()["id"]
    status = API.get(f"{base}/{container}", headers=auth, params={"fields": "status_code"}).json()
    assert status["status_code"] == "IN_PROGRESS"
    early = API.post(f"{base}/{ig_id}/media_publish", headers=auth, data={"creation_id": container}).json()
    assert (early["error"]["code"], early["error"]["error_subcode"]) == (9007, 2207027)
    limit = API.get(f"{base}/{ig_id}/content_publishing_limit", headers=auth,
                    params={"fields": "config,quota_usage"})
    assert limit.json()["data"][0]["config"]["quota_duration"] == 86400
    assert ig_id in limit.headers["x-business-use-case-usage"]
    assert API.get(f"{base}/{ig_id}", headers={"Authorization": "OAuth nope"}).json()["error"]["code"] == 190


def test_stories_and_reels_have_one_container_each() -> None:
    from providers.base import MediaRef, PostDraft
    from providers.instagram import InstagramBusinessAdapter

    pic = MediaRef(url="https://e.com/a.jpg", kind="image")
    clip = MediaRef(url="https://e.com/a.mp4", kind="video")

    def problems(post_type, media):  # noqa: ANN001, ANN202
        draft = PostDraft(provider="instagram_business", text="t", media=media, post_type=post_type)
        return [p.message for p in InstagramBusinessAdapter.check_post(draft) if p.field == "assets"]

    assert problems("story", [pic]) == [] and problems("reel", [clip]) == []
    assert problems("story", [pic, pic]) == ["an instagram story is one photo or video, got 2"]
    assert problems("reel", [pic]) == ["an instagram reel is exactly one video"]
    assert problems("feed", [pic, pic]) == []  # a carousel
