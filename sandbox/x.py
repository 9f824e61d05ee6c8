"""X API v2 emulation: OAuth 2.0 with PKCE, identity, chunked media upload, posts.

Shapes follow /work/shared/reference/providers.md §1 and the X OpenAPI description it cites
(/work/shared/reference/openapi/x-api-v2.openapi.json); tags [C]/[3P]/[U] as there.

    /x/www/i/oauth2/authorize                 GET  consent: approves the test user at once (PKCE required)
    /x/api/2/oauth2/token                     POST authorization_code | refresh_token (rotates: the old one dies)
    /x/api/2/oauth2/revoke                    POST token
    /x/api/2/users/me                         GET
    /x/api/2/media/upload/initialize          POST JSON {media_type, total_bytes, media_category}
    /x/api/2/media/upload/{id}/append         POST multipart media + segment_index (or JSON, base64)
    /x/api/2/media/upload/{id}/finalize       POST -> processing_info for GIFs and videos
    /x/api/2/media/upload                     GET  ?command=STATUS&media_id=  |  POST the legacy
                                                   command=INIT|APPEND|FINALIZE form, or a simple image upload
    /x/api/2/media/metadata                   POST {id, metadata: {alt_text: {text}}}
    /x/api/2/tweets                           POST (201)
    /x/api/2/tweets/{id}                      GET | DELETE
    /x/api/2/users/{id}/tweets                GET  newest first, max_results 5..100, start_time, pagination_token
    /x/_sandbox                               GET  state (posts as stored, media) | POST {"processingSeconds": s}

Tokens come from sandbox/oauth.py (access 2 h, refresh with offline.access). Every API answer
carries ``x-rate-limit-limit/remaining/reset`` for its endpoint and user [C]; the counts are
informative only (a 429 comes from a ``rate_limit`` fault), so load tests are not throttled.

Posts are stored the way X returns them: text HTML-escaped (&amp; &lt; &gt;), every URL wrapped
as https://t.co/..., a media post with its media link appended [3P], so reconciling by text must
cope. Duplicate text from the same user is refused with 403 as X does [3P]; text over 280
weighted characters (twitter-text v3, providers/x_text.py) with X's 400 [3P].

GIFs and videos process after FINALIZE: ``pending``, then ``in_progress``, then ``succeeded`` (or
``failed`` for a file the sandbox cannot decode), each step taking ``processingSeconds``
(default 1 s, advertised as ``check_after_secs``) [C shape]. Images are ready at once.

Faults (provider ``x``, target = the user id) apply at POST /2/tweets, the one irreversible call.
"""

from __future__ import annotations

import base64
import html
import math
import secrets
import time
import unicodedata
from datetime import datetime, timezone
from typing import Any

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from providers import x_text
from sandbox.oauth import OAuthFailure, bearer, client_credentials, request_params
from sandbox.state import DropConnection, Fault, SandboxState, hold, media_item, received_at
from sandbox.test_users import X_USER

NETWORK = "x"
PROBLEMS = "https://api.x.com/2/problems/"
ACCESS_TTL = 7200  # 2 hours [C user-access-token.mdx]
STATE_MAX = 500  # state <= 500 characters [C authorization-code.mdx]
TWITTER_EPOCH_MS = 1_288_834_974_657  # snowflake epoch of X ids [3P]

SCOPES = frozenset({
    "block.read", "block.write", "bookmark.read", "bookmark.write", "dm.read", "dm.write",
    "follows.read", "follows.write", "like.read", "like.write", "list.read", "list.write",
    "media.write", "mute.read", "mute.write", "offline.access", "space.read", "tweet.moderate.write",
    "tweet.read", "tweet.write", "users.read", "timeline.read",
})  # openapi securitySchemes.OAuth2UserToken [C]

MIB = 1024 * 1024
# Upload caps by media_category: image 5 MB, GIF 15 MB, video 512 MB [C introduction.mdx]; X's
# own errors state them in binary megabytes ("File size exceeds 5242880 bytes.") [3P].
CATEGORY_BYTES = {"tweet_image": 5 * MIB, "tweet_gif": 15 * MIB, "tweet_video": 512 * MIB,
                  "amplify_video": 512 * MIB, "dm_image": 5 * MIB, "dm_gif": 15 * MIB, "dm_video": 512 * MIB}
MEDIA_TYPES = ("video/mp4", "video/webm", "video/mp2t", "video/quicktime", "image/jpeg", "image/gif",
               "image/bmp", "image/png", "image/webp", "image/pjpeg", "image/tiff")  # [C openapi enum]
MAX_CHUNK = 5 * MIB  # APPEND chunk <= 5 MB [C v1.1 APPEND]
MAX_SEGMENT = 999  # segment_index 0..999 [C openapi]
MAX_ALT_TEXT = 1000  # [C openapi]
UPLOAD_TTL = 86_400  # expires_after_secs [U: the docs example shows 1295999 for INIT]
REPLY_SETTINGS = ("following", "mentionedUsers", "subscribers", "verified")  # [C openapi]
TWEET_FIELDS = {"text", "media", "reply", "reply_settings", "quote_tweet_id", "poll", "card_uri",
                "community_id", "direct_message_deep_link", "edit_options", "for_super_followers_only",
                "geo", "made_with_ai", "nullcast", "paid_partnership", "share_with_followers"}  # [C openapi]

# Per-user 15-minute windows [C rate-limits.mdx]; users/me and the user timeline are [U].
RATE_LIMITS = {"tweets.create": 100, "tweets.delete": 50, "tweets.lookup": 900, "media.upload": 1875,
               "media.status": 1000, "media.metadata": 500, "users.me": 75, "users.tweets": 900}
WINDOW = 900


def problem(status: int, title: str, detail: str, ptype: str = "about:blank",
            errors: list[dict[str, Any]] | None = None, headers: dict[str, str] | None = None) -> JSONResponse:
    """X's problem JSON [C response-codes-and-errors.mdx]."""
    body: dict[str, Any] = {"title": title, "detail": detail, "type": ptype, "status": status}
    if errors:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, headers=headers)


def invalid(message: str, parameter: str | None = None) -> JSONResponse:
    err: dict[str, Any] = {"message": message}
    if parameter:
        err["parameters"] = {parameter: []}
    return problem(400, "Invalid Request", "One or more parameters to your request was invalid.",
                   PROBLEMS + "invalid-request", errors=[err])


def unauthorized() -> JSONResponse:
    return problem(401, "Unauthorized", "Unauthorized")  # [C shape]


def forbidden(detail: str) -> JSONResponse:
    return problem(403, "Forbidden", detail)


def not_found_error(resource: str, value: str, parameter: str = "id") -> dict[str, Any]:
    return {"value": value, "detail": f"Could not find {resource} with {parameter}: [{value}].",
            "title": "Not Found Error", "resource_type": resource, "parameter": parameter,
            "resource_id": value, "type": PROBLEMS + "resource-not-found"}


def _iso(ts: float) -> str:
    dt = datetime.fromtimestamp(ts, tz=timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(ts * 1000) % 1000:03d}Z"


def _tco() -> str:
    return "https://t.co/" + secrets.token_urlsafe(8)[:10].replace("-", "a").replace("_", "b")


def display_text(text: str, with_media: bool) -> str:
    """The text as X's API returns it: HTML-escaped, URLs wrapped in t.co, media link appended."""
    parts, last = [], 0
    for start, end in x_text.url_spans(text):
        parts += [html.escape(text[last:start], quote=False), _tco()]
        last = end
    parts.append(html.escape(text[last:], quote=False))
    shown = "".join(parts)
    if with_media:
        shown = (shown + " " if shown else "") + _tco()
    return shown


class XSandbox:
    def __init__(self, state: SandboxState):
        self.state = state

    # --- state ------------------------------------------------------------------------------------

    def net(self) -> dict[str, Any]:
        """This emulator's part of the sandbox state, made on first use (a reset drops it)."""
        net = self.state.networks.get(NETWORK)
        if net is None:
            net = self.state.networks[NETWORK] = {
                "tweets": {}, "media": {}, "last_id": 0, "windows": {}, "processing_seconds": 1.0,
            }
        return net

    def new_id(self) -> str:
        net = self.net()
        value = max((int(time.time() * 1000) - TWITTER_EPOCH_MS) << 22, net["last_id"] + 1)
        net["last_id"] = value
        return str(value)

    def rate_headers(self, endpoint: str, user_id: str) -> dict[str, str]:
        windows = self.net()["windows"]
        now = time.time()
        start, used = windows.get((endpoint, user_id), (now, 0))
        if now >= start + WINDOW:
            start, used = now, 0
        windows[(endpoint, user_id)] = (start, used + 1)
        limit = RATE_LIMITS[endpoint]
        return {"x-rate-limit-limit": str(limit), "x-rate-limit-remaining": str(max(0, limit - used - 1)),
                "x-rate-limit-reset": str(math.ceil(start + WINDOW))}

    def limited(self, endpoint: str | dict[str, str], handler: Any) -> Any:
        """``handler`` with the x-rate-limit-* headers of ``endpoint`` (per method when a dict) on
        every answer it gives, errors included [C: "headers on every response"]; a fault's 429
        keeps its own."""

        async def wrapped(request: Request) -> Response:
            response = await handler(request)
            if isinstance(response, DropConnection) or "x-rate-limit-limit" in response.headers:
                return response
            key = endpoint if isinstance(endpoint, str) else endpoint[request.method]
            token = self.state.oauth.check(NETWORK, bearer(request))
            response.headers.update(self.rate_headers(key, token.user_id if token else "anonymous"))
            return response

        return wrapped

    def auth(self, request: Request, *scopes: str) -> tuple[str | None, Response | None]:
        """(user id, None) for a live token with ``scopes``, else (None, the 401/403 answer)."""
        token = self.state.oauth.check(NETWORK, bearer(request))
        if token is None:
            return None, unauthorized()
        granted = set(token.scope.split())
        missing = [s for s in scopes if s not in granted]
        if missing:
            # The token lacks a scope the endpoint needs [C openapi security]; the exact wording is [U].
            return None, forbidden(f"The access token is missing the scope(s) {', '.join(missing)}.")
        return token.user_id, None

    # --- OAuth --------------------------------------------------------------------------------------

    async def authorize(self, request: Request) -> Response:
        params = dict(request.query_params)
        try:
            scopes = params.get("scope", "").split()
            if not scopes or any(s not in SCOPES for s in scopes):
                raise OAuthFailure("invalid_scope", "scope must list X OAuth 2.0 scopes")
            if len(params.get("state", "")) > STATE_MAX:
                raise OAuthFailure("invalid_request", f"state must be at most {STATE_MAX} characters")
            return self.state.oauth.authorize(NETWORK, params, X_USER["id"], require_pkce=True)
        except OAuthFailure as exc:
            return JSONResponse({"error": exc.error, "error_description": exc.description}, status_code=400)

    async def token(self, request: Request) -> Response:
        oauth = self.state.oauth
        try:
            if "application/x-www-form-urlencoded" not in request.headers.get("content-type", ""):
                # The token endpoint takes a form [C authorization-code.mdx].
                raise OAuthFailure("invalid_request", "Missing required parameter [grant_type].")
            params = await request_params(request)
            client_id, secret = client_credentials(request, params)
            if request.headers.get("authorization", "").lower().startswith("basic ") and not secret:
                raise OAuthFailure("invalid_client", "Missing valid authorization header", 401)
            grant = params.get("grant_type")
            if grant == "authorization_code":
                for name in ("code", "redirect_uri", "code_verifier"):
                    if not params.get(name):
                        raise OAuthFailure("invalid_request", f"Missing required parameter [{name}].")
                record = oauth.redeem_code(NETWORK, params, client_id, secret, require_secret=False)
                user_id, scope = record["user_id"], record["scope"]
            elif grant == "refresh_token":
                if not params.get("refresh_token"):
                    raise OAuthFailure("invalid_request", "Missing required parameter [refresh_token].")
                old = oauth.use_refresh_token(NETWORK, params["refresh_token"], client_id, rotate=True)
                user_id, scope, client_id = old.user_id, old.scope, old.client_id
            else:
                raise OAuthFailure("unsupported_grant_type", "grant_type must be authorization_code or refresh_token")
        except OAuthFailure as exc:
            if exc.error == "invalid_grant":  # X says "Value passed for the token was invalid." [3P]
                exc.description = "Value passed for the token was invalid."
                exc.error = "invalid_request"
            return JSONResponse({"error": exc.error, "error_description": exc.description}, status_code=exc.status)
        body = oauth.issue(NETWORK, user_id, scope, client_id or "", expires_in=ACCESS_TTL,
                           refresh="offline.access" in scope.split())
        body["scope"] = scope
        return JSONResponse(body)

    async def revoke(self, request: Request) -> Response:
        params = await request_params(request)
        token = params.get("token", "")
        oauth = self.state.oauth
        for store in (oauth.tokens, oauth.refresh_tokens):
            if token in store and store[token].network == NETWORK:
                del store[token]
        return JSONResponse({"revoked": True})

    # --- users ------------------------------------------------------------------------------------

    async def me(self, request: Request) -> Response:
        user_id, denied = self.auth(request, "tweet.read", "users.read")
        if denied:
            return denied
        user = {"id": X_USER["id"], "name": X_USER["name"], "username": X_USER["username"]}
        fields = request.query_params.get("user.fields", "")
        if "profile_image_url" in fields:
            user["profile_image_url"] = "https://pbs.twimg.com/profile_images/sandbox/herald_normal.png"
        if "created_at" in fields:
            user["created_at"] = "2020-01-01T00:00:00.000Z"
        return JSONResponse({"data": user})

    # --- media ------------------------------------------------------------------------------------

    def _init(self, user_id: str, body: dict[str, Any]) -> Response:
        unknown = sorted(set(body) - {"media_type", "total_bytes", "media_category", "additional_owners", "shared"})
        if unknown:
            return invalid(f"$.{unknown[0]}: is not defined in the schema and the schema does not allow "
                           "additional properties", unknown[0])
        media_type, total = body.get("media_type"), body.get("total_bytes")
        if media_type not in MEDIA_TYPES:
            return invalid(f"media_type must be one of {', '.join(MEDIA_TYPES)}", "media_type")
        if isinstance(total, str) and total.isdigit():
            total = int(total)
        if isinstance(total, bool) or not isinstance(total, int) or total <= 0:
            return invalid("total_bytes must be a positive integer", "total_bytes")
        category = body.get("media_category") or (
            "tweet_gif" if media_type == "image/gif" else "tweet_video" if media_type.startswith("video/")
            else "tweet_image")  # no category: a Post's media by content type [C best-practices.mdx]
        if category not in CATEGORY_BYTES:
            return invalid(f"media_category must be one of {', '.join(CATEGORY_BYTES)}", "media_category")
        if total > CATEGORY_BYTES[category]:
            return invalid(f"File size exceeds {CATEGORY_BYTES[category]} bytes.", "total_bytes")
        media_id = self.new_id()
        prefix = {"tweet_gif": "16_", "dm_gif": "16_"}.get(category, "7_" if "video" in category else "3_")
        self.net()["media"][media_id] = {
            "id": media_id, "media_key": prefix + media_id, "owner": user_id, "media_type": media_type,
            "category": category, "total_bytes": total, "chunks": {}, "filename": None,
            "state": "uploading", "steps": [], "step_at": 0.0, "alt_text": None, "item": None, "polls": 0,
            "expires_at": time.time() + UPLOAD_TTL,
        }
        return JSONResponse({"data": {"id": media_id, "media_key": prefix + media_id,
                                      "expires_after_secs": UPLOAD_TTL}})

    def _media_of(self, user_id: str, media_id: str) -> tuple[dict[str, Any] | None, Response | None]:
        media = self.net()["media"].get(media_id)
        if media is None or media["owner"] != user_id or media["expires_at"] < time.time():
            return None, invalid(f"media_id {media_id} was not found or has expired", "media_id")
        return media, None

    def _append(self, user_id: str, media_id: str, segment: Any, chunk: bytes | None, filename: str | None) -> Response:
        media, bad = self._media_of(user_id, media_id)
        if bad:
            return bad
        if media["state"] != "uploading":
            return invalid("the upload was already finalized", "media_id")
        if chunk is None:
            return invalid("media is required", "media")
        if not (isinstance(segment, str) and segment.isdigit()) and not (isinstance(segment, int) and segment >= 0):
            return invalid("segment_index is required (an integer from 0 to 999)", "segment_index")
        index = int(segment)
        if index > MAX_SEGMENT:
            return invalid("segment_index must be between 0 and 999", "segment_index")
        if len(chunk) > MAX_CHUNK:
            return invalid(f"media chunk exceeds {MAX_CHUNK} bytes", "media")
        media["chunks"][index] = chunk
        media["filename"] = media["filename"] or filename
        return JSONResponse({"data": {"expires_at": int(media["expires_at"])}})

    def _finalize(self, user_id: str, media_id: str) -> Response:
        media, bad = self._media_of(user_id, media_id)
        if bad:
            return bad
        if media["state"] != "uploading":
            return JSONResponse({"data": self.media_json(media)})
        indices = sorted(media["chunks"])
        if indices != list(range(len(indices))):
            return invalid("Segments are missing: segment_index values must run 0, 1, 2, ...", "segment_index")
        data = b"".join(media["chunks"][i] for i in indices)
        if len(data) != media["total_bytes"]:
            return invalid("Segments do not add up to provided total file size.", "total_bytes")  # [3P]
        media["chunks"] = {}
        item = media_item(data, media["media_type"], media["filename"])
        media["item"] = item
        if media["category"] in ("tweet_image", "dm_image"):
            if "image" not in item:
                media["state"] = "rejected"
                return invalid("media type unrecognized.", "media")  # [3P legacy wording]
            media["state"] = "succeeded"
        else:
            decodable = "video" in item if "video" in media["category"] else "image" in item
            media["state"] = "pending"
            media["steps"] = ["in_progress", "succeeded" if decodable else "failed"]
            media["step_at"] = time.time()
        return JSONResponse({"data": self.media_json(media)})

    def _advance(self, media: dict[str, Any]) -> None:
        step = self.net()["processing_seconds"]
        now = time.time()
        while media["steps"] and now >= media["step_at"] + step:
            media["state"] = media["steps"].pop(0)
            media["step_at"] += step

    def media_json(self, media: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"id": media["id"], "media_key": media["media_key"],
                               "expires_after_secs": max(0, int(media["expires_at"] - time.time()))}
        item = media.get("item") or {}
        out["size"] = item.get("size", media["total_bytes"])
        if "image" in item and media["category"] in ("tweet_image", "dm_image"):
            out["image"] = {"image_type": media["media_type"], "w": item["image"]["width"], "h": item["image"]["height"]}
        if "video" in media["category"]:
            out["video"] = {"video_type": media["media_type"]}
        if media["category"] not in ("tweet_image", "dm_image") and media["state"] != "uploading":
            state = media["state"]
            info: dict[str, Any] = {"state": state}
            if state in ("pending", "in_progress"):
                step = self.net()["processing_seconds"]
                left = media["step_at"] + step - time.time()
                info["check_after_secs"] = max(1, math.ceil(left))
                info["progress_percent"] = 0 if state == "pending" else 50
            elif state == "succeeded":
                info["progress_percent"] = 100
            elif state == "failed":
                info["error"] = {"code": 1, "name": "InvalidMedia",
                                 "message": "Invalid or Unsupported media, Reason: UnsupportedMedia."}  # [3P]
            out["processing_info"] = info
        return out

    async def initialize(self, request: Request) -> Response:
        user_id, denied = self.auth(request, "media.write")
        if denied:
            return denied
        try:
            body = await request.json()
        except ValueError:
            return invalid("the body must be JSON")
        if not isinstance(body, dict):
            return invalid("the body must be a JSON object")
        return self._init(user_id, body)

    async def append(self, request: Request) -> Response:
        user_id, denied = self.auth(request, "media.write")
        if denied:
            return denied
        media_id = request.path_params["media_id"]
        ctype = request.headers.get("content-type", "")
        if ctype.startswith("multipart/form-data"):
            form = await request.form()
            upload = form.get("media")
            if isinstance(upload, UploadFile):
                chunk, name = await upload.read(), upload.filename
            elif isinstance(upload, str):  # base64 in a plain field
                chunk, name = _b64(upload), None
            else:
                chunk, name = None, None
            return self._append(user_id, media_id, form.get("segment_index"), chunk, name)
        try:
            body = await request.json()
        except ValueError:
            return invalid("the body must be multipart/form-data or JSON")
        if not isinstance(body, dict):
            return invalid("the body must be a JSON object")
        raw = body.get("media")
        return self._append(user_id, media_id, body.get("segment_index"),
                            _b64(raw) if isinstance(raw, str) else None, None)

    async def finalize(self, request: Request) -> Response:
        user_id, denied = self.auth(request, "media.write")
        if denied:
            return denied
        return self._finalize(user_id, request.path_params["media_id"])

    async def upload(self, request: Request) -> Response:
        """GET: STATUS. POST: the legacy command form (INIT/APPEND/FINALIZE) the quickstart still
        shows, or a one-shot image upload [C: "a fake should accept both"]."""
        user_id, denied = self.auth(request, "media.write")
        if denied:
            return denied
        if request.method == "GET":
            params = request.query_params
            command, media_id = params.get("command", "STATUS"), params.get("media_id")
            if command != "STATUS":
                return invalid("command must be STATUS", "command")
            if not media_id:
                return invalid("media_id is required", "media_id")
            media, bad = self._media_of(user_id, media_id)
            if bad:
                return bad
            media["polls"] += 1  # the inspection route shows whether adapters honour check_after_secs
            self._advance(media)
            return JSONResponse({"data": self.media_json(media)})
        form = await request.form()
        fields = {k: v for k, v in form.multi_items() if isinstance(v, str)}
        upload = form.get("media")
        chunk = await upload.read() if isinstance(upload, UploadFile) else (
            _b64(upload) if isinstance(upload, str) else _b64(fields.get("media_data", "")) or None)
        name = upload.filename if isinstance(upload, UploadFile) else None
        command = fields.get("command")
        if command == "INIT":
            return self._init(user_id, {k: fields[k] for k in ("media_type", "total_bytes", "media_category")
                                        if k in fields})
        if command == "APPEND":
            return self._append(user_id, fields.get("media_id", ""), fields.get("segment_index"), chunk, name)
        if command == "FINALIZE":
            return self._finalize(user_id, fields.get("media_id", ""))
        if command:
            return invalid("command must be INIT, APPEND or FINALIZE", "command")
        if chunk is None:
            return invalid("media is required", "media")
        mime = upload.content_type if isinstance(upload, UploadFile) else None
        item = media_item(chunk, mime, name)
        if "image" not in item:
            return invalid("media type unrecognized.", "media")
        mime = {"JPEG": "image/jpeg", "PNG": "image/png", "GIF": "image/gif", "WEBP": "image/webp"}.get(
            item["image"]["format"], mime or "image/jpeg")
        started = self._init(user_id, {"media_type": mime, "total_bytes": len(chunk),
                                       "media_category": fields.get("media_category") or None})
        if started.status_code != 200:
            return started
        media_id = next(reversed(self.net()["media"]))
        self._append(user_id, media_id, 0, chunk, name)
        return self._finalize(user_id, media_id)

    async def metadata(self, request: Request) -> Response:
        user_id, denied = self.auth(request, "media.write")
        if denied:
            return denied
        try:
            body = await request.json()
        except ValueError:
            return invalid("the body must be JSON")
        if not isinstance(body, dict) or not isinstance(body.get("id"), str):
            return invalid("id is required", "id")
        media, bad = self._media_of(user_id, body["id"])
        if bad:
            return bad
        meta = body.get("metadata") if isinstance(body.get("metadata"), dict) else {}
        alt = meta.get("alt_text")
        if alt is not None:
            if not isinstance(alt, dict) or not isinstance(alt.get("text"), str):
                return invalid("metadata.alt_text.text is required", "alt_text")
            if len(alt["text"]) > MAX_ALT_TEXT:
                return invalid(f"alt_text.text must be at most {MAX_ALT_TEXT} characters", "alt_text")
            media["alt_text"] = alt["text"]
        return JSONResponse({"data": {"id": media["id"], "associated_metadata": meta}})

    # --- posts --------------------------------------------------------------------------------------

    def fault_response(self, fault: Fault) -> Response | None:
        if fault.kind == "rate_limit":
            reset = math.ceil(time.time() + fault.retry_after)
            return problem(429, "Too Many Requests", fault.message or "Too Many Requests", headers={
                "x-rate-limit-limit": str(RATE_LIMITS["tweets.create"]), "x-rate-limit-remaining": "0",
                "x-rate-limit-reset": str(reset)})
        if fault.kind == "server_error":
            return problem(503, "Service Unavailable", fault.message or "Service Unavailable")
        if fault.kind == "auth_error":
            return unauthorized()
        if fault.kind == "reject_content":
            return forbidden(fault.message or "You are not allowed to create a Tweet with duplicate content.")
        return None

    def _live(self, tweet_id: Any) -> dict[str, Any] | None:
        tweet = self.net()["tweets"].get(str(tweet_id))
        return tweet if tweet and not tweet["deleted"] else None

    def _validate(self, user_id: str, body: Any) -> tuple[list[dict[str, Any]], Response | None]:
        """The media records a valid post body names, or the answer X gives to an invalid one."""
        if not isinstance(body, dict):
            return [], invalid("the body must be a JSON object")
        unknown = sorted(set(body) - TWEET_FIELDS)
        if unknown:
            return [], invalid(f"$.{unknown[0]}: is not defined in the schema and the schema does not "
                               "allow additional properties", unknown[0])
        text = body.get("text", "")
        if not isinstance(text, str):
            return [], invalid("$.text: string expected", "text")
        media_ids: list[Any] = []
        if "media" in body:
            media = body["media"]
            media_ids = media.get("media_ids") if isinstance(media, dict) else None  # type: ignore[assignment]
            if not isinstance(media_ids, list) or not 1 <= len(media_ids) <= 4 or not all(
                    isinstance(m, str) and m.isdigit() for m in media_ids):
                return [], invalid("$.media.media_ids: between 1 and 4 media id strings are required", "media_ids")
        if not text.strip() and not media_ids:
            return [], invalid("Tweet text or media is required.", "text")  # [U wording]
        counted = x_text.count(text)
        if counted.weighted_length > x_text.MAX_WEIGHTED_LENGTH:
            return [], invalid("Your Tweet text is too long. For more information on how Twitter determines "
                               "text length see https://github.com/twitter/twitter-text.", "text")  # [3P]
        records = []
        for media_id in media_ids:
            record = self.net()["media"].get(media_id)
            if record is None or record["owner"] != user_id or record["state"] != "succeeded":
                if record is not None:
                    self._advance(record)
                if record is None or record["owner"] != user_id or record["state"] != "succeeded":
                    return [], invalid("Your media IDs are invalid.", "media_ids")  # [3P]
            records.append(record)
        if len(records) > 1 and any(r["category"] != "tweet_image" for r in records):
            return [], invalid("A post may carry up to 4 images, or 1 GIF, or 1 video.", "media_ids")
        reply = body.get("reply")
        if reply is not None:
            if not isinstance(reply, dict) or not str(reply.get("in_reply_to_tweet_id", "")).isdigit():
                return [], invalid("$.reply.in_reply_to_tweet_id is required", "in_reply_to_tweet_id")
            if self._live(reply["in_reply_to_tweet_id"]) is None:
                return [], forbidden("The Tweet you are replying to has been deleted or is not visible to you.")
        if body.get("reply_settings") is not None and body["reply_settings"] not in REPLY_SETTINGS:
            return [], invalid(f"$.reply_settings must be one of {', '.join(REPLY_SETTINGS)}", "reply_settings")
        quote = body.get("quote_tweet_id")
        if quote is not None and (not isinstance(quote, str) or self._live(quote) is None):
            return [], invalid("$.quote_tweet_id must name an existing post", "quote_tweet_id")
        return records, None

    async def create(self, request: Request) -> Response:
        t0 = received_at(request)
        user_id, denied = self.auth(request, "tweet.read", "tweet.write", "users.read")
        if denied:
            return denied
        try:
            body = await request.json()
        except ValueError:
            return invalid("the body must be JSON")
        records, bad = self._validate(user_id, body)
        if bad:
            return bad
        fault = self.state.take_fault("x", user_id)
        if fault is not None:
            if fault.kind == "timeout":
                await hold(request, fault.delay_seconds)
                return problem(504, "Gateway Timeout", "Gateway Timeout")
            if fault.kind != "drop_after_accept":
                answer = self.fault_response(fault)
                if answer is not None:
                    return answer
        text = body.get("text", "")
        key = unicodedata.normalize("NFC", text).strip()
        if key and any(t["key"] == key and t["author_id"] == user_id and not t["deleted"]
                       for t in self.net()["tweets"].values()):
            return forbidden("You are not allowed to create a Tweet with duplicate content.")  # [3P]
        tweet_id = self.new_id()
        reply_to = (body.get("reply") or {}).get("in_reply_to_tweet_id")
        tweet = {
            "id": tweet_id, "author_id": user_id, "key": key, "raw_text": text,
            "text": display_text(text, bool(records)), "created_at": _iso(t0), "deleted": False,
            "media_keys": [r["media_key"] for r in records], "in_reply_to": reply_to,
            "quote_tweet_id": body.get("quote_tweet_id"), "reply_settings": body.get("reply_settings") or "everyone",
        }
        self.net()["tweets"][tweet_id] = tweet
        self.state.add_delivery({
            "id": tweet_id, "provider": "x", "target": user_id, "text": text,
            "media": [{**r["item"], "mediaId": r["id"], "category": r["category"], "altText": r["alt_text"]}
                      for r in records],
            "receivedAt": t0, "replyTo": reply_to, "quoteTweetId": body.get("quote_tweet_id"),
            "replySettings": body.get("reply_settings"), "kind": "reply" if reply_to else "post",
        })
        for record in records:  # a media id is attached once
            record["state"] = "attached"
        if fault is not None and fault.kind == "drop_after_accept":
            return DropConnection()
        return JSONResponse({"data": {"id": tweet_id, "text": tweet["text"], "edit_history_tweet_ids": [tweet_id]}},
                            status_code=201)

    def tweet_json(self, tweet: dict[str, Any], fields: str) -> dict[str, Any]:
        out: dict[str, Any] = {"id": tweet["id"], "text": tweet["text"], "edit_history_tweet_ids": [tweet["id"]]}
        wanted = set(fields.split(",")) if fields else set()
        if "author_id" in wanted:
            out["author_id"] = tweet["author_id"]
        if "created_at" in wanted:
            out["created_at"] = tweet["created_at"]
        if "conversation_id" in wanted:
            out["conversation_id"] = tweet["in_reply_to"] or tweet["id"]
        if "reply_settings" in wanted:
            out["reply_settings"] = tweet["reply_settings"]
        if "referenced_tweets" in wanted:
            refs = ([{"type": "replied_to", "id": tweet["in_reply_to"]}] if tweet["in_reply_to"] else []) + (
                [{"type": "quoted", "id": tweet["quote_tweet_id"]}] if tweet["quote_tweet_id"] else [])
            if refs:
                out["referenced_tweets"] = refs
        if "attachments" in wanted and tweet["media_keys"]:
            out["attachments"] = {"media_keys": tweet["media_keys"]}
        return out

    async def tweet(self, request: Request) -> Response:
        tweet_id = request.path_params["tweet_id"]
        if request.method == "DELETE":
            user_id, denied = self.auth(request, "tweet.read", "tweet.write", "users.read")
            if denied:
                return denied
            tweet = self._live(tweet_id)
            if tweet is None:
                return problem(404, "Not Found Error", f"Could not find tweet with id: [{tweet_id}].",
                               PROBLEMS + "resource-not-found")  # [U]: X's answer for an unknown id
            if tweet["author_id"] != user_id:
                return forbidden("You are not allowed to delete this Tweet.")
            tweet["deleted"] = True
            return JSONResponse({"data": {"deleted": True}})
        user_id, denied = self.auth(request, "tweet.read", "users.read")
        if denied:
            return denied
        if not tweet_id.isdigit() or len(tweet_id) > 19:
            return invalid(f"The `id` query parameter value [{tweet_id}] does not match ^[0-9]{{1,19}}$", "id")
        tweet = self._live(tweet_id)
        if tweet is None:
            # A missing post is a 200 with errors[] [3P: X v2 lookup behaviour].
            return JSONResponse({"errors": [not_found_error("tweet", tweet_id)]})
        return JSONResponse({"data": self.tweet_json(tweet, request.query_params.get("tweet.fields", ""))})

    async def user_tweets(self, request: Request) -> Response:
        user_id, denied = self.auth(request, "tweet.read", "users.read")
        if denied:
            return denied
        target = request.path_params["user_id"]
        params = request.query_params
        raw_max = params.get("max_results", "10")
        if not raw_max.isdigit() or not 5 <= int(raw_max) <= 100:
            return invalid(f"The `max_results` query parameter value [{raw_max}] is not between 5 and 100",
                           "max_results")
        if target != X_USER["id"]:
            return JSONResponse({"errors": [not_found_error("user", target)]})
        since = params.get("start_time")
        if since is not None:
            try:
                since = datetime.fromisoformat(since.replace("Z", "+00:00")).strftime("%Y-%m-%dT%H:%M:%S")
            except ValueError:
                return invalid(f"The `start_time` query parameter value [{since}] is not a valid "
                               "RFC3339 date-time", "start_time")
        tweets = sorted((t for t in self.net()["tweets"].values() if t["author_id"] == target and not t["deleted"]
                         and (since is None or t["created_at"][:19] >= since)),
                        key=lambda t: int(t["id"]), reverse=True)
        token = params.get("pagination_token")
        start = int(token) if token and token.isdigit() else 0
        page = tweets[start:start + int(raw_max)]
        fields = params.get("tweet.fields", "")
        meta: dict[str, Any] = {"result_count": len(page)}
        if page:
            meta.update(newest_id=page[0]["id"], oldest_id=page[-1]["id"])
        if start + len(page) < len(tweets):
            meta["next_token"] = str(start + len(page))
        body: dict[str, Any] = {"meta": meta}
        if page:
            body["data"] = [self.tweet_json(t, fields) for t in page]
        return JSONResponse(body)

    # --- inspection -----------------------------------------------------------------------------------

    async def inspect(self, request: Request) -> Response:
        net = self.net()
        if request.method == "POST":
            try:
                body = await request.json()
                seconds = float(body["processingSeconds"])
                if not 0 <= seconds <= 60:
                    raise ValueError
            except (ValueError, KeyError, TypeError):
                return JSONResponse({"error": "body must be {\"processingSeconds\": 0..60}"}, status_code=400)
            net["processing_seconds"] = seconds
            return JSONResponse({"ok": True})
        return JSONResponse({
            "processingSeconds": net["processing_seconds"],
            "tweets": [{k: v for k, v in t.items() if k != "key"} for t in net["tweets"].values()],
            "media": [{k: v for k, v in m.items() if k not in ("chunks", "steps")} for m in net["media"].values()],
        })

    async def not_found(self, request: Request) -> Response:
        return problem(404, "Not Found Error", f"no X route {request.method} {request.url.path}",
                       PROBLEMS + "resource-not-found")


def _b64(value: str) -> bytes | None:
    try:
        return base64.b64decode(value, validate=True) if value else None
    except ValueError:
        return None


def routes(state: SandboxState) -> list[Route]:
    x = XSandbox(state)
    api = "/x/api/2"
    lim = x.limited
    return [
        Route("/x/www/i/oauth2/authorize", x.authorize, methods=["GET"]),
        Route(f"{api}/oauth2/token", x.token, methods=["POST"]),
        Route(f"{api}/oauth2/revoke", x.revoke, methods=["POST"]),
        Route(f"{api}/users/me", lim("users.me", x.me), methods=["GET"]),
        Route(f"{api}/users/{{user_id}}/tweets", lim("users.tweets", x.user_tweets), methods=["GET"]),
        Route(f"{api}/media/upload/initialize", lim("media.upload", x.initialize), methods=["POST"]),
        Route(f"{api}/media/upload/{{media_id}}/append", lim("media.upload", x.append), methods=["POST"]),
        Route(f"{api}/media/upload/{{media_id}}/finalize", lim("media.upload", x.finalize), methods=["POST"]),
        Route(f"{api}/media/upload", lim({"GET": "media.status", "POST": "media.upload"}, x.upload),
              methods=["GET", "POST"]),
        Route(f"{api}/media/metadata", lim("media.metadata", x.metadata), methods=["POST"]),
        Route(f"{api}/tweets", lim("tweets.create", x.create), methods=["POST"]),
        Route(f"{api}/tweets/{{tweet_id}}", lim({"GET": "tweets.lookup", "DELETE": "tweets.delete"}, x.tweet),
              methods=["GET", "DELETE"]),
        Route("/x/_sandbox", x.inspect, methods=["GET", "POST"]),
        Route("/x/{rest:path}", x.not_found, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
    ]
