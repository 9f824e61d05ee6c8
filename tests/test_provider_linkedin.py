"""LinkedInAdapter / LinkedInPageAdapter against the real sandbox over HTTP (uvicorn on loopback)."""

from __future__ import annotations

import hashlib
import io
import subprocess
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

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
from providers.linkedin import (
    INFRA_THROTTLE_WAIT,
    LIMITS,
    LINKEDIN_VERSION,
    MEDIA_PROFILES,
    LinkedInAdapter,
    LinkedInPageAdapter,
    classify,
    escape_little,
    parse_comment_urn,
    seconds_to_utc_midnight,
    visible_text,
)
from providers.oauth import OAuthApp
from sandbox.linkedin import little_to_text
from sandbox.test_users import LINKEDIN_MEMBER, LINKEDIN_ORGS
from tests.support import SSL_CONTEXT

SUB = LINKEDIN_MEMBER["sub"]
ORG = LINKEDIN_ORGS[0]["id"]
API = httpx.Client(timeout=10, verify=SSL_CONTEXT)
TRICKY = r"Launch (v2) [beta] <now> #herald a_b *bold* ~x~ {x} | back\slash me@example.com C# https://ex.com/a_b?x=1."


# --- fixtures -------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _reset(clean_sandbox):
    """Every test starts from an empty sandbox."""


@pytest.fixture
def app(sandbox_url) -> OAuthApp:
    base = f"{sandbox_url}/linkedin/www"
    return OAuthApp(app="linkedin", client_id="li-client", client_secret="li-secret-value",
                    redirect_uri="https://herald.test/oauth/linkedin/callback", auth_base=base, token_base=base)


@pytest.fixture
def member(sandbox_url, http) -> LinkedInAdapter:
    return LinkedInAdapter(http, f"{sandbox_url}/linkedin/api")


@pytest.fixture
def page(sandbox_url, http) -> LinkedInPageAdapter:
    return LinkedInPageAdapter(http, f"{sandbox_url}/linkedin/api")


async def consent(adapter, app, *, scope: str | None = None) -> dict:
    """The browser part: open the authorize URL, read the code from the 302's Location."""
    url = adapter.authorize_url(app, "st4te", None)
    if scope is not None:
        parts = urlsplit(url)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        query["scope"] = scope
        url = parts._replace(query=httpx.QueryParams(query).__str__()).geturl()
    response = API.get(url, follow_redirects=False)
    assert response.status_code == 302, response.text
    location = urlsplit(response.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == app.redirect_uri
    return {k: v[0] for k, v in parse_qs(location.query).items()}


async def connect(adapter, app, *, scope: str | None = None):
    query = await consent(adapter, app, scope=scope)
    assert query["state"] == "st4te"
    credentials = await adapter.exchange_code(app, query["code"], None)
    return await adapter.discover(app, credentials)


@pytest.fixture
async def mcreds(member, app) -> dict:
    [identity] = await connect(member, app)
    return identity.credentials


@pytest.fixture
async def pcreds(page, app) -> dict:
    [identity] = await connect(page, app)
    return identity.credentials


def deliveries(sandbox_url, provider: str | None = None) -> list[dict]:
    params = {"provider": provider} if provider else {}
    found = API.get(f"{sandbox_url}/_sandbox/deliveries", params=params).json()["deliveries"]
    return [d for d in found if d["provider"] in ("linkedin", "linkedin_page")]


def fault(sandbox_url, provider: str, **body) -> None:
    API.post(f"{sandbox_url}/_sandbox/faults", json={"provider": provider, **body}).raise_for_status()


def oauth_switch(sandbox_url, action: str) -> None:
    API.post(f"{sandbox_url}/_sandbox/oauth", json={"network": "linkedin", "action": action}).raise_for_status()


def media_file(tmp_path: Path, name: str, data: bytes, mime: str, kind: str, alt: str | None = None) -> MediaFile:
    path = tmp_path / name
    path.write_bytes(data)
    return MediaFile(path=str(path), filename=name, mime=mime, size=len(data),
                     sha256=hashlib.sha256(data).hexdigest(), kind=kind, alt_text=alt)


def png(w: int, h: int, color: str = "red") -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (w, h), color).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def mp4(tmp_path_factory) -> bytes:
    """A real 3 s H.264 clip (the sandbox, like LinkedIn, fails a video it cannot decode)."""
    import imageio_ffmpeg

    out = tmp_path_factory.mktemp("li") / "clip.mp4"
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
                    "-f", "lavfi", "-i", "color=c=blue:s=64x48:r=5:d=3", "-c:v", "libx264", "-preset",
                    "ultrafast", "-pix_fmt", "yuv420p", "-movflags", "+faststart", str(out)], check=True)
    return out.read_bytes()


def assert_no_secret(exc: BaseException, *secrets: str) -> None:
    for text in (str(exc), repr(exc), getattr(exc, "message", "")):
        for secret in secrets:
            assert secret not in text


# --- data, escaping, check_post ----------------------------------------------------------------------


def test_limits_and_profiles_are_data_with_sources():
    assert (LIMITS.max_text_chars, LIMITS.max_media) == (3000, 20)
    assert "§6" in LIMITS.source and "multiimage" in LIMITS.source
    profile = MEDIA_PROFILES["linkedin"][None]
    assert profile is MEDIA_PROFILES["linkedin_page"][None] and profile.key == "linkedin.v1"
    assert profile.video.min_duration == 3.0 and profile.video.max_duration == 1800.0
    assert profile.max_other_bytes is None and "image/gif" in profile.image.formats
    assert LinkedInAdapter.shapes == LinkedInPageAdapter.shapes
    assert [f["id"] for f in LinkedInAdapter.settings_fields] == ["visibility", "disableReshare"]
    assert LinkedInPageAdapter.settings_fields[0]["options"] == ["PUBLIC"]
    assert LinkedInAdapter.actions == () and LinkedInPageAdapter.actions[0][0] == "sync_organizations"


def test_escape_little_reserved_characters():
    assert escape_little(r"a\b|c{d}e@f[g]h(i)j<k>l*m_n~o") == r"a\\b\|c\{d\}e\@f\[g\]h\(i\)j\<k\>l\*m\_n\~o"
    # Hashtags and URLs stay live; punctuation after a URL is text; a lone # is escaped.
    assert escape_little("#herald and C# at https://ex.com/a_b).") == r"#herald and C\# at https://ex.com/a_b\)."
    mention = "hi @[Herald Org](urn:li:organization:123) (x)"
    assert escape_little(mention) == r"hi @[Herald Org](urn:li:organization:123) \(x\)"
    assert visible_text(mention) == "hi Herald Org (x)"


@pytest.mark.parametrize("text", [TRICKY, "plain", "", "((()))", "\\\\", "#1 and #", "x_y https://a.b/(c)",
                                  "emoji 🎉 (yes)", "trailing \\"])
def test_escaping_round_trips_through_the_sandbox_parser(text):
    visible, truncated = little_to_text(escape_little(text))
    assert (visible, truncated) == (visible_text(text), False)


def check(adapter_cls=LinkedInAdapter, **kw) -> list[tuple[str, str]]:
    draft = PostDraft(provider=adapter_cls.provider, **kw)
    return [(p.field, p.message) for p in adapter_cls.check_post(draft)]


def test_check_post_text_boundaries():
    assert check(text="x" * 3000) == []
    assert check(text="x" * 3001) == [("description", "3,001 characters, linkedin allows 3,000")]
    # UTF-16 code units: an emoji counts 2; reserved characters count once (their escape is invisible).
    assert check(text="🎉" * 1500) == [] and check(text="🎉" * 1500 + "x") != []
    assert check(text="(" * 3000) == []
    # A mention counts its name only.
    assert check(text="x" * 2990 + "@[Herald](urn:li:organization:1)") == []
    assert check(text="   ") == [("description", "the post is empty: linkedin needs text or media")]
    assert check(LinkedInPageAdapter, text="") == [
        ("description", "the post is empty: linkedin_page needs text or media")]


def test_check_post_media_rules():
    img = [MediaRef(url=f"https://x/{i}.png") for i in range(21)]
    vid = MediaRef(url="https://x/v.mp4")
    assert check(media=img[:1]) == [] and check(media=img[:20]) == [] and check(media=[vid]) == []
    assert check(media=img) == [("assets", "21 images, linkedin allows up to 20 in one post")]
    mixed = check(media=[vid, img[0]])
    assert [f for f, _ in mixed] == ["assets"] and "videos cannot be combined" in mixed[0][1]
    assert [f for f, _ in check(media=[vid, vid])] == ["assets"]
    doc = check(text="x", media=[MediaRef(url="https://x/a.pdf")])
    assert doc == [("assets[0]", "linkedin posts take images and videos only (documents are not supported)")]
    long_alt = MediaRef(url="https://x/a.png", alt_text="a" * 4087)
    assert check(media=[long_alt])[0][0] == "assets[0]"
    assert check(media=[MediaRef(url="https://x/a.png", alt_text="a" * 4086)]) == []
    # Huge originals are not refused here: the media pipeline makes renditions within the profile.
    assert check(media=[MediaRef(url="https://x/v.mp4", size=900_000_000)]) == []


def test_check_post_settings_and_comments():
    assert check(text="x", settings={"visibility": "CONNECTIONS", "disableReshare": True}) == []
    assert check(LinkedInPageAdapter, text="x", settings={"visibility": "CONNECTIONS"}) == [
        ("settings.visibility", "must be PUBLIC (CONNECTIONS is for member posts only)")]
    problems = check(text="x", settings={"visibility": "FRIENDS", "disableReshare": "yes", "reshare": 1})
    assert sorted(f for f, _ in problems) == ["settings.disableReshare", "settings.reshare", "settings.visibility"]
    assert check(text="x" * 1250, is_reply=True) == []
    assert check(text="x" * 1251, is_reply=True) == [("description", "1,251 characters, linkedin comments allow 1,250")]
    assert check(text="", is_reply=True) == [("description", "a linkedin comment needs text")]
    assert check(text="x", is_reply=True, media=[MediaRef(url="https://x/a.png")]) == [
        ("assets", "linkedin comments are text only")]


# --- OAuth ----------------------------------------------------------------------------------------


async def test_member_oauth_round_trip(member, app, sandbox_url):
    url = member.authorize_url(app, "st4te", "ignored-challenge")
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{sandbox_url}/linkedin/www/oauth/v2/authorization"
    query = parse_qs(parts.query)
    assert query == {"response_type": ["code"], "client_id": ["li-client"], "redirect_uri": [app.redirect_uri],
                     "scope": ["openid profile w_member_social"], "state": ["st4te"]}  # no PKCE: web app
    before = time.time()
    code = (await consent(member, app))["code"]
    credentials = await member.exchange_code(app, code, None)
    assert set(credentials) == {"access_token", "refresh_token", "expires_at", "refresh_expires_at", "scope"}
    assert before + 60 * 86400 - 5 <= credentials["expires_at"] <= time.time() + 60 * 86400 + 5
    assert before + 365 * 86400 - 5 <= credentials["refresh_expires_at"] <= time.time() + 365 * 86400 + 5
    assert credentials["scope"] == "openid,profile,w_member_social"
    [identity] = await member.discover(app, credentials)
    assert identity.handle == f"linkedin:{SUB}" and identity.external_id == SUB
    assert identity.display_name == "Herald Sandbox" and identity.account_type == "member"
    assert identity.credentials["author"] == f"urn:li:person:{SUB}"
    assert identity.credentials["access_token"] == credentials["access_token"]
    assert credentials["access_token"] not in str(identity.metadata)
    # The code is single use.
    with pytest.raises(AuthExpired) as info:
        await member.exchange_code(app, code, None)
    assert "invalid_grant" in info.value.message
    await member.check_credentials(identity.credentials)


async def test_page_oauth_discovers_administered_organizations(page, app):
    url = page.authorize_url(app, "s", None)
    assert parse_qs(urlsplit(url).query)["scope"] == [
        "openid profile w_organization_social r_organization_social rw_organization_admin"]
    [identity] = await connect(page, app)
    assert identity.handle == f"linkedin_page:{ORG}" and identity.external_id == ORG
    assert identity.display_name == "Herald Sandbox Org" and identity.account_type == "organization"
    assert identity.credentials["author"] == f"urn:li:organization:{ORG}"
    assert identity.credentials["organization_id"] == ORG and identity.credentials["member_id"] == SUB
    assert identity.metadata["vanity_name"] == "herald-sandbox" and identity.metadata["roles"] == ["ADMINISTRATOR"]
    result = await page.run_action(None, identity.credentials, "sync_organizations")
    assert result == {"organizations": [{"id": ORG, "handle": f"linkedin_page:{ORG}",
                                         "urn": f"urn:li:organization:{ORG}", "name": "Herald Sandbox Org",
                                         "vanityName": "herald-sandbox", "roles": ["ADMINISTRATOR"]}]}
    with pytest.raises(ValueError):
        await page.run_action(None, identity.credentials, "sync_pages")
    await page.check_credentials(identity.credentials)
    # A member token cannot list organizations (no rw_organization_admin): 403 -> reconnect.
    [member_identity] = await connect(LinkedInAdapter(page.http, page.base_url), app)
    with pytest.raises(AuthExpired):
        await page.discover(app, member_identity.credentials)


async def test_denied_consent_and_unknown_scope(member, app, sandbox_url):
    oauth_switch(sandbox_url, "deny_next")
    assert (await consent(member, app))["error"] == "access_denied"
    query = await consent(member, app, scope="openid w_everything")
    assert query["error"] == "unauthorized_scope_error" and query["state"] == "st4te"


async def test_refresh_keeps_the_refresh_token_and_its_end(member, app, mcreds, sandbox_url):
    refreshed = await member.refresh(app, mcreds)
    assert refreshed["access_token"] != mcreds["access_token"]
    assert refreshed["refresh_token"] == mcreds["refresh_token"]  # no rotation [C]
    assert abs(refreshed["refresh_expires_at"] - mcreds["refresh_expires_at"]) < 2  # TTL not reset [C]
    assert refreshed["expires_at"] >= mcreds["expires_at"]
    assert refreshed["author"] == mcreds["author"]  # per-target fields survive
    await member.check_credentials(refreshed)
    again = await member.refresh(app, refreshed)  # the same refresh token works again
    assert again["refresh_token"] == mcreds["refresh_token"]
    oauth_switch(sandbox_url, "fail_refresh")
    with pytest.raises(AuthExpired) as info:
        await member.refresh(app, refreshed)
    assert_no_secret(info.value, mcreds["refresh_token"], app.client_secret)
    no_refresh = {k: v for k, v in mcreds.items() if k != "refresh_token"}
    assert await member.refresh(app, no_refresh) is None


async def test_expired_and_revoked_tokens_are_auth_expired(member, mcreds, sandbox_url):
    oauth_switch(sandbox_url, "expire_access")
    with pytest.raises(AuthExpired) as info:
        await member.check_credentials(mcreds)
    assert "65601" in info.value.message
    oauth_switch(sandbox_url, "revoke")
    with pytest.raises(AuthExpired) as info:
        await member.publish(mcreds, PublishRequest(post_id="p", text="hi"))
    assert "65600" in info.value.message
    assert_no_secret(info.value, mcreds["access_token"])
    assert deliveries(sandbox_url) == []


# --- publishing ------------------------------------------------------------------------------------


async def test_publish_text_round_trips_reserved_characters(member, mcreds, sandbox_url):
    request = PublishRequest(post_id="p", text=TRICKY, settings={"visibility": "CONNECTIONS", "disableReshare": True})
    prepared = await member.prepare_publish(mcreds, request)
    assert deliveries(sandbox_url) == []  # prepare is side-effect free
    before = time.time()
    result = await prepared.send()
    [d] = deliveries(sandbox_url)
    assert d["provider"] == "linkedin" and d["target"] == SUB and d["kind"] == "post"
    assert d["text"] == TRICKY and d["truncated"] is False and d["commentary"] == escape_little(TRICKY)
    assert d["visibility"] == "CONNECTIONS" and d["reshareDisabled"] is True and d["media"] == []
    assert d["id"] == result.provider_post_id and result.provider_post_id.startswith("urn:li:share:")
    assert result.provider_url == f"https://www.linkedin.com/feed/update/{result.provider_post_id}"
    assert result.http_status == 201
    assert d["receivedAt"] >= time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(before - 1))


async def test_unescaped_commentary_is_cut_by_the_sandbox(mcreds, sandbox_url):
    """The sandbox behaves like LinkedIn for an adapter that forgets to escape: the post is cut."""
    headers = {"Authorization": f"Bearer {mcreds['access_token']}", "LinkedIn-Version": LINKEDIN_VERSION,
               "X-Restli-Protocol-Version": "2.0.0"}
    body = {"author": mcreds["author"], "commentary": "Launch (v2) today", "visibility": "PUBLIC",
            "distribution": {"feedDistribution": "MAIN_FEED", "targetEntities": [], "thirdPartyDistributionChannels": []},
            "lifecycleState": "PUBLISHED", "isReshareDisabledByAuthor": False}
    response = API.post(f"{sandbox_url}/linkedin/api/rest/posts", json=body, headers=headers)
    assert response.status_code == 201 and response.headers["x-restli-id"].startswith("urn:li:share:")
    [d] = deliveries(sandbox_url)
    assert (d["text"], d["truncated"]) == ("Launch ", True)


async def test_publish_single_image_with_alt_text(member, mcreds, sandbox_url, tmp_path):
    data = png(40, 30)
    image = media_file(tmp_path, "a.png", data, "image/png", "image", alt="A red rectangle")
    result = await member.publish(mcreds, PublishRequest(post_id="p", text="pic", media=[image]))
    [d] = deliveries(sandbox_url)
    [item] = d["media"]
    assert item["sha256"] == hashlib.sha256(data).hexdigest() and item["size"] == len(data)
    assert item["mime"] == "image/png" and (item["image"]["width"], item["image"]["height"]) == (40, 30)
    assert d["altTexts"] == ["A red rectangle"] and d["text"] == "pic" and d["id"] == result.provider_post_id


async def test_publish_multi_image_as_page(page, pcreds, sandbox_url, tmp_path):
    blobs = [png(10 + i, 10, c) for i, c in enumerate(("red", "green", "blue"))]
    media = [media_file(tmp_path, f"{i}.png", b, "image/png", "image", alt=None if i else "first")
             for i, b in enumerate(blobs)]
    await page.publish(pcreds, PublishRequest(post_id="p", text="three", media=media))
    [d] = deliveries(sandbox_url)
    assert d["provider"] == "linkedin_page" and d["target"] == ORG and d["author"] == f"urn:li:organization:{ORG}"
    assert [m["sha256"] for m in d["media"]] == [hashlib.sha256(b).hexdigest() for b in blobs]
    assert [m["image"]["width"] for m in d["media"]] == [10, 11, 12]
    assert d["altTexts"] == ["first", None, None]


async def test_publish_video_in_parts_waits_for_processing(page, pcreds, sandbox_url, tmp_path, mp4):
    API.post(f"{sandbox_url}/linkedin/_sandbox", json={"videoPartBytes": 1000}).raise_for_status()
    video = media_file(tmp_path, "v.mp4", mp4, "video/mp4", "video")
    prepared = await page.prepare_publish(pcreds, PublishRequest(post_id="p", text="clip", title="My clip", media=[video]))
    state = API.get(f"{sandbox_url}/linkedin/_sandbox").json()
    [(urn, info)] = state["videos"].items()
    assert info["status"] == "AVAILABLE" and info["polls"] >= 2 and info["parts"] == -(-len(mp4) // 1000)
    assert deliveries(sandbox_url) == []
    result = await prepared.send()
    assert result.provider_post_id.startswith("urn:li:ugcPost:")
    [d] = deliveries(sandbox_url)
    [item] = d["media"]
    assert item["sha256"] == hashlib.sha256(mp4).hexdigest() and item["size"] == len(mp4)
    assert item["video"]["codec"] == "h264" and (item["video"]["width"], item["video"]["height"]) == (64, 48)


async def test_undecodable_video_is_rejected_before_publishing(member, mcreds, sandbox_url, tmp_path):
    video = media_file(tmp_path, "v.mp4", b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 200, "video/mp4", "video")
    with pytest.raises(ContentRejected) as info:
        await member.prepare_publish(mcreds, PublishRequest(post_id="p", text="bad", media=[video]))
    assert "could not process the video" in info.value.message
    assert deliveries(sandbox_url) == []


async def test_comment_under_a_post_and_delete_both(page, pcreds, sandbox_url):
    parent = await page.publish(pcreds, PublishRequest(post_id="p", text="parent"))
    comment = await page.publish(pcreds, PublishRequest(post_id="c", text="first comment (details)",
                                                        reply_to=parent.provider_post_id, interaction="comment"))
    commented_on, comment_id = parse_comment_urn(comment.provider_post_id)
    assert commented_on == parent.provider_post_id and comment_id.isdigit()
    assert comment.provider_url.startswith(f"https://www.linkedin.com/feed/update/{parent.provider_post_id}?commentUrn=")
    post_d, comment_d = deliveries(sandbox_url)
    assert comment_d["kind"] == "comment" and comment_d["replyTo"] == parent.provider_post_id
    assert comment_d["text"] == "first comment (details)" and comment_d["id"] == comment.provider_post_id
    assert comment_d["target"] == ORG and comment_d["provider"] == "linkedin_page"
    found = await page.reconcile(pcreds, PublishRequest(post_id="c", text="first comment (details)",
                                                        reply_to=parent.provider_post_id, interaction="comment"), None)
    assert found.state == "found" and found.result.provider_post_id == comment.provider_post_id
    await page.delete(pcreds, comment.provider_post_id)
    await page.delete(pcreds, parent.provider_post_id)
    await page.delete(pcreds, parent.provider_post_id)  # twice is harmless
    assert [d.get("deleted") for d in deliveries(sandbox_url)] == [True, True]
    gone = await page.reconcile(pcreds, PublishRequest(post_id="p", text="parent"), parent.provider_post_id)
    assert gone.state == "absent"


async def test_comment_on_a_missing_post_and_replies(member, mcreds, sandbox_url):
    with pytest.raises(ContentRejected) as info:
        await member.publish(mcreds, PublishRequest(post_id="c", text="hi", reply_to="urn:li:share:1",
                                                    interaction="comment"))
    assert info.value.http_status == 404
    with pytest.raises(ContentRejected):
        await member.prepare_publish(mcreds, PublishRequest(post_id="r", text="hi", reply_to="urn:li:share:1",
                                                            interaction="reply"))
    assert deliveries(sandbox_url) == []


# --- errors and faults ----------------------------------------------------------------------------


async def test_rate_limit_waits_for_the_daily_reset(member, mcreds, sandbox_url):
    fault(sandbox_url, "linkedin", kind="rate_limit", retryAfter=3)
    low = seconds_to_utc_midnight() - 1
    with pytest.raises(RateLimited) as info:
        await member.publish(mcreds, PublishRequest(post_id="p", text="hi"))
    high = seconds_to_utc_midnight() + 1
    assert low <= info.value.retry_after <= high  # until 00:00 UTC, not the fault's 3 s
    assert "00:00 UTC" in info.value.message and "101" in info.value.message
    assert deliveries(sandbox_url) == []


def test_classify_rate_limits_exactly():
    noon = 1_795_348_800.0  # 2026-11-22T12:00:00Z
    daily = httpx.Response(429, json={"serviceErrorCode": 101, "status": 429,
                                      "message": "Resource level throttle limit for calls to this resource is reached."})
    assert classify(daily, now=noon).retry_after == 12 * 3600
    assert classify(daily, now=noon + 12 * 3600 - 30).retry_after == 30
    infra = httpx.Response(429, json={"status": 429, "message": "Too Many Requests"})
    assert classify(infra, now=noon).retry_after == INFRA_THROTTLE_WAIT
    told = httpx.Response(429, headers={"Retry-After": "7"}, json={"status": 429, "message": "slow down"})
    assert classify(told).retry_after == 7


def test_classify_other_answers():
    def kind(status, **body):
        return type(classify(httpx.Response(status, json=body)))

    assert kind(401, serviceErrorCode=65600, message="Invalid access token") is AuthExpired
    assert kind(403, code="ACCESS_DENIED", message="Not enough permissions") is AuthExpired
    assert kind(422, message="Content is a duplicate of urn:li:share:1") is ContentRejected
    assert kind(400, message="bad") is ContentRejected and kind(404, message="gone") is ContentRejected
    assert kind(500, message="boom") is ProviderUnavailable and kind(503) is ProviderUnavailable
    assert type(classify(httpx.Response(504), publishing=True)) is OutcomeUnknown
    sunset = classify(httpx.Response(426, json={"status": 426, "message": "Requested version 202001 is not active"}))
    assert type(sunset) is ContentRejected and sunset.code == "linkedin_version_sunset"
    validation = classify(httpx.Response(400, json={
        "status": 400, "message": "m", "errorDetails": {"inputErrors": [
            {"code": "INVALID_VALUE_FOR_FIELD", "input": {"inputPath": {"fieldPath": "/visibility"}},
             "description": "bad value"}]}}))
    assert "INVALID_VALUE_FOR_FIELD /visibility bad value" in validation.message


async def test_infrastructure_throttle_uses_the_short_wait(page, pcreds, sandbox_url):
    fault(sandbox_url, "linkedin_page", kind="rate_limit", message="Too Many Requests")
    with pytest.raises(RateLimited) as info:
        await page.publish(pcreds, PublishRequest(post_id="p", text="hi"))
    assert info.value.retry_after == INFRA_THROTTLE_WAIT


@pytest.mark.parametrize("kind, exc, status", [
    ("auth_error", AuthExpired, 401), ("server_error", ProviderUnavailable, 500),
    ("reject_content", ContentRejected, 422),
])
async def test_fault_kinds(member, mcreds, sandbox_url, kind, exc, status):
    fault(sandbox_url, "linkedin", kind=kind, target=SUB)
    with pytest.raises(exc) as info:
        await member.publish(mcreds, PublishRequest(post_id="p", text="hi"))
    assert info.value.http_status == status
    assert_no_secret(info.value, mcreds["access_token"], mcreds["refresh_token"])
    assert deliveries(sandbox_url) == []


async def test_faults_target_the_right_provider(member, page, mcreds, pcreds, sandbox_url):
    fault(sandbox_url, "linkedin_page", kind="server_error", target=ORG)
    await member.publish(mcreds, PublishRequest(post_id="m", text="member is unaffected"))
    with pytest.raises(ProviderUnavailable):
        await page.publish(pcreds, PublishRequest(post_id="o", text="page fails"))
    assert [d["provider"] for d in deliveries(sandbox_url)] == ["linkedin"]


async def test_timeout_is_outcome_unknown(sandbox_url, mcreds):
    fault(sandbox_url, "linkedin", kind="timeout", delaySeconds=1)
    async with httpx.AsyncClient(timeout=0.3, verify=SSL_CONTEXT) as client:
        with pytest.raises(OutcomeUnknown):
            await LinkedInAdapter(client, f"{sandbox_url}/linkedin/api").publish(
                mcreds, PublishRequest(post_id="p", text="slow"))
    assert deliveries(sandbox_url) == []


async def test_drop_after_accept_then_reconcile_finds_it(page, pcreds, sandbox_url):
    fault(sandbox_url, "linkedin_page", kind="drop_after_accept")
    request = PublishRequest(post_id="p", text="maybe (published)?")
    with pytest.raises(OutcomeUnknown):
        await page.publish(pcreds, request)
    [d] = deliveries(sandbox_url)
    absent = await page.reconcile(pcreds, PublishRequest(post_id="q", text="another text"), None)
    assert absent.state == "absent"
    found = await page.reconcile(pcreds, request, None)
    assert found.state == "found" and found.result.provider_post_id == d["id"]
    by_id = await page.reconcile(pcreds, request, d["id"])
    assert by_id.state == "found"
    # A blind retry would have been refused as a duplicate: still one delivery.
    with pytest.raises(ContentRejected) as info:
        await page.publish(pcreds, request)
    assert "DUPLICATE_POST" in info.value.message and d["id"] in info.value.message
    assert len(deliveries(sandbox_url)) == 1


async def test_member_reconcile_needs_r_member_social(member, app, mcreds, sandbox_url):
    fault(sandbox_url, "linkedin", kind="drop_after_accept")
    request = PublishRequest(post_id="p", text="dropped")
    with pytest.raises(OutcomeUnknown):
        await member.publish(mcreds, request)
    # w_member_social cannot read posts back: LinkedIn answers 403, so nobody can tell.
    unknowable = await member.reconcile(mcreds, request, None)
    assert unknowable.state == "unknowable" and "r_member_social" in unknowable.detail
    assert (await member.reconcile(mcreds, request, deliveries(sandbox_url)[0]["id"])).state == "unknowable"
    # An app LinkedIn granted the private permission can.
    [reader] = await connect(member, app, scope="openid profile w_member_social r_member_social")
    found = await member.reconcile(reader.credentials, request, None)
    assert found.state == "found" and found.result.provider_post_id == deliveries(sandbox_url)[0]["id"]
    assert (await member.reconcile(reader.credentials, PublishRequest(post_id="x", text=""), None)).state == "unknowable"


async def test_lost_page_role_and_wrong_author_are_auth_expired(member, mcreds, sandbox_url):
    as_org = {**mcreds, "author": f"urn:li:organization:{ORG}"}  # a member token has no w_organization_social
    with pytest.raises(AuthExpired) as info:
        await member.publish(as_org, PublishRequest(post_id="p", text="hi"))
    assert info.value.http_status == 403 and "ACCESS_DENIED" in info.value.message
    assert deliveries(sandbox_url) == []


# --- the sandbox refuses what LinkedIn refuses -------------------------------------------------------


async def test_sandbox_refuses_malformed_requests(pcreds, sandbox_url):
    url = f"{sandbox_url}/linkedin/api/rest/posts"
    auth = {"Authorization": f"Bearer {pcreds['access_token']}"}
    good = {"author": pcreds["author"], "commentary": "x", "visibility": "PUBLIC",
            "distribution": {"feedDistribution": "MAIN_FEED"}, "lifecycleState": "PUBLISHED"}
    headers = {**auth, "LinkedIn-Version": LINKEDIN_VERSION, "X-Restli-Protocol-Version": "2.0.0"}

    missing = API.post(url, json=good, headers=auth)
    assert missing.status_code == 400 and missing.json()["code"] == "VERSION_MISSING"
    sunset = API.post(url, json=good, headers={**headers, "LinkedIn-Version": "202301"})
    assert sunset.status_code == 426 and type(classify(sunset)) is ContentRejected
    typo = API.post(url, json={**good, "visiblity": "PUBLIC"}, headers=headers)
    assert typo.status_code == 400
    assert typo.json()["errorDetails"]["inputErrors"][0]["code"] == "UNRECOGNIZED_FIELD"
    connections = API.post(url, json={**good, "visibility": "CONNECTIONS"}, headers=headers)
    assert connections.status_code == 400 and "member authors" in connections.text
    one = API.post(url, json={**good, "content": {"multiImage": {"images": [{"id": "urn:li:image:X"}]}}},
                   headers=headers)
    assert one.status_code == 400 and "2 to 20" in one.text
    unknown_media = API.post(url, json={**good, "content": {"media": {"id": "urn:li:image:NOPE"}}}, headers=headers)
    assert unknown_media.status_code == 400
    other_member = API.post(url, json={**good, "author": "urn:li:person:someoneElse"}, headers=headers)
    assert other_member.status_code == 403 and other_member.json()["code"] == "ACCESS_DENIED"
    no_token = API.post(url, json=good, headers={k: v for k, v in headers.items() if k != "Authorization"})
    assert no_token.status_code == 401 and no_token.json()["message"] == "Empty oauth2_access_token"
    assert deliveries(sandbox_url) == []


async def test_page_adapter_refuses_connections_visibility(page, pcreds, sandbox_url):
    with pytest.raises(ContentRejected):
        await page.prepare_publish(pcreds, PublishRequest(post_id="p", text="x", settings={"visibility": "CONNECTIONS"}))
    assert deliveries(sandbox_url) == []
