"""Instagram content publishing emulation, for both ways in:

    /instagram_business/graph/{ver}/...   Instagram API with Facebook Login (graph.facebook.com in
                                          production): tokens are the ``facebook`` network's -- the
                                          linked Page's token, or the user token of FACEBOOK_USER
    /instagram/www/oauth/authorize        Instagram API with Instagram Login: consent
    POST /instagram/api/oauth/access_token   code -> short-lived token (1 h)
    /instagram/graph/access_token         grant_type=ig_exchange_token -> long-lived (60 days)
    /instagram/graph/refresh_access_token grant_type=ig_refresh_token (token >= 24 h old)
    /instagram/graph/{ver}/...            graph.instagram.com: tokens of the ``instagram`` network

Graph endpoints (both): POST /{ig}/media (containers), GET /{container}?fields=status_code,
POST /{ig}/media_publish, GET /{ig}/content_publishing_limit, GET /{ig}/media|stories,
GET /{media}, POST|GET /{media}/comments, GET /me (Instagram Login).

Containers fetch their ``image_url`` / ``video_url`` with httpx at creation ("we cURL media used
in publishing attempts" [C content publishing]) and inspect the bytes. Videos stay IN_PROGRESS for
``processingSeconds`` (0.4 s) and then turn FINISHED, or ERROR with the subcode in ``status``.

Test knobs: POST /instagram/_sandbox and /instagram_business/_sandbox with JSON
{"quotaTotal": n, "processingSeconds": s, "ageTokensSeconds": s} (the last makes the Instagram
Login tokens that much older, to test the 24 h refresh rule).

Facts: /work/shared/reference/providers.md §3/§4 and the pages cited in providers/instagram.py.
Error subcodes come from postiz's mapping [3P]; texts are best guesses [U].
"""

from __future__ import annotations

import json
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox import graph
from sandbox.oauth import OAuthFailure, Token, bearer, request_params
from sandbox.state import DropConnection, SandboxState, media_item, received_at
from sandbox.test_users import FACEBOOK_PAGES, FACEBOOK_USER, INSTAGRAM_BUSINESS_ACCOUNTS, INSTAGRAM_LOGIN_USER

SHORT_LIVED_SECONDS = 3600  # "short-lived ... expire in one hour" [C access_token reference]
LONG_LIVED_SECONDS = 5_184_000  # 60 days [C]
MIN_REFRESH_AGE = 86_400  # "at least 24 hours old but has not expired" [C refresh_access_token]
CONTAINER_TTL = 86_400  # EXPIRED when not published within 24 h [C §3]
QUOTA_TOTAL, QUOTA_WINDOW = 100, 86_400  # 25/50/100 disputed; current tools say 100 [3P §3]
MAX_CAPTION, MAX_HASHTAGS, MAX_MENTIONS = 2200, 30, 20  # [3P §3]
MAX_IMAGE_BYTES = 8 * 1024 * 1024  # [3P §3]
MIN_ASPECT, MAX_ASPECT = 0.8, 1.91  # feed images 4:5 .. 1.91:1 [3P §3]
CAROUSEL_MIN, CAROUSEL_MAX = 2, 10  # [3P postiz "between 2 and 10"]
REEL_MIN, REEL_MAX, SHORT_VIDEO_MAX = 3.0, 900.0, 60.0  # reels 3 s-15 min; stories/carousel video <= 60 s [3P]
VIDEO_CODECS = ("h264", "hevc")  # [3P §3]
PUBLISH_SCOPES = {"instagram_business": "instagram_content_publish", "instagram": "instagram_business_content_publish"}
COMMENT_SCOPES = {"instagram_business": "instagram_manage_comments", "instagram": "instagram_business_manage_comments"}
IG_OF_PAGE = {p["id"]: p["instagram_business_account"] for p in FACEBOOK_PAGES if p["instagram_business_account"]}


@dataclass(frozen=True)
class Flavor:
    root: str  # /instagram_business or /instagram
    provider: str  # Herald provider id (deliveries, faults)
    network: str  # the state.oauth network whose tokens it takes


BUSINESS = Flavor("/instagram_business", "instagram_business", "facebook")
LOGIN = Flavor("/instagram", "instagram", "instagram")


def scopes(token: Token) -> set[str]:
    return {s for s in re.split(r"[,\s]+", token.scope or "") if s}


def ig_error(status: int, message: str, code: int, subcode: int | None = None, user_msg: str | None = None) -> JSONResponse:
    return graph.error(status, message, code, subcode, user_msg=user_msg)


class InstagramSandbox:
    def __init__(self, state: SandboxState, flavor: Flavor):
        self.state, self.flavor = state, flavor

    @property
    def db(self) -> dict[str, Any]:
        return self.state.networks.setdefault(self.flavor.provider, {
            "containers": {}, "media": {}, "publishes": {},
            "config": {"quota_total": QUOTA_TOTAL, "processing": 0.4},
        })

    # --- tokens -------------------------------------------------------------------------------

    def ig_users(self, token: Token) -> set[str]:
        """The Instagram accounts a token may act for."""
        if self.flavor is LOGIN:
            return {INSTAGRAM_LOGIN_USER["user_id"]} if token.user_id == INSTAGRAM_LOGIN_USER["id"] else set()
        if token.kind == "page":
            ig = IG_OF_PAGE.get(token.extra.get("page_id"))
            return {ig} if ig else set()
        return set(IG_OF_PAGE.values()) if token.user_id == FACEBOOK_USER["id"] else set()

    def token(self, request: Request, params: dict[str, str]) -> Token | None:
        return self.state.oauth.check(self.flavor.network, bearer(request) or params.get("access_token"))

    # --- entry points -------------------------------------------------------------------------

    async def control(self, request: Request) -> Response:
        try:
            body = json.loads(await request.body() or b"{}")
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return JSONResponse({"error": "the body must be a JSON object"}, status_code=400)
        config = self.db["config"]
        if "quotaTotal" in body:
            config["quota_total"] = int(body["quotaTotal"])
        if "processingSeconds" in body:
            config["processing"] = float(body["processingSeconds"])
        if "ageTokensSeconds" in body:
            for token in list(self.state.oauth.tokens.values()) + list(self.state.oauth.refresh_tokens.values()):
                if token.network == self.flavor.network and "issued_at" in token.extra:
                    token.extra["issued_at"] -= float(body["ageTokensSeconds"])
        return JSONResponse({"ok": True, "config": config})

    async def authorize(self, request: Request) -> Response:
        try:
            return self.state.oauth.authorize("instagram", dict(request.query_params), INSTAGRAM_LOGIN_USER["id"])
        except OAuthFailure as exc:
            return JSONResponse({"error_type": "OAuthException", "code": 400, "error_message": exc.description},
                                status_code=400)

    async def code_exchange(self, request: Request) -> Response:
        """POST api.instagram.com/oauth/access_token (form) -> {access_token, user_id, permissions}
        [3P postiz; C 1 h lifetime]; errors {"error_type","code","error_message"} [U]."""
        params = await request_params(request)
        try:
            if params.get("grant_type") != "authorization_code":
                raise OAuthFailure("unsupported_grant_type", "grant_type must be authorization_code")
            record = self.state.oauth.redeem_code("instagram", params, params.get("client_id"),
                                                  params.get("client_secret"))
        except OAuthFailure as exc:
            return JSONResponse({"error_type": "OAuthException", "code": 400, "error_message": exc.description},
                                status_code=400)
        issued = self.state.oauth.issue("instagram", record["user_id"], record["scope"], params["client_id"],
                                        expires_in=SHORT_LIVED_SECONDS, extra={"issued_at": time.time()})
        return JSONResponse({"access_token": issued["access_token"], "user_id": int(INSTAGRAM_LOGIN_USER["user_id"]),
                             "permissions": record["scope"]})

    def long_lived(self, short: Token) -> dict[str, Any]:
        now = time.time()
        body = self.state.oauth.issue("instagram", short.user_id, short.scope, short.client_id,
                                      expires_in=LONG_LIVED_SECONDS,
                                      extra={"issued_at": now, "long_lived": True})
        # The long-lived token is its own refresh grant: register it so the OAuth server's
        # switches (fail_refresh, revoke) apply to it.
        self.state.oauth.refresh_tokens[body["access_token"]] = Token(
            "instagram", short.user_id, short.scope, short.client_id, now + LONG_LIVED_SECONDS, "refresh",
            {"issued_at": now})
        return {"access_token": body["access_token"], "token_type": "bearer", "expires_in": LONG_LIVED_SECONDS}

    async def dispatch(self, request: Request) -> Response:
        _, parts = graph.split_path(request.path_params["rest"])
        params, _ = await graph.read_params(request)
        if self.flavor is LOGIN and parts == ["access_token"] and request.method == "GET":
            return self.exchange(params)
        if self.flavor is LOGIN and parts == ["refresh_access_token"] and request.method == "GET":
            return self.refresh(params)
        token = self.token(request, params)
        if token is None:
            return graph.token_error()
        users = self.ig_users(token)
        response = await self.route(request, parts, params, token, users)
        if isinstance(response, DropConnection):
            return response
        business = next(iter(sorted(users)), None)
        return graph.with_headers(response, graph.usage_headers(self.state, business, "instagram"))

    def exchange(self, params: dict[str, str]) -> Response:
        if params.get("grant_type") != "ig_exchange_token" or not params.get("client_secret"):
            return graph.invalid_param("grant_type=ig_exchange_token and client_secret are required")
        short = self.state.oauth.check("instagram", params.get("access_token"))
        if short is None:
            return graph.token_error()
        return JSONResponse(self.long_lived(short))

    def refresh(self, params: dict[str, str]) -> Response:
        if params.get("grant_type") != "ig_refresh_token":
            return graph.invalid_param("grant_type must be ig_refresh_token")
        access = params.get("access_token") or ""
        current = self.state.oauth.check("instagram", access)
        try:
            grant = self.state.oauth.use_refresh_token("instagram", access, None, rotate=False)
        except OAuthFailure as exc:
            return graph.error(400, f"Error validating access token: {exc.description}", 190, 460)
        if current is None:
            return graph.token_error()
        if time.time() - grant.extra.get("issued_at", 0) < MIN_REFRESH_AGE:
            # A young token is refused, but it is not dead [C: "at least 24 hours old"; U text].
            return graph.error(400, "(#10) The access token can only be refreshed once it is at least 24 hours old",
                               10, 2207056, user_msg="Try again later")
        del self.state.oauth.refresh_tokens[access]
        return JSONResponse(self.long_lived(current))

    async def route(self, request: Request, parts: list[str], params: dict[str, str], token: Token,
                    users: set[str]) -> Response:
        method = request.method
        if method == "GET":
            if parts == ["me", "accounts"] and self.flavor is BUSINESS:
                # The same graph.facebook.com host in production: the Pages (and their linked
                # Instagram accounts) come from the Facebook emulator.
                from sandbox.facebook import FacebookSandbox

                return FacebookSandbox(self.state).accounts(request, token, params)
            if parts == ["me"]:
                if self.flavor is not LOGIN:
                    return graph.error(400, "(#100) /me is a Page or user here; use /{ig-user-id}", 100)
                return JSONResponse(graph_pick(dict(INSTAGRAM_LOGIN_USER), params.get("fields"), ("username",)))
            if len(parts) == 1:
                return self.read(parts[0], params, users)
            if len(parts) == 2 and parts[1] == "content_publishing_limit" and parts[0] in users:
                return self.quota(parts[0])
            if len(parts) == 2 and parts[1] in ("media", "stories") and parts[0] in users:
                return self.list_media(parts[0], params, stories=parts[1] == "stories")
            if len(parts) == 2 and parts[1] == "comments":
                return self.list_comments(parts[0], params, users)
        elif method == "POST" and len(parts) == 2:
            node, edge = parts
            if edge == "comments":
                return await self.comment(request, node, params, token, users)
            if edge in ("media", "media_publish"):
                if node not in users:
                    return graph.missing_object(node)
                if PUBLISH_SCOPES[self.flavor.provider] not in scopes(token):
                    return graph.error(403, f"(#10) The {PUBLISH_SCOPES[self.flavor.provider]} permission is required",
                                       10)
                if edge == "media":
                    return await self.create_container(node, params)
                return await self.publish(request, node, params)
        elif method == "DELETE" and len(parts) == 1:
            # No delete in the content publishing API [3P Ayrshare; U for Facebook Login].
            return graph.error(400, "(#3) Application does not have the capability to make this API call.", 3)
        return graph.unknown_path("/".join(parts))

    # --- reads --------------------------------------------------------------------------------

    def account(self, ig_id: str) -> dict[str, Any] | None:
        if self.flavor is LOGIN:
            return dict(INSTAGRAM_LOGIN_USER, id=ig_id) if ig_id == INSTAGRAM_LOGIN_USER["user_id"] else None
        acct = INSTAGRAM_BUSINESS_ACCOUNTS.get(ig_id)
        return {"id": ig_id, "username": acct["username"], "name": acct["name"]} if acct else None

    def read(self, object_id: str, params: dict[str, str], users: set[str]) -> Response:
        fields = params.get("fields")
        if object_id in users:
            return JSONResponse(graph_pick(self.account(object_id) or {"id": object_id}, fields, ("username",)))
        container = self.db["containers"].get(object_id)
        if container is not None and container["owner"] in users:
            status, detail = self.status(container)
            return JSONResponse(graph_pick({"id": object_id, "status_code": status, "status": detail}, fields,
                                           ("status_code",)))
        media = self.db["media"].get(object_id)
        if media is not None and media["owner"] in users:
            return JSONResponse(graph_pick(self.media_view(media), fields, ("media_type", "timestamp")))
        return graph.missing_object(object_id)

    def media_view(self, media: dict[str, Any]) -> dict[str, Any]:
        view = {k: v for k, v in media.items() if not k.startswith("_") and k != "owner"}
        view["timestamp"] = graph.graph_time(media["_t"])
        if media["_kind"] != "comment":
            view["comments_count"] = sum(1 for m in self.db["media"].values() if m.get("_parent") == media["id"])
        return view

    def quota(self, ig_id: str) -> Response:
        usage = self.usage(ig_id)
        config = self.db["config"]
        return JSONResponse({"data": [{"quota_usage": usage,
                                       "config": {"quota_total": config["quota_total"], "quota_duration": QUOTA_WINDOW}}]})

    def usage(self, ig_id: str) -> int:
        now = time.time()
        return sum(1 for t in self.db["publishes"].get(ig_id, []) if now - t < QUOTA_WINDOW)

    def list_media(self, ig_id: str, params: dict[str, str], *, stories: bool) -> Response:
        items = [m for m in self.db["media"].values() if m["owner"] == ig_id and m["_kind"] != "comment"
                 and (m["media_product_type"] == "STORY") == stories]
        items.sort(key=lambda m: m["_t"], reverse=True)
        limit = min(100, int(params.get("limit", "25") or 25))
        return JSONResponse({"data": [graph_pick(self.media_view(m), params.get("fields"), ("id",)) for m in items[:limit]]})

    def list_comments(self, media_id: str, params: dict[str, str], users: set[str]) -> Response:
        media = self.db["media"].get(media_id)
        if media is None or media["owner"] not in users:
            return graph.missing_object(media_id)
        items = [m for m in self.db["media"].values() if m.get("_parent") == media_id]
        items.sort(key=lambda m: m["_t"], reverse=True)
        return JSONResponse({"data": [graph_pick(self.media_view(m), params.get("fields"), ("text", "timestamp"))
                                      for m in items]})

    # --- containers ---------------------------------------------------------------------------

    def status(self, container: dict[str, Any]) -> tuple[str, str]:
        now = time.time()
        if container.get("published"):
            return "PUBLISHED", "Published: the media was published."
        if now - container["created"] > CONTAINER_TTL:
            return "EXPIRED", "Expired: the container was not published within 24 hours."
        if container["kind"] == "CAROUSEL":
            states = [self.status(self.db["containers"][c])[0] for c in container["children"]]
            for state in ("ERROR", "EXPIRED", "IN_PROGRESS"):
                if state in states:
                    return state, f"{state.title()}: a carousel item is {state.lower()}"
            return "FINISHED", "Finished: Media container is ready to be published."
        if now < container["ready_at"]:
            return "IN_PROGRESS", "In Progress: Media is still being processed."
        if container.get("error"):
            subcode, message = container["error"]
            return "ERROR", f"Error: {message} (error code {subcode})"
        return "FINISHED", "Finished: Media container is ready to be published."

    async def create_container(self, ig_id: str, params: dict[str, str]) -> Response:
        media_type = (params.get("media_type") or "").upper() or None
        is_item = graph.truthy(params.get("is_carousel_item"), False)
        caption = params.get("caption")
        if caption is not None:
            if len(caption) > MAX_CAPTION:
                return graph.invalid_param(f"param caption must be at most {MAX_CAPTION} characters")
            if len(re.findall(r"(?<!\w)#\w", caption)) > MAX_HASHTAGS:
                return graph.invalid_param(f"a caption can have at most {MAX_HASHTAGS} hashtags")
            if len(re.findall(r"(?<!\w)@\w", caption)) > MAX_MENTIONS:
                return graph.invalid_param(f"a caption can have at most {MAX_MENTIONS} @mentions")
        if params.get("upload_type"):
            return graph.invalid_param("the sandbox does not emulate upload_type=resumable; pass video_url")
        if params.get("alt_text") and media_type in ("REELS", "STORIES", "VIDEO"):
            # "alt_text ... for image posts. Reels and stories are not supported." [C content publishing]
            return graph.invalid_param("alt_text is only supported for image posts")
        now = time.time()
        record: dict[str, Any] = {"id": graph.new_id(self.state), "owner": ig_id, "created": now, "ready_at": now,
                                  "caption": caption, "is_item": is_item, "children": [], "media": [],
                                  "error": None, "published": None, "share_to_feed": params.get("share_to_feed"),
                                  "alt_text": params.get("alt_text")}
        if media_type == "CAROUSEL":
            children = [c.strip() for c in (params.get("children") or "").split(",") if c.strip()]
            if not CAROUSEL_MIN <= len(children) <= CAROUSEL_MAX:
                return graph.invalid_param(f"The carousel must have between {CAROUSEL_MIN} and {CAROUSEL_MAX} children",
                                           2207024)
            for child in children:
                c = self.db["containers"].get(child)
                if c is None or c["owner"] != ig_id or not c["is_item"] or c["kind"] == "CAROUSEL":
                    return graph.invalid_param(f"param children: {child} is not a carousel item container of this user")
            record.update(kind="CAROUSEL", children=children)
        elif media_type in ("REELS", "STORIES", "VIDEO") and params.get("video_url"):
            if media_type == "VIDEO" and not is_item:
                # Single feed videos are published as reels since 2023-07-01 [C §3].
                return graph.invalid_param("media_type VIDEO is only for carousel items; use REELS", 2207023)
            if is_item and media_type != "VIDEO":
                return graph.invalid_param("carousel video items take media_type=VIDEO")
            fetched = await graph.fetch_url(params["video_url"])
            record.update(kind=media_type, ready_at=now + self.db["config"]["processing"])
            if fetched is None:
                record["error"] = (2207052, "The media could not be fetched from this URI")
            else:
                item = media_item(fetched[0], fetched[1], params["video_url"].rsplit("/", 1)[-1])
                record["media"] = [item]
                record["error"] = self.video_problem(item, media_type)
        elif media_type in (None, "STORIES", "IMAGE") and params.get("image_url"):
            fetched = await graph.fetch_url(params["image_url"])
            if fetched is None:
                return ig_error(400, "Media download has failed. The media URI doesn't meet our requirements.",
                                9004, 2207052)
            item = media_item(fetched[0], fetched[1], params["image_url"].rsplit("/", 1)[-1])
            image = item.get("image")
            if image is None or image["format"] != "JPEG":
                # "JPEG is the only image format supported" [C content publishing limitations, via §3].
                return ig_error(400, "The image format is not supported. Only JPEG images are supported.",
                                9004, 2207005)
            if len(fetched[0]) > MAX_IMAGE_BYTES:
                return ig_error(400, "The image is too large (max 8 MB).", 9004, 2207004)
            aspect = image["width"] / max(1, image["height"])
            if media_type != "STORIES" and not MIN_ASPECT <= aspect <= MAX_ASPECT:
                return ig_error(400, "The aspect ratio is not supported.", 36003, 2207009,
                                user_msg="The submitted image with aspect ratio ('%d/%d') cannot be published. "
                                         "Please submit an image with a valid aspect ratio." % (image["width"], image["height"]))
            record.update(kind=media_type or "IMAGE", media=[item])
        else:
            return graph.invalid_param("image_url, video_url (with media_type) or media_type=CAROUSEL with children "
                                       "is required", 2207023)
        self.db["containers"][record["id"]] = record
        return JSONResponse({"id": record["id"]})

    @staticmethod
    def video_problem(item: dict[str, Any], media_type: str) -> tuple[int, str] | None:
        video = item.get("video")
        if video is None or video.get("codec") not in VIDEO_CODECS:
            return 2207026, "The video format is not supported (MOV/MP4, H.264 or HEVC)"
        duration = video.get("duration") or 0.0
        if media_type == "REELS" and not REEL_MIN <= duration <= REEL_MAX:
            return 2207026, f"Reels must be 3 seconds to 15 minutes long (got {duration:.1f} s)"
        if media_type in ("STORIES", "VIDEO") and duration > SHORT_VIDEO_MAX:
            return 2207026, f"The video must be at most 60 seconds long (got {duration:.1f} s)"
        return None

    # --- publishing ---------------------------------------------------------------------------

    async def fault_or_none(self, request: Request, ig_id: str) -> tuple[Response | None, bool]:
        fault = self.state.take_fault(self.flavor.provider, ig_id)
        if fault is None:
            return None, False
        if fault.kind == "drop_after_accept":
            return None, True
        answer = await graph.fault_answer(
            request, self.state, fault, business_id=ig_id, kind="instagram", throttle_code=80002,
            reject=(100, 2207051, "We restrict certain activity to protect our community."))
        return answer, False

    async def publish(self, request: Request, ig_id: str, params: dict[str, str]) -> Response:
        """POST /{ig}/media_publish?creation_id= -> {"id"} [C]; the quota is enforced here [C]."""
        container = self.db["containers"].get(params.get("creation_id") or "")
        if container is None or container["owner"] != ig_id:
            return graph.invalid_param("param creation_id must be a media container of this user", 2207006)
        if container["is_item"]:
            return graph.invalid_param("a carousel item cannot be published on its own; publish the carousel")
        if self.usage(ig_id) >= self.db["config"]["quota_total"]:
            return ig_error(400, "(#9) Application request limit reached", 9, 2207042,
                            user_msg="The maximum number of posts that can be published in 24 hours was reached")
        status, detail = self.status(container)
        if status == "PUBLISHED":
            return graph.invalid_param("this media container was already published", 2207008)
        if status == "EXPIRED":
            return ig_error(400, "The media container has expired", 100, 2207020)
        if status != "FINISHED":
            return ig_error(400, f"Media ID is not available: {detail}", 9007, 2207027,
                            user_msg="The media is not ready for publishing, please wait for a moment")
        answer, drop = await self.fault_or_none(request, ig_id)
        if answer is not None:
            return answer
        t = received_at(request)
        media_id = graph.new_id(self.state)
        kind = container["kind"]
        if kind == "CAROUSEL":
            children = [self.db["containers"][c] for c in container["children"]]
            items = [c["media"][0] for c in children]
            media_type, product, delivered = "CAROUSEL_ALBUM", "FEED", "carousel"
        elif kind == "REELS":
            items, media_type, product, delivered = container["media"], "VIDEO", "REELS", "reel"
        elif kind == "STORIES":
            items = container["media"]
            media_type = "VIDEO" if "video" in items[0] else "IMAGE"
            product, delivered = "STORY", "story"
        else:
            items, media_type, product, delivered = container["media"], "IMAGE", "FEED", "feed"
        shortcode = secrets.token_urlsafe(8)[:11]
        path = "reel" if product == "REELS" else ("stories/" + ig_id if product == "STORY" else "p")
        self.db["media"][media_id] = {
            "id": media_id, "owner": ig_id, "caption": container["caption"], "media_type": media_type,
            "media_product_type": product, "permalink": f"https://www.instagram.com/{path}/{shortcode}/",
            "shortcode": shortcode, "username": (self.account(ig_id) or {}).get("username"),
            "_t": t, "_kind": "media",
        }
        container["published"] = media_id
        self.db["publishes"].setdefault(ig_id, []).append(t)
        extra: dict[str, Any] = {}
        if container.get("alt_text"):
            extra["altText"] = container["alt_text"]
        if kind == "REELS":
            extra["shareToFeed"] = graph.truthy(container.get("share_to_feed"), True)
        self.state.add_delivery({"id": media_id, "provider": self.flavor.provider, "target": ig_id,
                                 "text": container["caption"], "media": items, "receivedAt": t,
                                 "kind": delivered, "containerId": container["id"], **extra})
        return DropConnection() if drop else JSONResponse({"id": media_id})

    async def comment(self, request: Request, media_id: str, params: dict[str, str], token: Token,
                      users: set[str]) -> Response:
        media = self.db["media"].get(media_id)
        if media is None or media["owner"] not in users or media["_kind"] == "comment":
            return graph.missing_object(media_id)
        if media["media_product_type"] == "STORY":
            return graph.invalid_param("stories cannot be commented on")
        if COMMENT_SCOPES[self.flavor.provider] not in scopes(token):
            return graph.error(403, f"(#10) The {COMMENT_SCOPES[self.flavor.provider]} permission is required", 10)
        message = params.get("message")
        if not message:
            return graph.invalid_param("param message is required")
        if len(message) > MAX_CAPTION:
            return graph.invalid_param(f"param message must be at most {MAX_CAPTION} characters")
        owner = media["owner"]
        answer, drop = await self.fault_or_none(request, owner)
        if answer is not None:
            return answer
        t = received_at(request)
        comment_id = graph.new_id(self.state)
        self.db["media"][comment_id] = {
            "id": comment_id, "owner": owner, "text": message, "_parent": media_id, "_t": t, "_kind": "comment",
            "from": {"id": owner, "username": (self.account(owner) or {}).get("username")},
            "media_product_type": "COMMENT",
        }
        self.state.add_delivery({"id": comment_id, "provider": self.flavor.provider, "target": owner, "text": message,
                                 "media": [], "receivedAt": t, "kind": "comment", "replyTo": media_id})
        return DropConnection() if drop else JSONResponse({"id": comment_id})


def graph_pick(record: dict[str, Any], fields: str | None, default: tuple[str, ...]) -> dict[str, Any]:
    wanted = [f.strip().split("{", 1)[0] for f in (fields or ",".join(default)).split(",") if f.strip()]
    out = {"id": record.get("id")}
    for name in wanted:
        if name in record and record[name] is not None:
            out[name] = record[name]
    return out


def routes(state: SandboxState) -> list[Route]:
    business, login = InstagramSandbox(state, BUSINESS), InstagramSandbox(state, LOGIN)
    return [
        Route("/instagram_business/_sandbox", business.control, methods=["POST"]),
        Route("/instagram_business/graph/{rest:path}", business.dispatch, methods=["GET", "POST", "DELETE"]),
        Route("/instagram/_sandbox", login.control, methods=["POST"]),
        Route("/instagram/www/oauth/authorize", login.authorize, methods=["GET"]),
        Route("/instagram/api/oauth/access_token", login.code_exchange, methods=["POST"]),
        Route("/instagram/graph/{rest:path}", login.dispatch, methods=["GET", "POST", "DELETE"]),
    ]
