"""Meta Graph API helpers shared by the Facebook Pages and both Instagram adapters.

* ``GRAPH_VERSION``: the one version every path carries.
* ``graph_error``: the Graph error envelope -> Herald's taxonomy.
* ``usage`` / ``regain_seconds``: the ``X-App-Usage`` and ``X-Business-Use-Case-Usage`` headers.

Facts from /work/shared/reference/providers.md §2-§4 (tags [C] confirmed, [3P] third party,
[U] unconfirmed) and from pages read with the search tool (cited inline).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import httpx

from providers.base import (
    AuthExpired,
    ContentRejected,
    OutcomeUnknown,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
    truncate,
)

# The Graph API version pinned for every path. developers.facebook.com/docs/graph-api/changelog
# (es_LA/de_DE/vi_VN snapshots, 2026): v26.0 introduced 2026-07-29, available until "TBD";
# the Resumable Upload guide (docs/graph-api/guides/upload) already uses v26.0 in its examples.
# graph.instagram.com takes the same version segment [C instagram-platform references].
GRAPH_VERSION = "v26.0"

# Error codes (developers.facebook.com/docs/graph-api/guides/error-handling, providers.md §2):
AUTH_CODES = {102, 190}  # session / access token invalid or expired [C]
PERMISSION_CODES = {3, 10} | set(range(200, 300))  # capability / permission missing [C]
THROTTLE_CODES = {4, 17, 32, 613} | set(range(80000, 80015))  # app, user, page, custom, BUC [C/3P]
TRANSIENT_CODES = {1, 2}  # unknown / service temporarily unavailable [C]
IG_QUOTA_SUBCODE = 2207042  # content publishing limit reached (code 9) [3P postiz]
# IG container/publish subcodes a new attempt can cure (providers.md §3, postiz [3P]):
# 2207003 download timed out, 2207020 container expired, 2207082 retryable upload error.
IG_RETRYABLE_SUBCODES = {2207003, 2207020, 2207082}
# No wait was advertised (no BUC header): Meta says throttles lift "within an hour" for the app
# limit and BUC windows roll hourly [C rate-limiting overview]; we retry after 5 minutes rather
# than block an hour, and the next answer carries the header if the block persists. Our choice.
DEFAULT_THROTTLE_WAIT = 300.0
# Instagram's 24 h publishing quota: the endpoint reports usage but not when a slot frees (the
# window rolls); re-check hourly. Our choice, see providers/instagram.py.
IG_QUOTA_WAIT = 3600.0


def error_fields(response: httpx.Response) -> dict[str, Any]:
    """``{"error": {"message","type","code","error_subcode","fbtrace_id",...}}`` or {}."""
    try:
        body = response.json()
    except ValueError:
        return {}
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return body["error"]
    return {}


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def usage(response: httpx.Response) -> dict[str, Any]:
    """The usage headers as JSON: ``{"app": {...}, "buc": {id: [{type, call_count, ...,
    estimated_time_to_regain_access}]}}`` (values are percentages; the wait is in minutes) [C]."""
    out: dict[str, Any] = {}
    for key, header in (("app", "x-app-usage"), ("page", "x-page-usage"),
                        ("buc", "x-business-use-case-usage")):
        raw = response.headers.get(header)
        if raw:
            try:
                out[key] = json.loads(raw)
            except ValueError:
                pass
    return out


def regain_seconds(response: httpx.Response) -> float | None:
    """The longest ``estimated_time_to_regain_access`` (minutes) in the BUC header, in seconds.
    None when the header says nothing (or 0: "not throttled")."""
    buc = usage(response).get("buc")
    waits: list[float] = []
    if isinstance(buc, dict):
        for entries in buc.values():
            for entry in entries if isinstance(entries, list) else [entries]:
                if isinstance(entry, dict):
                    minutes = entry.get("estimated_time_to_regain_access")
                    if isinstance(minutes, (int, float)) and not isinstance(minutes, bool) and minutes > 0:
                        waits.append(float(minutes) * 60.0)
    return max(waits) if waits else None


def scrub(text: str, secrets: Iterable[str | None]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def graph_error(response: httpx.Response, *, network: str, secrets: Iterable[str | None] = (),
                publishing: bool = False) -> ProviderError:
    """The taxonomy error for a Graph API error answer (Facebook and Instagram share it)."""
    status = response.status_code
    err = error_fields(response)
    code, subcode = _int(err.get("code")), _int(err.get("error_subcode"))
    message = str(err.get("error_user_msg") or err.get("message") or response.reason_phrase or "error")
    label = f"{network} {status}" + (f" (#{code}" + (f"/{subcode}" if subcode else "") + ")" if code is not None else "")
    text = scrub(f"{label}: {truncate(message)}", secrets)
    if code in THROTTLE_CODES or code == 9 or status == 429:
        # Code 9 is Instagram's publishing quota (subcode 2207042) [3P postiz, Ayrshare "Error 9"].
        wait = regain_seconds(response)
        if wait is None:
            wait = IG_QUOTA_WAIT if code == 9 else DEFAULT_THROTTLE_WAIT
        return RateLimited(text, retry_after=wait, http_status=status)
    if code in AUTH_CODES or code in PERMISSION_CODES or (code is None and status in (401, 403)):
        return AuthExpired(text, http_status=status)
    if code in TRANSIENT_CODES or err.get("is_transient") is True or subcode in IG_RETRYABLE_SUBCODES:
        return ProviderUnavailable(text, http_status=status)
    if status >= 500 and not err:
        if publishing and status == 504:
            # A gateway timeout may hide a post the origin made: reconcile, never retry blindly.
            return OutcomeUnknown(f"{text}; the post may have been published", http_status=status)
        return ProviderUnavailable(text, http_status=status)
    if status >= 500:
        return ProviderUnavailable(text, http_status=status)
    # 100 invalid parameter, 368 policy block, 506 duplicate post, 1609005 link, IG 2207xxx media.
    return ContentRejected(text, http_status=status)


def graph_json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def not_found(response: httpx.Response) -> bool:
    """``(#100/33) Unsupported get request. Object ... does not exist`` (or a bare 404)."""
    err = error_fields(response)
    return response.status_code == 404 or (_int(err.get("code")) == 100 and _int(err.get("error_subcode")) == 33)


# Secrets in logged URLs (the Graph token endpoints take them as query parameters) are taken
# out by the one httpx log filter, providers/http_media.RedactTokens.
