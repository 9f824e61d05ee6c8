"""What each network can publish, and the settings a post may carry for it: data for
/v1/accounts/{id}/capabilities and /settings, read from the adapters' Limits."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from providers import ADAPTERS

SETTINGS_FIELDS: dict[str, list[dict[str, Any]]] = {
    "discord": [
        {"id": "threadId", "type": "string", "label": "Post into this thread (channel id)"},
        {"id": "threadName", "type": "string", "label": "Create a forum post with this title"},
        {"id": "allowMentions", "type": "boolean", "default": False,
         "label": "Let @everyone/@here/role mentions ping (off by default)"},
        {"id": "embeds", "type": "array", "label": "Discord embed objects (at most 10)"},
    ],
    "telegram": [
        {"id": "parseMode", "type": "enum", "options": ["HTML", "MarkdownV2", "Markdown"]},
        {"id": "disableLinkPreview", "type": "boolean", "default": False},
        {"id": "silent", "type": "boolean", "default": False, "label": "Send without notification"},
    ],
}

# Settings of Herald's own (providers/http_media.py COMMON_SETTINGS), offered for every network.
COMMON_FIELDS: list[dict[str, Any]] = [
    {"id": "mediaFit", "type": "enum", "options": ["pad", "crop"],
     "label": "Media whose aspect ratio the network refuses: pad or crop it instead of refusing the post"},
]

SHAPES: dict[str, list[str]] = {
    "discord": ["text", "images", "videos", "files", "thread"],
    "telegram": ["text", "image", "video", "document", "album", "reply"],
}


def capability(provider: str, account_id: str | None = None, status: str | None = None) -> dict[str, Any]:
    adapter = ADAPTERS[provider]
    limits = asdict(adapter.limits)
    can_publish = status in (None, "connected")
    out: dict[str, Any] = {
        "provider": provider,
        "accountId": account_id,
        "canPublish": can_publish,
        "shapes": SHAPES.get(provider, []),
        "media": limits,
        "settings": SETTINGS_FIELDS.get(provider, []) + COMMON_FIELDS,
    }
    if not can_publish:
        out["reason"] = f"account status is {status}"
    return out
