"""In-memory state of the provider sandbox: deliveries, pending faults, emulated accounts.

One ``SandboxState`` per app. Everything runs on the server's event loop, so no locks. The hot
path (a publish) only appends to a list and a dict; formatting for the inspection endpoints
happens when they are read.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import math
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from sandbox.oauth import OAuthServer

# Delivery/fault provider ids: Herald's own ids (instagram_business and instagram are separate
# even though one Graph emulator may serve both).
PROVIDERS = ("discord", "telegram", "x", "linkedin", "linkedin_page", "facebook",
             "instagram_business", "instagram", "threads")
FAULT_KINDS = (
    "rate_limit", "server_error", "timeout", "drop_after_accept", "auth_error", "reject_content", "slow",
)
# `slow`: the network takes delaySeconds to answer and publishes whatever the client does
# meanwhile (a client that gives up or goes away does not unpublish it). Emulated for the two
# networks the burst and fault scenarios use.
SLOW_PROVIDERS = ("discord", "telegram")
FAULT_KEYS = {"provider", "kind", "count", "retryAfter", "delaySeconds", "target", "message"}
DEFAULT_DELAY_SECONDS = 35.0

DISCORD_EPOCH_MS = 1_420_070_400_000


def iso_millis(ts: float) -> str:
    """1795334400.1234 -> '2026-11-22T08:00:00.123Z' (UTC, milliseconds, Z)."""
    ms = int(ts * 1000)
    dt = datetime.fromtimestamp(ms // 1000, tz=timezone.utc)
    return f"{dt:%Y-%m-%dT%H:%M:%S}.{ms % 1000:03d}Z"


def received_at(request: Request) -> float:
    """The time stamped by the app wrapper at the very start of the ASGI call."""
    return request.scope.get("state", {}).get("received_at") or time.time()


def media_item(data: bytes, mime: str | None, filename: str | None) -> dict[str, Any]:
    """What the network received, as the inspection routes report it: the bytes' hash and size,
    and what a network's own media check would see (image size, video codec and dimensions)."""
    return {
        "sha256": hashlib.sha256(data).hexdigest(),
        "mime": mime or "application/octet-stream",
        "size": len(data),
        "filename": filename,
        **inspect_media(data),
    }


def inspect_media(data: bytes) -> dict[str, Any]:
    """Image dimensions and format (Pillow) or video codec/dimensions (PyAV), else nothing.
    Decoding stays lazy: a sandbox must not fall over on the files it is meant to refuse."""
    import io

    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            exif = im.getexif()
            return {"image": {"format": im.format, "width": im.width, "height": im.height,
                              "exif": len(exif) > 0, "gps": bool(exif.get_ifd(0x8825)) if exif else False}}
    except Exception:  # noqa: BLE001 - not an image
        pass
    try:
        import av

        with av.open(io.BytesIO(data)) as container:
            video = next((s for s in container.streams if s.type == "video"), None)
            audio = next((s for s in container.streams if s.type == "audio"), None)
            if video is None:
                return {}
            return {"video": {
                "format": container.format.name, "codec": video.codec_context.name,
                "width": video.codec_context.width, "height": video.codec_context.height,
                "pixelFormat": video.codec_context.pix_fmt,
                "duration": float(container.duration / 1_000_000) if container.duration else None,
                "audioCodec": audio.codec_context.name if audio is not None else None,
            }}
    except Exception:  # noqa: BLE001 - not a video either
        return {}


# --- faults ---------------------------------------------------------------------------------------


@dataclass
class Fault:
    id: int
    provider: str
    kind: str
    remaining: int
    retry_after: float
    delay_seconds: float
    target: str | None
    message: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "provider": self.provider, "kind": self.kind, "count": self.remaining,
            "retryAfter": self.retry_after, "delaySeconds": self.delay_seconds,
            "target": self.target, "message": self.message,
        }


def parse_fault(body: Any, fault_id: int) -> Fault:
    """Validate a POST /_sandbox/faults body; ValueError with a readable message otherwise."""
    if not isinstance(body, dict):
        raise ValueError("the body must be a JSON object")
    unknown = sorted(set(body) - FAULT_KEYS)
    if unknown:
        raise ValueError(f"unknown field(s) {', '.join(unknown)} (allowed: {', '.join(sorted(FAULT_KEYS))})")
    provider, kind = body.get("provider"), body.get("kind")
    if provider not in PROVIDERS:
        raise ValueError(f"provider must be one of {', '.join(PROVIDERS)}")
    if kind not in FAULT_KINDS:
        raise ValueError(f"kind must be one of {', '.join(FAULT_KINDS)}")
    if kind == "slow" and provider not in SLOW_PROVIDERS:
        raise ValueError(f"kind slow is emulated for {' and '.join(SLOW_PROVIDERS)} only")
    count = body.get("count", 1)
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 1_000_000:
        raise ValueError("count must be an integer from 1 to 1,000,000")

    def number(key: str, default: float, top: float) -> float:
        value = body.get(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= top:
            raise ValueError(f"{key} must be a number of seconds from 0 to {top:g}")
        return float(value)

    retry_after = number("retryAfter", 1.0, 86_400)
    delay = number("delaySeconds", DEFAULT_DELAY_SECONDS, 3_600)
    target = body.get("target")
    if target is not None and (isinstance(target, bool) or not isinstance(target, (str, int))):
        raise ValueError("target must be the id of the receiving webhook, chat, account, page or user")
    message = body.get("message")
    if message is not None and not isinstance(message, str):
        raise ValueError("message must be a string")
    return Fault(fault_id, provider, kind, count, retry_after, delay,
                 None if target is None else str(target), message)


class DropConnection(Response):
    """``drop_after_accept``: start a response with a Content-Length, send part of the body, and
    return. Uvicorn then closes the transport ("ASGI callable returned without completing
    response"), so the client sees an incomplete response (httpx: RemoteProtocolError)."""

    def __init__(self) -> None:
        super().__init__(status_code=200)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({
            "type": "http.response.start", "status": 200,
            "headers": [(b"content-type", b"application/json"), (b"content-length", b"4096")],
        })
        await send({"type": "http.response.body", "body": b'{"ok":', "more_body": True})


async def hold(request: Request, seconds: float) -> None:
    """``timeout``: keep the request open for ``seconds``, or until the client goes away."""

    async def until_disconnect() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass

    try:
        await asyncio.wait_for(until_disconnect(), seconds)
    except asyncio.TimeoutError:
        pass


def retry_after_int(fault: Fault) -> int:
    return max(0, math.ceil(fault.retry_after))


# --- the state ------------------------------------------------------------------------------------


@dataclass
class SandboxState:
    deliveries: list[dict[str, Any]] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    # Discord: message id -> {"webhook_id", "message", "delivery", "thread_id"}; webhook id -> overrides.
    discord_messages: dict[str, dict[str, Any]] = field(default_factory=dict)
    discord_webhooks: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Telegram: chat id -> chat; lowercased username -> chat id; (chat, message id) -> record.
    tg_chats: dict[int, dict[str, Any]] = field(default_factory=dict)
    tg_usernames: dict[str, int] = field(default_factory=dict)
    tg_counters: dict[int, int] = field(default_factory=dict)
    tg_messages: dict[tuple[int, int], dict[str, Any]] = field(default_factory=dict)
    # OAuth codes and tokens of every OAuth network (sandbox/oauth.py).
    oauth: OAuthServer = field(default_factory=OAuthServer)
    # Per-network emulator state, owned by each network's module (sandbox/x.py, ...): a dict
    # each module fills as it likes, dropped on reset.
    networks: dict[str, Any] = field(default_factory=dict)
    _last_snowflake: int = 0
    _fault_ids: Any = field(default_factory=lambda: itertools.count(1))

    def reset(self) -> None:
        fresh = SandboxState()
        self.__dict__.update(fresh.__dict__)

    # Faults are consumed FIFO: the oldest pending fault that matches this provider and target.
    def add_fault(self, body: Any) -> Fault:
        fault = parse_fault(body, next(self._fault_ids))
        self.faults.append(fault)
        return fault

    def take_fault(self, provider: str, *targets: str) -> Fault | None:
        if not self.faults:
            return None
        for i, fault in enumerate(self.faults):
            if fault.provider == provider and (fault.target is None or fault.target in targets):
                fault.remaining -= 1
                if fault.remaining <= 0:
                    del self.faults[i]
                return fault
        return None

    def add_delivery(self, delivery: dict[str, Any]) -> dict[str, Any]:
        self.deliveries.append(delivery)
        return delivery

    def list_deliveries(self, provider: str | None = None, target: str | None = None) -> list[dict[str, Any]]:
        out = []
        for d in self.deliveries:
            if (provider and d["provider"] != provider) or (target and d["target"] != target):
                continue
            item = dict(d)
            item["receivedAt"] = iso_millis(d["receivedAt"])
            out.append(item)
        return out

    def snowflake(self, now: float | None = None) -> str:
        """Discord-like id: milliseconds since the Discord epoch << 22, strictly increasing."""
        ms = int((now or time.time()) * 1000) - DISCORD_EPOCH_MS
        value = max(ms << 22, self._last_snowflake + 1)
        self._last_snowflake = value
        return str(value)

    def next_message_id(self, chat_id: int) -> int:
        value = self.tg_counters.get(chat_id, 0) + 1
        self.tg_counters[chat_id] = value
        return value
