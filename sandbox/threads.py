"""Threads API emulation (providers.md §5): the consent page, the token endpoints and the Graph
routes Herald's adapter uses, at their real paths under the sandbox prefixes.

    GET  /threads/www/oauth/authorize                    consent: approves THREADS_USER at once
    POST /threads/graph/oauth/access_token               code -> short-lived token {access_token, user_id}
    GET  /threads/graph/access_token?grant_type=th_exchange_token      -> long-lived (60 days)
    GET  /threads/graph/refresh_access_token?grant_type=th_refresh_token -> refreshed long-lived
    GET  /threads/graph/v1.0/me | /{user-id}             profile (id, username, name, ...)
    POST /threads/graph/v1.0/{user-id}/threads           media container (TEXT|IMAGE|VIDEO|CAROUSEL)
    POST /threads/graph/v1.0/{user-id}/threads_publish   creation_id -> {"id": media id}  (irreversible)
    GET  /threads/graph/v1.0/{user-id}/threads|replies   the user's posts / replies, newest first
    GET  /threads/graph/v1.0/{user-id}/threads_publishing_limit
    GET  /threads/graph/v1.0/{container-or-media-id}     container status / media fields
    DELETE /threads/graph/v1.0/{media-id}                {"success": true, "deleted_id"}
    POST /_sandbox/threads/quota {"userId"?, "quotaUsage"?, "replyQuotaUsage"?}   test switch

Facts and their sources (tags as in providers.md: [C] official docs, [3P] third party, [U] not
confirmed, i.e. the emulator's own choice):

* Container flow, parameters (media_type, text, image_url, video_url, is_carousel_item, children,
  reply_to_id, reply_control), ``threads_publish`` with ``creation_id`` [C developers.facebook.com/
  docs/threads/posts and …/threads/reference/publishing]. Text <= 500 characters, emojis counted
  as their UTF-8 bytes [C posts]. Container states IN_PROGRESS / FINISHED / ERROR / EXPIRED
  (not published within 24 h) / PUBLISHED and the video ``error_message`` values
  (FAILED_DOWNLOADING_VIDEO, FAILED_PROCESSING_VIDEO, INVALID_ASPEC_RATIO [sic], INVALID_DURATION,
  INVALID_FRAME_RATE, ...) [C …/threads/troubleshooting].
* 250 API-published posts and 1,000 replies per profile per moving 24 h, reported by
  ``threads_publishing_limit`` [C …/threads/overview, …/retrieve-and-manage-replies]. What the
  publish endpoint answers once a quota is spent is not documented: the emulator answers like
  Instagram's content publishing limit (code 9, subcode 2207042) [U].
* Delete: ``{"success": true, "deleted_id"}``, needs ``threads_delete``, 100 deletes/day [C
  …/threads/posts/delete-posts].
* Tokens: short-lived 1 h, long-lived 60 days (``expires_in`` 5183944 in the docs' example),
  refreshable [C …/threads/get-started/long-lived-tokens]. The real refresh needs a token at
  least 24 h old; the sandbox does not enforce that (tests could not refresh otherwise).
* Errors use the Graph envelope ``{"error": {message, type, code, error_subcode, fbtrace_id}}``
  [C graph-api/guides/error-handling]; an invalid/expired token is code 190 with HTTP 400 [3P].
  Image errors mirror Instagram's container errors (2207052 fetch failed, 2207004 too large,
  2207009 aspect ratio) [U for Threads]; images: JPEG/PNG, <= 8 MiB, aspect <= 10:1; video:
  MP4/MOV, H.264/HEVC, 23-60 fps, <= 300 s, aspect 0.01-10 [3P Ayrshare media guidelines].
* Throttling: code 4 ``(#4) Application request limit reached`` with ``X-App-Usage`` and the
  minutes to wait in ``X-Business-Use-Case-Usage.estimated_time_to_regain_access`` [C header
  format for Graph BUC limits; U that Threads sends it].
* Publishing a container that is not FINISHED: code 9007 subcode 2207027 "media not ready"
  (Instagram's) [U]; carousel children must be FINISHED when the carousel container is created
  [U: strict on purpose, so an adapter that skips polling fails here].

Media URLs are fetched with httpx like Threads' crawler does: images while the container is
created (so a bad image fails that call), videos in the background (so the container stays
IN_PROGRESS and then turns FINISHED or ERROR).
"""

from __future__ import annotations

import asyncio
import io
import json
import math
import re
import secrets
import time
import unicodedata
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

import httpx
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from sandbox.oauth import OAuthFailure, Token, bearer, client_credentials, request_params
from sandbox.state import DropConnection, SandboxState, hold, media_item, received_at
from sandbox.test_users import THREADS_USER

NETWORK = "threads"
PROVIDER = "threads"
API = "/threads/graph/v1.0"

SHORT_LIVED_SECONDS = 3600  # [C long-lived-tokens: short-lived tokens are valid for one hour]
LONG_LIVED_SECONDS = 5183944  # [C long-lived-tokens example answer: 60 days]
CONTAINER_TTL = 24 * 3600  # EXPIRED: "not published within 24 hours" [C troubleshooting]

MAX_TEXT = 500  # [C posts]
MAX_LINKS = 5  # unique URLs in the text [C create-posts/text-attachments]
MIN_CAROUSEL, MAX_CAROUSEL = 2, 20  # [3P getlate / social-mcp: 2-20; older docs said 10]
POST_QUOTA, REPLY_QUOTA, QUOTA_WINDOW = 250, 1000, 86400  # [C overview / reply management]
DELETE_QUOTA = 100  # per account per day [C delete-posts]
MAX_IMAGE_BYTES = 8 * 1024 * 1024  # "less than 8 MiB" (Instagram's wording) [3P/U]
MAX_VIDEO_BYTES = 1024 * 1024 * 1024  # 1 GB [3P]
MAX_ALT_TEXT = 1000  # [3P social-mcp]
REPLY_CONTROLS = ("everyone", "accounts_you_follow", "mentioned_only", "parent_post_author_only",
                  "followers_only")  # [C reference/publishing]

# How long containers stay IN_PROGRESS: fast enough for tests, slow enough that an adapter which
# publishes without polling the status is refused.
IMAGE_PROCESSING_SECONDS = 0.1
VIDEO_PROCESSING_SECONDS = 0.3
CAROUSEL_PROCESSING_SECONDS = 0.1

CONTAINER_FIELDS = {"id", "status", "error_message"}
MEDIA_FIELDS = {
    "id", "media_product_type", "media_type", "media_url", "permalink", "owner", "username", "text",
    "timestamp", "shortcode", "thumbnail_url", "children", "is_quote_post", "has_replies",
    "root_post", "replied_to", "is_reply", "is_reply_owned_by_me", "reply_audience", "hide_status",
    "alt_text",
}  # [C reference/reply-management field list, plus alt_text]
USER_FIELDS = {"id", "username", "name", "threads_profile_picture_url", "threads_biography"}
LIMIT_FIELDS = {"quota_usage", "config", "reply_quota_usage", "reply_config"}

UNSUPPORTED = ("Unsupported {method} request. Object with ID '{id}' does not exist, cannot be loaded "
               "due to missing permissions, or does not support this operation.")


# --- helpers ------------------------------------------------------------------------------------


def text_length(text: str) -> int:
    """Characters as Threads counts them [C posts]: an emoji counts as its UTF-8 bytes.

    Approximation: code points in the emoji blocks (and the joiners, variation selectors, keycaps
    and tags that build emoji sequences) count their UTF-8 length; combining marks count 0 (they
    belong to the previous character); everything else counts 1.
    """
    total = 0
    for ch in text:
        cp = ord(ch)
        if (0x1F000 <= cp <= 0x1FAFF or 0x2600 <= cp <= 0x27BF or 0x2300 <= cp <= 0x23FF
                or 0x2B00 <= cp <= 0x2BFF or 0xE0020 <= cp <= 0xE007F
                or cp in (0x200D, 0xFE0F, 0x20E3, 0x3030, 0x303D, 0x3297, 0x3299)):
            total += len(ch.encode("utf-8"))
        elif not unicodedata.combining(ch):
            total += 1
    return total


def links_in(text: str) -> int:
    """Unique URLs (with a scheme or www.) in the text, as Threads counts links [C]."""
    found = set()
    for match in re.finditer(r"(?i)\b(?:https?://|www\.)[^\s<>\"']+", text):
        url = re.sub(r"(?i)^https?://", "", match.group(0).rstrip(".,;:!?)]}\"'").rstrip("/"))
        host, _, rest = url.partition("/")
        found.add(host.lower() + ("/" + rest if rest else ""))
    return len(found)


def graph_error(status: int, message: str, code: int, *, subcode: int | None = None,
                type_: str = "OAuthException", user_title: str | None = None,
                user_msg: str | None = None, transient: bool = False,
                headers: dict[str, str] | None = None) -> JSONResponse:
    """The Graph error envelope [C graph-api/guides/error-handling]."""
    error: dict[str, Any] = {"message": message, "type": type_, "code": code}
    if subcode is not None:
        error["error_subcode"] = subcode
    error["is_transient"] = transient
    if user_title:
        error["error_user_title"] = user_title
    if user_msg:
        error["error_user_msg"] = user_msg
    error["fbtrace_id"] = "A" + secrets.token_urlsafe(15)
    return JSONResponse({"error": error}, status_code=status, headers=headers)


def param_error(message: str, **kw: Any) -> JSONResponse:
    return graph_error(400, f"(#100) {message}", 100, **kw)


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S+0000")


def shortcode() -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
    return "".join(secrets.choice(alphabet) for _ in range(11))


def fields_of(request: Request) -> list[str]:
    raw = request.query_params.get("fields") or ""
    return [f.strip() for f in raw.split(",") if f.strip()]


def has_scope(token: Token, scope: str) -> bool:
    return scope in token.scope.replace(",", " ").split()


def image_mime(fmt: str | None) -> str | None:
    return {"JPEG": "image/jpeg", "PNG": "image/png"}.get(fmt or "")


def probe_video(data: bytes) -> dict[str, Any]:
    """What Threads' video check looks at: container, codec, size, fps, duration."""
    import av

    try:
        with av.open(io.BytesIO(data)) as container:
            video = next((s for s in container.streams if s.type == "video"), None)
            if video is None:
                return {}
            rate = video.average_rate or video.guessed_rate
            duration = container.duration / 1_000_000 if container.duration else None
            return {"format": container.format.name, "codec": video.codec_context.name,
                    "width": video.codec_context.width, "height": video.codec_context.height,
                    "fps": float(rate) if rate else None, "duration": duration}
    except Exception:  # noqa: BLE001 - not a video the decoder understands
        return {}


async def fetch(url: str, limit: int) -> tuple[bytes | None, str | None, str | None]:
    """GET a media URL the way Threads' crawler does: (bytes, content type, failure reason)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None, None, "not an absolute http(s) URL"
    try:
        async with httpx.AsyncClient(timeout=10, follow_redirects=True) as client:
            async with client.stream("GET", url) as response:
                if response.status_code != 200:
                    return None, None, f"HTTP {response.status_code}"
                chunks, size = [], 0
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > limit:
                        return None, None, "too large"
                    chunks.append(chunk)
                return b"".join(chunks), response.headers.get("content-type"), None
    except httpx.HTTPError as exc:
        return None, None, type(exc).__name__


def filename_of(url: str) -> str | None:
    path = urlsplit(url).path
    return path.rsplit("/", 1)[-1] or None


# --- the emulator ---------------------------------------------------------------------------------


class ThreadsSandbox:
    def __init__(self, state: SandboxState):
        self.state = state

    # Per-network state lives in state.networks (dropped by DELETE /_sandbox): always look it up.
    @property
    def db(self) -> dict[str, Any]:
        db = self.state.networks.get(NETWORK)
        if db is None:
            db = self.state.networks[NETWORK] = {
                "containers": {}, "media": {}, "seq": 0, "publishes": {}, "deletes": {},
                "quota_offset": {}, "tasks": set(),
            }
        return db

    def next_id(self, base: int) -> str:
        self.db["seq"] += 1
        return str(base + self.db["seq"] * 7919)

    # --- OAuth ------------------------------------------------------------------------------------

    def oauth_error(self, failure: OAuthFailure) -> JSONResponse:
        # Graph-style token endpoint errors [U exact codes]: 101 bad client, 100 bad grant/params.
        code = 101 if failure.error == "invalid_client" else 100
        return graph_error(400, failure.description, code, type_="OAuthException")

    async def authorize(self, request: Request) -> Response:
        params = dict(request.query_params)
        try:
            if not params.get("scope"):
                raise OAuthFailure("invalid_scope", "scope is required")
            return self.state.oauth.authorize(NETWORK, params, THREADS_USER["id"])
        except OAuthFailure as failure:
            # The consent page shows an error page rather than redirecting [U].
            return HTMLResponse(f"<html><body><h1>Error</h1><p>{failure.error}: {failure.description}"
                                "</p></body></html>", status_code=400)

    async def access_token(self, request: Request) -> Response:
        """Code -> short-lived token; answers ``{"access_token", "user_id"}`` [C get-access-tokens]."""
        params = await request_params(request)
        try:
            client_id, secret = client_credentials(request, params)
            if params.get("grant_type") != "authorization_code":
                raise OAuthFailure("unsupported_grant_type", "grant_type must be authorization_code")
            record = self.state.oauth.redeem_code(NETWORK, params, client_id, secret)
        except OAuthFailure as failure:
            return self.oauth_error(failure)
        issued = self.state.oauth.issue(NETWORK, record["user_id"], record["scope"], record["client_id"],
                                        expires_in=SHORT_LIVED_SECONDS, kind="short", prefix="THQ")
        return JSONResponse({"access_token": issued["access_token"], "user_id": int(record["user_id"])})

    def _token_for_exchange(self, raw: str | None) -> tuple[Token | None, JSONResponse | None]:
        token = self.state.oauth.tokens.get(raw or "")
        if token is None or token.network != NETWORK:
            return None, graph_error(400, "Invalid OAuth access token - Cannot parse access token", 190)
        if not token.alive():
            return None, graph_error(400, "Error validating access token: Session has expired.", 190,
                                     subcode=463)
        return token, None

    async def exchange(self, request: Request) -> Response:
        """Short-lived -> long-lived [C long-lived-tokens]."""
        q = request.query_params
        if q.get("grant_type") != "th_exchange_token":
            return param_error("grant_type must be th_exchange_token")
        if not q.get("client_secret"):
            return graph_error(400, "Missing client_secret parameter.", 101)
        token, denied = self._token_for_exchange(q.get("access_token"))
        if denied is not None:
            return denied
        assert token is not None
        if token.kind != "short":
            return param_error("Only a short-lived Threads user access token can be exchanged.")
        return self._long_lived(token)

    def _long_lived(self, token: Token) -> Response:
        """A new 60-day token for the same user (the answer of both exchange and refresh)."""
        issued = self.state.oauth.issue(NETWORK, token.user_id, token.scope, token.client_id,
                                        expires_in=LONG_LIVED_SECONDS, kind="long", prefix="THL")
        return JSONResponse({"access_token": issued["access_token"], "token_type": "bearer",
                             "expires_in": LONG_LIVED_SECONDS})

    async def refresh(self, request: Request) -> Response:
        """A long-lived token -> a new long-lived token [C long-lived-tokens]; no refresh token."""
        q = request.query_params
        if q.get("grant_type") != "th_refresh_token":
            return param_error("grant_type must be th_refresh_token")
        if self.state.oauth.take_switch(NETWORK, "fail_refresh"):  # the /_sandbox/oauth switch
            return graph_error(400, "Error validating access token: The session has been invalidated "
                               "because the user changed their password.", 190, subcode=460)
        token, denied = self._token_for_exchange(q.get("access_token"))
        if denied is not None:
            return denied
        assert token is not None
        if token.kind != "long":
            return param_error("Only a long-lived Threads user access token can be refreshed.")
        return self._long_lived(token)

    # --- API auth ---------------------------------------------------------------------------------

    def auth(self, request: Request, scope: str | None = None) -> tuple[Token | None, JSONResponse | None]:
        raw = bearer(request)
        if not raw:
            return None, graph_error(400, "An active access token must be used to query information "
                                     "about the current user.", 2500)
        token = self.state.oauth.tokens.get(raw)
        www = {"WWW-Authenticate": 'OAuth "Threads Platform" "invalid_token"'}
        if token is None or token.network != NETWORK:
            return None, graph_error(400, "Invalid OAuth access token - Cannot parse access token", 190,
                                     headers=www)
        if not token.alive():
            return None, graph_error(400, f"Error validating access token: Session has expired on "
                                     f"{iso(token.expires_at or 0)}.", 190, subcode=463, headers=www)
        if scope and not has_scope(token, scope):
            return None, graph_error(403, f"(#10) Application does not have permission for this action "
                                     f"({scope} is required)", 10)
        return token, None

    def user_of(self, token: Token, node: str) -> str | None:
        return token.user_id if node in ("me", token.user_id) else None

    # --- faults -----------------------------------------------------------------------------------

    def throttled(self, retry_after: float, user_id: str) -> JSONResponse:
        minutes = math.ceil(retry_after / 60) if retry_after > 0 else 0
        usage = {"call_count": 100, "total_cputime": 34, "total_time": 41}
        buc = {user_id: [{"type": "threads", **usage, "estimated_time_to_regain_access": minutes}]}
        return graph_error(400, "(#4) Application request limit reached", 4, transient=True, headers={
            "X-App-Usage": json.dumps(usage), "X-Business-Use-Case-Usage": json.dumps(buc)})

    # --- containers -------------------------------------------------------------------------------

    def status(self, c: dict[str, Any], now: float | None = None) -> str:
        now = time.time() if now is None else now
        if c.get("published_id"):
            return "PUBLISHED"
        if c.get("error_message"):
            return "ERROR"
        if now - c["created"] > CONTAINER_TTL:
            return "EXPIRED"
        if not c.get("processed") or now < c["ready_at"]:
            return "IN_PROGRESS"
        return "FINISHED"

    async def create_container(self, request: Request) -> Response:
        token, denied = self.auth(request, "threads_content_publish")
        if denied is not None:
            return denied
        assert token is not None
        user = self.user_of(token, request.path_params["node"])
        if user is None:
            return param_error(UNSUPPORTED.format(method="post", id=request.path_params["node"]), subcode=33)
        p = await request_params(request)
        media_type = (p.get("media_type") or "").upper()
        if not media_type:
            return param_error("The parameter media_type is required.")
        if media_type not in ("TEXT", "IMAGE", "VIDEO", "CAROUSEL"):
            return param_error(f"Param media_type must be one of {{TEXT, IMAGE, VIDEO, CAROUSEL}} - got {media_type}")
        item = str(p.get("is_carousel_item", "false")).lower() == "true"
        text = p.get("text")
        if text is not None and text_length(text) > MAX_TEXT:
            return param_error(f"Param text must be at most {MAX_TEXT} characters long.",
                               user_title="Post text is too long",
                               user_msg=f"The text is {text_length(text)} characters; Threads allows {MAX_TEXT} "
                               "(emojis count as their UTF-8 bytes).")
        if text and links_in(text) > MAX_LINKS:
            # "will fail to post during the media creation step ... with the error code:
            # THREADS_API__LINK_LIMIT_EXCEEDED" [C]; the envelope around it is our guess [U].
            return param_error("THREADS_API__LINK_LIMIT_EXCEEDED",
                               user_title="Too many links",
                               user_msg=f"The post contains {links_in(text)} links; Threads allows {MAX_LINKS}.")
        if media_type == "TEXT" and not (text or "").strip():
            return param_error("The parameter text is required for media_type=TEXT.")
        if item and media_type not in ("IMAGE", "VIDEO"):
            return param_error("Only IMAGE and VIDEO containers can be carousel items.")
        reply_to = p.get("reply_to_id")
        if reply_to:
            if item:
                return param_error("Carousel items cannot have reply_to_id.")
            if not has_scope(token, "threads_manage_replies"):
                return graph_error(403, "(#10) Application does not have permission for this action "
                                   "(threads_manage_replies is required)", 10)
            parent = self.db["media"].get(reply_to)
            if parent is None or parent.get("deleted"):
                return param_error(f"Param reply_to_id {reply_to} is not a Threads post that can be replied to.",
                                   subcode=33)
        reply_control = p.get("reply_control")
        if reply_control is not None and reply_control not in REPLY_CONTROLS:
            return param_error(f"Param reply_control must be one of {{{', '.join(REPLY_CONTROLS)}}}")
        alt = p.get("alt_text")
        if alt is not None and len(alt) > MAX_ALT_TEXT:
            return param_error(f"Param alt_text must be at most {MAX_ALT_TEXT} characters long.")

        now = time.time()
        c: dict[str, Any] = {
            "id": self.next_id(17_900_000_000_000_000), "user": user, "media_type": media_type,
            "text": None if item else text, "is_carousel_item": item, "reply_to": reply_to,
            "reply_control": reply_control, "alt_text": alt, "created": now, "ready_at": now,
            "processed": True, "media": [], "children": [],
        }
        if media_type == "IMAGE":
            url = p.get("image_url")
            if not url:
                return param_error("The parameter image_url is required for media_type=IMAGE.")
            refused = await self._image(c, url)
            if refused is not None:
                return refused
        elif media_type == "VIDEO":
            url = p.get("video_url")
            if not url:
                return param_error("The parameter video_url is required for media_type=VIDEO.")
            c["processed"] = False
            c["ready_at"] = now + VIDEO_PROCESSING_SECONDS
            task = asyncio.create_task(self._video(c, url))
            self.db["tasks"].add(task)
            task.add_done_callback(self.db["tasks"].discard)
        elif media_type == "CAROUSEL":
            refused = self._carousel(c, user, p.get("children"))
            if refused is not None:
                return refused
        self.db["containers"][c["id"]] = c
        return JSONResponse({"id": c["id"]})

    async def _image(self, c: dict[str, Any], url: str) -> JSONResponse | None:
        data, ctype, failure = await fetch(url, MAX_IMAGE_BYTES)
        if failure == "too large":
            return graph_error(400, "The image is too large to download.", 36000, subcode=2207004,
                               user_title="Image size too large",
                               user_msg="The image is too large to download. It should be less than 8 MiB.")
        if data is None:
            return graph_error(400, "Media download has failed.: The media could not be fetched from this "
                               f"URI: {url}", 9004, subcode=2207052, user_title="Media download has failed.",
                               user_msg=f"The media could not be fetched from this URI ({failure}).")
        info = media_item(data, ctype, filename_of(url))
        image = info.get("image") or {}
        mime = image_mime(image.get("format"))
        if mime is None:
            return param_error("The image format is not supported; use JPEG or PNG.",
                               user_title="Unsupported image format",
                               user_msg=f"Only JPEG and PNG images can be posted (got {image.get('format') or ctype}).")
        w, h = image["width"], image["height"]
        if max(w, h) / max(1, min(w, h)) > 10:
            return graph_error(400, f"The submitted image with aspect ratio ('{w}/{h}') cannot be published. "
                               "Please submit an image with a valid aspect ratio.", 36003, subcode=2207009,
                               user_title="Invalid aspect ratio",
                               user_msg="The aspect ratio must be at most 10:1.")
        info["mime"] = mime
        c["media"] = [info]
        c["url"] = url
        c["ready_at"] = time.time() + IMAGE_PROCESSING_SECONDS
        return None

    async def _video(self, c: dict[str, Any], url: str) -> None:
        try:
            data, ctype, failure = await fetch(url, MAX_VIDEO_BYTES)
            if data is None:
                c["error_message"] = "FAILED_DOWNLOADING_VIDEO"
                return
            probe = probe_video(data)
            fmt = probe.get("format") or ""
            if not probe or not ("mp4" in fmt or "mov" in fmt) or probe.get("codec") not in ("h264", "hevc"):
                c["error_message"] = "FAILED_PROCESSING_VIDEO"
                return
            duration, fps = probe.get("duration") or 0, probe.get("fps") or 0
            if not 0 < duration <= 300:
                c["error_message"] = "INVALID_DURATION"
                return
            if not 23 <= round(fps) <= 60:
                c["error_message"] = "INVALID_FRAME_RATE"
                return
            ratio = probe["width"] / max(1, probe["height"])
            if not 0.01 <= ratio <= 10:
                c["error_message"] = "INVALID_ASPEC_RATIO"  # sic [C troubleshooting]
                return
            mime = "video/quicktime" if (ctype or "").startswith("video/quicktime") else "video/mp4"
            c["media"] = [media_item(data, mime, filename_of(url))]
            c["url"] = url
        except Exception:  # noqa: BLE001 - the container must never hang in IN_PROGRESS
            c["error_message"] = "UNKNOWN"
        finally:
            c["processed"] = True

    def _carousel(self, c: dict[str, Any], user: str, children: Any) -> JSONResponse | None:
        ids = [s.strip() for s in str(children or "").strip("[]").replace('"', "").split(",") if s.strip()]
        if not ids:
            return param_error("The parameter children is required for media_type=CAROUSEL.")
        if not MIN_CAROUSEL <= len(ids) <= MAX_CAROUSEL:
            return param_error(f"A carousel must have {MIN_CAROUSEL} to {MAX_CAROUSEL} children (got {len(ids)}).")
        if len(set(ids)) != len(ids):
            return param_error("The same child appears twice in children.")
        media = []
        for child_id in ids:
            child = self.db["containers"].get(child_id)
            if child is None or child["user"] != user or not child["is_carousel_item"]:
                return param_error(f"Child {child_id} is not a carousel item container of this user.")
            if self.status(child) != "FINISHED":
                return graph_error(400, "Media ID is not available", 9007, subcode=2207027,
                                   user_title="Carousel item is not ready",
                                   user_msg=f"Child {child_id} is {self.status(child)}; wait until it is FINISHED.")
            media += child["media"]
        c["children"] = ids
        c["media"] = media
        c["ready_at"] = time.time() + CAROUSEL_PROCESSING_SECONDS
        return None

    # --- publish (the irreversible call) -----------------------------------------------------------

    def used(self, user: str, kind: str, now: float) -> int:
        stamps = self.db["publishes"].setdefault(user, {"posts": [], "replies": []})[kind]
        stamps[:] = [t for t in stamps if now - t < QUOTA_WINDOW]
        return len(stamps) + int(self.db["quota_offset"].get(user, {}).get(kind, 0))

    async def publish(self, request: Request) -> Response:
        t0 = received_at(request)
        token, denied = self.auth(request, "threads_content_publish")
        if denied is not None:
            return denied
        assert token is not None
        user = self.user_of(token, request.path_params["node"])
        if user is None:
            return param_error(UNSUPPORTED.format(method="post", id=request.path_params["node"]), subcode=33)
        p = await request_params(request)
        creation_id = p.get("creation_id")
        if not creation_id:
            return param_error("The parameter creation_id is required.")
        c = self.db["containers"].get(creation_id)
        if c is None or c["user"] != user:
            return param_error(f"Param creation_id {creation_id} is not a media container of this user.",
                               subcode=33)
        if c["is_carousel_item"]:
            return param_error("A carousel item cannot be published on its own; publish the CAROUSEL container.")
        status = self.status(c, t0)
        if status == "PUBLISHED":
            return param_error("This media container has already been published.", subcode=2207006)
        if status != "FINISHED":
            detail = f"The container is {status}" + (f" ({c['error_message']})" if c.get("error_message") else "")
            return graph_error(400, "Media ID is not available", 9007, subcode=2207027,
                               user_title="The media is not ready for publishing, please wait for a moment",
                               user_msg=detail)
        kind = "replies" if c["reply_to"] else "posts"
        if self.used(user, kind, t0) >= (REPLY_QUOTA if c["reply_to"] else POST_QUOTA):
            what = "replies" if c["reply_to"] else "posts"
            return graph_error(400, f"The maximum number of {what} that can be published in 24 hours "
                               "has been reached.", 9, subcode=2207042, user_title="Publishing limit reached")

        fault = self.state.take_fault(PROVIDER, user)
        if fault is not None:
            if fault.kind == "rate_limit":
                return self.throttled(fault.retry_after, user)
            if fault.kind == "server_error":
                return graph_error(500, fault.message or "An unexpected error has occurred. Please retry "
                                   "your request later.", 2, transient=True)
            if fault.kind == "auth_error":
                return graph_error(400, fault.message or "Error validating access token: The session has "
                                   "been invalidated because the user changed their password or Meta has "
                                   "changed the session for security reasons.", 190, subcode=460,
                                   headers={"WWW-Authenticate": 'OAuth "Threads Platform" "invalid_token"'})
            if fault.kind == "reject_content":
                return graph_error(400, fault.message or "Action is blocked", 100, subcode=2207051,
                                   user_title="Action is blocked",
                                   user_msg="We restrict certain activity to protect our community.")
            if fault.kind == "timeout":
                await hold(request, fault.delay_seconds)
                return graph_error(503, "Service temporarily unavailable", 2, transient=True)

        media_id = self.next_id(18_000_000_000_000_000)
        code = shortcode()
        self.db["publishes"].setdefault(user, {"posts": [], "replies": []})[kind].append(t0)
        c["published_id"] = media_id
        delivery = self.state.add_delivery({
            "id": media_id, "provider": PROVIDER, "target": user, "text": c["text"] or "",
            "media": c["media"], "receivedAt": t0, "replyTo": c["reply_to"],
            "kind": {"TEXT": "TEXT_POST", "CAROUSEL": "CAROUSEL_ALBUM"}.get(c["media_type"], c["media_type"]),
            "containerId": c["id"], "replyControl": c["reply_control"],
            "altText": c.get("alt_text"),
        })
        self.db["media"][media_id] = {
            "id": media_id, "user": user, "text": c["text"], "media_type": delivery["kind"],
            "timestamp": t0, "shortcode": code, "reply_to": c["reply_to"], "children": c["children"],
            "container": c["id"], "reply_control": c["reply_control"] or "everyone",
            "alt_text": c.get("alt_text"), "media_url": c.get("url"), "delivery": delivery,
        }
        if fault is not None and fault.kind == "drop_after_accept":
            return DropConnection()
        return JSONResponse({"id": media_id})

    # --- reads ------------------------------------------------------------------------------------

    def media_json(self, m: dict[str, Any], fields: list[str], username: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields or ["id"]:
            if f == "id":
                out["id"] = m["id"]
            elif f == "text" and m.get("text"):
                out["text"] = m["text"]
            elif f == "media_type":
                out["media_type"] = m["media_type"]
            elif f == "media_product_type":
                out[f] = "THREADS"
            elif f == "permalink":
                out[f] = f"https://www.threads.net/@{username}/post/{m['shortcode']}"
            elif f == "shortcode":
                out[f] = m["shortcode"]
            elif f == "timestamp":
                out[f] = iso(m["timestamp"])
            elif f in ("username",):
                out[f] = username
            elif f == "owner":
                out[f] = {"id": m["user"]}
            elif f == "is_reply":
                out[f] = bool(m["reply_to"])
            elif f == "replied_to" and m["reply_to"]:
                out[f] = {"id": m["reply_to"]}
            elif f == "root_post":
                root = m
                while root.get("reply_to") and root["reply_to"] in self.db["media"]:
                    root = self.db["media"][root["reply_to"]]
                out[f] = {"id": root["id"]}
            elif f == "children" and m["children"]:
                out[f] = {"data": [{"id": cid} for cid in m["children"]]}
            elif f == "media_url" and m.get("media_url"):
                out[f] = m["media_url"]
            elif f == "alt_text" and m.get("alt_text"):
                out[f] = m["alt_text"]
            elif f == "has_replies":
                out[f] = any(o.get("reply_to") == m["id"] and not o.get("deleted")
                             for o in self.db["media"].values())
            elif f == "reply_audience":
                out[f] = m["reply_control"].upper()
            elif f in ("is_quote_post", "is_reply_owned_by_me"):
                out[f] = False if f == "is_quote_post" else bool(m["reply_to"])
        return out

    def bad_fields(self, fields: list[str], allowed: set[str], node_type: str) -> JSONResponse | None:
        unknown = [f for f in fields if f not in allowed]
        if unknown:
            return param_error(f"Tried accessing nonexisting field ({unknown[0]}) on node type ({node_type})")
        return None

    async def node(self, request: Request) -> Response:
        node = request.path_params["node"]
        token, denied = self.auth(request, "threads_delete" if request.method == "DELETE" else None)
        if denied is not None:
            return denied
        assert token is not None
        fields = fields_of(request)
        user = self.user_of(token, node)
        if user is not None:
            if request.method == "DELETE":
                return param_error(UNSUPPORTED.format(method="delete", id=node), subcode=33)
            if (bad := self.bad_fields(fields, USER_FIELDS, "ThreadsUser")) is not None:
                return bad
            profile = {**THREADS_USER, "threads_profile_picture_url":
                       f"https://scontent.cdninstagram.com/sandbox/{THREADS_USER['id']}.jpg",
                       "threads_biography": "Herald sandbox profile"}
            return JSONResponse({f: profile[f] for f in (fields or ["id"])})
        container = self.db["containers"].get(node)
        if container is not None and container["user"] == token.user_id and request.method == "GET":
            if (bad := self.bad_fields(fields, CONTAINER_FIELDS, "ThreadsMediaContainer")) is not None:
                return bad
            out: dict[str, Any] = {}
            status = self.status(container)
            if "status" in fields:
                out["status"] = status
            if "error_message" in fields and container.get("error_message"):
                out["error_message"] = container["error_message"]
            out["id"] = node
            return JSONResponse(out)
        m = self.db["media"].get(node)
        if m is None or m.get("deleted") or (request.method == "DELETE" and m["user"] != token.user_id):
            method = "delete" if request.method == "DELETE" else "get"
            return param_error(UNSUPPORTED.format(method=method, id=node), subcode=33)
        if request.method == "DELETE":
            now = time.time()
            stamps = self.db["deletes"].setdefault(token.user_id, [])
            stamps[:] = [t for t in stamps if now - t < QUOTA_WINDOW]
            if len(stamps) >= DELETE_QUOTA:
                return graph_error(400, "(#4) Application request limit reached: 100 deletes per day", 4,
                                   transient=True)
            stamps.append(now)
            m["deleted"] = True
            m["delivery"]["deleted"] = True
            return JSONResponse({"success": True, "deleted_id": node})
        if (bad := self.bad_fields(fields, MEDIA_FIELDS, "ThreadsMedia")) is not None:
            return bad
        return JSONResponse(self.media_json(m, fields, THREADS_USER["username"]))

    async def listing(self, request: Request) -> Response:
        """GET /{user}/threads (top-level posts) or /{user}/replies (needs threads_read_replies)."""
        edge = request.path_params["edge"]
        token, denied = self.auth(request, "threads_read_replies" if edge == "replies" else None)
        if denied is not None:
            return denied
        assert token is not None
        user = self.user_of(token, request.path_params["node"])
        if user is None:
            return param_error(UNSUPPORTED.format(method="get", id=request.path_params["node"]), subcode=33)
        fields = fields_of(request)
        if (bad := self.bad_fields(fields, MEDIA_FIELDS, "ThreadsMedia")) is not None:
            return bad
        try:
            limit = int(request.query_params.get("limit", "25"))
        except ValueError:
            return param_error("Param limit must be an integer.")
        limit = max(1, min(limit, 100))
        want_replies = edge == "replies"
        items = sorted(
            (m for m in self.db["media"].values()
             if m["user"] == user and not m.get("deleted") and bool(m["reply_to"]) == want_replies),
            key=lambda m: (m["timestamp"], m["id"]), reverse=True)
        since, until = request.query_params.get("since"), request.query_params.get("until")
        if since and since.isdigit():
            items = [m for m in items if m["timestamp"] >= int(since)]
        if until and until.isdigit():
            items = [m for m in items if m["timestamp"] <= int(until)]
        start = 0
        after = request.query_params.get("after")
        if after:
            ids = [m["id"] for m in items]
            start = ids.index(after) + 1 if after in ids else len(items)
        page = items[start:start + limit]
        body: dict[str, Any] = {"data": [self.media_json(m, fields, THREADS_USER["username"]) for m in page]}
        if page:
            body["paging"] = {"cursors": {"before": page[0]["id"], "after": page[-1]["id"]}}
            if start + limit < len(items):
                body["paging"]["next"] = str(request.url.include_query_params(after=page[-1]["id"]))
        return JSONResponse(body)

    async def publishing_limit(self, request: Request) -> Response:
        token, denied = self.auth(request, "threads_content_publish")
        if denied is not None:
            return denied
        assert token is not None
        user = self.user_of(token, request.path_params["node"])
        if user is None:
            return param_error(UNSUPPORTED.format(method="get", id=request.path_params["node"]), subcode=33)
        fields = fields_of(request) or ["quota_usage", "config"]
        if (bad := self.bad_fields(fields, LIMIT_FIELDS, "ThreadsPublishingLimit")) is not None:
            return bad
        now = time.time()
        if ("reply_quota_usage" in fields or "reply_config" in fields) and not has_scope(token, "threads_manage_replies"):
            return graph_error(403, "(#10) Application does not have permission for this action "
                               "(threads_manage_replies is required)", 10)
        row: dict[str, Any] = {}
        for f in fields:
            if f == "quota_usage":
                row[f] = self.used(user, "posts", now)
            elif f == "config":
                row[f] = {"quota_total": POST_QUOTA, "quota_duration": QUOTA_WINDOW}
            elif f == "reply_quota_usage":
                row[f] = self.used(user, "replies", now)
            elif f == "reply_config":
                row[f] = {"quota_total": REPLY_QUOTA, "quota_duration": QUOTA_WINDOW}
        return JSONResponse({"data": [row]})

    async def edge(self, request: Request) -> Response:
        if request.path_params["edge"] in ("threads", "replies"):
            return await self.listing(request)
        token, denied = self.auth(request)
        if denied is not None:
            return denied
        return graph_error(400, f"Unknown path components: /{request.path_params['edge']}", 2500)

    async def not_found(self, request: Request) -> Response:
        return graph_error(400, "Unsupported request - method type: " + request.method.lower(), 100)

    # --- test switch --------------------------------------------------------------------------------

    async def quota_switch(self, request: Request) -> Response:
        """Pretend ``quotaUsage`` posts / ``replyQuotaUsage`` replies were already published today."""
        try:
            body = json.loads(await request.body() or b"{}")
            if not isinstance(body, dict):
                raise ValueError
            offsets = self.db["quota_offset"].setdefault(str(body.get("userId") or THREADS_USER["id"]), {})
            for key, kind in (("quotaUsage", "posts"), ("replyQuotaUsage", "replies")):
                if key in body:
                    value = body[key]
                    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                        raise ValueError
                    offsets[kind] = value
        except ValueError:
            return JSONResponse({"error": "body must be {userId?, quotaUsage?, replyQuotaUsage?} "
                                 "with non-negative integers"}, status_code=400)
        return JSONResponse({"ok": True, "offsets": offsets})


def routes(state: SandboxState) -> list[Route]:
    s = ThreadsSandbox(state)
    return [
        Route("/_sandbox/threads/quota", s.quota_switch, methods=["POST"]),
        Route("/threads/www/oauth/authorize", s.authorize, methods=["GET"]),
        Route("/threads/graph/oauth/access_token", s.access_token, methods=["GET", "POST"]),
        Route("/threads/graph/access_token", s.exchange, methods=["GET"]),
        Route("/threads/graph/refresh_access_token", s.refresh, methods=["GET"]),
        Route(API + "/{node}/threads", s.create_container, methods=["POST"]),
        Route(API + "/{node}/threads_publish", s.publish, methods=["POST"]),
        Route(API + "/{node}/threads_publishing_limit", s.publishing_limit, methods=["GET"]),
        Route(API + "/{node}/{edge:str}", s.edge, methods=["GET"]),
        Route(API + "/{node}", s.node, methods=["GET", "DELETE"]),
        Route("/threads/{rest:path}", s.not_found, methods=["GET", "POST", "DELETE", "PUT", "PATCH"]),
    ]

