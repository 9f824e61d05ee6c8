"""Shared pieces of the Meta Graph emulators (sandbox/facebook.py, sandbox/instagram.py).

Graph paths are generic (``/{version}/{node}/{edge}``), so each emulator mounts one catch-all
route per prefix and dispatches here. The version segment is optional and any ``v\\d+.\\d``
is accepted. Answers use Graph's error envelope [C providers.md §2]::

    {"error": {"message", "type", "code", "error_subcode", "fbtrace_id"}}

and every answer carries ``X-App-Usage`` and, for Page / Instagram requests,
``X-Business-Use-Case-Usage`` [C graph-api/overview/rate-limiting].
"""

from __future__ import annotations

import json
import math
import re
import secrets
import time
from datetime import datetime, timezone
from typing import Any

import httpx
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from sandbox.state import Fault, SandboxState, hold

VERSION = re.compile(r"^v\d+\.\d+$")
MAX_FETCH_BYTES = 1_100_000_000


def graph_time(ts: float) -> str:
    """Graph's timestamp format: ``2026-11-22T08:00:00+0000``."""
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S+0000")


def split_path(rest: str) -> tuple[str | None, list[str]]:
    parts = [p for p in rest.split("/") if p]
    if parts and VERSION.match(parts[0]):
        return parts[0], parts[1:]
    return None, parts


def new_id(state: SandboxState, digits: int = 17) -> str:
    """A numeric id, unique in this sandbox."""
    bucket = state.networks.setdefault("graph_ids", {"n": 0})
    bucket["n"] += 1
    return str(10 ** (digits - 1) + int(time.time()) % 10_000_000 * 10_000 + bucket["n"])


def error(status: int, message: str, code: int, subcode: int | None = None, *,
          type_: str = "OAuthException", headers: dict[str, str] | None = None,
          user_msg: str | None = None, transient: bool | None = None) -> JSONResponse:
    err: dict[str, Any] = {"message": message, "type": type_, "code": code}
    if subcode is not None:
        err["error_subcode"] = subcode
    if user_msg:
        err["error_user_msg"] = user_msg
    if transient is not None:
        err["is_transient"] = transient
    err["fbtrace_id"] = secrets.token_urlsafe(8)
    hdrs = dict(headers or {})
    if code == 190:
        # Graph names the failure in WWW-Authenticate as well [U].
        hdrs.setdefault("WWW-Authenticate", 'OAuth "Facebook Platform" "invalid_token" "' + message[:80] + '"')
    return JSONResponse({"error": err}, status_code=status, headers=hdrs)


def token_error() -> JSONResponse:
    # 190 is "invalid OAuth access token"; subcode 463 is "expired" [C providers.md §2].
    return error(400, "Error validating access token: Session has expired or the token is invalid.",
                 190, 463)


def missing_object(object_id: str) -> JSONResponse:
    return error(400, f"Unsupported get request. Object with ID '{object_id}' does not exist, cannot be "
                      "loaded due to missing permissions, or does not support this operation.",
                 100, 33, type_="GraphMethodException")


def invalid_param(message: str, subcode: int | None = None, user_msg: str | None = None) -> JSONResponse:
    return error(400, f"(#100) {message}", 100, subcode, user_msg=user_msg)


def unknown_path(path: str) -> JSONResponse:
    return error(400, f"Unknown path components: /{path}", 2500)


async def read_params(request: Request) -> tuple[dict[str, str], dict[str, tuple[bytes, str, str]]]:
    """Query parameters merged with a form, multipart or JSON body; uploaded files apart."""
    params: dict[str, str] = dict(request.query_params)
    files: dict[str, tuple[bytes, str, str]] = {}
    ctype = request.headers.get("content-type", "")
    if "multipart/form-data" in ctype or "application/x-www-form-urlencoded" in ctype:
        form = await request.form()
        for key, value in form.multi_items():
            if isinstance(value, UploadFile):
                files[key] = (await value.read(), value.content_type or "application/octet-stream",
                              value.filename or key)
            else:
                params[key] = str(value)
    elif "json" in ctype:
        try:
            body = json.loads(await request.body() or b"null")
        except ValueError:
            body = None
        if isinstance(body, dict):
            for key, value in body.items():
                if value is None:
                    continue
                params[key] = json.dumps(value) if isinstance(value, (dict, list, bool)) else str(value)
    return params, files


def truthy(value: str | None, default: bool) -> bool:
    if value is None:
        return default
    return value.strip().lower() in ("1", "true", "yes")


def usage_headers(state: SandboxState, business_id: str | None, kind: str,
                  regain_minutes: int = 0) -> dict[str, str]:
    """X-App-Usage (percent of the app's hourly calls) and X-Business-Use-Case-Usage for the
    Page or Instagram account the call was about [C shapes; the numbers are made up]."""
    counts = state.networks.setdefault("graph_usage", {})
    counts["app"] = counts.get("app", 0) + 1
    app_pct = min(100, counts["app"] // 50)
    headers = {"X-App-Usage": json.dumps({"call_count": app_pct, "total_cputime": app_pct, "total_time": app_pct})}
    if business_id:
        counts[business_id] = counts.get(business_id, 0) + 1
        pct = 100 if regain_minutes else min(99, counts[business_id] // 50)
        headers["X-Business-Use-Case-Usage"] = json.dumps({business_id: [{
            "type": kind, "call_count": pct, "total_cputime": pct, "total_time": pct,
            "estimated_time_to_regain_access": regain_minutes,
        }]})
    return headers


def with_headers(response: Response, headers: dict[str, str]) -> Response:
    for key, value in headers.items():
        response.headers.setdefault(key, value)
    return response


async def fault_answer(request: Request, state: SandboxState, fault: Fault, *, business_id: str,
                       kind: str, throttle_code: int, reject: tuple[int, int | None, str]) -> Response | None:
    """The answer for a pending fault, or None for ``drop_after_accept`` (the caller records the
    post, then drops the connection)."""
    if fault.kind == "timeout":
        await hold(request, fault.delay_seconds)
        return error(500, "An unexpected error has occurred. Please retry your request later.", 2,
                     transient=True)
    if fault.kind == "rate_limit":
        minutes = max(1, math.ceil(fault.retry_after / 60))
        # Throttling answers HTTP 400 with the code in the body [U status; C codes].
        return error(400, fault.message or "(#%d) Application request limit reached" % throttle_code,
                     throttle_code, None, headers=usage_headers(state, business_id, kind, minutes))
    if fault.kind == "server_error":
        return error(500, fault.message or "An unexpected error has occurred. Please retry your request later.",
                     2, transient=True)
    if fault.kind == "auth_error":
        return error(400, fault.message or "Error validating access token: The session has been invalidated "
                     "because the user changed their password.", 190, 460)
    if fault.kind == "reject_content":
        code, subcode, message = reject
        return error(400, fault.message or message, code, subcode)
    return None


async def fetch_url(url: str) -> tuple[bytes, str] | None:
    """GET a media URL the way Meta's crawler does ("we cURL your media") [C content publishing];
    None when it cannot be fetched."""
    if not url.startswith(("http://", "https://")):
        return None
    try:
        async with httpx.AsyncClient(timeout=10, follow_redirects=True) as client:
            response = await client.get(url)
    except httpx.HTTPError:
        return None
    if response.status_code != 200 or len(response.content) > MAX_FETCH_BYTES:
        return None
    return response.content, response.headers.get("content-type", "application/octet-stream").split(";")[0]


def oauth_error_response(exc: Any) -> JSONResponse:
    """An ``OAuthFailure`` from sandbox/oauth.py in Graph's envelope (code 100 / 191 / 101) [U
    exact codes: Graph answers bad codes with 100 and subcode 36007/36009]."""
    code = 101 if exc.error == "invalid_client" else 100
    subcode = 36009 if exc.error == "invalid_grant" else None
    return error(400, f"{exc.description}", code, subcode)
