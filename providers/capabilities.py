"""What each network can publish, and the settings a post may carry for it: data for
/v1/accounts/{id}/capabilities and /settings, read from the adapters (limits, shapes, settings
fields), plus Herald's own settings."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from providers import ADAPTERS
from providers.post_types import POST_TYPES

# Settings of Herald's own (providers/http_media.py COMMON_SETTINGS), offered for every network.
COMMON_FIELDS: list[dict[str, Any]] = [
    {"id": "mediaFit", "type": "enum", "options": ["pad", "crop"],
     "label": "Media whose aspect ratio the network refuses: pad or crop it instead of refusing the post"},
]


def settings_fields(provider: str) -> list[dict[str, Any]]:
    """The settings a post to ``provider`` may carry: the adapter's own, then Herald's."""
    adapter = ADAPTERS.get(provider)
    return list(adapter.settings_fields if adapter is not None else []) + COMMON_FIELDS


def capability(provider: str, account_id: str | None = None, status: str | None = None,
               settings: Any = None, status_reason: str | None = None) -> dict[str, Any]:
    """What an account (or the provider in general) can publish. ``settings`` (herald Settings)
    lets an OAuth network say it cannot publish because its app is not configured."""
    from providers.oauth import OAuthAdapter

    adapter = ADAPTERS[provider]
    limits = asdict(adapter.limits)
    reason = None
    if status not in (None, "connected"):
        reason = f"account status is {status}" + (f": {status_reason}" if status_reason else "")
    elif settings is not None and issubclass(adapter, OAuthAdapter) and settings.oauth_app(provider) is None:
        id_name, secret_name = settings.oauth_setting_names(provider)
        reason = f"{provider} is not configured on this server ({id_name} and {secret_name} are unset)"
    out: dict[str, Any] = {
        "provider": provider,
        "accountId": account_id,
        "canPublish": reason is None,
        "shapes": list(adapter.shapes),
        "postTypes": list(POST_TYPES.get(provider, ())),
        "canDelete": adapter.can_delete,
        "media": limits,
        "settings": settings_fields(provider),
    }
    if reason is not None:
        out["reason"] = reason
    return out
