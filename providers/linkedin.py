"""LinkedIn through the versioned Posts API: member posts (``linkedin``) and organization (Page)
posts (``linkedin_page``). One module, two adapter classes that share every call.

Facts from /work/shared/reference/providers.md §6 and the sources named next to each use; tags:
[C] confirmed in an official source (learn.microsoft.com/linkedin, LinkedIn's own API client
linkedin-developers/linkedin-api-python-client), [3P] third-party code or reports (postiz
``linkedin.provider.ts``, GitHub issues), [U] unconfirmed.

Flow (all hosts from settings: ``base_url`` = https://api.linkedin.com or the sandbox prefix)::

    consent   {auth_base}/oauth/v2/authorization  (authorization code, client secret, no PKCE)
    token     POST {token_base}/oauth/v2/accessToken (form; authorization_code / refresh_token)
    identity  GET  /v2/userinfo (OpenID) -> sub -> author urn:li:person:{sub}
    pages     GET  /rest/organizationAcls?q=roleAssignee&state=APPROVED, GET /rest/organizations/{id}
    media     POST /rest/images?action=initializeUpload -> PUT uploadUrl
              POST /rest/videos?action=initializeUpload -> PUT parts (ETag) -> finalizeUpload
                   -> poll GET /rest/videos/{urn} until AVAILABLE
    publish   POST /rest/posts -> 201, post URN in the x-restli-id header   (the one irreversible call)
    comment   POST /rest/socialActions/{post urn}/comments                    (the one irreversible call)
    read      GET  /rest/posts/{urn}, GET /rest/posts?q=author&author=…, GET …/comments
    delete    DELETE /rest/posts/{urn} -> 204, DELETE /rest/socialActions/{urn}/comments/{id}

Tokens travel only in the Authorization header, never in a URL, a message or a log line.
"""

from __future__ import annotations

import asyncio
import re
import time
from datetime import datetime, timedelta, timezone
from typing import Any, ClassVar
from urllib.parse import quote, urlsplit

import httpx

from media.types import ImageRules, MediaProfile, VideoRules
from providers.base import (
    AccountIdentity,
    AuthExpired,
    ContentRejected,
    Limits,
    MediaFile,
    OutcomeUnknown,
    PostDraft,
    PreparedPublish,
    Problem,
    ProviderError,
    ProviderUnavailable,
    PublishRequest,
    PublishResult,
    RateLimited,
    ReconcileResult,
    truncate,
)
from providers.http_media import (
    PreparedRequest,
    expect_bool,
    json_body,
    kind_of,
    media_fit_problems,
    n,
    read_media,
    send_readonly,
    unknown_settings,
)
from providers.oauth import OAuthAdapter, OAuthApp, OAuthSpec, token_credentials, token_request

# --- facts as data -------------------------------------------------------------------------------

# Every /rest call names a monthly version; each is supported for at least a year. 202603 is in
# LinkedIn's migrations table as active until March 16, 2027 [C learn.microsoft.com/linkedin/
# marketing/integrations/migrations]. A sunset version answers 426 [3P api-evangelist lifecycle].
LINKEDIN_VERSION = "202603"
RESTLI_PROTOCOL = "2.0.0"  # required on every request [C posts-api, "All APIs require ..."]

LIMITS = Limits(
    max_text_chars=3000,  # commentary [3P postiz/Ayrshare; MCP tool docs "up to 3000 characters"]
    max_media=20,  # multiImage takes 2-20 images [C multiimage-post-api]; or 1 image / 1 video
    max_file_bytes=500 * 1_000_000,  # video <= 500 MB [3P providers.md §6]; images get renditions
    source=(
        "providers.md §6: commentary 3,000 characters [3P], multiImage 2-20 images [C "
        "learn.microsoft.com multiimage-post-api], one video or one image otherwise [C/3P], "
        "video MP4 3 s-30 min <= 500 MB [3P], images < 36,152,320 pixels [3P]"
    ),
)
MIN_MULTI_IMAGES = 2  # [C multiimage-post-api]
MAX_COMMENT_CHARS = 1250  # [U] the commonly quoted LinkedIn comment limit; no source found
MAX_ALT_TEXT = 4086  # [U] altText limit of the Posts API media schema as commonly quoted
MAX_PIXELS = 36_152_320  # images must have fewer pixels [3P providers.md §6]

VISIBILITIES_MEMBER = ("PUBLIC", "CONNECTIONS")  # CONNECTIONS is members only [C posts-api]
VISIBILITIES_PAGE = ("PUBLIC",)
SETTINGS = ("visibility", "disableReshare")

# Scopes [C providers.md §6 / Posts API permissions]: w_member_social to post/comment as the
# member; openid+profile for /v2/userinfo (Sign In with LinkedIn using OpenID Connect). ``email``
# is not asked for: Herald never needs the address. r_member_social (reading the member's own
# posts back) is a private permission LinkedIn grants to select developers only [C posts-api],
# so member reconcile is usually "unknowable" (see reconcile).
MEMBER_SCOPES = ("openid", "profile", "w_member_social")
# Pages: w_organization_social (post/comment as the organization), r_organization_social (read
# its posts back, for reconcile), rw_organization_admin (organizationAcls: which Pages the member
# administers) [C organization-access-control, posts-api permissions].
PAGE_SCOPES = ("openid", "profile", "w_organization_social", "r_organization_social", "rw_organization_admin")
# Roles that may post as the organization through the Posts API [C posts-api permissions:
# ADMINISTRATOR, DIRECT_SPONSORED_CONTENT_POSTER, CONTENT_ADMIN(ISTRATOR)]. Video to Pages needs
# ADMINISTRATOR or DSC poster [3P providers.md §6]; the role is kept in the account metadata.
POSTING_ROLES = ("ADMINISTRATOR", "CONTENT_ADMINISTRATOR", "DIRECT_SPONSORED_CONTENT_POSTER")

# Daily quotas reset at 00:00 UTC; LinkedIn sends no Retry-After or rate-limit headers
# [C learn.microsoft.com/linkedin/shared/api-guide/concepts/rate-limits]. A 429 that is not a
# quota ("infrastructure protection", which "will return to normal automatically" [C same page])
# waits this long -- our choice.
INFRA_THROTTLE_WAIT = 60.0

# Video processing: LinkedIn advertises no wait, so poll with a doubling interval, capped. The
# whole wait is bounded: prepare_publish runs ahead of the publish time, not at it.
VIDEO_POLL_FIRST = 0.2
VIDEO_POLL_MAX = 5.0
VIDEO_PROCESSING_TIMEOUT = 600.0

RECONCILE_PAGE = 50  # posts per author-finder page [U: LinkedIn documents count, not its maximum]
RECONCILE_PAGES = 4
POST_URL = "https://www.linkedin.com/feed/update/{urn}"  # [3P postiz, providers.md §6]

# --- media profile (rendition rules for the media pipeline) --------------------------------------

MB = 1_000_000
# Images API: JPG, PNG and GIF (animated GIFs play) [3P providers.md §6]; < 36,152,320 pixels
# (postiz fits images into 6000x6000, which stays under it) [3P]; ~5 MB per image (Ayrshare; other
# sources say 8 MB) -- the smaller figure is kept [3P]. Videos: MP4, 3 s to 30 min, <= 500 MB,
# aspect ratio 1:2.4 to 2.4:1 [3P providers.md §6]; H.264/AAC is what LinkedIn's player takes
# everywhere [U].
LINKEDIN_PROFILE = MediaProfile(
    key="linkedin.v1",
    image=ImageRules(
        formats=("image/jpeg", "image/png", "image/gif"),
        convert_to="image/jpeg",
        max_bytes=5 * MB,
        max_width=6000,
        max_height=6000,
        keep_animation=True,
    ),
    video=VideoRules(
        containers=("video/mp4",),
        video_codecs=("h264",),
        audio_codecs=("aac",),
        pixel_formats=("yuv420p",),
        max_bytes=500 * MB,
        min_duration=3.0,
        max_duration=30 * 60.0,
        min_aspect=1 / 2.4,
        max_aspect=2.4,
        needs_faststart=True,
    ),
    max_other_bytes=None,  # documents are not published by Herald (see the report)
    source=(
        "providers.md §6 [3P]: images JPG/PNG/GIF < 36,152,320 px, ~5 MB (Ayrshare); video MP4 "
        "3 s-30 min, <= 500 MB, AR 1:2.4-2.4:1; multiImage 2-20 [C]"
    ),
)

# provider id -> {post type or None: profile}; the lead registers these in media_profiles.PROFILES.
MEDIA_PROFILES: dict[str, dict[str | None, MediaProfile]] = {
    "linkedin": {None: LINKEDIN_PROFILE},
    "linkedin_page": {None: LINKEDIN_PROFILE},
}

# --- little text format ---------------------------------------------------------------------------

# Commentary (and comment text) is "little" text: these characters are reserved and must be
# backslash-escaped to appear as typed; unescaped, LinkedIn silently cuts the post at the first
# one [C little-text-format ("must be escaped"), list: 3P postiz fixText, crossposter v1.1.5,
# linkedctl: \ | { } @ [ ] ( ) < > # * _ ~].
RESERVED = frozenset("\\|{}@[]()<>#*_~")
# URLs stay as typed so LinkedIn still links them [3P crossposter v1.1.5]; a URL ends before a
# bracket or at trailing punctuation, which is then escaped like any text.
_URL = re.compile(r"https?://[^\s()\[\]{}<>|\\]+", re.IGNORECASE)
_URL_TAIL = ".,;:!?'\""
# A mention token is kept as written: @[Name](urn:li:organization:123) [C little-text-format].
_MENTION = re.compile(r"@\[([^\]\\]{1,200})\]\((urn:li:(?:person|organization):[A-Za-z0-9_-]+)\)")


def _url_at(text: str, i: int) -> int:
    """End of a URL starting at ``i`` (only at a word boundary), or ``i`` when there is none."""
    if i > 0 and (text[i - 1].isalnum() or text[i - 1] == "_"):
        return i
    m = _URL.match(text, i)
    if not m:
        return i
    end = m.end()
    while end > i and text[end - 1] in _URL_TAIL:
        end -= 1
    return end if end - i > len("https://") else i


def _hashtag_at(text: str, i: int) -> bool:
    """``#word`` at a word boundary is a hashtag [C little-text-format HashtagElement]: kept."""
    return (
        text[i] == "#" and i + 1 < len(text) and text[i + 1].isalnum()
        and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_"))
    )


def escape_little(text: str) -> str:
    """Plain text -> little text that shows exactly ``text`` (hashtags, URLs, mentions live)."""
    out: list[str] = []
    i = 0
    while i < len(text):
        end = _url_at(text, i)
        if end > i:
            out.append(text[i:end])
            i = end
            continue
        if text[i] == "@" and (m := _MENTION.match(text, i)):
            out.append(m.group(0))
            i = m.end()
            continue
        ch = text[i]
        if ch in RESERVED and not _hashtag_at(text, i):
            out.append("\\" + ch)
        else:
            out.append(ch)
        i += 1
    return "".join(out)


def visible_text(text: str) -> str:
    """What readers see: a mention token shows as its name."""
    return _MENTION.sub(lambda m: m.group(1), text)


def utf16_len(text: str) -> int:
    """LinkedIn counts UTF-16 code units [3P linkedin-formatter "counts the way LinkedIn does"];
    an emoji counts 2. Counting code units never undercounts code points."""
    return len(text.encode("utf-16-le")) // 2


# --- URNs -----------------------------------------------------------------------------------------


def enc(urn: str) -> str:
    """Rest.li 2.0 URL-encodes URNs in paths and queries [C linkedin-api-python-client encoder:
    quote(value, safe="")]."""
    return quote(urn, safe="")


_COMMENT_URN = re.compile(r"^urn:li:comment:\((urn:li:[A-Za-z]+:[^,()]+),([^,()]+)\)$")


def parse_comment_urn(urn: str) -> tuple[str, str] | None:
    """``urn:li:comment:(urn:li:share:1,2)`` -> (``urn:li:share:1``, ``2``)."""
    m = _COMMENT_URN.match(urn or "")
    return (m.group(1), m.group(2)) if m else None


def post_url(urn: str) -> str:
    return POST_URL.format(urn=urn)


def comment_url(parent: str, comment_urn: str) -> str:
    # Comment permalink [U]: the post's page with the comment selected.
    return f"{post_url(parent)}?commentUrn={enc(comment_urn)}"


# --- errors ---------------------------------------------------------------------------------------


def seconds_to_utc_midnight(now: float | None = None) -> float:
    current = datetime.fromtimestamp(time.time() if now is None else now, tz=timezone.utc)
    midnight = (current + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return max(1.0, (midnight - current).total_seconds())


def _describe(body: dict[str, Any]) -> str:
    """LinkedIn's error body: {status, serviceErrorCode?, code?, message} [C error-handling], or the
    Rest.li validation form {errorDetailType, message, errorDetails: {inputErrors: [...]}} [3P]."""
    message = str(body.get("message") or "")
    details = []
    errors = (body.get("errorDetails") or {}).get("inputErrors") if isinstance(body.get("errorDetails"), dict) else None
    for err in (errors or [])[:3]:
        if not isinstance(err, dict):
            continue
        path = ((err.get("input") or {}).get("inputPath") or {}).get("fieldPath") if isinstance(err.get("input"), dict) else None
        details.append(" ".join(str(x) for x in (err.get("code"), path, err.get("description")) if x))
    if details:
        message += " (" + "; ".join(details) + ")"
    codes = "/".join(str(c) for c in (body.get("code"), body.get("serviceErrorCode")) if c)
    return (f"[{codes}] " if codes else "") + (message or "no detail")


def classify(response: httpx.Response, *, publishing: bool = False, now: float | None = None,
             secrets: tuple[str, ...] = ()) -> ProviderError:
    """The taxonomy error for a LinkedIn error answer."""
    status = response.status_code
    body = json_body(response)
    text = f"LinkedIn {status}: {_describe(body) if body else truncate(response.text) or response.reason_phrase}"
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    if status == 429:
        retry = response.headers.get("retry-after", "")
        if retry.strip().isdigit():  # not documented, but the best information when present
            return RateLimited(text, retry_after=float(retry))
        message = str(body.get("message") or "").lower()
        if body.get("serviceErrorCode") == 101 or "throttle" in message or "day limit" in message:
            # A daily application or member quota: nothing succeeds before 00:00 UTC [C rate-limits].
            return RateLimited(f"{text}; daily quotas reset at 00:00 UTC", retry_after=seconds_to_utc_midnight(now))
        return RateLimited(text, retry_after=INFRA_THROTTLE_WAIT)
    if status == 401:  # 65600 invalid / revoked, 65601 expired [U codes]
        return AuthExpired(f"{text}; reconnect the LinkedIn account", http_status=status)
    if status == 403:
        # ACCESS_DENIED "Not enough permissions": the token lacks the scope, or the member lost the
        # Page role. Every later post on this account fails the same way until it is reconnected
        # (or the role restored), so it is an account problem, not this post's [U reasoning].
        return AuthExpired(f"{text}; the LinkedIn token or Page role does not allow this -- reconnect "
                           "the account (and check the member's role on the Page)", http_status=status)
    if status == 426:
        # Our pinned LinkedIn-Version was sunset: no retry helps until Herald is updated.
        return ContentRejected(f"{text}; LinkedIn-Version {LINKEDIN_VERSION} is no longer served",
                               http_status=status, code="linkedin_version_sunset")
    if publishing and status == 504:
        return OutcomeUnknown(f"{text}; the post may have been published", http_status=status)
    if status >= 500:
        return ProviderUnavailable(text, http_status=status)
    # 400 validation, 404 (a parent that is gone), 409, 422 (e.g. DUPLICATE_POST "Content is a
    # duplicate of urn:li:share:…" [3P Arisamiga/Linkedin-RSS#5]): this content cannot go out.
    return ContentRejected(text, http_status=status)


# --- the adapters ---------------------------------------------------------------------------------


class _Upload:
    __slots__ = ("urn", "media")

    def __init__(self, urn: str, media: MediaFile):
        self.urn, self.media = urn, media


class LinkedInAdapterBase(OAuthAdapter):
    """Everything both LinkedIn adapters share; subclasses say who the author is."""

    limits = LIMITS
    can_delete = True
    author_kind: ClassVar[str]  # "person" | "organization"
    visibilities: ClassVar[tuple[str, ...]]
    shapes: ClassVar[list[str]] = ["text", "image", "multi_image", "video", "comment"]
    settings_fields: ClassVar[list[dict[str, Any]]]

    # --- pure check ---------------------------------------------------------------------------

    @classmethod
    def check_post(cls, draft: PostDraft) -> list[Problem]:
        settings = draft.settings or {}
        name = cls.provider
        problems = unknown_settings(settings, SETTINGS, name) + media_fit_problems(settings)
        problems += expect_bool(settings, "disableReshare")
        visibility = settings.get("visibility")
        if visibility is not None and visibility not in cls.visibilities:
            allowed = ", ".join(cls.visibilities)
            extra = " (CONNECTIONS is for member posts only)" if visibility == "CONNECTIONS" else ""
            problems.append(Problem(field="settings.visibility", message=f"must be {allowed}{extra}"))

        text = draft.text or ""
        length = utf16_len(visible_text(text))
        if draft.is_reply:
            if not text.strip():
                problems.append(Problem(field="description", message=f"a {name} comment needs text"))
            elif length > MAX_COMMENT_CHARS:
                problems.append(Problem(field="description", message=(
                    f"{n(length)} characters, {name} comments allow {n(MAX_COMMENT_CHARS)}")))
            if draft.media:
                problems.append(Problem(field="assets", message=f"{name} comments are text only"))
            return problems

        if length > LIMITS.max_text_chars:
            problems.append(Problem(field="description", message=(
                f"{n(length)} characters, {name} allows {n(LIMITS.max_text_chars)}")))
        if not text.strip() and not draft.media:
            problems.append(Problem(field="description", message=f"the post is empty: {name} needs text or media"))
        kinds = [kind_of(ref) for ref in draft.media]
        for i, (ref, kind) in enumerate(zip(draft.media, kinds)):
            if kind not in ("image", "video"):
                problems.append(Problem(field=f"assets[{i}]", message=(
                    f"{name} posts take images and videos only (documents are not supported)")))
            if ref.alt_text and len(ref.alt_text) > MAX_ALT_TEXT:
                problems.append(Problem(field=f"assets[{i}]", message=(
                    f"alt text of {n(len(ref.alt_text))} characters, {name} allows {n(MAX_ALT_TEXT)}")))
        videos, images = kinds.count("video"), kinds.count("image")
        if videos and (videos > 1 or images):
            problems.append(Problem(field="assets", message=(
                f"{name} posts carry one video, one image or 2-{LIMITS.max_media} images; videos cannot be "
                "combined with other media")))
        elif images > LIMITS.max_media:
            problems.append(Problem(field="assets", message=(
                f"{n(images)} images, {name} allows up to {LIMITS.max_media} in one post")))
        return problems

    # --- plumbing -----------------------------------------------------------------------------

    def _headers(self, token: str, *, rest: bool = True) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        if rest:
            headers["LinkedIn-Version"] = LINKEDIN_VERSION
            headers["X-Restli-Protocol-Version"] = RESTLI_PROTOCOL
        return headers

    def _build(self, token: str, method: str, path: str, *, json: Any = None, query: str = "",
               rest: bool = True, extra: dict[str, str] | None = None) -> httpx.Request:
        url = f"{self.base_url}{path}" + (f"?{query}" if query else "")
        return self.http.build_request(method, url, json=json, headers={**self._headers(token, rest=rest), **(extra or {})})

    async def _call(self, token: str, method: str, path: str, *, json: Any = None, query: str = "",
                    rest: bool = True, ok: tuple[int, ...] = (200,), extra: dict[str, str] | None = None) -> httpx.Response:
        """A call that publishes nothing: a transport failure is mere unavailability."""
        response = await send_readonly(self.http, self._build(token, method, path, json=json, query=query,
                                                              rest=rest, extra=extra))
        if response.status_code not in ok:
            raise classify(response, secrets=(token,))
        return response

    @staticmethod
    def _token(credentials: dict[str, Any]) -> str:
        token = credentials.get("access_token")
        if not isinstance(token, str) or not token:
            raise AuthExpired("the stored LinkedIn credentials have no access token; reconnect the account")
        return token

    @staticmethod
    def _author(credentials: dict[str, Any]) -> str:
        author = credentials.get("author")
        if not isinstance(author, str) or not author.startswith("urn:li:"):
            raise AuthExpired("the stored LinkedIn credentials name no author; reconnect the account")
        return author

    # --- OAuth --------------------------------------------------------------------------------

    async def exchange_code(self, app: OAuthApp, code: str, code_verifier: str | None) -> dict[str, Any]:
        # Confidential web apps send client_id and client_secret in the form; PKCE is only for
        # native apps that LinkedIn enables on request [C authorization-code-flow(-native)].
        body = await token_request(self.http, "POST", f"{app.token_base}/oauth/v2/accessToken", data={
            "grant_type": "authorization_code", "code": code, "redirect_uri": app.redirect_uri,
            "client_id": app.client_id, "client_secret": app.client_secret,
        })
        return token_credentials(body)

    async def refresh(self, app: OAuthApp, credentials: dict[str, Any]) -> dict[str, Any] | None:
        """Programmatic refresh tokens exist only for approved partners; without one there is no way
        to refresh (None: reconnect). A refresh gives a new 60-day access token while the refresh
        token keeps its original 365-day end [C programmatic-refresh-tokens]: the answer's
        refresh_token_expires_in is the time left, so refresh_expires_at stays put."""
        refresh_token = credentials.get("refresh_token")
        if not refresh_token:
            return None
        body = await token_request(self.http, "POST", f"{app.token_base}/oauth/v2/accessToken", data={
            "grant_type": "refresh_token", "refresh_token": str(refresh_token),
            "client_id": app.client_id, "client_secret": app.client_secret,
        })
        return token_credentials(body, previous=credentials)

    async def _userinfo(self, token: str) -> dict[str, Any]:
        # OpenID userinfo: sub, name, given_name, family_name, picture, locale [C sign-in-with-
        # linkedin-v2]; unversioned (no LinkedIn-Version header).
        response = await self._call(token, "GET", "/v2/userinfo", rest=False)
        info = json_body(response)
        if not isinstance(info.get("sub"), str) or not info["sub"]:
            raise ProviderError("LinkedIn /v2/userinfo answered without a member id (sub)", code="linkedin_bad_response")
        return info

    def _base_credentials(self, credentials: dict[str, Any]) -> dict[str, Any]:
        keep = ("access_token", "refresh_token", "expires_at", "refresh_expires_at", "scope")
        return {k: credentials[k] for k in keep if k in credentials}

    async def check_credentials(self, credentials: dict[str, Any]) -> None:
        await self._userinfo(self._token(credentials))

    # --- publish ------------------------------------------------------------------------------

    @staticmethod
    def _trusted_upload_host(url: str, base_url: str) -> bool:
        host = (urlsplit(url).hostname or "").lower()
        base_host = (urlsplit(base_url).hostname or "").lower()
        return host == base_host or host == "linkedin.com" or host.endswith(".linkedin.com")

    async def _put(self, token: str, url: str, data: bytes, content_type: str) -> httpx.Response:
        parts = urlsplit(url)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ProviderError("LinkedIn gave an upload URL that is not http(s)", code="linkedin_bad_response")
        headers = {"Content-Type": content_type}
        # The bearer token goes only to LinkedIn's own hosts (or the sandbox serving as the API);
        # upload URLs are pre-signed, so another host gets the bytes without it.
        if self._trusted_upload_host(url, self.base_url):
            headers["Authorization"] = f"Bearer {token}"
        response = await send_readonly(self.http, self.http.build_request("PUT", url, content=data, headers=headers))
        if response.status_code not in (200, 201):
            raise classify(response, secrets=(token,))
        return response

    async def _upload_image(self, token: str, owner: str, media: MediaFile, data: bytes) -> _Upload:
        response = await self._call(token, "POST", "/rest/images", query="action=initializeUpload",
                                    json={"initializeUploadRequest": {"owner": owner}})
        value = json_body(response).get("value") or {}
        url, urn = value.get("uploadUrl"), value.get("image")
        if not isinstance(url, str) or not isinstance(urn, str):
            raise ProviderError("LinkedIn initializeUpload (image) answered without uploadUrl/image",
                                code="linkedin_bad_response")
        # One PUT with the whole file; images are not chunked [3P postiz, providers.md §6].
        await self._put(token, url, data, media.mime)
        return _Upload(urn, media)

    async def _upload_video(self, token: str, owner: str, media: MediaFile, data: bytes) -> _Upload:
        response = await self._call(token, "POST", "/rest/videos", query="action=initializeUpload", json={
            "initializeUploadRequest": {"owner": owner, "fileSizeBytes": len(data),
                                        "uploadCaptions": False, "uploadThumbnail": False}})
        value = json_body(response).get("value") or {}
        urn, instructions = value.get("video"), value.get("uploadInstructions")
        if not isinstance(urn, str) or not isinstance(instructions, list) or not instructions:
            raise ProviderError("LinkedIn initializeUpload (video) answered without video/uploadInstructions",
                                code="linkedin_bad_response")
        etags: list[str] = []
        # Each instruction is a byte range with its own URL; every part's ETag goes to finalize,
        # in order [3P postiz; C videos-api].
        for part in instructions:
            first, last = int(part["firstByte"]), int(part["lastByte"])
            put = await self._put(token, str(part["uploadUrl"]), data[first:last + 1], "application/octet-stream")
            etag = put.headers.get("etag")
            if not etag:
                raise ProviderError("LinkedIn accepted a video part without an ETag", code="linkedin_bad_response")
            etags.append(etag)
        await self._call(token, "POST", "/rest/videos", query="action=finalizeUpload", json={
            "finalizeUploadRequest": {"video": urn, "uploadToken": str(value.get("uploadToken") or ""),
                                      "uploadedPartIds": etags}})
        await self._wait_video(token, urn)
        return _Upload(urn, media)

    async def _wait_video(self, token: str, urn: str) -> None:
        """Posting a video before it is AVAILABLE fails [3P]: poll its status
        (WAITING_UPLOAD / PROCESSING / AVAILABLE / PROCESSING_FAILED [3P])."""
        deadline = time.monotonic() + VIDEO_PROCESSING_TIMEOUT
        delay = VIDEO_POLL_FIRST
        while True:
            body = json_body(await self._call(token, "GET", f"/rest/videos/{enc(urn)}"))
            status = body.get("status")
            if status == "AVAILABLE":
                return
            if status == "PROCESSING_FAILED":
                reason = body.get("processingFailureReason") or "no reason given"
                raise ContentRejected(f"LinkedIn could not process the video: {truncate(str(reason))}")
            if time.monotonic() + delay > deadline:
                raise ProviderUnavailable(
                    f"LinkedIn was still processing the video after {VIDEO_PROCESSING_TIMEOUT:.0f} s (status {status})")
            await asyncio.sleep(delay)
            delay = min(delay * 2, VIDEO_POLL_MAX)

    def _visibility(self, settings: dict[str, Any]) -> str:
        visibility = settings.get("visibility") or "PUBLIC"
        if visibility not in self.visibilities:
            raise ContentRejected(f"visibility {visibility!r} is not allowed for {self.provider} "
                                  f"(allowed: {', '.join(self.visibilities)})")
        return visibility

    async def prepare_publish(self, credentials: dict[str, Any], request: PublishRequest) -> PreparedPublish:
        token, author = self._token(credentials), self._author(credentials)
        if request.interaction == "reply":
            raise ContentRejected("LinkedIn has no replies: use a comment on the parent post")
        if request.reply_to:
            return self._prepare_comment(token, author, request)
        settings = request.settings or {}
        body: dict[str, Any] = {
            "author": author,
            "commentary": escape_little(request.text or ""),
            "visibility": self._visibility(settings),
            "distribution": {"feedDistribution": "MAIN_FEED", "targetEntities": [],
                             "thirdPartyDistributionChannels": []},
            "lifecycleState": "PUBLISHED",
            "isReshareDisabledByAuthor": settings.get("disableReshare") is True,
        }
        if request.media:
            body["content"] = await self._content(token, author, request)
        http_request = self._build(token, "POST", "/rest/posts", json=body)

        def parse(response: httpx.Response) -> PublishResult:
            if response.status_code not in (200, 201):
                raise classify(response, publishing=True, secrets=(token,))
            urn = response.headers["x-restli-id"]  # missing -> OutcomeUnknown (PreparedRequest)
            return PublishResult(provider_post_id=urn, provider_url=post_url(urn), http_status=response.status_code)

        return PreparedRequest(self.http, http_request, parse)

    async def _content(self, token: str, author: str, request: PublishRequest) -> dict[str, Any]:
        media = request.media
        kinds = [m.kind for m in media]
        if any(k not in ("image", "video") for k in kinds) or ("video" in kinds and len(media) > 1) \
                or len(media) > LIMITS.max_media:
            raise ContentRejected("LinkedIn posts carry one video, one image or 2-20 images")
        blobs = await read_media(media)
        uploads = await asyncio.gather(*[
            (self._upload_video if m.kind == "video" else self._upload_image)(token, author, m, blob)
            for m, blob in zip(media, blobs)
        ])

        def item(upload: _Upload) -> dict[str, Any]:
            out: dict[str, Any] = {"id": upload.urn}
            if upload.media.alt_text:
                out["altText"] = upload.media.alt_text[:MAX_ALT_TEXT]
            return out

        if len(uploads) == 1:
            single = item(uploads[0])
            if media[0].kind == "video" and request.title:
                single["title"] = request.title  # the video's title [C posts-api media content]
            return {"media": single}
        return {"multiImage": {"images": [item(u) for u in uploads]}}

    def _prepare_comment(self, token: str, author: str, request: PublishRequest) -> PreparedPublish:
        if request.media:
            raise ContentRejected("LinkedIn comments published by Herald are text only")
        if not (request.text or "").strip():
            raise ContentRejected("a LinkedIn comment needs text")
        parent = str(request.reply_to)
        # {actor, object, message: {text}} [3P postiz; C comments-api "Create a Comment"]. The
        # created comment comes back as the body (commentUrn) and its id in x-restli-id [U].
        http_request = self._build(token, "POST", f"/rest/socialActions/{enc(parent)}/comments", json={
            "actor": author, "object": parent, "message": {"text": escape_little(request.text or "")}})

        def parse(response: httpx.Response) -> PublishResult:
            if response.status_code not in (200, 201):
                raise classify(response, publishing=True, secrets=(token,))
            body = json_body(response)
            urn = body.get("commentUrn")
            if not isinstance(urn, str) or not urn:
                urn = f"urn:li:comment:({parent},{response.headers['x-restli-id']})"
            return PublishResult(provider_post_id=urn, provider_url=comment_url(parent, urn),
                                 http_status=response.status_code)

        return PreparedRequest(self.http, http_request, parse)

    # --- read back ----------------------------------------------------------------------------

    _NOT_READABLE = (
        "this LinkedIn token may not read posts back (member posts need the private r_member_social "
        "permission); check the profile by hand before posting again"
    )

    async def _get_readable(self, token: str, path: str, query: str = "") -> httpx.Response | None:
        """GET for reconcile: None when LinkedIn forbids the read (403), else the response."""
        response = await send_readonly(self.http, self._build(token, "GET", path, query=query))
        if response.status_code == 403:
            return None
        if response.status_code not in (200, 404):
            raise classify(response, secrets=(token,))
        return response

    async def reconcile(self, credentials: dict[str, Any], request: PublishRequest,
                        provider_post_id: str | None) -> ReconcileResult:
        token, author = self._token(credentials), self._author(credentials)
        if provider_post_id:
            return await self._reconcile_by_id(token, provider_post_id)
        text = request.text or ""
        if not text.strip():
            return ReconcileResult(state="unknowable", detail=(
                "a LinkedIn post without text cannot be told apart from other posts; check by hand"))
        wanted = escape_little(text)
        if request.reply_to:
            return await self._reconcile_comment(token, author, str(request.reply_to), wanted)
        # Posts API author finder, newest first [C posts-api "Find Posts by Authors"].
        for page in range(RECONCILE_PAGES):
            query = (f"q=author&author={enc(author)}&count={RECONCILE_PAGE}&start={page * RECONCILE_PAGE}"
                     "&sortBy=LAST_MODIFIED")
            response = await self._get_readable(token, "/rest/posts", query)
            if response is None:
                return ReconcileResult(state="unknowable", detail=self._NOT_READABLE)
            if response.status_code == 404:
                break
            elements = json_body(response).get("elements") or []
            for post in elements:
                if isinstance(post, dict) and post.get("commentary") == wanted and post.get("author") == author:
                    urn = str(post.get("id"))
                    return ReconcileResult(state="found", result=PublishResult(
                        provider_post_id=urn, provider_url=post_url(urn)), detail="matched by exact commentary")
            if len(elements) < RECONCILE_PAGE:
                break
        return ReconcileResult(state="absent", detail=(
            f"no post with this text among the author's {RECONCILE_PAGE * RECONCILE_PAGES} latest posts"))

    async def _reconcile_by_id(self, token: str, urn: str) -> ReconcileResult:
        comment = parse_comment_urn(urn)
        if comment:
            parent, comment_id = comment
            path = f"/rest/socialActions/{enc(parent)}/comments/{enc(comment_id)}"
            result = PublishResult(provider_post_id=urn, provider_url=comment_url(parent, urn))
        else:
            path = f"/rest/posts/{enc(urn)}"
            result = PublishResult(provider_post_id=urn, provider_url=post_url(urn))
        response = await self._get_readable(token, path)
        if response is None:
            return ReconcileResult(state="unknowable", detail=self._NOT_READABLE)
        if response.status_code == 404:
            return ReconcileResult(state="absent", detail="LinkedIn: not found")
        return ReconcileResult(state="found", result=result)

    async def _reconcile_comment(self, token: str, author: str, parent: str, wanted: str) -> ReconcileResult:
        response = await self._get_readable(token, f"/rest/socialActions/{enc(parent)}/comments", "count=100")
        if response is None:
            return ReconcileResult(state="unknowable", detail=self._NOT_READABLE)
        if response.status_code == 404:
            return ReconcileResult(state="absent", detail="LinkedIn: the parent post is gone")
        for comment in json_body(response).get("elements") or []:
            if not isinstance(comment, dict) or comment.get("actor") != author:
                continue
            if (comment.get("message") or {}).get("text") == wanted:
                urn = str(comment.get("commentUrn") or f"urn:li:comment:({parent},{comment.get('id')})")
                return ReconcileResult(state="found", result=PublishResult(
                    provider_post_id=urn, provider_url=comment_url(parent, urn)), detail="matched by exact text")
        return ReconcileResult(state="absent", detail="no comment of this account with this text")

    # --- delete -------------------------------------------------------------------------------

    async def delete(self, credentials: dict[str, Any], provider_post_id: str) -> None:
        token, author = self._token(credentials), self._author(credentials)
        comment = parse_comment_urn(provider_post_id)
        if comment:
            parent, comment_id = comment
            path, query = f"/rest/socialActions/{enc(parent)}/comments/{enc(comment_id)}", f"actor={enc(author)}"
        elif provider_post_id.startswith("urn:li:"):
            path, query = f"/rest/posts/{enc(provider_post_id)}", ""
        else:
            raise ContentRejected("not a LinkedIn post or comment URN")
        # 204 No Content; deleting again is harmless [3P providers.md §6], and a 404 means gone.
        await self._call(token, "DELETE", path, query=query, ok=(200, 204, 404),
                         extra={"X-RestLi-Method": "DELETE"})


class LinkedInAdapter(LinkedInAdapterBase):
    """Posts as the member who connected (author urn:li:person:{sub})."""

    provider = "linkedin"
    author_kind = "person"
    visibilities = VISIBILITIES_MEMBER
    oauth = OAuthSpec(authorize_path="/oauth/v2/authorization", scopes=MEMBER_SCOPES)
    actions = ()
    settings_fields = [
        {"id": "visibility", "type": "enum", "options": list(VISIBILITIES_MEMBER), "default": "PUBLIC",
         "label": "Who can see the post: anyone, or the member's connections only"},
        {"id": "disableReshare", "type": "boolean", "default": False, "label": "Do not let others reshare the post"},
    ]

    async def discover(self, app: OAuthApp, credentials: dict[str, Any]) -> list[AccountIdentity]:
        token = self._token(credentials)
        info = await self._userinfo(token)
        sub = info["sub"]
        return [AccountIdentity(
            handle=f"linkedin:{sub}",
            external_id=sub,
            display_name=info.get("name") or " ".join(x for x in (info.get("given_name"), info.get("family_name")) if x) or None,
            account_type="member",
            credentials={**self._base_credentials(credentials), "person_id": sub, "author": f"urn:li:person:{sub}"},
            metadata={"person_urn": f"urn:li:person:{sub}", "name": info.get("name"),
                      "picture": info.get("picture")},
        )]


class LinkedInPageAdapter(LinkedInAdapterBase):
    """Posts as an organization (Page) the member administers (author urn:li:organization:{id})."""

    provider = "linkedin_page"
    author_kind = "organization"
    visibilities = VISIBILITIES_PAGE
    oauth = OAuthSpec(authorize_path="/oauth/v2/authorization", scopes=PAGE_SCOPES)
    actions = (("sync_organizations", "Sync the LinkedIn Pages this member administers"),)
    settings_fields = [
        {"id": "visibility", "type": "enum", "options": list(VISIBILITIES_PAGE), "default": "PUBLIC",
         "label": "Organization posts are public"},
        {"id": "disableReshare", "type": "boolean", "default": False, "label": "Do not let others reshare the post"},
    ]

    async def _organizations(self, token: str) -> list[dict[str, Any]]:
        """The organizations this member may post for: roleAssignee finder on the ACLs, APPROVED
        roles only, then each organization's name [C organization-access-control; organization
        lookup GET /rest/organizations/{id}]."""
        response = await self._call(token, "GET", "/rest/organizationAcls",
                                    query="q=roleAssignee&state=APPROVED&count=100")
        orgs: dict[str, dict[str, Any]] = {}
        for acl in json_body(response).get("elements") or []:
            if not isinstance(acl, dict) or acl.get("state", "APPROVED") != "APPROVED":
                continue
            role, target = acl.get("role"), str(acl.get("organization") or acl.get("organizationTarget") or "")
            if role not in POSTING_ROLES or not target.startswith("urn:li:organization:"):
                continue
            org_id = target.rsplit(":", 1)[1]
            entry = orgs.setdefault(org_id, {"id": org_id, "urn": target, "roles": []})
            entry["roles"].append(role)
        for org in orgs.values():
            info = json_body(await self._call(token, "GET", f"/rest/organizations/{enc(org['id'])}"))
            org["name"] = info.get("localizedName") or (info.get("name") or {}).get("localized", {}).get("en_US")
            org["vanityName"] = info.get("vanityName")
        return sorted(orgs.values(), key=lambda o: o["id"])

    async def discover(self, app: OAuthApp, credentials: dict[str, Any]) -> list[AccountIdentity]:
        token = self._token(credentials)
        member = (await self._userinfo(token))["sub"]
        base = self._base_credentials(credentials)
        return [AccountIdentity(
            handle=f"linkedin_page:{org['id']}",
            external_id=org["id"],
            display_name=org.get("name"),
            account_type="organization",
            credentials={**base, "organization_id": org["id"], "author": org["urn"], "member_id": member},
            metadata={"organization_urn": org["urn"], "vanity_name": org.get("vanityName"),
                      "roles": org["roles"], "member_urn": f"urn:li:person:{member}"},
        ) for org in await self._organizations(token)]

    async def check_credentials(self, credentials: dict[str, Any]) -> None:
        token = self._token(credentials)
        await self._userinfo(token)
        org_id = str(credentials.get("organization_id") or "")
        if org_id not in {o["id"] for o in await self._organizations(token)}:
            raise AuthExpired("the connected LinkedIn member no longer holds a posting role on this Page")

    async def run_action(self, app: OAuthApp | None, credentials: dict[str, Any], action: str) -> dict[str, Any]:
        if action != "sync_organizations":
            raise ValueError(f"unknown action {action!r} (linkedin_page offers: sync_organizations)")
        orgs = await self._organizations(self._token(credentials))
        return {"organizations": [
            {"id": o["id"], "handle": f"linkedin_page:{o['id']}", "urn": o["urn"], "name": o.get("name"),
             "vanityName": o.get("vanityName"), "roles": o["roles"]} for o in orgs
        ]}
