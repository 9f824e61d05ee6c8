"""Facebook Login and the Pages API (Graph) emulation.

    GET  /facebook/www/{ver}/dialog/oauth                      consent: approves FACEBOOK_USER at once
    GET|POST /facebook/graph/{ver}/oauth/access_token          code -> short-lived user token;
                                                               grant_type=fb_exchange_token -> long-lived
    GET  /facebook/graph/{ver}/me[/accounts]                   the user (or Page) and the Pages it manages
    POST /facebook/graph/{ver}/{page}/feed|photos|videos       publish (feed: message, link, attached_media)
    POST /facebook/graph/{ver}/{page}/photo_stories|video_stories|video_reels   stories and reels
    POST /facebook/graph/{ver}/{object}/comments               comment as the Page
    POST /facebook/graph/{ver}/{app-id}/uploads, /upload:{id}  Resumable Upload API -> file handle
    POST /facebook/rupload/video-upload/{ver}/{video-id}       reel / video story bytes
    GET  /facebook/graph/{ver}/{id}[/comments|/published_posts|/feed], DELETE /{id}

Facts: /work/shared/reference/providers.md §2 and the pages cited in providers/facebook.py.
Tokens live in ``state.oauth`` under the network ``facebook``: user tokens (kind "user") and
Page tokens (kind "page", ``extra.page_id``). A Page token derived from a short-lived user token
expires with it; one from a long-lived token never expires [3P, providers.md §2].
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox import graph
from sandbox.oauth import OAuthFailure, bearer
from sandbox.state import DropConnection, SandboxState, media_item, received_at
from sandbox.test_users import FACEBOOK_PAGES, FACEBOOK_USER, INSTAGRAM_BUSINESS_ACCOUNTS

SHORT_LIVED_SECONDS = 5400  # "short-lived tokens usually expire in an hour or two" [C access-token docs]
LONG_LIVED_SECONDS = 5_183_944  # the fb_exchange_token answer's expires_in (~60 days) [C §2]
MAX_MESSAGE = 63_206  # [3P postiz]
MAX_PHOTO_BYTES = 10 * 1024 * 1024  # [3P Ayrshare]
VIDEO_PROCESSING_SECONDS = 0.3  # emulated processing time, fast enough for tests
REEL_MIN_SECONDS, REEL_MAX_SECONDS = 3.0, 90.0  # [C reels-publishing specs, providers.md §2]
STORY_VIDEO_MAX_SECONDS = 60.0  # [C page-stories-api]
UPLOAD_TYPES = {"application/pdf", "image/jpeg", "image/jpg", "image/png", "video/mp4"}  # [C upload guide]
PAGES = {p["id"]: p for p in FACEBOOK_PAGES}
POST_EDGES = {"feed", "photos", "videos", "photo_stories", "video_stories", "video_reels"}
PUBLISH_SCOPE, ENGAGE_SCOPE, LIST_SCOPE = "pages_manage_posts", "pages_manage_engagement", "pages_show_list"


def scopes(token: Any) -> set[str]:
    return {s for s in re.split(r"[,\s]+", token.scope or "") if s}


def pick(record: dict[str, Any], fields: str | None, default: tuple[str, ...]) -> dict[str, Any]:
    wanted = [f.strip() for f in (fields or ",".join(default)).split(",") if f.strip()]
    out = {"id": record["id"]}
    for name in wanted:
        base = name.split("{", 1)[0].split(".", 1)[0]
        if base in record and record[base] is not None:
            out[base] = record[base]
    return out


class FacebookSandbox:
    def __init__(self, state: SandboxState):
        self.state = state

    @property
    def db(self) -> dict[str, Any]:
        # Created lazily: DELETE /_sandbox replaces state.networks.
        return self.state.networks.setdefault("facebook", {
            "objects": {}, "uploads": {}, "handles": {}, "page_tokens": {}, "sessions": {},
        })

    # --- tokens -------------------------------------------------------------------------------

    def token(self, request: Request, params: dict[str, str]) -> Any:
        return self.state.oauth.check("facebook", bearer(request) or params.get("access_token"))

    def page_token_for(self, user_token: str, user: Any, page_id: str) -> str:
        key = f"{user_token}:{page_id}"
        cached = self.db["page_tokens"].get(key)
        if cached and self.state.oauth.check("facebook", cached):
            return cached
        expires_in = None if user.extra.get("long_lived") else max(1.0, (user.expires_at or time.time()) - time.time())
        issued = self.state.oauth.issue("facebook", user.user_id, user.scope, user.client_id,
                                        expires_in=expires_in, kind="page", extra={"page_id": page_id})
        self.db["page_tokens"][key] = issued["access_token"]
        return issued["access_token"]

    def require_page(self, token: Any, page_id: str, scope: str) -> Response | None:
        """Publishing on a Page takes that Page's token with ``scope`` [C posts guide]."""
        if page_id not in PAGES:
            return graph.missing_object(page_id)
        if token.kind != "page" or token.extra.get("page_id") != page_id:
            return graph.error(403, "(#200) If posting to a page, requires both pages_read_engagement and "
                                    "pages_manage_posts as an admin with sufficient administrative permission", 200)
        if scope not in scopes(token):
            return graph.error(403, f"(#200) The permission {scope} is required for this action", 200)
        if "CREATE_CONTENT" not in PAGES[page_id]["tasks"]:
            return graph.error(403, "(#200) The user cannot perform CREATE_CONTENT on this Page", 200)
        return None

    # --- routes -------------------------------------------------------------------------------

    async def dialog(self, request: Request) -> Response:
        try:
            return self.state.oauth.authorize("facebook", dict(request.query_params), FACEBOOK_USER["id"])
        except OAuthFailure as exc:
            return graph.oauth_error_response(exc)

    async def rupload(self, request: Request) -> Response:
        """Reel / video story bytes: headers Authorization: OAuth <page token>, offset, file_size
        (or file_url) [C reels guide start step; U header names, providers.md §2]."""
        token = self.state.oauth.check("facebook", bearer(request))
        if token is None:
            return graph.token_error()
        session = self.db["sessions"].get(request.path_params["video_id"])
        if session is None:
            return graph.missing_object(request.path_params["video_id"])
        if token.kind != "page" or token.extra.get("page_id") != session["page"]:
            return graph.error(403, "(#200) Upload requires the Page's access token", 200)
        file_url = request.headers.get("file_url")
        if file_url:
            fetched = await graph.fetch_url(file_url)
            if fetched is None:
                return graph.error(400, "Failed to fetch the file from file_url", 100)
            data, mime = fetched
        else:
            data, mime = await request.body(), request.headers.get("content-type", "video/mp4")
            offset, size = request.headers.get("offset"), request.headers.get("file_size")
            if offset is None or size is None:
                return graph.invalid_param("offset and file_size headers are required")
            if not size.isdigit() or int(size) != len(data) or offset != "0":
                return graph.invalid_param("file_size does not match the uploaded bytes")
        session["data"], session["mime"] = data, mime
        return JSONResponse({"success": True})

    async def dispatch(self, request: Request) -> Response:
        _, parts = graph.split_path(request.path_params["rest"])
        params, files = await graph.read_params(request)
        method = request.method
        if parts == ["oauth", "access_token"] and method in ("GET", "POST"):
            return self.access_token(params)
        if len(parts) == 1 and parts[0].startswith("upload:"):
            return await self.upload(request, parts[0], method)
        token = self.token(request, params)
        if token is None:
            return graph.token_error()
        page = token.extra.get("page_id") if token.kind == "page" else None
        response = await self.route(request, method, parts, params, files, token)
        if isinstance(response, DropConnection):
            return response
        return graph.with_headers(response, graph.usage_headers(self.state, page, "pages"))

    async def route(self, request: Request, method: str, parts: list[str], params: dict[str, str],
                    files: dict[str, tuple[bytes, str, str]], token: Any) -> Response:
        if method == "GET":
            if parts == ["me"]:
                return self.me(token, params)
            if parts == ["me", "accounts"]:
                return self.accounts(request, token, params)
            if len(parts) == 1:
                return self.read(parts[0], params)
            if len(parts) == 2 and parts[1] in ("published_posts", "feed", "posts"):
                return self.list_posts(parts[0], params)
            if len(parts) == 2 and parts[1] == "comments":
                return self.list_comments(parts[0], params)
            if len(parts) == 2 and parts[1] == "video_reels":
                return self.list_posts(parts[0], params, kind="reel")
        elif method == "POST":
            if len(parts) == 2 and parts[1] == "uploads":
                return self.start_upload(parts[0], params, token)
            if len(parts) == 2 and parts[1] == "comments":
                return await self.comment(request, parts[0], params, files, token)
            if len(parts) == 2 and parts[1] in POST_EDGES:
                denied = self.require_page(token, parts[0], PUBLISH_SCOPE)
                if denied is not None:
                    return denied
                handler = getattr(self, "edge_" + parts[1])
                return await handler(request, parts[0], params, files)
        elif method == "DELETE" and len(parts) == 1:
            return self.delete(parts[0], token)
        return graph.unknown_path("/".join(parts))

    # --- OAuth --------------------------------------------------------------------------------

    def access_token(self, params: dict[str, str]) -> Response:
        try:
            client_id, secret = params.get("client_id"), params.get("client_secret")
            if params.get("grant_type") == "fb_exchange_token":
                # Long-lived user token [C get-long-lived guide].
                if not client_id or not secret:
                    raise OAuthFailure("invalid_client", "client_id and client_secret are required", 400)
                short = self.state.oauth.check("facebook", params.get("fb_exchange_token"))
                if short is None or short.kind != "user" or short.client_id != client_id:
                    return graph.token_error()
                body = self.state.oauth.issue("facebook", short.user_id, short.scope, client_id,
                                              expires_in=LONG_LIVED_SECONDS, extra={"long_lived": True})
                return JSONResponse(body)
            record = self.state.oauth.redeem_code("facebook", params, client_id, secret)
            body = self.state.oauth.issue("facebook", record["user_id"], record["scope"], client_id or "",
                                          expires_in=SHORT_LIVED_SECONDS)
            return JSONResponse(body)
        except OAuthFailure as exc:
            return graph.oauth_error_response(exc)

    # --- reads --------------------------------------------------------------------------------

    def me(self, token: Any, params: dict[str, str]) -> Response:
        if token.kind == "page":
            record = {**self.page_record(token.extra["page_id"])}
        else:
            record = dict(FACEBOOK_USER)
        return JSONResponse(pick(record, params.get("fields"), ("name",)))

    def page_record(self, page_id: str) -> dict[str, Any]:
        page = PAGES[page_id]
        ig = page.get("instagram_business_account")
        record = {k: v for k, v in page.items() if k != "instagram_business_account"}
        if ig:
            acct = INSTAGRAM_BUSINESS_ACCOUNTS[ig]
            record["instagram_business_account"] = {"id": ig, "username": acct["username"], "name": acct["name"]}
        return record

    def accounts(self, request: Request, token: Any, params: dict[str, str]) -> Response:
        if token.kind != "user":
            return graph.error(400, "(#100) Tried accessing nonexisting field (accounts) on node type (Page)", 100)
        if LIST_SCOPE not in scopes(token):
            return graph.error(403, "(#200) The pages_show_list permission is required", 200)
        fields = params.get("fields") or "id,name"
        user_token = bearer(request) or params.get("access_token") or ""
        data = []
        for page_id in PAGES:
            record = self.page_record(page_id)
            record["access_token"] = self.page_token_for(user_token, token, page_id)
            out = pick(record, fields, ())
            if "instagram_business_account" in out:
                nested = re.search(r"instagram_business_account\{([^}]*)\}", fields)
                keys = [k.strip() for k in nested.group(1).split(",")] if nested else ["id"]
                out["instagram_business_account"] = {k: v for k, v in record["instagram_business_account"].items()
                                                     if k in keys or k == "id"}
            data.append(out)
        cursor = base64.b64encode(b"sandbox").decode()
        return JSONResponse({"data": data, "paging": {"cursors": {"before": cursor, "after": cursor}}})

    def obj(self, object_id: str) -> dict[str, Any] | None:
        record = self.db["objects"].get(object_id)
        return None if record is None or record.get("deleted") else record

    def view(self, record: dict[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in record.items() if not k.startswith("_") and k not in ("deleted", "page", "kind")}
        if record["kind"] == "video":
            status = "ready" if time.time() >= record["_ready_at"] else "processing"
            out["status"] = {"video_status": status,
                             "processing_progress": 100 if status == "ready" else 50}
        return out

    def read(self, object_id: str, params: dict[str, str]) -> Response:
        if object_id in PAGES:
            return JSONResponse(pick(self.page_record(object_id), params.get("fields"), ("name",)))
        if object_id == FACEBOOK_USER["id"]:
            return JSONResponse(pick(dict(FACEBOOK_USER), params.get("fields"), ("name",)))
        record = self.obj(object_id)
        if record is None:
            return graph.missing_object(object_id)
        return JSONResponse(pick(self.view(record), params.get("fields"), ("created_time",)))

    def list_posts(self, page_id: str, params: dict[str, str], kind: str = "post") -> Response:
        if page_id not in PAGES:
            return graph.missing_object(page_id)
        posts = [r for r in self.db["objects"].values()
                 if r["page"] == page_id and not r.get("deleted")
                 and (r["kind"] == kind if kind == "post" else r.get("_reel"))]
        posts.sort(key=lambda r: r["_t"], reverse=True)
        limit = min(100, int(params.get("limit", "25") or 25))
        data = [pick(self.view(r), params.get("fields"), ("message", "created_time")) for r in posts[:limit]]
        return JSONResponse({"data": data})

    def list_comments(self, object_id: str, params: dict[str, str]) -> Response:
        if self.obj(object_id) is None:
            return graph.missing_object(object_id)
        comments = [r for r in self.db["objects"].values()
                    if r["kind"] == "comment" and r["_parent"] == object_id and not r.get("deleted")]
        comments.sort(key=lambda r: r["_t"], reverse=params.get("order") == "reverse_chronological")
        limit = min(100, int(params.get("limit", "25") or 25))
        data = [pick(self.view(r), params.get("fields"), ("message", "created_time", "from")) for r in comments[:limit]]
        return JSONResponse({"data": data})

    # --- publishing helpers -------------------------------------------------------------------

    async def fault_or_none(self, request: Request, page_id: str) -> tuple[Response | None, bool]:
        """(an error answer, drop after recording?) for a pending fault on this Page."""
        fault = self.state.take_fault("facebook", page_id)
        if fault is None:
            return None, False
        if fault.kind == "drop_after_accept":
            return None, True
        answer = await graph.fault_answer(
            request, self.state, fault, business_id=page_id, kind="pages", throttle_code=32,
            reject=(368, 1390008, "It looks like you were misusing this feature by going too fast. "
                                  "You've been temporarily blocked from using it."))
        return answer, False

    def store(self, kind: str, page_id: str, object_id: str, t: float, **fields: Any) -> dict[str, Any]:
        record = {"id": object_id, "kind": kind, "page": page_id, "_t": t,
                  "created_time": graph.graph_time(t), **fields}
        self.db["objects"][object_id] = record
        return record

    def deliver(self, request: Request, *, object_id: str, target: str, kind: str, text: str | None,
                media: list[dict[str, Any]], **extra: Any) -> None:
        self.state.add_delivery({"id": object_id, "provider": "facebook", "target": target, "text": text,
                                 "media": media, "receivedAt": received_at(request), "kind": kind, **extra})

    async def media_bytes(self, params: dict[str, str], files: dict[str, tuple[bytes, str, str]],
                          url_key: str = "url") -> tuple[bytes, str, str] | Response | None:
        if "source" in files:
            return files["source"]
        url = params.get(url_key)
        if url:
            fetched = await graph.fetch_url(url)
            if fetched is None:
                return graph.error(400, "(#100) url should represent a valid URL", 100)
            return fetched[0], fetched[1], url.rsplit("/", 1)[-1] or "file"
        return None

    # --- edges --------------------------------------------------------------------------------

    async def edge_feed(self, request: Request, page_id: str, params: dict[str, str], files: Any) -> Response:
        message, link = params.get("message"), params.get("link")
        attached: list[Any] = []
        if "attached_media" in params:
            try:
                attached = json.loads(params["attached_media"])
            except ValueError:
                return graph.invalid_param("param attached_media must be an array of objects")
        indexed = sorted((k for k in params if re.fullmatch(r"attached_media\[\d+\]", k)),
                         key=lambda k: int(k[15:-1]))
        for key in indexed:
            try:
                attached.append(json.loads(params[key]))
            except ValueError:
                return graph.invalid_param(f"param {key} must be a JSON object")
        if not isinstance(attached, list):
            return graph.invalid_param("param attached_media must be an array")
        if not message and not link and not attached:
            return graph.invalid_param("Missing message or attachment")
        if message and len(message) > MAX_MESSAGE:
            return graph.invalid_param("param message must be at most 63206 characters")
        if link and not re.match(r"^https?://\S+$", link):
            return graph.error(400, "(#100) The link could not be scraped", 100, 1609005)
        if not graph.truthy(params.get("published"), True):
            return graph.invalid_param("the sandbox does not emulate unpublished or scheduled page posts")
        photos = []
        for i, item in enumerate(attached):
            fbid = str(item.get("media_fbid")) if isinstance(item, dict) else ""
            photo = self.obj(fbid)
            if (photo is None or photo["kind"] != "photo" or photo["page"] != page_id
                    or photo.get("published") or photo.get("_attached")):
                return graph.invalid_param(f"param attached_media[{i}] must be an unpublished photo of this Page "
                                           "that is not attached to another post")
            photos.append(photo)
        answer, drop = await self.fault_or_none(request, page_id)
        if answer is not None:
            return answer
        t = received_at(request)
        post_id = f"{page_id}_{graph.new_id(self.state, 16)}"
        for photo in photos:
            photo["_attached"] = post_id
        self.store("post", page_id, post_id, t, message=message, link=link,
                   permalink_url=f"https://www.facebook.com/{page_id}/posts/{post_id.split('_')[1]}",
                   _photos=[p["id"] for p in photos])
        self.deliver(request, object_id=post_id, target=page_id, kind="feed", text=message,
                     media=[p["_media"] for p in photos], link=link)
        return DropConnection() if drop else JSONResponse({"id": post_id})

    async def edge_photos(self, request: Request, page_id: str, params: dict[str, str], files: Any) -> Response:
        got = await self.media_bytes(params, files)
        if isinstance(got, Response):
            return got
        if got is None:
            return graph.error(400, "(#324) Requires upload file", 324)
        data, mime, name = got
        item = media_item(data, mime, name)
        if "image" not in item:
            return graph.error(400, "(#324) Missing or invalid image file", 324)
        if len(data) > MAX_PHOTO_BYTES:
            # The text postiz maps for subcode 1366046 [3P].
            return graph.error(400, "Photos should be smaller than 4 MB and saved as JPG, PNG", 100, 1366046)
        caption = params.get("message") or params.get("caption")
        photo_id = graph.new_id(self.state, 16)
        t = received_at(request)
        if not graph.truthy(params.get("published"), True):
            # Unpublished photo: invisible until attached to a post or a story [C posts guide].
            self.store("photo", page_id, photo_id, t, published=False, name=caption, _media=item)
            return JSONResponse({"id": photo_id})
        answer, drop = await self.fault_or_none(request, page_id)
        if answer is not None:
            return answer
        post_id = f"{page_id}_{graph.new_id(self.state, 16)}"
        self.store("photo", page_id, photo_id, t, published=True, name=caption, _media=item, _attached=post_id)
        self.store("post", page_id, post_id, t, message=caption, _photos=[photo_id],
                   permalink_url=f"https://www.facebook.com/{page_id}/posts/{post_id.split('_')[1]}")
        self.deliver(request, object_id=post_id, target=page_id, kind="photo", text=caption, media=[item],
                     photoId=photo_id)
        return DropConnection() if drop else JSONResponse({"id": photo_id, "post_id": post_id})

    async def edge_videos(self, request: Request, page_id: str, params: dict[str, str], files: Any) -> Response:
        handle = params.get("fbuploader_video_file_chunk")
        if handle:
            stored = self.db["handles"].get(handle)
            if stored is None:
                return graph.invalid_param("param fbuploader_video_file_chunk is not a valid file handle")
            data, mime, name = stored["data"], stored["mime"], stored["name"]
        else:
            got = await self.media_bytes(params, files, url_key="file_url")
            if isinstance(got, Response):
                return got
            if got is None:
                return graph.invalid_param("a video file is required (source, file_url or fbuploader_video_file_chunk)")
            data, mime, name = got
        item = media_item(data, mime, name)
        if "video" not in item:
            return graph.error(400, "(#352) Sorry, the video file you selected is in a format that we don't support.", 352)
        if not graph.truthy(params.get("published"), True):
            return graph.invalid_param("the sandbox does not emulate unpublished videos")
        answer, drop = await self.fault_or_none(request, page_id)
        if answer is not None:
            return answer
        t = received_at(request)
        video_id = graph.new_id(self.state, 16)
        description = params.get("description")
        self.store("video", page_id, video_id, t, description=description, title=params.get("title"),
                   permalink_url=f"/{page_id}/videos/{video_id}/", _ready_at=t + VIDEO_PROCESSING_SECONDS)
        post_id = f"{page_id}_{video_id}"  # the Page post a video makes [U id shape]
        self.store("post", page_id, post_id, t, message=description, _video=video_id,
                   permalink_url=f"https://www.facebook.com/{page_id}/videos/{video_id}")
        self.deliver(request, object_id=video_id, target=page_id, kind="video", text=description,
                     media=[item], title=params.get("title"))
        return DropConnection() if drop else JSONResponse({"id": video_id})

    async def edge_photo_stories(self, request: Request, page_id: str, params: dict[str, str], files: Any) -> Response:
        photo = self.obj(params.get("photo_id") or "")
        if photo is None or photo["kind"] != "photo" or photo["page"] != page_id or photo.get("published"):
            return graph.invalid_param("param photo_id must be an unpublished photo of this Page")
        answer, drop = await self.fault_or_none(request, page_id)
        if answer is not None:
            return answer
        t = received_at(request)
        post_id = graph.new_id(self.state, 16)
        photo["_attached"] = post_id
        self.store("story", page_id, post_id, t, _media=photo["_media"])
        self.deliver(request, object_id=post_id, target=page_id, kind="story", text=None, media=[photo["_media"]])
        return DropConnection() if drop else JSONResponse({"success": True, "post_id": post_id})

    def start_session(self, request: Request, page_id: str, kind: str) -> Response:
        video_id = graph.new_id(self.state, 16)
        self.db["sessions"][video_id] = {"page": page_id, "kind": kind, "data": None, "done": False}
        ver = graph.split_path(request.path_params["rest"])[0] or "v26.0"
        # Production: https://rupload.facebook.com/video-upload/{ver}/{video_id} [C reels guide].
        base = str(request.base_url).rstrip("/")
        return JSONResponse({"video_id": video_id,
                             "upload_url": f"{base}/facebook/rupload/video-upload/{ver}/{video_id}"})

    async def finish_session(self, request: Request, page_id: str, params: dict[str, str], kind: str) -> Response:
        session = self.db["sessions"].get(params.get("video_id") or "")
        if session is None or session["page"] != page_id or session["kind"] != kind:
            return graph.invalid_param("param video_id is not an upload session of this Page")
        if session["done"]:
            return graph.invalid_param("this video was already published")
        if session["data"] is None:
            return graph.error(400, "(#6000) There was a problem uploading your video file: no bytes were uploaded",
                               6000)
        item = media_item(session["data"], session["mime"], "video.mp4")
        video = item.get("video")
        if video is None:
            return graph.error(400, "(#352) Sorry, the video file you selected is in a format that we don't support.", 352)
        duration = video.get("duration") or 0.0
        if kind == "reel":
            if not REEL_MIN_SECONDS <= duration <= REEL_MAX_SECONDS:
                return graph.invalid_param(f"Reels must be 3 to 90 seconds long (got {duration:.1f} s)")
            if video["width"] >= video["height"]:
                return graph.invalid_param("Reels must be vertical (9:16)")
            if params.get("video_state") != "PUBLISHED":
                return graph.invalid_param("the sandbox only emulates video_state=PUBLISHED")
        elif not REEL_MIN_SECONDS <= duration <= STORY_VIDEO_MAX_SECONDS:
            return graph.invalid_param(f"video stories must be 3 to 60 seconds long (got {duration:.1f} s)")
        if video["width"] < 540 or video["height"] < 960:
            return graph.invalid_param("the video must be at least 540x960 pixels")
        answer, drop = await self.fault_or_none(request, page_id)
        if answer is not None:
            return answer
        session["done"] = True
        t = received_at(request)
        video_id = params["video_id"]
        description = params.get("description")
        self.store("video", page_id, video_id, t, description=description,
                   permalink_url=f"/reel/{video_id}" if kind == "reel" else None,
                   _ready_at=t + VIDEO_PROCESSING_SECONDS, _reel=kind == "reel")
        if kind == "reel":
            self.deliver(request, object_id=video_id, target=page_id, kind="reel", text=description, media=[item])
            return DropConnection() if drop else JSONResponse({"success": True})
        post_id = graph.new_id(self.state, 16)
        self.store("story", page_id, post_id, t, _video=video_id)
        self.deliver(request, object_id=post_id, target=page_id, kind="story", text=None, media=[item],
                     videoId=video_id)
        return DropConnection() if drop else JSONResponse({"success": True, "post_id": post_id})

    async def edge_video_stories(self, request: Request, page_id: str, params: dict[str, str], files: Any) -> Response:
        phase = params.get("upload_phase")
        if phase == "start":
            return self.start_session(request, page_id, "story")
        if phase == "finish":
            return await self.finish_session(request, page_id, params, "story")
        return graph.invalid_param("param upload_phase must be one of {start, finish}")

    async def edge_video_reels(self, request: Request, page_id: str, params: dict[str, str], files: Any) -> Response:
        phase = params.get("upload_phase")
        if phase == "start":
            return self.start_session(request, page_id, "reel")
        if phase == "finish":
            return await self.finish_session(request, page_id, params, "reel")
        return graph.invalid_param("param upload_phase must be one of {start, finish}")

    async def comment(self, request: Request, object_id: str, params: dict[str, str],
                      files: dict[str, tuple[bytes, str, str]], token: Any) -> Response:
        parent = self.obj(object_id)
        if parent is None or parent["kind"] == "story":
            return graph.missing_object(object_id)
        page_id = parent["page"]
        if token.kind != "page" or token.extra.get("page_id") != page_id:
            return graph.error(403, "(#200) Commenting as the Page requires the Page's access token", 200)
        if ENGAGE_SCOPE not in scopes(token):
            return graph.error(403, "(#200) The permission pages_manage_engagement is required", 200)
        message = params.get("message")
        got = await self.media_bytes(params, files, url_key="attachment_url")
        if isinstance(got, Response):
            return got
        if not message and got is None:
            return graph.invalid_param("Missing message or attachment")
        media = []
        if got is not None:
            item = media_item(*got)
            if "image" not in item:
                return graph.error(400, "(#324) Missing or invalid image file", 324)
            media.append(item)
        answer, drop = await self.fault_or_none(request, page_id)
        if answer is not None:
            return answer
        t = received_at(request)
        comment_id = f"{object_id.split('_')[-1]}_{graph.new_id(self.state, 16)}"
        page = PAGES[page_id]
        self.store("comment", page_id, comment_id, t, message=message, _parent=object_id,
                   **{"from": {"id": page_id, "name": page["name"]}})
        self.deliver(request, object_id=comment_id, target=page_id, kind="comment", text=message, media=media,
                     replyTo=object_id)
        return DropConnection() if drop else JSONResponse({"id": comment_id})

    def delete(self, object_id: str, token: Any) -> Response:
        record = self.obj(object_id)
        if record is None:
            return graph.missing_object(object_id)
        if token.kind != "page" or token.extra.get("page_id") != record["page"]:
            return graph.error(403, "(#200) Deleting requires the Page's access token", 200)
        record["deleted"] = True
        if record["kind"] == "post":
            for photo_id in record.get("_photos") or []:
                if (photo := self.db["objects"].get(photo_id)) is not None:
                    photo["deleted"] = True
        return JSONResponse({"success": True})

    # --- Resumable Upload API -----------------------------------------------------------------

    def start_upload(self, app_id: str, params: dict[str, str], token: Any) -> Response:
        """``POST /{app-id}/uploads?file_name&file_length&file_type`` with a user token [C]."""
        if token.kind != "user":
            return graph.error(400, "(#100) Upload sessions require a User access token", 100)
        if app_id != token.client_id:
            return graph.missing_object(app_id)
        length, ftype = params.get("file_length", ""), params.get("file_type", "")
        if not length.isdigit() or int(length) <= 0:
            return graph.invalid_param("param file_length must be a positive integer")
        if ftype not in UPLOAD_TYPES:
            return graph.invalid_param(f"param file_type must be one of {', '.join(sorted(UPLOAD_TYPES))}")
        sid = secrets.token_urlsafe(18)
        self.db["uploads"][sid] = {"user": token.user_id, "length": int(length), "type": ftype,
                                   "name": params.get("file_name") or "file", "data": b""}
        return JSONResponse({"id": f"upload:{sid}"})

    async def upload(self, request: Request, node: str, method: str) -> Response:
        """``POST /upload:{id}`` with ``Authorization: OAuth <user token>`` and ``file_offset``
        headers; "you must include the access token in the header or the call will fail" [C]."""
        session = self.db["uploads"].get(node[len("upload:"):])
        auth = request.headers.get("authorization", "")
        scheme, _, value = auth.partition(" ")
        token = self.state.oauth.check("facebook", value.strip()) if scheme.lower() in ("oauth", "bearer") else None
        if token is None:
            return graph.error(400, "Invalid OAuth access token (the token must be in the Authorization header)",
                               190)
        if session is None or session["user"] != token.user_id:
            return graph.missing_object(node)
        if method == "GET":
            return JSONResponse({"id": node, "file_offset": len(session["data"])})
        if method != "POST":
            return graph.unknown_path(node)
        offset = request.headers.get("file_offset")
        if offset is None or not offset.isdigit():
            return graph.invalid_param("the file_offset header is required")
        if int(offset) != len(session["data"]):
            return graph.invalid_param(f"file_offset {offset} does not match the upload's offset {len(session['data'])}")
        session["data"] += await request.body()
        if len(session["data"]) > session["length"]:
            return graph.invalid_param("more bytes than file_length were uploaded")
        if len(session["data"]) < session["length"]:
            return JSONResponse({"id": node, "file_offset": len(session["data"])})
        handle = "2:" + base64.b64encode(secrets.token_bytes(18)).decode()
        self.db["handles"][handle] = {"data": session["data"], "mime": session["type"], "name": session["name"]}
        return JSONResponse({"h": handle})


def routes(state: SandboxState) -> list[Route]:
    sandbox = FacebookSandbox(state)
    return [
        Route("/facebook/www/{ver}/dialog/oauth", sandbox.dialog, methods=["GET"]),
        Route("/facebook/rupload/video-upload/{ver}/{video_id}", sandbox.rupload, methods=["POST"]),
        Route("/facebook/graph/{rest:path}", sandbox.dispatch, methods=["GET", "POST", "DELETE"]),
    ]
