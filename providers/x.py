"""X (formerly Twitter) through the X API v2, as the user who connected (OAuth 2.0 user context).

Facts from /work/shared/reference/providers.md §1, which cites x-docs (xdevplatform/docs @
28713281, the source of docs.x.com) and its openapi.json (here as
/work/shared/reference/openapi/x-api-v2.openapi.json, "openapi" below). Tags: [C] confirmed in
an official source, [3P] third party, [U] unconfirmed.

* Connect: OAuth 2.0 Authorization Code with PKCE (S256), consent at ``{auth_base}/i/oauth2/
  authorize``, token at ``{token_base}/2/oauth2/token`` as a confidential client (HTTP Basic)
  [C authorization-code.mdx]. Access tokens live 2 hours; ``offline.access`` yields a refresh
  token [C]; X rotates it on every refresh (the old one dies) [U, emulated].
* Identity: ``GET /2/users/me`` -> ``{"data": {"id", "name", "username"}}`` [C openapi].
* Publish: media first (chunked upload v2: ``POST /2/media/upload/initialize``,
  ``/{id}/append``, ``/{id}/finalize``, then ``GET /2/media/upload?command=STATUS`` while
  ``processing_info`` says pending/in_progress [C openapi + media-upload-chunked.mdx]), alt text
  by ``POST /2/media/metadata`` [C openapi]; then the one irreversible call, ``POST /2/tweets``
  -> 201 ``{"data": {"id", "text"}}`` [C openapi].
* Threads: a reply is ``reply.in_reply_to_tweet_id`` = the parent's id [C].
* Errors: problem JSON ``{"title", "detail", "type", "status"}`` (+ ``errors[]``) [C
  response-codes-and-errors.mdx]; 429 with ``x-rate-limit-reset`` in epoch seconds [C
  rate-limits.mdx]; duplicate text is a 403 "You are not allowed to create a Tweet with duplicate
  content." [3P postiz, sferik/x-ruby#24, tweepy users].

Credentials (the dict the store encrypts)::

    {"access_token", "refresh_token", "expires_at", "scope",   # oauth.token_credentials
     "user_id", "username"}                                     # from /2/users/me at discover

The account handle is ``x:<user id>``; ``metadata`` carries ``username`` and ``name``. Tokens
travel only in the Authorization header and never appear in a message.
"""

from __future__ import annotations

import asyncio
import html
import time
import unicodedata
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, ClassVar

import httpx

from media.types import ImageRules, MediaProfile, VideoRules
from providers import x_text
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
    json_body,
    kind_of,
    media_fit_problems,
    n,
    send_readonly,
    unknown_settings,
)
from providers.oauth import OAuthAdapter, OAuthApp, OAuthSpec, token_credentials, token_request

MB = 1_000_000
MIB = 1024 * 1024

LIMITS = Limits(
    max_text_chars=x_text.MAX_WEIGHTED_LENGTH,  # 280 *weighted* characters [C counting-characters.mdx]
    max_media=4,  # "up to 4 photos, 1 animated GIF or 1 video in a Post" [C best-practices.mdx]
    max_file_bytes=512 * MB,  # video 512 MB [C media/introduction.mdx]
    max_bytes_by_kind={"image": 5 * MB, "video": 512 * MB},  # image 5 MB (GIF 15 MB) [C introduction.mdx]
    source=(
        "x-docs @28713281: fundamentals/counting-characters.mdx (280 weighted, twitter-text v3), "
        "x-api/media/introduction.mdx (image 5 MB, GIF 15 MB, video 512 MB), "
        "x-api/media/quickstart/best-practices.mdx (4 photos, or 1 GIF, or 1 video); "
        "openapi.json POST /2/tweets (media_ids 1-4); providers.md §1"
    ),
)
MAX_GIF_BYTES = 15 * MB  # [C introduction.mdx]
MAX_ALT_TEXT = 1000  # POST /2/media/metadata alt_text.text maxLength 1000 [C openapi]
# APPEND chunks must be <= 5 MB [C v1.1 POST media/upload (APPEND), the v2 docs give no figure];
# the docs and Postiz use 1 MB. 4 MiB keeps a 512 MB video at 128 requests (segment_index <= 999).
CHUNK_BYTES = 4 * MIB
REPLY_SETTINGS = ("following", "mentionedUsers", "subscribers", "verified")  # [C openapi enum]
POST_ID_DIGITS = 19  # ids match ^[0-9]{1,19}$ [C openapi]
RECENT_POSTS = 100  # GET /2/users/{id}/tweets max_results 5..100 [C openapi]
# Reconcile runs minutes after an unknown outcome; a day of posts is searched (start_time [C openapi]).
RECONCILE_WINDOW = 24 * 3600
SETTINGS = ("replySettings", "quoteTweetId")

MEDIA_CATEGORY = {"image": "tweet_image", "gif": "tweet_gif", "video": "tweet_video"}  # [C openapi enum]
DUPLICATE = "duplicate content"

# --- media renditions (providers/media_profiles.py registers these) -----------------------------
# Images: JPG/PNG/GIF/WEBP, 5 MB; an animated GIF passes through (15 MB is the GIF cap, but the
# profile has one byte limit per kind, so GIFs over 5 MB are re-encoded: see the report)
# [C introduction.mdx + best-practices.mdx]. Largest side 8,192 px [3P getlate media guidelines].
# Video [C best-practices.mdx]: MP4 H.264 + AAC-LC, YUV 4:2:0, <= 60 fps, 0.5-140 s, aspect 1:3 to
# 3:1, 512 MB. The page says "32x32 to 1280x1024" yet recommends 720x1280 portrait, so the bound
# is read as 1280 on either side [U: a 1280x1280 square exceeds the literal reading].
X_PROFILE = MediaProfile(
    key="x.v1",
    image=ImageRules(
        formats=("image/jpeg", "image/png", "image/gif", "image/webp"),
        convert_to="image/jpeg",
        max_bytes=5 * MB,
        max_width=8192,
        max_height=8192,
        keep_animation=True,
    ),
    video=VideoRules(
        containers=("video/mp4",),
        video_codecs=("h264",),
        audio_codecs=("aac",),
        pixel_formats=("yuv420p",),
        max_bytes=512 * MB,
        max_width=1280,
        max_height=1280,
        max_fps=60,
        min_duration=0.5,
        max_duration=140,
        min_aspect=1 / 3,
        max_aspect=3.0,
        needs_faststart=True,
    ),
    max_other_bytes=None,  # X takes no audio or document files
    source=(
        "x-docs media/introduction.mdx (image 5 MB, GIF 15 MB, video 512 MB) and "
        "media/quickstart/best-practices.mdx (JPG/PNG/GIF/WEBP; MP4 H.264 High + AAC-LC, YUV 4:2:0, "
        "<= 60 fps, 0.5-140 s, 32x32-1280x1024, aspect 1:3-3:1); providers.md §0/§1"
    ),
)
MEDIA_PROFILES: dict[str, dict[str | None, MediaProfile]] = {"x": {None: X_PROFILE}}


# --- errors -----------------------------------------------------------------------------------------


def _problem_text(response: httpx.Response) -> tuple[str, str]:
    """(a short human text, the problem type) from X's problem JSON or v1-style errors[]."""
    body = json_body(response)
    title = str(body.get("title") or response.reason_phrase or "error")
    detail = str(body.get("detail") or "")
    ptype = str(body.get("type") or "")
    messages = []
    for err in body.get("errors") or []:
        if isinstance(err, dict):
            msg = err.get("message") or err.get("detail")
            if msg and msg != detail:
                messages.append(str(msg))
    text = f"X {response.status_code} {title}"
    if detail:
        text += f": {detail}"
    if messages:
        text += " (" + "; ".join(messages) + ")"
    return truncate(text), ptype


def retry_after_of(response: httpx.Response, now: float | None = None, *, default: float = 60.0) -> float:
    """Seconds until X lets us try again, from its headers [C rate-limits.mdx].

    ``x-rate-limit-reset`` is the epoch second the 15-minute window reopens; the 24-hour caps
    (``x-user-limit-24hour-*``, ``x-app-limit-24hour-*``) [U] count when their ``remaining`` is 0.
    The latest exhausted window wins; at least 1 s. ``default`` when no header says anything.
    """
    now = time.time() if now is None else now
    headers = response.headers
    resets: list[float] = []
    for window in ("x-rate-limit", "x-user-limit-24hour", "x-app-limit-24hour"):
        reset, remaining = headers.get(f"{window}-reset"), headers.get(f"{window}-remaining")
        try:
            value = float(reset) if reset is not None else None
        except ValueError:
            value = None
        if value is not None and (remaining == "0" or (window == "x-rate-limit" and remaining is None)):
            resets.append(value)
    if not resets and headers.get("x-rate-limit-reset"):
        try:
            resets.append(float(headers["x-rate-limit-reset"]))
        except ValueError:
            pass
    if resets:
        return max(1.0, max(resets) - now)
    retry = headers.get("retry-after")
    if retry and retry.strip().isdigit():
        return max(1.0, float(retry))
    return default


def classify(response: httpx.Response, *, publishing: bool = False) -> ProviderError:
    """The taxonomy error for an X error answer (bodies are X's, never our request: no token)."""
    status = response.status_code
    text, ptype = _problem_text(response)
    lowered = text.lower()
    if ptype.endswith("/usage-capped"):
        # The app's (monthly or pay-per-use) cap is spent. Our choice: RateLimited, not
        # ProviderUnavailable -- nothing is broken, a blind backoff cannot help, and X says when
        # the window reopens in x-rate-limit-reset; without that header we wait an hour.
        exc = RateLimited(text, retry_after=retry_after_of(response, default=3600.0), http_status=status)
        exc.code = "usage_capped"
        return exc
    if status == 429:
        return RateLimited(text, retry_after=retry_after_of(response), http_status=status)
    if status == 401:
        return AuthExpired(f"X refused the access token: {text}", http_status=status)
    if status == 403:
        if "suspended" in lowered or ptype.endswith(("/user-suspended", "/unsupported-authentication")):
            return AuthExpired(text, http_status=status)
        return ContentRejected(text, http_status=status,
                               code="duplicate_content" if DUPLICATE in lowered else None)
    if status >= 500:
        if publishing and status == 504:
            # A gateway timeout: X may have created the post behind it. Reconcile, never repost.
            return OutcomeUnknown(f"{text}; the post may have been published", http_status=status)
        return ProviderUnavailable(text, http_status=status)
    return ContentRejected(text, http_status=status)  # 400 invalid-request, 404, 413, ...


# --- text helpers -------------------------------------------------------------------------------------


def _comparable(text: str) -> str:
    """A post's text as X stores it, made comparable with ours: X returns text HTML-escaped
    (&amp; &lt; &gt;), every URL wrapped in https://t.co/..., and a media post with its media
    link appended [3P: X API text fields]. Both sides: NFC, unescaped, URLs as one token."""
    text = unicodedata.normalize("NFC", html.unescape(text or "")).strip()
    out, last = [], 0
    for start, end in x_text.url_spans(text):
        out += [text[last:start], "\x00"]
        last = end
    out.append(text[last:])
    return "".join(out)


def _same_text(ours: str, theirs: str) -> bool:
    a, b = _comparable(ours), _comparable(theirs)
    return b == a or b == (a + " \x00" if a else "\x00")


def _is_gif(media: MediaFile | Any) -> bool:
    mime = (getattr(media, "mime", None) or "").lower()
    name = (getattr(media, "filename", None) or getattr(media, "url", None) or "").lower()
    return mime == "image/gif" or (not mime and name.split("?")[0].endswith(".gif"))


def _kind(media: MediaFile) -> str:
    if media.kind == "video":
        return "video"
    return "gif" if _is_gif(media) else "image"


# --- the adapter ------------------------------------------------------------------------------------


class XAdapter(OAuthAdapter):
    provider = "x"
    limits = LIMITS
    oauth = OAuthSpec(
        authorize_path="/i/oauth2/authorize",
        # POST /2/tweets needs tweet.read tweet.write users.read; the media endpoints media.write;
        # offline.access yields a refresh token [C openapi securitySchemes + per-path security].
        scopes=("tweet.read", "tweet.write", "users.read", "media.write", "offline.access"),
        pkce=True,
    )
    actions = (("sync_profile", "Read the account's username and name again"),)
    can_delete = True

    shapes: ClassVar[list[str]] = ["text", "image", "images", "gif", "video", "reply", "quote"]
    settings_fields: ClassVar[list[dict[str, Any]]] = [
        {"id": "replySettings", "type": "enum", "options": list(REPLY_SETTINGS),
         "label": "Who can reply (default: everyone)"},
        {"id": "quoteTweetId", "type": "string", "label": "Quote this post (its X id)"},
    ]

    # Media processing: honour X's check_after_secs, but never sleep longer than this at once,
    # and give up (ProviderUnavailable, the prepare step retries) after processing_timeout.
    max_poll_wait: float = 10.0
    processing_timeout: float = 300.0
    # Reconcile by text: the user timeline can trail a just-created post by a moment, so a miss
    # is looked at once more after this long before it counts as absent.
    reconcile_settle_seconds: float = 3.0

    # --- pure check ---------------------------------------------------------------------------

    @classmethod
    def check_post(cls, draft: PostDraft) -> list[Problem]:
        settings = draft.settings or {}
        problems = unknown_settings(settings, SETTINGS, "x") + media_fit_problems(settings)
        text = draft.text or ""
        counted = x_text.count(text)
        if counted.weighted_length > x_text.MAX_WEIGHTED_LENGTH:
            problems.append(Problem(
                field="description",
                message=f"{n(counted.weighted_length)} weighted characters, x allows {n(x_text.MAX_WEIGHTED_LENGTH)}",
            ))
        if counted.invalid_characters:
            problems.append(Problem(
                field="description",
                message=f"contains {', '.join(counted.invalid_characters)}, which x refuses",
            ))
        if not text.strip() and not draft.media:
            problems.append(Problem(field="description", message="the post is empty: x needs text or media"))
        kinds = []
        for i, ref in enumerate(draft.media):
            kind = kind_of(ref)
            if kind not in ("image", "video"):
                problems.append(Problem(field=f"assets[{i}]", message="x takes images, GIFs and videos only"))
                continue
            kinds.append("gif" if kind == "image" and _is_gif(ref) else kind)
            if ref.alt_text and len(ref.alt_text) > MAX_ALT_TEXT:
                problems.append(Problem(
                    field=f"assets[{i}]",
                    message=f"alt text is {n(len(ref.alt_text))} characters, x allows {n(MAX_ALT_TEXT)}",
                ))
        if len(draft.media) > 1 and any(k in ("gif", "video") for k in kinds):
            problems.append(Problem(
                field="assets", message="x allows 4 images, or 1 video or GIF, per post"))
        elif len(draft.media) > LIMITS.max_media:
            problems.append(Problem(
                field="assets", message=f"{n(len(draft.media))} images, x allows {LIMITS.max_media} per post"))
        reply_settings = settings.get("replySettings")
        if reply_settings is not None and reply_settings not in REPLY_SETTINGS:
            problems.append(Problem(field="settings.replySettings",
                                    message=f"must be one of {', '.join(REPLY_SETTINGS)}"))
        quote = settings.get("quoteTweetId")
        if quote is not None and not (isinstance(quote, (str, int)) and not isinstance(quote, bool)
                                      and str(quote).isdigit() and len(str(quote)) <= POST_ID_DIGITS):
            problems.append(Problem(field="settings.quoteTweetId", message="must be an X post id (digits)"))
        return problems

    # --- HTTP helpers --------------------------------------------------------------------------

    @staticmethod
    def _auth(credentials: dict[str, Any]) -> dict[str, str]:
        return {"Authorization": f"Bearer {credentials['access_token']}"}

    async def _call(self, credentials: dict[str, Any], method: str, path: str, *,
                    ok: tuple[int, ...] = (200, 201), **kwargs: Any) -> httpx.Response:
        """A call that changes nothing visible (reads, media uploads): an unknown outcome is only
        unavailability. Non-``ok`` answers raise the classified error."""
        headers = {**self._auth(credentials), **kwargs.pop("headers", {})}
        request = self.http.build_request(method, f"{self.base_url}{path}", headers=headers, **kwargs)
        response = await send_readonly(self.http, request)
        if response.status_code not in ok:
            raise classify(response)
        return response

    @staticmethod
    def _data(response: httpx.Response) -> dict[str, Any]:
        data = json_body(response).get("data")
        if not isinstance(data, dict):
            raise ProviderError(f"X answered {response.status_code} without data", http_status=response.status_code,
                                code="bad_response")
        return data

    # --- OAuth -----------------------------------------------------------------------------------

    async def exchange_code(self, app: OAuthApp, code: str, code_verifier: str | None) -> dict[str, Any]:
        body = await token_request(
            self.http, "POST", f"{app.token_base}/2/oauth2/token",
            data={"code": code, "grant_type": "authorization_code", "redirect_uri": app.redirect_uri,
                  "code_verifier": code_verifier or ""},
            headers={"Authorization": app.basic_auth()},
        )
        return token_credentials(body)

    async def refresh(self, app: OAuthApp, credentials: dict[str, Any]) -> dict[str, Any] | None:
        refresh_token = credentials.get("refresh_token")
        if not refresh_token:
            return None  # connected without offline.access: only a reconnect helps
        body = await token_request(
            self.http, "POST", f"{app.token_base}/2/oauth2/token",
            data={"grant_type": "refresh_token", "refresh_token": refresh_token},
            headers={"Authorization": app.basic_auth()},
        )
        # X rotates the refresh token: the answer's one replaces ours (token_credentials).
        return token_credentials(body, previous=credentials)

    async def _me(self, credentials: dict[str, Any]) -> dict[str, Any]:
        response = await self._call(credentials, "GET", "/2/users/me",
                                    params={"user.fields": "name,username,profile_image_url"})
        me = self._data(response)
        if not me.get("id"):
            raise ProviderError("X /2/users/me answered without an id", code="bad_response")
        return me

    async def discover(self, app: OAuthApp, credentials: dict[str, Any]) -> list[AccountIdentity]:
        me = await self._me(credentials)
        user_id = str(me["id"])
        return [AccountIdentity(
            handle=f"x:{user_id}",
            external_id=user_id,
            display_name=me.get("name") or me.get("username"),
            account_type="user",
            credentials={**credentials, "user_id": user_id, "username": me.get("username")},
            metadata={"username": me.get("username"), "name": me.get("name")},
        )]

    async def check_credentials(self, credentials: dict[str, Any]) -> None:
        await self._me(credentials)

    async def run_action(self, app: OAuthApp | None, credentials: dict[str, Any], action: str) -> dict[str, Any]:
        if action != "sync_profile":
            raise ValueError(f"unknown action {action!r} (x offers: sync_profile)")
        me = await self._me(credentials)
        return {"userId": str(me["id"]), "username": me.get("username"), "name": me.get("name")}

    # --- media -----------------------------------------------------------------------------------

    @staticmethod
    async def _read(path: str, offset: int, size: int) -> bytes:
        def read() -> bytes:
            with Path(path).open("rb") as fh:
                fh.seek(offset)
                return fh.read(size)

        return await asyncio.to_thread(read)

    async def _upload(self, credentials: dict[str, Any], media: MediaFile) -> str:
        """One file through the chunked upload, processed and captioned: its media id."""
        kind = _kind(media)
        total = Path(media.path).stat().st_size
        init = await self._call(credentials, "POST", "/2/media/upload/initialize", json={
            "media_type": media.mime, "total_bytes": total, "media_category": MEDIA_CATEGORY[kind],
        })
        media_id = str(self._data(init)["id"])
        for index, offset in enumerate(range(0, total, CHUNK_BYTES)):
            chunk = await self._read(media.path, offset, CHUNK_BYTES)
            await self._call(credentials, "POST", f"/2/media/upload/{media_id}/append", ok=(200, 201, 204),
                             data={"segment_index": str(index)},
                             files={"media": (media.filename or "chunk", chunk, "application/octet-stream")})
        final = self._data(await self._call(credentials, "POST", f"/2/media/upload/{media_id}/finalize"))
        await self._wait_processed(credentials, media_id, final.get("processing_info"))
        if media.alt_text and kind in ("image", "gif"):
            await self._call(credentials, "POST", "/2/media/metadata", json={
                "id": media_id, "metadata": {"alt_text": {"text": media.alt_text[:MAX_ALT_TEXT]}},
            })
        return media_id

    async def _wait_processed(self, credentials: dict[str, Any], media_id: str, info: Any) -> None:
        """Poll STATUS until processing succeeded [C media-upload-chunked.mdx]; no processing_info
        means the media is ready to attach."""
        deadline = time.monotonic() + self.processing_timeout
        while isinstance(info, dict) and info.get("state") in ("pending", "in_progress"):
            advertised = info.get("check_after_secs")
            wait = float(advertised) if isinstance(advertised, (int, float)) and advertised > 0 else 1.0
            wait = min(wait, self.max_poll_wait)
            if time.monotonic() + wait > deadline:
                raise ProviderUnavailable(
                    f"X was still processing media {media_id} after {self.processing_timeout:g} s")
            await asyncio.sleep(wait)
            response = await self._call(credentials, "GET", "/2/media/upload",
                                        params={"command": "STATUS", "media_id": media_id})
            info = self._data(response).get("processing_info")
        if isinstance(info, dict) and info.get("state") == "failed":
            error = info.get("error") if isinstance(info.get("error"), dict) else {}
            reason = error.get("message") or error.get("name") or "no reason given"
            raise ContentRejected(f"X could not process the media: {truncate(str(reason))}", code="media_rejected")

    # --- publishing ------------------------------------------------------------------------------

    def _url(self, credentials: dict[str, Any], post_id: str) -> str:
        username = credentials.get("username")
        # https://x.com/{username}/status/{id} [3P postiz]; i/web/status works without it [U].
        return f"https://x.com/{username}/status/{post_id}" if username else f"https://x.com/i/web/status/{post_id}"

    async def prepare_publish(self, credentials: dict[str, Any], request: PublishRequest) -> PreparedPublish:
        settings = request.settings or {}
        media_ids = list(await asyncio.gather(*(self._upload(credentials, m) for m in request.media)))
        # "text" is always sent, "" for a media-only post [C openapi: the backend rejects an absent text].
        payload: dict[str, Any] = {"text": request.text or ""}
        if media_ids:
            payload["media"] = {"media_ids": media_ids}
        if request.reply_to:  # X has replies only: "reply" and "comment" both become one [C]
            payload["reply"] = {"in_reply_to_tweet_id": str(request.reply_to)}
        if settings.get("replySettings"):
            payload["reply_settings"] = settings["replySettings"]
        if settings.get("quoteTweetId"):
            payload["quote_tweet_id"] = str(settings["quoteTweetId"])
        http_request = self.http.build_request("POST", f"{self.base_url}/2/tweets", json=payload,
                                               headers=self._auth(credentials))

        def parse(response: httpx.Response) -> PublishResult:
            if response.status_code not in (200, 201):
                raise classify(response, publishing=True)
            post_id = str(response.json()["data"]["id"])
            return PublishResult(provider_post_id=post_id, provider_url=self._url(credentials, post_id),
                                 http_status=response.status_code)

        return PreparedRequest(self.http, http_request, parse)

    # --- reconcile, delete -----------------------------------------------------------------------

    async def _lookup(self, credentials: dict[str, Any], post_id: str) -> dict[str, Any] | None:
        response = await self._call(credentials, "GET", f"/2/tweets/{post_id}", ok=(200, 404))
        body = json_body(response)
        data = body.get("data")
        if response.status_code == 200 and isinstance(data, dict) and data.get("id"):
            return data
        # A missing post is 200 with errors[] of type resource-not-found [3P: v2 lookup], or 404.
        return None

    async def _recent(self, credentials: dict[str, Any], user_id: str) -> list[dict[str, Any]]:
        """The account's posts of the last RECONCILE_WINDOW, newest first (one page of 100). The
        window keeps a weeks-old post with the same text ("Good morning!") from passing for ours."""
        since = datetime.fromtimestamp(time.time() - RECONCILE_WINDOW, tz=timezone.utc)
        response = await self._call(credentials, "GET", f"/2/users/{user_id}/tweets",
                                    params={"max_results": str(RECENT_POSTS),
                                            "start_time": since.strftime("%Y-%m-%dT%H:%M:%SZ"),
                                            "tweet.fields": "created_at,referenced_tweets"})
        data = json_body(response).get("data")
        return [t for t in data if isinstance(t, dict)] if isinstance(data, list) else []

    async def reconcile(self, credentials: dict[str, Any], request: PublishRequest,
                        provider_post_id: str | None) -> ReconcileResult:
        def found(post_id: str) -> ReconcileResult:
            return ReconcileResult(state="found", result=PublishResult(
                provider_post_id=post_id, provider_url=self._url(credentials, post_id)))

        if provider_post_id:
            post = await self._lookup(credentials, provider_post_id)
            return found(str(post["id"])) if post else ReconcileResult(state="absent", detail="X: post not found")
        if not (request.text or "").strip():
            # X lists recent posts but a media-only post has no text to recognise it by.
            return ReconcileResult(state="unknowable", detail="a post without text cannot be recognised "
                                   "among the account's recent X posts; check the profile before posting again")
        user_id = credentials.get("user_id") or str((await self._me(credentials))["id"])

        def matches(post: dict[str, Any]) -> bool:
            if request.reply_to:  # a reply must answer the same parent
                refs = post.get("referenced_tweets") or []
                if not any(isinstance(r, dict) and r.get("type") == "replied_to"
                           and str(r.get("id")) == str(request.reply_to) for r in refs):
                    return False
            return _same_text(request.text or "", str(post.get("text") or ""))

        for attempt in range(2):
            posts = await self._recent(credentials, str(user_id))
            hit = next((t for t in posts if matches(t)), None)
            if hit is not None:
                return found(str(hit["id"]))
            if attempt == 0 and self.reconcile_settle_seconds > 0:
                await asyncio.sleep(self.reconcile_settle_seconds)
        return ReconcileResult(state="absent", detail=f"X: no post with this text among the account's "
                               f"{RECENT_POSTS} most recent posts")

    async def delete(self, credentials: dict[str, Any], provider_post_id: str) -> None:
        response = await self._call(credentials, "DELETE", f"/2/tweets/{provider_post_id}", ok=(200, 404))
        if response.status_code == 404:
            return  # already gone
        data = json_body(response).get("data")
        if isinstance(data, dict) and data.get("deleted") is False:
            raise ProviderError("X answered that the post was not deleted", http_status=200, code="not_deleted")
