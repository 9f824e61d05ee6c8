"""LinkedIn emulation: OAuth 2.0 (www.linkedin.com) and the versioned REST API (api.linkedin.com).

Shapes follow /work/shared/reference/providers.md §6 and the LinkedIn docs it cites (posts-api,
images-api, videos-api, comments-api, organization-access-control, programmatic-refresh-tokens,
rate-limits, error-handling); tags [C]/[3P]/[U] as there.

    /linkedin/www/oauth/v2/authorization        GET  consent: approves the test member at once
    /linkedin/www/oauth/v2/accessToken          POST authorization_code | refresh_token (no rotation)
    /linkedin/api/v2/userinfo                   GET  OpenID userinfo (openid + profile)
    /linkedin/api/rest/organizationAcls         GET  q=roleAssignee (rw_organization_admin)
    /linkedin/api/rest/organizations/{id}       GET
    /linkedin/api/rest/images                   POST action=initializeUpload
    /linkedin/api/rest/images/{urn}             GET
    /linkedin/api/rest/videos                   POST action=initializeUpload | finalizeUpload
    /linkedin/api/rest/videos/{urn}             GET  PROCESSING (first poll, < 0.3 s) -> AVAILABLE
    /linkedin/dms-uploads/{upload}[?part=n]     PUT  the upload URLs handed out above (ETag per part)
    /linkedin/api/rest/posts                    POST (201 + x-restli-id) | GET q=author
    /linkedin/api/rest/posts/{urn}              GET | DELETE (204)
    /linkedin/api/rest/socialActions/{urn}/comments        POST (201) | GET
    /linkedin/api/rest/socialActions/{urn}/comments/{id}   GET | DELETE (204)
    /linkedin/_sandbox                          GET state (videos, posts) | POST {"videoPartBytes": n}

Every /rest call needs ``LinkedIn-Version: YYYYMM`` (an active one, see ACTIVE_VERSION_FLOOR) and
``X-Restli-Protocol-Version: 2.0.0``. Tokens come from sandbox/oauth.py; the scopes a token was
granted decide what it may do (w_member_social, w_organization_social, r_organization_social,
rw_organization_admin; r_member_social -- the private permission to read member posts -- is only
granted when asked for explicitly). The test member (sandbox/test_users.py) administers every
organization in LINKEDIN_ORGS.

Commentary and comment text are "little" text: a backslash escapes a reserved character, ``#word``
is a hashtag, ``@[Name](urn:li:…)`` a mention; an unescaped reserved character elsewhere truncates
the post there, as LinkedIn does [3P]. Deliveries carry the visible text (``text``), the raw
commentary (``commentary``) and ``truncated``.

Faults (``linkedin`` for member authors, ``linkedin_page`` for organization authors; target = the
member id or the organization id) apply at POST /rest/posts and POST …/comments. LinkedIn sends no
Retry-After: a rate_limit fault answers the daily-quota 429 (retryAfter is not sent) unless the
fault has a ``message``, which becomes the 429's message without serviceErrorCode (the
"infrastructure protection" kind of 429).
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import time
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from sandbox.oauth import OAuthFailure, bearer, client_credentials, request_params
from sandbox.state import DropConnection, SandboxState, hold, media_item, received_at
from sandbox.test_users import LINKEDIN_MEMBER, LINKEDIN_ORGS

NETWORK = "linkedin"
ACCESS_TTL = 60 * 86400  # 60 days [C programmatic-refresh-tokens]
REFRESH_TTL = 365 * 86400  # 365 days, not extended by a refresh [C]
KNOWN_SCOPES = frozenset({
    "openid", "profile", "email", "w_member_social", "r_member_social", "w_organization_social",
    "r_organization_social", "rw_organization_admin", "r_organization_admin", "r_basicprofile",
})
# Versions before this one are treated as sunset (426), later than the current month as unknown.
# A fixed floor, so the sandbox does not start refusing a pinned version on a calendar date.
ACTIVE_VERSION_FLOOR = "202511"
MAX_COMMENTARY = 3000  # [3P]
MAX_COMMENT = 1250  # [U]
MAX_PIXELS = 36_152_320  # [3P]
MULTI_IMAGE = (2, 20)  # [C]
DEFAULT_PART_BYTES = 4 * 1024 * 1024  # video parts of 4 MiB [U]
PROCESSING_SECONDS = 0.3
POST_KEYS = {"author", "commentary", "visibility", "distribution", "lifecycleState",
             "isReshareDisabledByAuthor", "content", "contentLandingPage", "reshareContext",
             "adContext", "container"}
RESERVED = frozenset("\\|{}@[]()<>#*_~")
_URL = re.compile(r"https?://[^\s()\[\]{}<>|\\]+", re.IGNORECASE)
_MENTION = re.compile(r"@\[([^\]\\]{1,200})\]\((urn:li:(?:person|organization):[A-Za-z0-9_-]+)\)")


# --- responses ------------------------------------------------------------------------------------


def error(status: int, message: str, code: str | None = None, service_code: int | None = None,
          headers: dict[str, str] | None = None) -> JSONResponse:
    """LinkedIn's error body {status, serviceErrorCode?, code?, message} [C error-handling]."""
    body: dict[str, Any] = {"status": status, "message": message}
    if code:
        body["code"] = code
    if service_code is not None:
        body["serviceErrorCode"] = service_code
    return JSONResponse(body, status_code=status, headers=headers)


def input_error(status: int, field: str, code: str, description: str, message: str | None = None) -> JSONResponse:
    """Rest.li validation errors [3P, e.g. Arisamiga/Linkedin-RSS#5]."""
    return JSONResponse({
        "errorDetailType": "com.linkedin.common.error.BadRequest",
        "message": message or f"ERROR :: {field} :: {description}",
        "errorDetails": {"inputErrors": [{
            "description": description, "input": {"inputPath": {"fieldPath": field}} if field else {},
            "code": code}]},
        "status": status,
    }, status_code=status)


def oauth_error(failure: OAuthFailure) -> JSONResponse:
    # LinkedIn's token endpoint answers RFC 6749 {"error", "error_description"} [C auth code flow].
    return JSONResponse({"error": failure.error, "error_description": failure.description},
                        status_code=failure.status)


def forbidden(what: str) -> JSONResponse:
    return error(403, f"Not enough permissions to access: {what}", "ACCESS_DENIED", 100)


def not_found(what: str) -> JSONResponse:
    return error(404, f"Not Found: {what}", "NOT_FOUND")


# --- little text ----------------------------------------------------------------------------------


def little_to_text(little: str) -> tuple[str, bool]:
    """Little text -> (what readers see, whether LinkedIn cut it at an unescaped reserved char)."""
    out: list[str] = []
    i = 0
    while i < len(little):
        ch = little[i]
        boundary = i == 0 or not (little[i - 1].isalnum() or little[i - 1] == "_")
        if boundary and (m := _URL.match(little, i)):
            out.append(m.group(0))
            i = m.end()
            continue
        if ch == "\\" and i + 1 < len(little) and little[i + 1] in RESERVED:
            out.append(little[i + 1])
            i += 2
            continue
        if ch == "#" and boundary and i + 1 < len(little) and little[i + 1].isalnum():
            out.append(ch)  # a hashtag
            i += 1
            continue
        if ch == "@" and (m := _MENTION.match(little, i)):
            out.append(m.group(1))
            i = m.end()
            continue
        if ch in RESERVED:
            return "".join(out), True
        out.append(ch)
        i += 1
    return "".join(out), False


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _scopes(token: Any) -> set[str]:
    return {s for s in re.split(r"[\s,]+", token.scope or "") if s}


def _ms(ts: float) -> int:
    return int(ts * 1000)


class LinkedInSandbox:
    def __init__(self, state: SandboxState):
        self.state = state

    # --- state ------------------------------------------------------------------------------------

    @property
    def db(self) -> dict[str, Any]:
        db = self.state.networks.get(NETWORK)
        if db is None:
            db = self.state.networks[NETWORK] = {
                "posts": {}, "comments": {}, "images": {}, "videos": {}, "uploads": {},
                "config": {"videoPartBytes": DEFAULT_PART_BYTES}, "seq": 7_300_000_000_000_000_000,
            }
        return db

    def next_id(self) -> str:
        self.db["seq"] += 1 + secrets.randbelow(1000)
        return str(self.db["seq"])

    @staticmethod
    def admin_orgs(user_id: str) -> list[dict[str, Any]]:
        return list(LINKEDIN_ORGS) if user_id == LINKEDIN_MEMBER["sub"] else []

    # --- OAuth ------------------------------------------------------------------------------------

    async def authorize(self, request: Request) -> Response:
        params = dict(request.query_params)
        unknown = [s for s in params.get("scope", "").split() if s not in KNOWN_SCOPES]
        redirect_uri = params.get("redirect_uri", "")
        if unknown and redirect_uri.startswith(("http://", "https://")):
            # LinkedIn sends the user back with unauthorized_scope_error [3P].
            query = {"error": "unauthorized_scope_error",
                     "error_description": f"Scope \"{unknown[0]}\" is not authorized for your application"}
            if "state" in params:
                query["state"] = params["state"]
            sep = "&" if "?" in redirect_uri else "?"
            return RedirectResponse(redirect_uri + sep + urlencode(query), status_code=302)
        try:
            return self.state.oauth.authorize(NETWORK, params, LINKEDIN_MEMBER["sub"], require_pkce=False)
        except OAuthFailure as failure:
            return oauth_error(failure)

    async def access_token(self, request: Request) -> Response:
        params = await request_params(request)
        try:
            client_id, client_secret = client_credentials(request, params)
            grant = params.get("grant_type")
            if grant == "authorization_code":
                record = self.state.oauth.redeem_code(NETWORK, params, client_id, client_secret)
                scope = ",".join(record["scope"].split())  # LinkedIn lists scopes comma-separated [U]
                body = self.state.oauth.issue(NETWORK, record["user_id"], scope, record["client_id"],
                                              expires_in=ACCESS_TTL, refresh=True, refresh_expires_in=REFRESH_TTL)
                body["scope"] = scope
                body.pop("token_type", None)
                return JSONResponse(body)
            if grant == "refresh_token":
                if not client_id or not client_secret:
                    raise OAuthFailure("invalid_client", "client authentication failed", 401)
                refresh_token = params.get("refresh_token") or ""
                granted = self.state.oauth.use_refresh_token(NETWORK, refresh_token, client_id, rotate=False)
                body = self.state.oauth.issue(NETWORK, granted.user_id, granted.scope, granted.client_id,
                                              expires_in=ACCESS_TTL)
                body.pop("token_type", None)
                # The same refresh token, with the time it has left: a refresh does not extend it [C].
                left = max(0, int((granted.expires_at or time.time()) - time.time()))
                body.update({"refresh_token": refresh_token, "refresh_token_expires_in": left,
                             "scope": granted.scope})
                return JSONResponse(body)
            raise OAuthFailure("unsupported_grant_type", f"grant_type {grant!r} is not supported")
        except OAuthFailure as failure:
            return oauth_error(failure)

    # --- API guards -------------------------------------------------------------------------------

    def auth(self, request: Request, *, rest: bool = True) -> tuple[Any, Response | None]:
        """The live token, or LinkedIn's answer for a missing/bad token or header."""
        if rest:
            version = request.headers.get("linkedin-version")
            if not version:
                return None, error(400, "A version must be present. Please specify a version by adding the "
                                        "LinkedIn-Version header.", "VERSION_MISSING")
            current = time.strftime("%Y%m", time.gmtime())
            if not re.fullmatch(r"\d{6}(\.\d{2})?", version) or not ACTIVE_VERSION_FLOOR <= version[:6] <= current:
                return None, error(426, f"Requested version {version} is not active", "NONEXISTENT_VERSION")
            if request.headers.get("x-restli-protocol-version") != "2.0.0":
                return None, error(400, "X-Restli-Protocol-Version 2.0.0 is required for this resource",
                                   "INVALID_PROTOCOL_VERSION")
        raw = bearer(request)
        if not raw:
            return None, error(401, "Empty oauth2_access_token", service_code=401)  # [C]
        token = self.state.oauth.check(NETWORK, raw)
        if token is None:
            known = self.state.oauth.tokens.get(raw)
            if known is not None and known.network == NETWORK:
                return None, error(401, "The token used in the request has expired", "EXPIRED_ACCESS_TOKEN", 65601)
            return None, error(401, "Invalid access token", "INVALID_ACCESS_TOKEN", 65600)
        return token, None

    def may_write(self, token: Any, author: str) -> tuple[str, str] | None:
        """(Herald provider id, target id) when ``token`` may post/comment as ``author``."""
        scopes = _scopes(token)
        if author == f"urn:li:person:{token.user_id}" and "w_member_social" in scopes:
            return "linkedin", token.user_id
        if author.startswith("urn:li:organization:") and "w_organization_social" in scopes:
            org_id = author.rsplit(":", 1)[1]
            if any(o["id"] == org_id for o in self.admin_orgs(token.user_id)):
                return "linkedin_page", org_id
        return None

    def may_read(self, token: Any, author: str) -> bool:
        scopes = _scopes(token)
        if author == f"urn:li:person:{token.user_id}":
            return "r_member_social" in scopes  # private permission [C posts-api]
        if author.startswith("urn:li:organization:") and "r_organization_social" in scopes:
            return any(o["id"] == author.rsplit(":", 1)[1] for o in self.admin_orgs(token.user_id))
        return False

    async def json_body(self, request: Request) -> tuple[Any, Response | None]:
        try:
            return json.loads(await request.body() or b"null"), None
        except ValueError:
            return None, error(400, "Unable to parse the request body as JSON", "INVALID_BODY")

    def fault_response(self, provider: str, *targets: str) -> tuple[Any, Response | None]:
        fault = self.state.take_fault(provider, *targets)
        if fault is None:
            return None, None
        if fault.kind == "rate_limit":
            if fault.message:
                return fault, error(429, fault.message)
            # The daily quota 429: no Retry-After, no rate-limit headers [C rate-limits; body 3P].
            return fault, error(429, "Resource level throttle limit for calls to this resource is reached.",
                                service_code=101)
        if fault.kind == "server_error":
            return fault, error(500, fault.message or "Internal Server Error", "INTERNAL_SERVER_ERROR")
        if fault.kind == "auth_error":
            return fault, error(401, fault.message or "Invalid access token", "INVALID_ACCESS_TOKEN", 65600)
        if fault.kind == "reject_content":
            return fault, input_error(422, "/commentary", "INVALID_CONTENT",
                                      fault.message or "Content rejected by a sandbox fault")
        return fault, None  # timeout / drop_after_accept: the caller

    # --- identity ---------------------------------------------------------------------------------

    async def userinfo(self, request: Request) -> Response:
        token, denied = self.auth(request, rest=False)
        if denied:
            return denied
        if "openid" not in _scopes(token):
            return forbidden("userinfo.GET.NO_VERSION")
        out = {"sub": token.user_id, "name": LINKEDIN_MEMBER["name"],
               "given_name": LINKEDIN_MEMBER["given_name"], "family_name": LINKEDIN_MEMBER["family_name"],
               "locale": {"country": "US", "language": "en"},
               "picture": "https://media.licdn.com/dms/image/sandbox/profile.jpg"}
        if "email" in _scopes(token):
            out.update({"email": LINKEDIN_MEMBER["email"], "email_verified": True})
        return JSONResponse(out)

    async def organization_acls(self, request: Request) -> Response:
        token, denied = self.auth(request)
        if denied:
            return denied
        q = request.query_params
        if q.get("q") != "roleAssignee":
            return input_error(400, "/q", "INVALID_QUERY", "q must be roleAssignee or organization")
        scopes = _scopes(token)
        if not scopes & {"rw_organization_admin", "r_organization_admin"}:
            return forbidden("organizationAcls.FINDER-roleAssignee.20260301")
        elements = []
        for org in self.admin_orgs(token.user_id):
            acl = {"roleAssignee": f"urn:li:person:{token.user_id}", "state": "APPROVED", "role": "ADMINISTRATOR",
                   "organization": f"urn:li:organization:{org['id']}"}
            if q.get("role") not in (None, acl["role"]) or q.get("state") not in (None, acl["state"]):
                continue
            elements.append(acl)
        return JSONResponse({"paging": {"count": len(elements), "start": 0, "links": []}, "elements": elements})

    async def organization(self, request: Request) -> Response:
        token, denied = self.auth(request)
        if denied:
            return denied
        org_id = request.path_params["org_id"]
        org = next((o for o in LINKEDIN_ORGS if o["id"] == org_id), None)
        if org is None:
            return not_found(f"organization {org_id}")
        return JSONResponse({"id": int(org["id"]), "localizedName": org["localizedName"],
                             "vanityName": org["vanityName"], "primaryOrganizationType": "NONE",
                             "name": {"localized": {"en_US": org["localizedName"]},
                                      "preferredLocale": {"country": "US", "language": "en"}}})

    # --- media ------------------------------------------------------------------------------------

    def upload_url(self, request: Request, upload_id: str, part: int | None = None) -> str:
        base = str(request.base_url).rstrip("/")
        return f"{base}/linkedin/dms-uploads/{upload_id}" + ("" if part is None else f"?part={part}")

    async def images(self, request: Request) -> Response:
        token, denied = self.auth(request)
        if denied:
            return denied
        if request.query_params.get("action") != "initializeUpload":
            return input_error(400, "/action", "INVALID_ACTION", "action must be initializeUpload")
        body, bad = await self.json_body(request)
        if bad:
            return bad
        owner = ((body or {}).get("initializeUploadRequest") or {}).get("owner") if isinstance(body, dict) else None
        if not isinstance(owner, str):
            return input_error(400, "/initializeUploadRequest/owner", "FIELD_REQUIRED", "owner is required")
        if self.may_write(token, owner) is None:
            return forbidden("images.ACTION-initializeUpload.20260301")
        urn = f"urn:li:image:D{secrets.token_hex(8).upper()}"
        upload_id = secrets.token_urlsafe(12)
        self.db["images"][urn] = {"id": urn, "owner": owner, "status": "WAITING_UPLOAD", "data": None, "mime": None}
        self.db["uploads"][upload_id] = {"kind": "image", "urn": urn}
        return JSONResponse({"value": {"uploadUrlExpiresAt": _ms(time.time() + 86400),
                                       "uploadUrl": self.upload_url(request, upload_id), "image": urn}})

    async def image(self, request: Request) -> Response:
        token, denied = self.auth(request)
        if denied:
            return denied
        record = self.db["images"].get(request.path_params["urn"])
        if record is None:
            return not_found("image")
        out = {k: record[k] for k in ("id", "owner", "status")}
        if record.get("info"):
            out.update({"aspectRatioWidth": record["info"]["width"], "aspectRatioHeight": record["info"]["height"]})
        return JSONResponse(out)

    async def videos(self, request: Request) -> Response:
        token, denied = self.auth(request)
        if denied:
            return denied
        action = request.query_params.get("action")
        body, bad = await self.json_body(request)
        if bad:
            return bad
        if action == "initializeUpload":
            req = (body or {}).get("initializeUploadRequest") if isinstance(body, dict) else None
            if not isinstance(req, dict) or not isinstance(req.get("owner"), str):
                return input_error(400, "/initializeUploadRequest/owner", "FIELD_REQUIRED", "owner is required")
            size = req.get("fileSizeBytes")
            if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
                return input_error(400, "/initializeUploadRequest/fileSizeBytes", "FIELD_REQUIRED",
                                   "fileSizeBytes must be a positive integer")
            if self.may_write(token, req["owner"]) is None:
                return forbidden("videos.ACTION-initializeUpload.20260301")
            urn = f"urn:li:video:D{secrets.token_hex(8).upper()}"
            upload_id = secrets.token_urlsafe(12)
            step = int(self.db["config"]["videoPartBytes"])
            parts = [(first, min(first + step, size) - 1) for first in range(0, size, step)]
            self.db["videos"][urn] = {"id": urn, "owner": req["owner"], "status": "WAITING_UPLOAD", "size": size,
                                      "parts": {}, "ranges": parts, "polls": 0, "finalized_at": None,
                                      "data": None, "reason": None}
            self.db["uploads"][upload_id] = {"kind": "video", "urn": urn}
            return JSONResponse({"value": {
                "uploadUrlsExpireAt": _ms(time.time() + 86400), "video": urn, "uploadToken": "",
                "uploadInstructions": [{"uploadUrl": self.upload_url(request, upload_id, i), "firstByte": a,
                                        "lastByte": b} for i, (a, b) in enumerate(parts)],
            }})
        if action == "finalizeUpload":
            req = (body or {}).get("finalizeUploadRequest") if isinstance(body, dict) else None
            if not isinstance(req, dict):
                return input_error(400, "/finalizeUploadRequest", "FIELD_REQUIRED", "finalizeUploadRequest is required")
            record = self.db["videos"].get(req.get("video"))
            if record is None:
                return not_found("video")
            if self.may_write(token, record["owner"]) is None:
                return forbidden("videos.ACTION-finalizeUpload.20260301")
            if "uploadToken" not in req or not isinstance(req.get("uploadedPartIds"), list):
                return input_error(400, "/finalizeUploadRequest/uploadedPartIds", "FIELD_REQUIRED",
                                   "uploadToken and uploadedPartIds are required")
            expected = [record["parts"].get(i, {}).get("etag") for i in range(len(record["ranges"]))]
            if None in expected or req["uploadedPartIds"] != expected:
                return input_error(400, "/finalizeUploadRequest/uploadedPartIds", "INVALID_VALUE_FOR_FIELD",
                                   "uploadedPartIds do not match the uploaded parts (all parts, in order)")
            data = b"".join(record["parts"][i]["data"] for i in range(len(record["ranges"])))
            record.update(data=data, status="PROCESSING", finalized_at=time.time())
            info = media_item(data, "video/mp4", None)
            if "video" not in info:
                record.update(status="PROCESSING_FAILED", reason="Unable to process the video: unsupported format")
            record["item"] = info
            return Response(status_code=200)
        return input_error(400, "/action", "INVALID_ACTION", "action must be initializeUpload or finalizeUpload")

    async def video(self, request: Request) -> Response:
        token, denied = self.auth(request)
        if denied:
            return denied
        record = self.db["videos"].get(request.path_params["urn"])
        if record is None:
            return not_found("video")
        if record["status"] == "PROCESSING":
            record["polls"] += 1
            # The first poll always sees PROCESSING; later ones AVAILABLE once processing "took" 0.3 s.
            if record["polls"] > 1 and time.time() - record["finalized_at"] >= PROCESSING_SECONDS:
                record["status"] = "AVAILABLE"
        out: dict[str, Any] = {"id": record["id"], "owner": record["owner"], "status": record["status"]}
        if record["status"] == "PROCESSING_FAILED":
            out["processingFailureReason"] = record["reason"]
        if record["status"] == "AVAILABLE":
            video = record["item"]["video"]
            out.update({"duration": int((video.get("duration") or 0) * 1000),
                        "aspectRatioWidth": video["width"], "aspectRatioHeight": video["height"]})
        return JSONResponse(out)

    async def upload(self, request: Request) -> Response:
        target = self.db["uploads"].get(request.path_params["upload_id"])
        if target is None:
            return not_found("upload")
        data = await request.body()
        if target["kind"] == "image":
            record = self.db["images"][target["urn"]]
            info = media_item(data, request.headers.get("content-type"), None)
            image = info.get("image")
            record.update(data=data, mime=info["mime"], item=info, info=image)
            if not image or image["width"] * image["height"] >= MAX_PIXELS:
                record["status"] = "PROCESSING_FAILED"
            else:
                record["status"] = "AVAILABLE"
            return Response(status_code=201)
        record = self.db["videos"][target["urn"]]
        part = request.query_params.get("part", "")
        if not part.isdigit() or int(part) >= len(record["ranges"]):
            return error(400, "unknown upload part")
        first, last = record["ranges"][int(part)]
        if len(data) != last - first + 1:
            return error(400, f"part {part} must be bytes {first}-{last} ({last - first + 1} bytes), got {len(data)}")
        etag = hashlib.md5(data).hexdigest()  # noqa: S324 - an ETag, not security
        record["parts"][int(part)] = {"data": data, "etag": etag}
        return Response(status_code=200, headers={"ETag": etag})

    # --- posts ------------------------------------------------------------------------------------

    def post_json(self, record: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in record.items() if not k.startswith("_")}

    async def posts(self, request: Request) -> Response:
        token, denied = self.auth(request)
        if denied:
            return denied
        if request.method == "GET":
            return self.find_posts(request, token)
        body, bad = await self.json_body(request)
        if bad:
            return bad
        if not isinstance(body, dict):
            return input_error(400, "", "INVALID_BODY", "the body must be a JSON object")
        unknown = sorted(set(body) - POST_KEYS)
        if unknown:
            return input_error(400, f"/{unknown[0]}", "UNRECOGNIZED_FIELD", "unrecognized field found but not allowed")
        problem = self.check_post(body)
        if problem is not None:
            return problem
        author = body["author"]
        allowed = self.may_write(token, author)
        if allowed is None:
            return forbidden("partnerApiPostsExternal.CREATE.20260301")
        provider, target = allowed
        if body["visibility"] == "CONNECTIONS" and provider == "linkedin_page":
            return input_error(400, "/visibility", "INVALID_VALUE_FOR_FIELD",
                               "CONNECTIONS visibility is only allowed for member authors")
        media, problem = self.post_media(body, author)
        if problem is not None:
            return problem
        commentary = body.get("commentary") or ""
        text, truncated = little_to_text(commentary)
        if utf16_len(text) > MAX_COMMENTARY:
            return input_error(422, "/commentary", "INVALID_VALUE_FOR_FIELD",
                               f"commentary is longer than {MAX_COMMENTARY} characters")
        duplicate = next((p for p in self.db["posts"].values()
                          if p["author"] == author and not p["_deleted"] and p["commentary"] == commentary
                          and p.get("content") == body.get("content")), None)
        if duplicate is not None:
            return JSONResponse({
                "errorDetailType": "com.linkedin.common.error.BadRequest",
                "message": "com.linkedin.content.common.exception.BadRequestResponseException: "
                           f"Content is a duplicate of {duplicate['id']}",
                "errorDetails": {"inputErrors": [{"description": "Duplicate post is detected", "input": {},
                                                  "code": "DUPLICATE_POST"}]},
                "status": 422}, status_code=422)

        t0 = received_at(request)
        fault, answer = self.fault_response(provider, target, author)
        if answer is not None:
            return answer
        if fault is not None and fault.kind == "timeout":
            await hold(request, fault.delay_seconds)
            return error(504, "Gateway Timeout", "GATEWAY_TIMEOUT")

        kind = "video" if any(m.get("video") for m in media) else "share"
        urn = f"urn:li:{'ugcPost' if kind == 'video' else 'share'}:{self.next_id()}"
        record = {
            "id": urn, "author": author, "commentary": commentary, "visibility": body["visibility"],
            "distribution": body["distribution"], "lifecycleState": body["lifecycleState"],
            "isReshareDisabledByAuthor": bool(body.get("isReshareDisabledByAuthor")),
            "createdAt": _ms(t0), "publishedAt": _ms(t0), "lastModifiedAt": _ms(t0),
            "lifecycleStateInfo": {"isEditedByAuthor": False},
            "_deleted": False, "_provider": provider,
        }
        if "content" in body:
            record["content"] = body["content"]
        self.db["posts"][urn] = record
        delivery = self.state.add_delivery({
            "id": urn, "provider": provider, "target": target, "text": text, "media": media,
            "receivedAt": t0, "kind": "post", "author": author, "commentary": commentary,
            "truncated": truncated, "visibility": body["visibility"],
            "reshareDisabled": record["isReshareDisabledByAuthor"],
            "altTexts": self.alt_texts(body.get("content")),
        })
        record["_delivery"] = delivery
        if fault is not None and fault.kind == "drop_after_accept":
            return DropConnection()
        return Response(status_code=201, headers={"x-restli-id": urn, "x-linkedin-id": urn})

    @staticmethod
    def alt_texts(content: Any) -> list[str | None]:
        if not isinstance(content, dict):
            return []
        if isinstance(content.get("media"), dict):
            return [content["media"].get("altText")]
        images = (content.get("multiImage") or {}).get("images") or []
        return [i.get("altText") for i in images if isinstance(i, dict)]

    @staticmethod
    def check_post(body: dict[str, Any]) -> Response | None:
        author = body.get("author")
        if not isinstance(author, str) or not re.fullmatch(r"urn:li:(person|organization):[A-Za-z0-9_-]+", author):
            return input_error(400, "/author", "FIELD_REQUIRED" if author is None else "INVALID_VALUE_FOR_FIELD",
                               "author must be a person or organization URN")
        if "commentary" in body and not isinstance(body["commentary"], str):
            return input_error(400, "/commentary", "INVALID_VALUE_FOR_FIELD", "commentary must be a string")
        if body.get("visibility") not in ("PUBLIC", "CONNECTIONS", "LOGGED_IN", "CONTAINER"):
            return input_error(400, "/visibility", "INVALID_VALUE_FOR_FIELD",
                               "visibility must be PUBLIC, CONNECTIONS, LOGGED_IN or CONTAINER")
        dist = body.get("distribution")
        if not isinstance(dist, dict) or dist.get("feedDistribution") not in ("MAIN_FEED", "NONE"):
            return input_error(400, "/distribution/feedDistribution", "FIELD_REQUIRED",
                               "distribution.feedDistribution must be MAIN_FEED or NONE")
        for key in ("targetEntities", "thirdPartyDistributionChannels"):
            if key in dist and not isinstance(dist[key], list):
                return input_error(400, f"/distribution/{key}", "INVALID_VALUE_FOR_FIELD", f"{key} must be an array")
        if body.get("lifecycleState") != "PUBLISHED":
            return input_error(400, "/lifecycleState", "INVALID_VALUE_FOR_FIELD",
                               "lifecycleState must be PUBLISHED for organic posts")
        if "isReshareDisabledByAuthor" in body and not isinstance(body["isReshareDisabledByAuthor"], bool):
            return input_error(400, "/isReshareDisabledByAuthor", "INVALID_VALUE_FOR_FIELD", "must be a boolean")
        if not (body.get("commentary") or "").strip() and "content" not in body:
            return input_error(422, "/commentary", "FIELD_REQUIRED", "a post needs commentary or content")
        return None

    def post_media(self, body: dict[str, Any], author: str) -> tuple[list[dict[str, Any]], Response | None]:
        content = body.get("content")
        if content is None:
            return [], None
        if not isinstance(content, dict) or len(content) != 1 or not set(content) <= {"media", "multiImage"}:
            return [], input_error(400, "/content", "INVALID_VALUE_FOR_FIELD",
                                   "content must hold exactly one of media or multiImage")
        if "media" in content:
            refs = [content["media"]]
            path = "/content/media"
        else:
            refs = (content["multiImage"] or {}).get("images") if isinstance(content["multiImage"], dict) else None
            path = "/content/multiImage/images"
            if not isinstance(refs, list) or not MULTI_IMAGE[0] <= len(refs) <= MULTI_IMAGE[1]:
                return [], input_error(400, path, "INVALID_VALUE_FOR_FIELD",
                                       f"multiImage takes {MULTI_IMAGE[0]} to {MULTI_IMAGE[1]} images")
        items = []
        for i, ref in enumerate(refs):
            where = path if "media" in content else f"{path}/{i}"
            urn = ref.get("id") if isinstance(ref, dict) else None
            if not isinstance(urn, str):
                return [], input_error(400, f"{where}/id", "FIELD_REQUIRED", "id is required")
            store = self.db["images"] if urn.startswith("urn:li:image:") else (
                self.db["videos"] if urn.startswith("urn:li:video:") and "media" in content else None)
            record = store.get(urn) if store is not None else None
            if record is None:
                return [], input_error(400, f"{where}/id", "INVALID_VALUE_FOR_FIELD", f"{urn} is not a known media URN")
            if record["owner"] != author:
                return [], forbidden(f"{urn} belongs to another owner")
            if record["status"] != "AVAILABLE":
                return [], input_error(400, f"{where}/id", "INVALID_CONTENT",
                                       f"{urn} is not ready to be used (status {record['status']})")
            items.append(record["item"])
        return items, None

    def find_posts(self, request: Request, token: Any) -> Response:
        q = request.query_params
        if q.get("q") != "author":
            return input_error(400, "/q", "INVALID_QUERY", "q must be author")
        author = q.get("author") or ""
        if not self.may_read(token, author):
            return forbidden("partnerApiPostsExternal.FINDER-author.20260301")
        try:
            start, count = int(q.get("start", "0")), min(100, int(q.get("count", "10")))
        except ValueError:
            return input_error(400, "/count", "INVALID_VALUE_FOR_FIELD", "start and count must be integers")
        key = "lastModifiedAt" if q.get("sortBy", "LAST_MODIFIED") == "LAST_MODIFIED" else "createdAt"
        mine = sorted((p for p in self.db["posts"].values() if p["author"] == author and not p["_deleted"]),
                      key=lambda p: (p[key], p["id"]), reverse=True)
        page = [self.post_json(p) for p in mine[start:start + count]]
        for p in page:
            p.pop("_delivery", None)
        return JSONResponse({"paging": {"start": start, "count": count, "total": len(mine), "links": []},
                             "elements": page})

    async def post(self, request: Request) -> Response:
        token, denied = self.auth(request)
        if denied:
            return denied
        urn = request.path_params["urn"]
        record = self.db["posts"].get(urn)
        if request.method == "DELETE":
            if record is None:
                return not_found(urn)
            if self.may_write(token, record["author"]) is None:
                return forbidden("partnerApiPostsExternal.DELETE.20260301")
            if not record["_deleted"]:
                record["_deleted"] = True
                record["_delivery"]["deleted"] = True
            return Response(status_code=204)  # idempotent [3P]
        if record is None or record["_deleted"]:
            return not_found(urn)
        if not self.may_read(token, record["author"]):
            return forbidden("partnerApiPostsExternal.GET.20260301")
        out = self.post_json(record)
        out.pop("_delivery", None)
        return JSONResponse(out)

    # --- comments ---------------------------------------------------------------------------------

    async def comments(self, request: Request) -> Response:
        token, denied = self.auth(request)
        if denied:
            return denied
        parent = request.path_params["urn"]
        post = self.db["posts"].get(parent)
        if post is None or post["_deleted"]:
            return not_found(parent)
        if request.method == "GET":
            if not self.may_read(token, post["author"]):
                return forbidden("comments.FINDER.20260301")
            elements = [self.comment_json(c) for c in self.db["comments"].values()
                        if c["object"] == parent and not c["_deleted"]]
            return JSONResponse({"paging": {"start": 0, "count": len(elements), "links": []}, "elements": elements})
        body, bad = await self.json_body(request)
        if bad:
            return bad
        if not isinstance(body, dict):
            return input_error(400, "", "INVALID_BODY", "the body must be a JSON object")
        actor = body.get("actor")
        if not isinstance(actor, str):
            return input_error(400, "/actor", "FIELD_REQUIRED", "actor is required")
        if body.get("object") != parent:
            return input_error(400, "/object", "INVALID_VALUE_FOR_FIELD", "object must be the URN in the path")
        message = body.get("message")
        if not isinstance(message, dict) or not isinstance(message.get("text"), str) or not message["text"].strip():
            return input_error(400, "/message/text", "FIELD_REQUIRED", "message.text is required")
        allowed = self.may_write(token, actor)
        if allowed is None:
            return forbidden("comments.CREATE.20260301")
        provider, target = allowed
        text, truncated = little_to_text(message["text"])
        if utf16_len(text) > MAX_COMMENT:
            return input_error(422, "/message/text", "INVALID_VALUE_FOR_FIELD",
                               f"comment text is longer than {MAX_COMMENT} characters")
        t0 = received_at(request)
        fault, answer = self.fault_response(provider, target, actor)
        if answer is not None:
            return answer
        if fault is not None and fault.kind == "timeout":
            await hold(request, fault.delay_seconds)
            return error(504, "Gateway Timeout", "GATEWAY_TIMEOUT")
        comment_id = self.next_id()
        urn = f"urn:li:comment:({parent},{comment_id})"
        record = {
            "id": comment_id, "commentUrn": urn, "object": parent, "actor": actor,
            "agent": f"urn:li:person:{token.user_id}", "message": {"text": message["text"]},
            "created": {"actor": actor, "time": _ms(t0)}, "lastModified": {"actor": actor, "time": _ms(t0)},
            "_deleted": False,
        }
        self.db["comments"][urn] = record
        record["_delivery"] = self.state.add_delivery({
            "id": urn, "provider": provider, "target": target, "text": text, "media": [], "receivedAt": t0,
            "kind": "comment", "replyTo": parent, "author": actor, "commentary": message["text"],
            "truncated": truncated,
        })
        if fault is not None and fault.kind == "drop_after_accept":
            return DropConnection()
        return JSONResponse(self.comment_json(record), status_code=201, headers={"x-restli-id": comment_id})

    @staticmethod
    def comment_json(record: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in record.items() if not k.startswith("_")}

    async def comment(self, request: Request) -> Response:
        token, denied = self.auth(request)
        if denied:
            return denied
        parent, comment_id = request.path_params["urn"], request.path_params["comment_id"]
        record = self.db["comments"].get(f"urn:li:comment:({parent},{comment_id})")
        if record is None or (record["_deleted"] and request.method == "GET"):
            return not_found(f"comment {comment_id}")
        if request.method == "DELETE":
            actor = request.query_params.get("actor") or record["actor"]
            if actor != record["actor"] or self.may_write(token, actor) is None:
                return forbidden("comments.DELETE.20260301")
            if not record["_deleted"]:
                record["_deleted"] = True
                record["_delivery"]["deleted"] = True
            return Response(status_code=204)
        post = self.db["posts"].get(parent)
        if post is None or not self.may_read(token, post["author"]):
            return forbidden("comments.GET.20260301")
        return JSONResponse(self.comment_json(record))

    # --- inspection -------------------------------------------------------------------------------

    async def control(self, request: Request) -> Response:
        if request.method == "GET":
            return JSONResponse({
                "videos": {u: {"status": v["status"], "polls": v["polls"], "parts": len(v["ranges"])}
                           for u, v in self.db["videos"].items()},
                "images": {u: {"status": v["status"]} for u, v in self.db["images"].items()},
                "posts": sorted(self.db["posts"]),
            })
        body, bad = await self.json_body(request)
        if bad:
            return bad
        part = (body or {}).get("videoPartBytes") if isinstance(body, dict) else None
        if isinstance(part, bool) or not isinstance(part, int) or part < 1:
            return JSONResponse({"error": "videoPartBytes must be a positive integer"}, status_code=400)
        self.db["config"]["videoPartBytes"] = part
        return JSONResponse({"ok": True, "config": self.db["config"]})

    async def fallback(self, request: Request) -> Response:
        return error(404, f"No resource found at {request.url.path}", "NOT_FOUND")


def routes(state: SandboxState) -> list[Route]:
    sb = LinkedInSandbox(state)
    api = "/linkedin/api"
    return [
        Route("/linkedin/www/oauth/v2/authorization", sb.authorize, methods=["GET"]),
        Route("/linkedin/www/oauth/v2/accessToken", sb.access_token, methods=["POST"]),
        Route(f"{api}/v2/userinfo", sb.userinfo, methods=["GET"]),
        Route(f"{api}/rest/organizationAcls", sb.organization_acls, methods=["GET"]),
        Route(f"{api}/rest/organizations/{{org_id}}", sb.organization, methods=["GET"]),
        Route(f"{api}/rest/images", sb.images, methods=["POST"]),
        Route(f"{api}/rest/images/{{urn}}", sb.image, methods=["GET"]),
        Route(f"{api}/rest/videos", sb.videos, methods=["POST"]),
        Route(f"{api}/rest/videos/{{urn}}", sb.video, methods=["GET"]),
        Route("/linkedin/dms-uploads/{upload_id}", sb.upload, methods=["PUT"]),
        Route(f"{api}/rest/posts", sb.posts, methods=["GET", "POST"]),
        Route(f"{api}/rest/posts/{{urn}}", sb.post, methods=["GET", "DELETE"]),
        Route(f"{api}/rest/socialActions/{{urn}}/comments", sb.comments, methods=["GET", "POST"]),
        Route(f"{api}/rest/socialActions/{{urn}}/comments/{{comment_id}}", sb.comment, methods=["GET", "DELETE"]),
        Route("/linkedin/_sandbox", sb.control, methods=["GET", "POST"]),
        Route("/linkedin/{rest:path}", sb.fallback, methods=["GET", "POST", "PUT", "DELETE", "PATCH"]),
    ]
