"""Discord webhook API emulation (``/discord/api[/v10]/webhooks/...``).

Shapes follow discord-docs (developers/resources/webhook.mdx, reference.mdx, rate-limits.mdx,
opcodes-and-status-codes.mdx) as summarised in /work/shared/reference/providers.md §11.

Any numeric webhook id with any token is accepted and provisioned on first use (guild and
channel ids derived from the webhook id), except tokens starting with ``invalid`` (401 50027).
A message posted into a thread (``thread_id``, or a new ``thread_name`` forum post, whose id is
the message id) is only found by GET/DELETE ``.../messages/{id}`` with the same ``thread_id``
query, as documented for the real API (the not-found behaviour without it is unconfirmed [U]).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import time
from datetime import datetime, timezone
from typing import Any

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox.state import DropConnection, Fault, SandboxState, hold, media_item, received_at

MAX_CONTENT = 2000  # [C]
MAX_EMBEDS = 10  # [C]
MAX_FILES = 10  # [U]
MAX_FILE_BYTES = 10 * 1024 * 1024  # 10 MiB [C]


def error(status: int, message: str, code: int, errors: dict[str, Any] | None = None,
          headers: dict[str, str] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"message": message, "code": code}
    if errors:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, headers=headers)


def form_error(field_name: str, code: str, message: str) -> JSONResponse:
    return error(400, "Invalid Form Body", 50035, {field_name: {"_errors": [{"code": code, "message": message}]}})


def _derived(webhook_id: str, salt: str) -> str:
    """A stable snowflake-looking id derived from the webhook id."""
    digest = int.from_bytes(hashlib.sha256(f"{salt}:{webhook_id}".encode()).digest()[:8], "big")
    return str(10**17 + digest % (9 * 10**17))


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat()


class DiscordSandbox:
    def __init__(self, state: SandboxState):
        self.state = state

    # --- helpers ----------------------------------------------------------------------------------

    def _auth(self, webhook_id: str, token: str) -> JSONResponse | None:
        if not webhook_id.isdigit() or len(webhook_id) > 20:
            return form_error("webhook_id", "NUMBER_TYPE_COERCE", f'Value "{webhook_id}" is not snowflake.')
        if token.startswith("invalid"):
            return error(401, "Invalid Webhook Token", 50027)
        return None

    def webhook(self, webhook_id: str, token: str) -> dict[str, Any]:
        extra = self.state.discord_webhooks.get(webhook_id, {})
        return {
            "id": webhook_id,
            "type": 1,
            "name": extra.get("name") or f"Sandbox webhook {webhook_id[-4:]}",
            "avatar": None,
            "channel_id": _derived(webhook_id, "channel"),
            "guild_id": _derived(webhook_id, "guild"),
            "application_id": None,
            "token": token,
            "url": f"https://discord.com/api/webhooks/{webhook_id}/{token}",
        }

    def fault_response(self, fault: Fault) -> JSONResponse | None:
        kind = fault.kind
        if kind == "rate_limit":
            # Body retry_after is float seconds; Retry-After header and X-RateLimit-* [C rate-limits.mdx].
            retry = fault.retry_after
            now = time.time()
            return JSONResponse(
                {"message": "You are being rate limited.", "retry_after": retry, "global": False},
                status_code=429,
                headers={
                    "Retry-After": str(max(0, math.ceil(retry))),
                    "X-RateLimit-Limit": "5",
                    "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Reset": f"{now + retry:.3f}",
                    "X-RateLimit-Reset-After": f"{retry:.3f}",
                    "X-RateLimit-Bucket": "sandbox-webhook-bucket",
                    "X-RateLimit-Scope": "user",
                },
            )
        if kind == "server_error":
            return error(500, fault.message or "500: Internal Server Error", 0)
        if kind == "auth_error":
            return error(401, fault.message or "Invalid Webhook Token", 50027)
        if kind == "reject_content":
            return form_error("content", "SANDBOX_REJECTED", fault.message or "Rejected by a sandbox fault.")
        return None  # timeout / drop_after_accept are handled by the caller

    # --- endpoints --------------------------------------------------------------------------------

    async def webhook_endpoint(self, request: Request) -> Response:
        webhook_id, token = request.path_params["webhook_id"], request.path_params["token"]
        if (denied := self._auth(webhook_id, token)) is not None:
            return denied
        if request.method == "GET":
            return JSONResponse(self.webhook(webhook_id, token))
        if request.method == "PATCH":
            try:
                body = json.loads(await request.body() or b"{}")
            except ValueError:
                return error(400, "The request body contains invalid JSON.", 50109)
            if isinstance(body, dict) and isinstance(body.get("name"), str):
                self.state.discord_webhooks.setdefault(webhook_id, {})["name"] = body["name"]
            return JSONResponse(self.webhook(webhook_id, token))
        if request.method == "DELETE":
            return Response(status_code=204)
        return await self.execute(request, webhook_id, token)

    async def execute(self, request: Request, webhook_id: str, token: str) -> Response:
        t0 = received_at(request)
        query = request.query_params
        wait = query.get("wait", "false").lower() == "true"
        thread_id = query.get("thread_id")
        ctype = request.headers.get("content-type", "")
        uploads: list[tuple[int, UploadFile]] = []
        form = None
        try:
            if ctype.startswith("multipart/form-data"):
                form = await request.form()
                raw = form.get("payload_json")
                payload = json.loads(raw) if isinstance(raw, str) and raw else {}
                if not payload:  # plain form fields are accepted too
                    payload = {k: v for k, v in form.multi_items() if isinstance(v, str)}
                for key, value in form.multi_items():
                    if isinstance(value, UploadFile):
                        index = key[6:-1] if key.startswith("files[") and key.endswith("]") else ""
                        uploads.append((int(index) if index.isdigit() else len(uploads), value))
            elif ctype.startswith("application/x-www-form-urlencoded"):
                form = await request.form()
                payload = {k: v for k, v in form.multi_items() if isinstance(v, str)}
            else:
                payload = json.loads(await request.body() or b"{}")
            if not isinstance(payload, dict):
                raise ValueError
        except ValueError:
            if form is not None:
                await form.close()
            return error(400, "The request body contains invalid JSON.", 50109)

        try:
            fault = self.state.take_fault("discord", webhook_id)
            if fault is not None:
                if fault.kind == "timeout":
                    await hold(request, fault.delay_seconds)
                    return error(504, "504: Gateway Timeout", 0)
                if fault.kind == "slow":
                    await asyncio.sleep(fault.delay_seconds)
                if (response := self.fault_response(fault)) is not None:
                    return response
            return await self._store(payload, uploads, webhook_id, token, thread_id, wait, t0,
                                     drop=fault is not None and fault.kind == "drop_after_accept")
        finally:
            if form is not None:
                await form.close()

    async def _store(self, payload: dict[str, Any], uploads: list[tuple[int, UploadFile]],
                     webhook_id: str, token: str, thread_id: str | None, wait: bool, t0: float,
                     *, drop: bool) -> Response:
        content = payload.get("content") or ""
        if not isinstance(content, str):
            return form_error("content", "BASE_TYPE_STRING", "Must be a string.")
        if len(content) > MAX_CONTENT:
            return form_error("content", "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_CONTENT} or fewer in length.")
        embeds = payload.get("embeds") or []
        if not isinstance(embeds, list) or len(embeds) > MAX_EMBEDS:
            return form_error("embeds", "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_EMBEDS} or fewer in length.")
        if len(uploads) > MAX_FILES:
            return form_error("attachments", "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_FILES} or fewer in length.")
        if thread_id is not None and not thread_id.isdigit():
            return form_error("thread_id", "NUMBER_TYPE_COERCE", f'Value "{thread_id}" is not snowflake.')
        if thread_id and payload.get("thread_name"):
            return error(400, "Cannot use thread_name together with thread_id", 50035)
        files = []
        for index, upload in uploads:
            data = await upload.read()
            if len(data) > MAX_FILE_BYTES:
                return error(413, "Request entity too large", 40005)
            files.append((index, upload, data))
        if not content.strip() and not embeds and not files and not payload.get("poll") \
                and not payload.get("components"):
            return error(400, "Cannot send an empty message", 50006)

        hook = self.webhook(webhook_id, token)
        message_id = self.state.snowflake(t0)
        thread = thread_id
        if payload.get("thread_name"):
            thread = message_id  # a new forum post: the thread id is the starter message id
        channel_id = thread or hook["channel_id"]
        described = {
            a.get("id"): a.get("description")
            for a in payload.get("attachments") or [] if isinstance(a, dict)
        }
        attachments, media = [], []
        for index, upload, data in files:
            attachment_id = self.state.snowflake(t0)
            filename = upload.filename or f"file{index}"
            mime = upload.content_type or "application/octet-stream"
            attachments.append({
                "id": attachment_id, "filename": filename, "size": len(data),
                "url": f"https://cdn.discordapp.com/attachments/{channel_id}/{attachment_id}/{filename}",
                "proxy_url": f"https://media.discordapp.net/attachments/{channel_id}/{attachment_id}/{filename}",
                "content_type": mime,
                **({"description": described[index]} if described.get(index) else {}),
            })
            media.append(media_item(data, mime, filename))
        message = {
            "id": message_id, "type": 0, "content": content, "channel_id": channel_id,
            "author": {"id": webhook_id, "username": hook["name"], "avatar": None,
                       "discriminator": "0000", "bot": True},
            "attachments": attachments, "embeds": embeds, "mentions": [], "mention_roles": [],
            "mention_everyone": False, "pinned": False, "tts": bool(payload.get("tts")),
            "timestamp": _iso(t0), "edited_timestamp": None, "flags": 0, "components": [],
            "webhook_id": webhook_id,
        }
        if payload.get("thread_name"):
            message["position"] = 0
        delivery = self.state.add_delivery({
            "id": message_id, "provider": "discord", "target": webhook_id, "text": content,
            "media": media, "receivedAt": t0, "threadId": thread, "channelId": channel_id,
            "payload": {k: v for k, v in payload.items() if k != "attachments"},
        })
        self.state.discord_messages[message_id] = {
            "webhook_id": webhook_id, "message": message, "delivery": delivery, "thread_id": thread,
        }
        if drop:
            return DropConnection()
        return JSONResponse(message) if wait else Response(status_code=204)

    async def message_endpoint(self, request: Request) -> Response:
        params = request.path_params
        webhook_id, token, message_id = params["webhook_id"], params["token"], params["message_id"]
        if (denied := self._auth(webhook_id, token)) is not None:
            return denied
        record = self.state.discord_messages.get(message_id)
        if (
            record is None
            or record["webhook_id"] != webhook_id
            or record["thread_id"] != request.query_params.get("thread_id")
        ):
            return error(404, "Unknown Message", 10008)
        if request.method == "DELETE":
            del self.state.discord_messages[message_id]
            record["delivery"]["deleted"] = True
            return Response(status_code=204)
        return JSONResponse(record["message"])

    async def not_found(self, request: Request) -> Response:
        return error(404, "404: Not Found", 0)


def routes(state: SandboxState) -> list[Route]:
    sandbox = DiscordSandbox(state)
    out = []
    for prefix in ("/discord/api/v{version:int}", "/discord/api"):
        out += [
            Route(prefix + "/webhooks/{webhook_id}/{token}", sandbox.webhook_endpoint,
                  methods=["GET", "PATCH", "POST", "DELETE"]),
            Route(prefix + "/webhooks/{webhook_id}/{token}/messages/{message_id}", sandbox.message_endpoint,
                  methods=["GET", "DELETE"]),
        ]
    out.append(Route("/discord/{rest:path}", sandbox.not_found,
                     methods=["GET", "POST", "PATCH", "PUT", "DELETE"]))
    return out
