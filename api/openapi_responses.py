"""What every route answers, in the OpenAPI document: the one place that maps each route to its
success response schema, and every error to the shared ``Error`` schema.

FastAPI's routes return plain dicts, so the generated document says nothing about responses.
``install(app)`` (called by api/app.py after the routers are included) overrides ``app.openapi``
to post-process the generated document:

* ``components.schemas`` gains SocialClaw's named schemas (api/spec_schemas/socialclaw.json,
  extracted from the spec text by api/spec_schemas/extract.py; only those the responses reach,
  so their ``#/components/schemas/X`` references resolve) with Herald's deliberate deviations
  applied (``SPEC_DEVIATIONS``, each marked ``x-herald-deviation`` in the document and listed in
  docs/architecture.md, "Response schemas"), plus Herald's own schemas (``HERALD_SCHEMAS``);
* each operation's success status gets its schema, and ``4XX``/``5XX`` get ``Error``
  (FastAPI's ``HTTPValidationError`` is dropped: the 422 handler answers ``Error`` too).

A route's success schema is, in this order: its entry in ``HERALD_ROUTES`` (Herald-only routes,
and spec routes where Herald says more, e.g. a second success status); else the spec's response
for the same method and path (templates compared with parameter names ignored:
``/v1/runs/{run_id}`` is the spec's ``/v1/runs/{runId}``). A route with neither is left
undeclared; tests/test_response_schemas.py fails until it is declared here.
"""

from __future__ import annotations

import copy
import json
import logging
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, get_args

from fastapi import FastAPI

log = logging.getLogger("herald.api")

SPEC_FILE = Path(__file__).with_name("spec_schemas") / "socialclaw.json"
REF = "#/components/schemas/"


def ref(name: str) -> dict[str, str]:
    return {"$ref": REF + name}


@dataclass(frozen=True)
class Success:
    """A route's success answer. ``schema``: a components.schemas name, or None for no JSON body
    (``media`` then says what the body is, or "" for none). ``statuses``: () means the status the
    route declares to FastAPI. ``also``: extra statuses without a body (e.g. 304)."""

    schema: str | None
    statuses: tuple[int, ...] = ()
    media: str = "application/json"
    alternatives: dict[str, str] = field(default_factory=dict)  # other media type -> schema name
    also: tuple[int, ...] = ()
    note: str = ""


# --- Herald's own schemas -------------------------------------------------------------------------

_STR_OR_NULL = {"type": ["string", "null"]}
_INT = {"type": "integer"}
_OK = {"const": True}

HERALD_SCHEMAS: dict[str, dict[str, Any]] = {
    "Error": {
        "description": "Every error Herald answers (4xx and 5xx): SocialClaw's ErrorResponse with all four "
                       "keys always present and `code` always a stable string.",
        "allOf": [ref("ErrorResponse")],
        "required": ["ok", "code", "message", "details"],
        "properties": {"code": {"type": "string", "minLength": 1}, "message": {"type": "string", "minLength": 1}},
    },
    "RunReviewResponse": {
        "description": "POST /v1/runs/{runId}/approve|reject: the run, what happened to each post waiting for "
                       "review, and the run's posts as stored now.",
        "type": "object", "additionalProperties": True,
        "properties": {
            "ok": _OK, "run": ref("Run"),
            "results": {"type": "array", "items": {
                "type": "object", "additionalProperties": False, "required": ["postId", "ok"],
                "properties": {"postId": {"type": "string"}, "ok": {"type": "boolean"}, "status": {"type": "string"},
                               "code": {"type": "string"}, "message": {"type": "string"}}}},
            "summary": {"type": "object", "additionalProperties": _INT},
            "posts": {"type": "array", "items": ref("Post")},
        },
        "required": ["ok", "run", "results", "summary", "posts"],
    },
    "UploadPartResponse": {
        "description": "PUT /uploads/{assetId}/parts/{n} (local storage's stand-in for a presigned S3 URL): "
                       "the part's ETag, also in the ETag header.",
        "type": "object", "additionalProperties": False,
        "properties": {"ok": _OK, "partNumber": _INT, "etag": {"type": "string"}},
        "required": ["ok", "partNumber", "etag"],
    },
    "MediaPrepareResponse": {
        "description": "POST /v1/media/prepare (SocialHub's shape): the task to poll.",
        "type": "object", "additionalProperties": True,
        "properties": {"ok": _OK, "success": {"const": True}, "task_id": {"type": "string"},
                       "taskId": {"type": "string"}, "message": {"type": "string"}},
        "required": ["ok", "success", "task_id", "taskId"],
    },
    "MediaStatusResponse": {
        "description": "GET /v1/media/status/{taskId} (SocialHub's shape): progress while processing; files "
                       "and failures once every URL is done.",
        "type": "object", "additionalProperties": True,
        "properties": {
            "ok": _OK, "success": {"const": True}, "task_id": {"type": "string"},
            "status": {"enum": ["processing", "completed", "failed"]},
            "progress": {"type": "object", "additionalProperties": False, "required": ["total", "completed", "failed"],
                         "properties": {"total": _INT, "completed": _INT, "failed": _INT}},
            "files": {"type": "array", "items": {
                "type": "object", "additionalProperties": True,
                "required": ["original_url", "prepared_url", "type", "size", "mime", "asset_id"],
                "properties": {"original_url": {"type": "string"}, "prepared_url": {"type": ["string", "null"]},
                               "type": {"enum": ["image", "video", "audio", "other"]},
                               "size": {"type": ["integer", "null"]}, "mime": {"type": "string"},
                               "asset_id": {"type": "string"}, "width": {"type": ["integer", "null"]},
                               "height": {"type": ["integer", "null"]}, "duration": {"type": ["number", "null"]}}}},
            "failures": {"type": "array", "items": {
                "type": "object", "additionalProperties": True, "required": ["original_url", "asset_id", "error"],
                "properties": {"original_url": {"type": "string"}, "asset_id": {"type": "string"},
                               "code": _STR_OR_NULL, "error": {"type": "string"}}}},
        },
        "required": ["ok", "success", "task_id", "status", "progress"],
    },
    "MetaDataDeletionResponse": {
        "description": "POST /webhooks/meta/data-deletion: exactly what Meta's data-deletion callback must answer "
                       "(developers.facebook.com/docs/development/create-an-app/app-dashboard/data-deletion-callback): "
                       "the status page and its confirmation code. The spec says WebhookResponse ({ok: true}); "
                       "Meta's format wins here.",
        "type": "object", "additionalProperties": False,
        "properties": {"url": {"type": "string", "format": "uri"}, "confirmation_code": {"type": "string"}},
        "required": ["url", "confirmation_code"],
    },
    "DataDeletionStatusResponse": {
        "description": "GET /webhooks/meta/data-deletion/{code} with Accept: application/json (people get HTML).",
        "type": "object", "additionalProperties": False,
        "properties": {"ok": _OK, "confirmationCode": {"type": "string"}, "status": {"type": "string"},
                       "accounts": _INT, "completedAt": {"type": ["string", "null"], "format": "date-time"},
                       "message": {"type": "string"}},
        "required": ["ok", "confirmationCode", "status", "accounts", "completedAt", "message"],
    },
    "Binary": {"description": "The stored bytes, with the sniffed Content-Type.", "type": "string",
               "format": "binary"},
    "Html": {"description": "A page for people.", "type": "string"},
}


# --- Herald's deliberate deviations from SocialClaw's schemas ---------------------------------------


def _extend_enum(enum: list, extra: list) -> list:
    return enum + [v for v in extra if v not in enum]


def _providers() -> list[str]:
    from providers import KNOWN_PROVIDERS

    return list(KNOWN_PROVIDERS)


def _post_statuses() -> list[str]:
    from herald.contracts import PostStatus

    return list(get_args(PostStatus))


def _provider_enum(prop: dict) -> None:
    prop["enum"] = _extend_enum(prop["enum"], _providers())


def _post_status(prop: dict) -> None:
    prop["enum"] = _extend_enum(prop["enum"], _post_statuses())


def _nullable(prop: dict) -> None:
    if isinstance(prop.get("type"), str):
        prop["type"] = [prop["type"], "null"]


@dataclass(frozen=True)
class Deviation:
    schema: str
    prop: str  # a property of the schema's top level
    change: Callable[[dict], None]
    note: str


SPEC_DEVIATIONS: tuple[Deviation, ...] = (
    *(Deviation(s, "provider", _provider_enum,
                "provider ids: also Herald's other known networks (providers.KNOWN_PROVIDERS, e.g. threads, "
                "bluesky, mastodon)")
      for s in ("Post", "ConnectedAccount", "Connection", "Capability", "PostInput", "DiscoveryAction")),
    Deviation("Post", "status", _post_status,
              "post status: every herald.contracts.PostStatus (also pending_approval: waiting for review; deleted: "
              "removed from the network after publishing)"),
    Deviation("Asset", "size", _nullable,
              "size is null until the bytes are known (an asset registered by URL before its fetch)"),
)


# --- routes ---------------------------------------------------------------------------------------

_MEDIA = Success("Binary", statuses=(200, 206), media="*/*", also=(304,),
                 note="the stored bytes (the spec: application/octet-stream; Herald sends the sniffed type); "
                      "206 for a byte range, 304 for a matching If-None-Match; 416 (no body) for an "
                      "unsatisfiable range")
_HEAD = Success(None, statuses=(200,), media="", also=(304,),
                note="HEAD: the GET's headers, no body (RFC 9110 9.3.2)")

# Herald-only routes, and spec routes where Herald declares more than the spec's table says.
HERALD_ROUTES: dict[tuple[str, str], Success] = {
    ("POST", "/v1/posts/apply"): Success("RunResponse", statuses=(201, 200),
                                         note="201: a new run; 200: the run this idempotencyKey already made"),
    ("PATCH", "/v1/posts/{post_id}"): Success("PostResponse", note="same as PATCH /v1/dashboard/posts/{postId}"),
    ("POST", "/v1/posts/{post_id}/approve"): Success("PostResponse"),
    ("POST", "/v1/posts/{post_id}/reject"): Success("PostResponse"),
    ("POST", "/v1/runs/{run_id}/approve"): Success("RunReviewResponse"),
    ("POST", "/v1/runs/{run_id}/reject"): Success("RunReviewResponse"),
    ("GET", "/v1/assets"): Success("AssetsResponse", note="same as GET /v1/dashboard/assets, any status"),
    ("GET", "/v1/assets/{asset_id}"): Success("AssetResponse"),
    # The API-key paths of the spec's dashboard multipart routes.
    ("POST", "/v1/assets/upload/initiate"): Success("MultipartInitiateResponse"),
    ("POST", "/v1/assets/upload/{asset_id}/part"): Success("MultipartPartResponse"),
    ("POST", "/v1/assets/upload/{asset_id}/complete"): Success("AssetResponse"),
    ("POST", "/v1/assets/upload/{asset_id}/abort"): Success("OkResponse"),
    ("PUT", "/uploads/{asset_id}/parts/{part_number}"): Success("UploadPartResponse"),
    **{(method, path): _MEDIA if method == "GET" else _HEAD
       for path in ("/media/{asset_id}/{token}/{filename}", "/media/{asset_id}/{token}/previews/{name}",
                    "/media/{asset_id}/{token}/renditions/{rendition_id}/{filename}")
       for method in ("GET", "HEAD")},
    ("POST", "/v1/media/prepare"): Success("MediaPrepareResponse"),
    ("GET", "/v1/media/status/{task_id}"): Success("MediaStatusResponse"),
    ("GET", "/oauth/{provider}/callback"): Success(
        "ConnectionResponse", also=(303,),
        note="JSON (plus `accounts`: every account the consent connected) when no return URL is configured; "
             "otherwise 303 to HERALD_OAUTH_SUCCESS_URL or the callbackScheme given at start, with connectionId, "
             "status and error in the query"),
    ("POST", "/webhooks/meta/data-deletion"): Success("MetaDataDeletionResponse",
                                                      note="Meta's required format, not the spec's WebhookResponse"),
    ("GET", "/webhooks/meta/data-deletion/{code}"): Success("Html", media="text/html",
                                                            alternatives={"application/json": "DataDeletionStatusResponse"}),
}

# Bodyless non-2xx answers of particular routes (instead of the Error schema of 4XX).
NO_BODY_ERRORS: dict[tuple[str, str], dict[int, str]] = {
    key: {416: "the range cannot be satisfied (Content-Range: bytes */size, no body)"}
    for key in HERALD_ROUTES if key[0] == "GET" and key[1].startswith("/media/")
}


@lru_cache(maxsize=1)
def spec() -> dict[str, Any]:
    return json.loads(SPEC_FILE.read_text(encoding="utf-8"))


def template_key(path: str) -> str:
    """A path template with its parameter names erased: /v1/runs/{run_id} -> /v1/runs/{}."""
    return re.sub(r"{[^}]*}", "{}", path)


def spec_route(method: str, path: str) -> dict[str, str] | None:
    for route in spec()["routes"]:
        if route["method"] == method.upper() and template_key(route["path"]) == template_key(path):
            return route
    return None


def success_for(method: str, path: str) -> Success | None:
    """The declared success answer of a route, or None when it is not declared anywhere."""
    method = method.upper()
    if (method, path) in HERALD_ROUTES:
        return HERALD_ROUTES[(method, path)]
    route = spec_route(method, path)
    if route is None:
        return None
    name = route["response"]
    if name in spec()["schemas"]:
        return Success(name)
    if name == "application/octet-stream":
        return _MEDIA
    return None  # "redirect" and other non-schema answers must be declared in HERALD_ROUTES


def schemas() -> dict[str, dict[str, Any]]:
    """Every schema the document can name: the spec's (deviations applied) and Herald's."""
    out: dict[str, dict[str, Any]] = {}
    for name, schema in spec()["schemas"].items():
        schema = copy.deepcopy(schema)
        schema.pop("$schema", None)  # OpenAPI 3.1's dialect is already JSON Schema 2020-12
        out[name] = schema
    for dev in SPEC_DEVIATIONS:
        target = out[dev.schema]
        dev.change(target["properties"][dev.prop])
        target.setdefault("x-herald-deviation", []).append(f"{dev.prop}: {dev.note}")
    clash = set(out) & set(HERALD_SCHEMAS)
    assert not clash, f"Herald schemas shadow spec schemas: {clash}"
    out.update(copy.deepcopy(HERALD_SCHEMAS))
    return out


def _refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {node["$ref"][len(REF):]} if str(node.get("$ref", "")).startswith(REF) else set()
        return found.union(*(_refs(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_refs(v) for v in node))
    return set()


def _closure(names: set[str], pool: dict[str, dict]) -> set[str]:
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo += _refs(pool[name])
    return seen


def _content(media: str, schema_name: str) -> dict[str, Any]:
    return {media: {"schema": ref(schema_name)}}


def _describe(operation: dict[str, Any], method: str, path: str, pool: dict[str, dict]) -> set[str]:
    """Rewrite one operation's responses; the schema names it uses."""
    generated = operation.get("responses", {})
    declared = success_for(method, path)
    # FastAPI's own success status (201, 202, ...) unless the declaration names them.
    default_status = next((int(s) for s in generated if s.startswith("2")), 200)
    responses: dict[str, Any] = {}
    used = {"Error"}
    if declared is None:
        log.warning("no response schema declared for %s %s (api/openapi_responses.py)", method, path)
        responses = {s: r for s, r in generated.items() if s.startswith("2")}
    else:
        for status in declared.statuses or (default_status,):
            answer: dict[str, Any] = {"description": declared.note or pool.get(declared.schema or "", {}).get(
                "description", "Success")}
            if declared.schema is not None:
                answer["content"] = _content(declared.media, declared.schema)
                used.add(declared.schema)
                for media, name in declared.alternatives.items():
                    answer["content"] |= _content(media, name)
                    used.add(name)
            responses[str(status)] = answer
        for status in declared.also:
            responses[str(status)] = {"description": "No body."}
    for status, why in NO_BODY_ERRORS.get((method, path), {}).items():
        responses[str(status)] = {"description": why}
    responses["4XX"] = {"description": "The request was refused.", "content": _content("application/json", "Error")}
    responses["5XX"] = {"description": "Herald or a service it needs failed (503 + Retry-After when it is "
                                       "worth retrying).", "content": _content("application/json", "Error")}
    operation["responses"] = responses
    return used


def document(generated: dict[str, Any]) -> dict[str, Any]:
    """The generated OpenAPI document with every response described."""
    pool = schemas()
    used: set[str] = set()
    for path, item in generated.get("paths", {}).items():
        for method, operation in item.items():
            if isinstance(operation, dict) and "responses" in operation:
                used |= _describe(operation, method.upper(), path, pool)
    components = generated.setdefault("components", {}).setdefault("schemas", {})
    # The 422 handler answers Error; nothing refers to FastAPI's validation schemas any more.
    if "HTTPValidationError" not in _refs(generated.get("paths", {})):
        components.pop("HTTPValidationError", None)
        components.pop("ValidationError", None)
    wanted = _closure(used, pool)
    clash = sorted(n for n in wanted if n in components and components[n] != pool[n])
    if clash:  # a request model named like a spec response schema: rename the model
        raise RuntimeError(f"OpenAPI component names used by both a request model and a response schema: {clash}")
    for name in sorted(wanted):
        components[name] = pool[name]
    return generated


def install(app: FastAPI) -> None:
    """Serve the described document at /openapi.json (built once, on first request)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
