"""Threads (Meta) through the Threads API on graph.threads.net, connected by OAuth.

Facts from /work/shared/reference/providers.md §5 and the official pages it names, confirmed
with the search tool where marked [C]; [3P] third party, [U] unconfirmed (our choice):

* developers.facebook.com/docs/threads/posts [C]: two steps, ``POST /{user}/threads``
  (media_type TEXT|IMAGE|VIDEO|CAROUSEL, text, image_url, video_url, is_carousel_item, children,
  reply_to_id, reply_control) then ``POST /{user}/threads_publish`` with ``creation_id``; text
  <= 500 characters with emojis counted as their UTF-8 bytes; media is fetched from a public URL.
* …/threads/reference/publishing [C]: reply_control values everyone, accounts_you_follow,
  mentioned_only, parent_post_author_only, followers_only.
* …/threads/troubleshooting [C]: ``GET /{container}?fields=status,error_message`` ->
  IN_PROGRESS | FINISHED | ERROR | EXPIRED (not published within 24 h) | PUBLISHED; "query a
  container's status once per minute, for no more than 5 minutes".
* …/threads/overview [C]: 250 API-published posts per profile per moving 24 h (a carousel counts
  once), enforced by threads_publish; ``GET /{user}/threads_publishing_limit``. Replies: 1,000 per
  24 h, ``reply_quota_usage`` / ``reply_config`` [C retrieve-and-manage-replies].
* …/threads/posts/delete-posts [C]: ``DELETE /{media-id}`` -> ``{"success": true, "deleted_id"}``,
  needs threads_delete, 100 deletes per day.
* …/threads/get-started/get-access-tokens-and-permissions and …/long-lived-tokens [C]: consent at
  threads.net/oauth/authorize (comma-separated scopes, no PKCE documented), code ->
  ``POST /oauth/access_token`` -> short-lived (1 h) ``{access_token, user_id}``;
  ``GET /access_token?grant_type=th_exchange_token&client_secret&access_token`` -> 60 days;
  ``GET /refresh_access_token?grant_type=th_refresh_token&access_token`` for a token at least
  24 h old and not expired. There is no separate refresh token.
* Retrieve replies [C …/retrieve-and-manage-replies/retrieve-replies]: ``GET /{user}/replies``
  needs threads_read_replies (used by reconcile for replies).
* Errors: the Graph envelope, code 190 = bad/expired token, 4/17/32/613 = throttled, 10/200-299 =
  missing permission [C graph-api/guides/error-handling]; Threads-specific subcodes 2207051
  (action blocked) and 4279013 (user restricted) [3P providers.md §5].

Tokens travel in the ``Authorization: Bearer`` header, never in an API URL. The token endpoints
take ``access_token``/``client_secret`` as query parameters (as documented), so a log filter on
the ``httpx`` logger redacts those parameters from request log lines.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import unicodedata
from typing import Any, ClassVar

import httpx

from media.types import ImageRules, MediaProfile, VideoRules
from providers.base import (
    AccountIdentity,
    AuthExpired,
    ContentRejected,
    Limits,
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
    send_classified,
    truncate,
)
from providers.http_media import json_body, kind_of, media_fit_problems, n, send_readonly, unknown_settings
from providers.oauth import OAuthAdapter, OAuthApp, OAuthSpec, token_credentials, token_request

API_VERSION = "v1.0"  # [C overview: graph.threads.net/v1.0]

LIMITS = Limits(
    max_text_chars=500,  # [C posts: "Text posts are limited to 500 characters"; emojis = UTF-8 bytes]
    max_media=20,  # carousel items [3P getlate media guidelines "20 per post"; older docs: 10]
    min_media_group=2,  # a carousel has at least 2 items [3P]; one item is a single IMAGE/VIDEO post
    max_file_bytes=1_000_000_000,  # video <= 1 GB [3P Ayrshare media guidelines]
    max_bytes_by_kind={"image": 8_000_000},  # image <= 8 MB [3P Ayrshare media guidelines]
    source=(
        "developers.facebook.com/docs/threads/posts (500 characters, emojis counted as UTF-8 bytes) "
        "[C]; carousel 2-20 items (getlate) and image 8 MB / video 1 GB (ayrshare.com/docs/"
        "media-guidelines/threads) [3P]; see providers.md §5"
    ),
)

# "Threads posts containing more than 5 links will fail to post during the media creation step
# ... THREADS_API__LINK_LIMIT_EXCEEDED"; all unique URLs in the text count [C developers.facebook.com/
# documentation/threads/create-posts/text-attachments].
MAX_LINKS = 5
_URL = re.compile(r"(?i)\b(?:https?://|www\.)[^\s<>\"']+")
REPLY_CONTROLS = ("everyone", "accounts_you_follow", "mentioned_only", "parent_post_author_only",
                  "followers_only")  # [C reference/publishing]
SETTINGS = ("replyControl",)
MAX_ALT_TEXT = 1000  # [3P social-mcp: alt_text at most 1,000 characters]

# Errors [C graph-api/guides/error-handling; 3P subcodes].
AUTH_CODES = {190, 102, 10}  # token invalid/expired, session, permission
THROTTLE_CODES = {4, 17, 32, 613}
NOT_FOUND = (100, 33)  # "Unsupported get/delete request. Object with ID ... does not exist"
NOT_READY = (9007, 2207027)  # container not FINISHED [U: Instagram's code, emulated for Threads]
QUOTA_SPENT = (9, 2207042)  # "maximum number of posts ... in 24 hours" [U: Instagram's code]
ALREADY_PUBLISHED = (100, 2207006)  # the container was published before [U: the sandbox's code]
FETCH_FAILED_SUBCODES = {2207052, 2207003}  # media could not be fetched / download timed out [U]
# Graph throttles are a rolling window: without an estimate in the headers wait 15 min [U, ours].
DEFAULT_THROTTLE_WAIT = 900.0
# The publishing quota is a moving 24 h window with no reset time: try again in an hour [U, ours].
QUOTA_WAIT = 3600.0
RECONCILE_SCAN = 100  # how many of the account's newest posts reconcile looks through

# --- media rules (the lead registers these in providers/media_profiles.py) -------------------------
# [3P ayrshare.com/docs/media-guidelines/threads, repeated in providers.md §5]: images JPEG/PNG,
# <= 8 MB, aspect ratio <= 10:1, width 320-1440 (scaled by Threads), sRGB. Video: MOV/MP4 with
# the moov atom first, H.264/HEVC, AAC, 23-60 fps, <= 1920 px wide, aspect 0.01:1-10:1,
# <= 25 Mbps, <= 300 s, <= 1 GB.
THREADS_PROFILE = MediaProfile(
    key="threads.v1",
    image=ImageRules(
        formats=("image/jpeg", "image/png"),
        convert_to="image/jpeg",
        max_bytes=8_000_000,
        max_width=1440,  # wider images are scaled down by Threads anyway
        max_ratio=10,
        keep_animation=False,
    ),
    video=VideoRules(
        containers=("video/mp4", "video/quicktime"),
        video_codecs=("h264", "hevc"),
        audio_codecs=("aac",),
        pixel_formats=("yuv420p",),
        max_bytes=1_000_000_000,
        max_width=1920,
        max_fps=60,
        max_bitrate=25_000_000,
        max_duration=300,
        min_aspect=0.01,
        max_aspect=10,
        needs_faststart=True,
    ),
    max_other_bytes=None,  # Threads takes only images and videos
    source="ayrshare.com/docs/media-guidelines/threads [3P]; providers.md §5",
)
MEDIA_PROFILES: dict[str, dict[str | None, MediaProfile]] = {"threads": {None: THREADS_PROFILE}}


# --- secrets in logs --------------------------------------------------------------------------------

# Secrets in logged token-endpoint URLs: providers/http_media.RedactTokens (one filter for all).


# --- pure helpers ---------------------------------------------------------------------------------


def _is_emoji(cp: int) -> bool:
    return (0x1F000 <= cp <= 0x1FAFF or 0x2600 <= cp <= 0x27BF or 0x2300 <= cp <= 0x23FF
            or 0x2B00 <= cp <= 0x2BFF or 0xE0020 <= cp <= 0xE007F
            or cp in (0x200D, 0xFE0F, 0x20E3, 0x3030, 0x303D, 0x3297, 0x3299))


def text_length(text: str) -> int:
    """Characters the way Threads counts them: "Emojis are counted as the number of UTF-8
    bytes" [C posts]. Approximation without a grapheme library: code points in the emoji blocks,
    and the joiners / variation selectors / keycaps / tags that build emoji sequences, count their
    UTF-8 bytes (so a whole emoji sequence counts its bytes); combining marks count 0 (they belong
    to the previous character); everything else counts 1."""
    total = 0
    for ch in text:
        if _is_emoji(ord(ch)):
            total += len(ch.encode("utf-8"))
        elif not unicodedata.combining(ch):
            total += 1
    return total


def count_links(text: str) -> int:
    """Unique URLs in the text. Approximation: URLs with a scheme or starting with www. count
    (bare domains such as example.com may count on Threads too [U]); trailing punctuation and a
    trailing slash are not part of the URL; the scheme and host are case-insensitive."""
    seen = set()
    for match in _URL.finditer(text):
        url = match.group(0).rstrip(".,;:!?)]}\"'").rstrip("/")
        url = re.sub(r"(?i)^https?://", "", url)
        host, _, rest = url.partition("/")
        seen.add(host.lower() + ("/" + rest if rest else ""))
    return len(seen)


def _graph_error(body: dict[str, Any]) -> dict[str, Any]:
    err = body.get("error")
    return err if isinstance(err, dict) else {}


def _throttle_wait(response: httpx.Response) -> float:
    """Seconds to wait from ``X-Business-Use-Case-Usage`` (``estimated_time_to_regain_access``,
    minutes [C Graph rate-limiting]); our default when the headers give no estimate."""
    raw = response.headers.get("x-business-use-case-usage")
    minutes: float | None = None
    if raw:
        try:
            usage = json.loads(raw)
        except ValueError:
            usage = None
        if isinstance(usage, dict):
            for entries in usage.values():
                for entry in entries if isinstance(entries, list) else []:
                    value = entry.get("estimated_time_to_regain_access") if isinstance(entry, dict) else None
                    if isinstance(value, (int, float)) and not isinstance(value, bool):
                        minutes = max(minutes or 0.0, float(value))
    if minutes:
        return minutes * 60.0
    retry = response.headers.get("retry-after")
    if retry and retry.isdigit():
        return float(retry)
    return DEFAULT_THROTTLE_WAIT


def classify(response: httpx.Response, secrets: tuple[str, ...] = (), *, publishing: bool = False) -> ProviderError:
    """The taxonomy error for a Graph error answer. Detect by ``error.code`` first: Meta sends
    throttling and token errors with HTTP 400/403 rather than 429/401 [C error-handling]."""
    status = response.status_code
    err = _graph_error(json_body(response))
    code = err.get("code") if isinstance(err.get("code"), int) else None
    sub = err.get("error_subcode") if isinstance(err.get("error_subcode"), int) else None
    message = str(err.get("message") or response.reason_phrase or "error")
    user_msg = err.get("error_user_msg") or err.get("error_user_title")
    if user_msg and str(user_msg) not in message:
        message += f" ({user_msg})"
    tag = f" [{code}{'/' + str(sub) if sub else ''}]" if code is not None else ""
    text = f"Threads {status}{tag}: {message}"
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    text = truncate(text)
    if code in THROTTLE_CODES or status == 429:
        return RateLimited(text, retry_after=_throttle_wait(response), http_status=status)
    if (code, sub) == QUOTA_SPENT:
        return RateLimited(f"{text}; the 24-hour publishing quota is spent", retry_after=QUOTA_WAIT,
                           http_status=status)
    if code in AUTH_CODES or (code is not None and 200 <= code <= 299) or status == 401:
        return AuthExpired(f"{text}; reconnect the Threads account", http_status=status)
    if publishing and (code, sub) == ALREADY_PUBLISHED:
        # The post exists but this answer does not say its id: reconcile finds it.
        return OutcomeUnknown(f"{text}; reconcile to find the published post", http_status=status)
    if (code, sub) == NOT_READY:
        return ProviderUnavailable(text, http_status=status)
    if sub in FETCH_FAILED_SUBCODES:
        return ProviderUnavailable(f"{text}; is the media URL publicly reachable?", http_status=status)
    if publishing and status == 504:
        return OutcomeUnknown(f"{text}; the post may have been published", http_status=status)
    if status >= 500 or err.get("is_transient") is True or code in (1, 2):
        return ProviderUnavailable(text, http_status=status)
    return ContentRejected(text, http_status=status)


def _is_not_found(response: httpx.Response) -> bool:
    err = _graph_error(json_body(response))
    return (err.get("code"), err.get("error_subcode")) == NOT_FOUND


# --- the prepared publish ----------------------------------------------------------------------------


class ThreadsPrepared(PreparedPublish):
    """``POST /{user}/threads_publish?creation_id=…``, built ahead; the container is FINISHED."""

    def __init__(self, adapter: "ThreadsAdapter", token: str, user_id: str, creation_id: str):
        self._adapter = adapter
        self._token = token
        self.creation_id = creation_id
        self._request = adapter.http.build_request(
            "POST", adapter.api(f"{user_id}/threads_publish"),
            data={"creation_id": creation_id}, headers=adapter.auth_headers(token))

    def __repr__(self) -> str:  # never show the Authorization header
        return f"<ThreadsPrepared creation_id={self.creation_id}>"

    async def send(self) -> PublishResult:
        response = await send_classified(self._adapter.http, self._request)
        if response.status_code != 200:
            raise classify(response, (self._token,), publishing=True)
        try:
            media_id = str(response.json()["id"])
        except (KeyError, TypeError, ValueError):
            raise OutcomeUnknown(
                f"Threads answered {response.status_code} without a media id; the post may have been "
                "published", http_status=response.status_code) from None
        # The permalink needs a read (it holds a shortcode we cannot derive); best effort, after
        # the irreversible call, so a failure here never turns a published post into an error.
        url = await self._adapter.permalink(self._token, media_id)
        return PublishResult(provider_post_id=media_id, provider_url=url, http_status=response.status_code)


# --- the adapter -------------------------------------------------------------------------------------


class ThreadsAdapter(OAuthAdapter):
    provider = "threads"
    limits = LIMITS
    can_delete = True
    oauth = OAuthSpec(
        authorize_path="/oauth/authorize",
        # [C get-started permissions list; delete-posts for threads_delete; retrieve-replies for
        # threads_read_replies]. threads_manage_insights is not needed to publish.
        scopes=("threads_basic", "threads_content_publish", "threads_manage_replies",
                "threads_read_replies", "threads_delete"),
        scope_separator=",",  # "a comma-separated list" [C authorization window]
        pkce=False,  # not documented for Threads
    )
    actions = (("publishing_quota", "Show the 24-hour publishing quota"),)
    shapes: ClassVar[list[str]] = ["text", "image", "video", "carousel", "reply"]
    settings_fields: ClassVar[list[dict[str, Any]]] = [
        {"id": "replyControl", "type": "enum", "options": list(REPLY_CONTROLS), "default": "everyone",
         "label": "Who can reply"},
    ]

    # Container status polling: Meta suggests once a minute for up to 5 minutes [C troubleshooting];
    # we start faster (most containers finish in seconds) and back off to that pace.
    poll_initial: float = 0.2
    poll_max_interval: float = 60.0
    poll_timeout: float = 300.0

    # --- pure check ---------------------------------------------------------------------------

    @classmethod
    def check_post(cls, draft: PostDraft) -> list[Problem]:
        lim = cls.limits
        settings = draft.settings or {}
        problems = unknown_settings(settings, SETTINGS, "threads") + media_fit_problems(settings)
        control = settings.get("replyControl")
        if control is not None and control not in REPLY_CONTROLS:
            problems.append(Problem(field="settings.replyControl",
                                    message=f"must be one of {', '.join(REPLY_CONTROLS)}"))
        text = draft.text or ""
        length = text_length(text)
        if length > lim.max_text_chars:
            problems.append(Problem(
                field="description",
                message=f"{n(length)} characters, threads allows {n(lim.max_text_chars)} "
                "(emojis count as their UTF-8 bytes)",
            ))
        links = count_links(text)
        if links > MAX_LINKS:
            problems.append(Problem(field="description",
                                    message=f"{links} links, threads allows {MAX_LINKS} per post"))
        if not text.strip() and not draft.media:
            problems.append(Problem(field="description", message="the post is empty: threads needs text or media"))
        if len(draft.media) > lim.max_media:
            problems.append(Problem(
                field="assets", message=f"{n(len(draft.media))} media items, threads allows up to "
                f"{lim.max_media} in one carousel"))
        for i, ref in enumerate(draft.media):
            kind = kind_of(ref)
            if kind not in ("image", "video"):
                problems.append(Problem(field=f"assets[{i}]",
                                        message=f"threads takes only images and videos (this is {kind})"))
            # Images and videos get a rendition within the profile's limits, so their original
            # size is not a reason to refuse here.
            if ref.alt_text is not None and len(ref.alt_text) > MAX_ALT_TEXT:
                problems.append(Problem(field=f"assets[{i}]",
                                        message=f"alt text of {n(len(ref.alt_text))} characters, "
                                        f"threads allows {n(MAX_ALT_TEXT)}"))
        return problems

    # --- plumbing -------------------------------------------------------------------------------

    def api(self, path: str) -> str:
        return f"{self.base_url}/{API_VERSION}/{path}"

    @staticmethod
    def auth_headers(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    @staticmethod
    def _token(credentials: dict[str, Any]) -> str:
        token = credentials.get("access_token")
        if not isinstance(token, str) or not token:
            raise AuthExpired("the Threads account has no access token; reconnect it")
        return token

    @staticmethod
    def _user(credentials: dict[str, Any]) -> str:
        return str(credentials.get("user_id") or "me")

    async def _call(self, token: str, method: str, path: str, *, params: dict[str, Any] | None = None,
                    data: dict[str, Any] | None = None) -> dict[str, Any]:
        """A call that publishes nothing (reads, containers): a lost answer is just unavailability."""
        request = self.http.build_request(method, self.api(path), params=params, data=data,
                                          headers=self.auth_headers(token))
        response = await send_readonly(self.http, request)
        if response.status_code != 200:
            raise classify(response, (token,))
        return json_body(response)

    async def permalink(self, token: str, media_id: str) -> str | None:
        try:
            body = await self._call(token, "GET", media_id, params={"fields": "permalink"})
        except Exception:  # noqa: BLE001 - best effort, see ThreadsPrepared.send
            return None
        link = body.get("permalink")
        return link if isinstance(link, str) else None

    # --- OAuth ----------------------------------------------------------------------------------

    async def exchange_code(self, app: OAuthApp, code: str, code_verifier: str | None) -> dict[str, Any]:
        short = await token_request(self.http, "POST", f"{app.token_base}/oauth/access_token", data={
            "client_id": app.client_id, "client_secret": app.client_secret,
            "grant_type": "authorization_code", "redirect_uri": app.redirect_uri, "code": code,
        })
        if not isinstance(short.get("access_token"), str):
            raise ProviderError("the Threads token endpoint answered without an access_token",
                                code="oauth_bad_response")
        # The short-lived token lasts an hour: trade it for the 60-day one straight away.
        long = await token_request(self.http, "GET", f"{app.token_base}/access_token", params={
            "grant_type": "th_exchange_token", "client_secret": app.client_secret,
            "access_token": short["access_token"],
        })
        credentials = token_credentials(long)
        if short.get("user_id") is not None:
            credentials["user_id"] = str(short["user_id"])
        return credentials

    async def discover(self, app: OAuthApp, credentials: dict[str, Any]) -> list[AccountIdentity]:
        token = self._token(credentials)
        me = await self._call(token, "GET", "me", params={
            "fields": "id,username,name,threads_profile_picture_url"})
        user_id = str(me.get("id") or "")
        if not user_id:
            raise ProviderError("Threads answered /me without an id", code="oauth_bad_response")
        username = me.get("username")
        return [AccountIdentity(
            handle=f"threads:{user_id}",
            external_id=user_id,
            display_name=me.get("name") or username,
            account_type="profile",
            credentials={**credentials, "user_id": user_id},
            metadata={
                "username": username,
                "name": me.get("name"),
                "profile_url": f"https://www.threads.net/@{username}" if username else None,
                "picture_url": me.get("threads_profile_picture_url"),
            },
        )]

    async def refresh(self, app: OAuthApp, credentials: dict[str, Any]) -> dict[str, Any] | None:
        """The long-lived token refreshes itself (no refresh token): a new 60-day access token."""
        body = await token_request(self.http, "GET", f"{app.token_base}/refresh_access_token", params={
            "grant_type": "th_refresh_token", "access_token": self._token(credentials)})
        return token_credentials(body, previous=credentials)

    async def check_credentials(self, credentials: dict[str, Any]) -> None:
        await self._call(self._token(credentials), "GET", "me", params={"fields": "id"})

    async def run_action(self, app: OAuthApp | None, credentials: dict[str, Any], action: str) -> dict[str, Any]:
        if action != "publishing_quota":
            raise ValueError(f"unknown action {action!r} (threads has: publishing_quota)")
        row = await self._quota(self._token(credentials), self._user(credentials), replies=True)
        return {
            "quotaUsage": row.get("quota_usage"),
            "quotaTotal": (row.get("config") or {}).get("quota_total"),
            "quotaDurationSeconds": (row.get("config") or {}).get("quota_duration"),
            "replyQuotaUsage": row.get("reply_quota_usage"),
            "replyQuotaTotal": (row.get("reply_config") or {}).get("quota_total"),
        }

    # --- publishing -------------------------------------------------------------------------------

    async def _quota(self, token: str, user: str, *, replies: bool) -> dict[str, Any]:
        fields = "quota_usage,config" + (",reply_quota_usage,reply_config" if replies else "")
        body = await self._call(token, "GET", f"{user}/threads_publishing_limit", params={"fields": fields})
        data = body.get("data")
        return data[0] if isinstance(data, list) and data and isinstance(data[0], dict) else {}

    async def _check_quota(self, token: str, user: str, reply: bool) -> None:
        """Refuse ahead of time when the 24-hour quota is spent [C overview: "enforce the
        publishing rate limit in your app, especially if it allows scheduling"]."""
        row = await self._quota(token, user, replies=reply)
        used_key, config_key = ("reply_quota_usage", "reply_config") if reply else ("quota_usage", "config")
        used = row.get(used_key)
        total = (row.get(config_key) or {}).get("quota_total")
        if isinstance(used, int) and isinstance(total, int) and used >= total:
            what = "replies" if reply else "posts"
            raise RateLimited(f"Threads publishing quota spent: {used} of {total} {what} in the last 24 hours",
                              retry_after=QUOTA_WAIT, http_status=None)

    async def _container(self, token: str, user: str, params: dict[str, Any]) -> str:
        body = await self._call(token, "POST", f"{user}/threads", data=params)
        if not body.get("id"):
            raise ProviderUnavailable("Threads created a container without answering its id")
        return str(body["id"])

    async def _wait_finished(self, token: str, container_id: str) -> None:
        """Poll the container until FINISHED, with backoff and a cap (``poll_timeout``)."""
        deadline = time.monotonic() + self.poll_timeout
        delay = self.poll_initial
        while True:
            body = await self._call(token, "GET", container_id, params={"fields": "status,error_message"})
            status = body.get("status")
            if status == "FINISHED":
                return
            if status == "ERROR":
                error = str(body.get("error_message") or "UNKNOWN")
                text = f"Threads could not process the media (container {container_id}: {error})"
                # A download failure or an unknown error may pass; the INVALID_*/FAILED_PROCESSING
                # verdicts are about the file itself.
                if error.startswith("FAILED_DOWNLOADING") or error == "UNKNOWN":
                    raise ProviderUnavailable(text)
                raise ContentRejected(text)
            if status in ("EXPIRED", "PUBLISHED"):
                raise ProviderUnavailable(f"Threads container {container_id} is {status}; prepare the post again")
            if time.monotonic() + delay > deadline:
                raise ProviderUnavailable(
                    f"Threads was still processing container {container_id} after {self.poll_timeout:g} s")
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.poll_max_interval)

    async def prepare_publish(self, credentials: dict[str, Any], request: PublishRequest) -> PreparedPublish:
        token, user = self._token(credentials), self._user(credentials)
        if request.interaction == "comment":
            raise ContentRejected("Threads has no comments: follow-ups are replies (interaction \"reply\")")
        reply = bool(request.reply_to)
        media = list(request.media)
        for i, m in enumerate(media):
            if m.kind not in ("image", "video"):
                raise ContentRejected(f"media[{i}]: threads takes only images and videos (got {m.kind})")
            if not m.url:
                raise ContentRejected(
                    f"media[{i}] has no public URL: Threads fetches media by URL, so Herald's media "
                    "delivery endpoint must be reachable from the internet")
        if len(media) > LIMITS.max_media:
            raise ContentRejected(f"{len(media)} media items, threads allows up to {LIMITS.max_media}")
        if not media and not (request.text or "").strip():
            raise ContentRejected("the post is empty: threads needs text or media")

        await self._check_quota(token, user, reply)

        common: dict[str, Any] = {}
        if request.text:
            common["text"] = request.text
        if reply:
            common["reply_to_id"] = request.reply_to
        control = (request.settings or {}).get("replyControl")
        if control:
            common["reply_control"] = control

        def media_params(m: Any) -> dict[str, Any]:
            kind = "IMAGE" if m.kind == "image" else "VIDEO"
            out = {"media_type": kind, ("image_url" if kind == "IMAGE" else "video_url"): m.url}
            if m.alt_text:
                out["alt_text"] = m.alt_text
            return out

        if not media:
            container = await self._container(token, user, {"media_type": "TEXT", **common})
        elif len(media) == 1:
            container = await self._container(token, user, {**media_params(media[0]), **common})
        else:
            # Items first (no text: the carousel container carries it), each polled to FINISHED,
            # then the CAROUSEL container with children in order [C posts, Carousel Posts].
            items = await asyncio.gather(*(
                self._container(token, user, {**media_params(m), "is_carousel_item": "true"}) for m in media))
            await asyncio.gather(*(self._wait_finished(token, item) for item in items))
            container = await self._container(token, user, {
                "media_type": "CAROUSEL", "children": ",".join(items), **common})
        await self._wait_finished(token, container)
        return ThreadsPrepared(self, token, user, container)

    # --- reconcile / delete -------------------------------------------------------------------------

    async def reconcile(self, credentials: dict[str, Any], request: PublishRequest,
                        provider_post_id: str | None) -> ReconcileResult:
        token, user = self._token(credentials), self._user(credentials)
        if provider_post_id:
            lookup = self.http.build_request("GET", self.api(provider_post_id),
                                             params={"fields": "id,text,permalink"},
                                             headers=self.auth_headers(token))
            response = await send_readonly(self.http, lookup)
            if response.status_code == 200:
                body = json_body(response)
                return ReconcileResult(state="found", result=PublishResult(
                    provider_post_id=str(body.get("id") or provider_post_id),
                    provider_url=body.get("permalink"), http_status=200))
            if _is_not_found(response):
                return ReconcileResult(state="absent", detail=f"Threads has no post {provider_post_id}")
            raise classify(response, (token,))
        text = request.text or ""
        if not text.strip():
            return ReconcileResult(
                state="unknowable",
                detail="a Threads post without text cannot be matched among the account's posts; "
                "check the profile by hand before posting again")
        # Replies are listed under /replies, top-level posts under /threads [C retrieve-replies].
        edge = "replies" if request.reply_to else "threads"
        fields = "id,text,timestamp,permalink" + (",replied_to" if request.reply_to else "")
        params: dict[str, Any] = {"fields": fields, "limit": 50}
        scanned = 0
        while scanned < RECONCILE_SCAN:
            body = await self._call(token, "GET", f"{user}/{edge}", params=params)
            data = body.get("data") if isinstance(body.get("data"), list) else []
            for post in data:
                scanned += 1
                if not isinstance(post, dict) or (post.get("text") or "").strip() != text.strip():
                    continue
                parent = (post.get("replied_to") or {}).get("id") if request.reply_to else None
                if request.reply_to and parent not in (None, request.reply_to):
                    continue
                return ReconcileResult(state="found", result=PublishResult(
                    provider_post_id=str(post["id"]), provider_url=post.get("permalink"), http_status=200))
            after = ((body.get("paging") or {}).get("cursors") or {}).get("after")
            if not data or not after or not (body.get("paging") or {}).get("next"):
                break
            params = {**params, "after": after}
        return ReconcileResult(
            state="absent",
            detail=f"no post with this exact text among the account's {scanned} newest {edge}")

    async def delete(self, credentials: dict[str, Any], provider_post_id: str) -> None:
        token = self._token(credentials)
        request = self.http.build_request("DELETE", self.api(provider_post_id), headers=self.auth_headers(token))
        response = await send_readonly(self.http, request)  # deleting twice is harmless
        if response.status_code == 200 and json_body(response).get("success") is True:
            return
        if _is_not_found(response):
            return  # already deleted (or never ours): nothing left to remove
        raise classify(response, (token,))
