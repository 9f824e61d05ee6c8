"""Telegram Bot API emulation (``/telegram/bot<token>/<method>``).

Shapes follow the Bot API (core.telegram.org/bots/api) and python-telegram-bot's constants and
error parsing, as summarised in /work/shared/reference/providers.md §12. Error texts marked [U]
in that file are best guesses.

Parameters are read from the query string and from JSON, urlencoded or multipart bodies (nested
objects in form bodies are JSON strings, as the real API accepts). Any chat id is provisioned on
first use: ``@name`` -> a channel with that username and a stable ``-100…`` id; a negative
number -> a channel; a positive number -> a private chat. Message ids are sequential per chat.
"""

from __future__ import annotations

import asyncio
import hashlib
import html
import json
import re
from typing import Any

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox.state import (
    DropConnection, Fault, SandboxState, hold, media_item, received_at, retry_after_int,
)

TOKEN = re.compile(r"^(\d+):([A-Za-z0-9_-]{30,})$")
USERNAME = re.compile(r"^[A-Za-z0-9_]{1,64}$")
NUMERIC = re.compile(r"^-?\d{1,20}$")
MAX_TEXT, MAX_CAPTION = 4096, 1024  # [C ptb MessageLimit]
PHOTO_BYTES, FILE_BYTES = 10_000_000, 50_000_000  # [C ptb FileSizeLimit]
SEND_METHODS = {"sendmessage", "sendphoto", "sendvideo", "sendaudio", "senddocument", "sendmediagroup"}
MEDIA_FIELDS = {"sendphoto": "photo", "sendvideo": "video", "sendaudio": "audio", "senddocument": "document"}
JSON_FIELDS = {"reply_parameters", "link_preview_options", "media", "reply_markup", "entities",
               "caption_entities"}


def fail(status: int, description: str, parameters: dict[str, Any] | None = None,
         headers: dict[str, str] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if parameters:
        body["parameters"] = parameters
    return JSONResponse(body, status_code=status, headers=headers)


def ok(result: Any) -> JSONResponse:
    return JSONResponse({"ok": True, "result": result})


def visible_length(text: str, parse_mode: Any) -> int:
    """Limits count characters after entity parsing: drop HTML tags / Markdown markup."""
    if parse_mode == "HTML":
        return len(html.unescape(re.sub(r"<[^>]*>", "", text)))
    if parse_mode in ("MarkdownV2", "Markdown"):
        text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
        text = re.sub(r"\\(.)", "\x00", text)
        return len(re.sub(r"[*_~|`]", "", text))
    return len(text)


# sendPhoto: "The photo's width and height must not exceed 10000 in total. Width and height
# ratio must be at most 20." (Bot API docs, sendPhoto) [C]
PHOTO_SIDE_SUM, PHOTO_RATIO = 10_000, 20


def photo_problem(item: dict[str, Any]) -> str | None:
    image = item.get("image")
    if not image:
        return "Bad Request: IMAGE_PROCESS_FAILED"  # [U] text: not a decodable image
    w, h = image["width"], image["height"]
    if w + h > PHOTO_SIDE_SUM or max(w, h) > PHOTO_RATIO * max(1, min(w, h)):
        return "Bad Request: PHOTO_INVALID_DIMENSIONS"
    return None


class TelegramSandbox:
    def __init__(self, state: SandboxState):
        self.state = state

    # --- chats ------------------------------------------------------------------------------------

    def chat(self, chat_id: Any) -> dict[str, Any] | None:
        state = self.state
        raw = str(chat_id if chat_id is not None else "").strip()
        if raw.startswith("@"):
            name = raw[1:]
            if not USERNAME.match(name):
                return None
            known = state.tg_usernames.get(name.lower())
            if known is not None:
                return state.tg_chats[known]
            digest = int.from_bytes(hashlib.sha256(name.lower().encode()).digest()[:8], "big")
            numeric = -(10**12 + digest % 10**10)  # -100 + 10 digits, stable per username
            chat = {"id": numeric, "type": "channel", "title": f"Sandbox {name}", "username": name}
            state.tg_usernames[name.lower()] = numeric
            state.tg_chats[numeric] = chat
            return chat
        if not NUMERIC.match(raw):
            return None
        numeric = int(raw)
        chat = state.tg_chats.get(numeric)
        if chat is None:
            if numeric < 0:
                chat = {"id": numeric, "type": "channel", "title": f"Sandbox channel {numeric}"}
            else:
                chat = {"id": numeric, "type": "private", "first_name": "Sandbox", "last_name": "User"}
            state.tg_chats[numeric] = chat
        return chat

    # --- request parsing --------------------------------------------------------------------------

    @staticmethod
    async def params(request: Request) -> tuple[dict[str, Any], dict[str, UploadFile], Any]:
        params: dict[str, Any] = dict(request.query_params)
        files: dict[str, UploadFile] = {}
        form = None
        if request.method == "POST":
            ctype = request.headers.get("content-type", "")
            if ctype.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
                form = await request.form()
                for key, value in form.multi_items():
                    if isinstance(value, UploadFile):
                        files[key] = value
                    else:
                        params[key] = value
            else:
                body = await request.body()
                if body:
                    data = json.loads(body)
                    if not isinstance(data, dict):
                        raise ValueError("body must be a JSON object")
                    params.update(data)
        try:
            for key in JSON_FIELDS & params.keys():
                if isinstance(params[key], str):
                    params[key] = json.loads(params[key])
        except ValueError:
            if form is not None:
                await form.close()
            raise
        return params, files, form

    # --- endpoint ---------------------------------------------------------------------------------

    async def endpoint(self, request: Request) -> Response:
        match = TOKEN.match(request.path_params["token"])
        if not match:
            return fail(404, "Not Found")
        if match.group(2).startswith("invalid"):
            return fail(401, "Unauthorized")
        method = request.path_params["method"].lower()
        handler = getattr(self, f"m_{method}", None)
        if handler is None:
            return fail(404, "Not Found")
        try:
            params, files, form = await self.params(request)
        except ValueError:
            return fail(400, "Bad Request: can't parse request body")
        try:
            if method not in SEND_METHODS:
                return await handler(request, params, files, int(match.group(1)))
            chat = self.chat(params.get("chat_id"))
            if chat is None:
                return fail(400, "Bad Request: chat not found")
            fault = self.state.take_fault("telegram", str(chat["id"]), str(params.get("chat_id")))
            if fault is not None:
                if fault.kind == "timeout":
                    await hold(request, fault.delay_seconds)
                    return fail(504, "Gateway Timeout")
                if fault.kind == "slow":
                    await asyncio.sleep(fault.delay_seconds)
                if (response := self.fault_response(fault)) is not None:
                    return response
            response = await handler(request, params, files, chat)
            if fault is not None and fault.kind == "drop_after_accept" and response.status_code == 200:
                return DropConnection()
            return response
        finally:
            if form is not None:
                await form.close()

    def fault_response(self, fault: Fault) -> JSONResponse | None:
        if fault.kind == "rate_limit":
            n = retry_after_int(fault)  # Telegram's retry_after is whole seconds [C shape]
            return fail(429, f"Too Many Requests: retry after {n}", {"retry_after": n},
                        headers={"Retry-After": str(n)})
        if fault.kind == "server_error":
            return fail(500, fault.message or "Internal Server Error")
        if fault.kind == "auth_error":
            return fail(401, fault.message or "Unauthorized")
        if fault.kind == "reject_content":
            return fail(400, f"Bad Request: {fault.message or 'message rejected by a sandbox fault'}")
        return None

    # --- read methods -----------------------------------------------------------------------------

    async def m_getme(self, request: Request, params: dict, files: dict, bot_id: int) -> Response:
        return ok({
            "id": bot_id, "is_bot": True, "first_name": "Herald Sandbox Bot",
            "username": f"herald_sandbox_{bot_id}_bot", "can_join_groups": True,
            "can_read_all_group_messages": False, "supports_inline_queries": False,
        })

    async def m_getchat(self, request: Request, params: dict, files: dict, bot_id: int) -> Response:
        chat = self.chat(params.get("chat_id"))
        if chat is None:
            return fail(400, "Bad Request: chat not found")
        return ok(dict(chat))

    async def m_deletemessage(self, request: Request, params: dict, files: dict, bot_id: int) -> Response:
        chat = self.chat(params.get("chat_id"))
        if chat is None:
            return fail(400, "Bad Request: chat not found")
        try:
            message_id = int(params.get("message_id"))
        except (TypeError, ValueError):
            return fail(400, "Bad Request: message identifier is not specified")
        record = self.state.tg_messages.get((chat["id"], message_id))
        if record is None or record["deleted"]:
            return fail(400, "Bad Request: message to delete not found")
        record["deleted"] = True
        if record["delivery"]["id"] == str(message_id):
            record["delivery"]["deleted"] = True
        return ok(True)

    # --- send methods -----------------------------------------------------------------------------

    def _reply(self, chat: dict[str, Any], params: dict[str, Any]) -> tuple[dict | None, JSONResponse | None]:
        reply = params.get("reply_parameters")
        if reply is None and params.get("reply_to_message_id") is not None:
            reply = {"message_id": params["reply_to_message_id"]}
        if reply is None:
            return None, None
        try:
            parent = int(reply["message_id"])
        except (TypeError, KeyError, ValueError):
            return None, fail(400, "Bad Request: invalid reply parameters")
        record = self.state.tg_messages.get((chat["id"], parent))
        if (record is None or record["deleted"]) and not reply.get("allow_sending_without_reply"):
            return None, fail(400, "Bad Request: message to be replied not found")
        return {"message_id": parent}, None

    def _message(self, chat: dict[str, Any], t0: float, reply: dict | None) -> dict[str, Any]:
        message = {"message_id": self.state.next_message_id(chat["id"]), "date": int(t0), "chat": dict(chat)}
        if chat["type"] == "channel":
            message["sender_chat"] = dict(chat)
        if reply:
            message["reply_to_message"] = {"message_id": reply["message_id"], "chat": dict(chat)}
        return message

    def _deliver(self, chat: dict[str, Any], params: dict[str, Any], method: str, messages: list[dict],
                 text: str, media: list[dict], t0: float, reply: dict | None) -> None:
        delivery = self.state.add_delivery({
            "id": str(messages[0]["message_id"]), "provider": "telegram", "target": str(chat["id"]),
            "text": text, "media": media, "receivedAt": t0, "method": method,
            "replyToMessageId": reply["message_id"] if reply else None,
            "messageIds": [m["message_id"] for m in messages],
            "payload": {k: v for k, v in params.items() if k != "media" or method == "sendMediaGroup"},
        })
        for m in messages:
            self.state.tg_messages[(chat["id"], m["message_id"])] = {"delivery": delivery, "deleted": False}

    async def m_sendmessage(self, request: Request, params: dict, files: dict, chat: dict) -> Response:
        t0 = received_at(request)
        text = params.get("text")
        text = "" if text is None else str(text)
        if not text.strip():
            return fail(400, "Bad Request: message text is empty")
        if visible_length(text, params.get("parse_mode")) > MAX_TEXT:
            return fail(400, "Bad Request: message is too long")
        reply, err = self._reply(chat, params)
        if err:
            return err
        message = self._message(chat, t0, reply)
        message["text"] = text
        if params.get("link_preview_options"):
            message["link_preview_options"] = params["link_preview_options"]
        self._deliver(chat, params, "sendMessage", [message], text, [], t0, reply)
        return ok(message)

    async def _file_object(self, kind: str, value: Any, files: dict[str, UploadFile],
                           ) -> tuple[dict | list | None, dict | None, JSONResponse | None]:
        """(Telegram file object, delivery media item, error) for an uploaded part or a string."""
        if isinstance(value, UploadFile) or (isinstance(value, str) and value.startswith("attach://")):
            upload = value if isinstance(value, UploadFile) else files.get(value[len("attach://"):])
            if upload is None:
                return None, None, fail(400, "Bad Request: wrong file identifier/HTTP URL specified")
            data = await upload.read()
            if len(data) > FILE_BYTES:
                return None, None, fail(413, "Request Entity Too Large")
            if kind == "photo" and len(data) > PHOTO_BYTES:
                return None, None, fail(400, "Bad Request: file is too big")  # [U] text
            item = media_item(data, upload.content_type, upload.filename)
            if kind == "photo" and (problem := photo_problem(item)):
                return None, None, fail(400, problem)
        elif isinstance(value, str) and value:
            item = {"sha256": None, "mime": None, "size": None, "filename": None, "url": value}
            data = b""
        else:
            return None, None, fail(400, f"Bad Request: there is no {kind} in the request")
        sha = item["sha256"] or hashlib.sha256(str(value).encode()).hexdigest()
        ident = {"file_id": f"sbx-{kind}-{sha[:24]}", "file_unique_id": sha[:16]}
        if item["size"] is not None:
            ident["file_size"] = item["size"]
        if kind == "photo":
            image = item.get("image") or {"width": 0, "height": 0}
            return [{**ident, "width": image["width"], "height": image["height"]}], item, None
        extra = {"mime_type": item["mime"], "file_name": item["filename"]} if item["mime"] else {}
        if kind == "video":
            video = item.get("video") or {}
            return {**ident, "width": video.get("width") or 0, "height": video.get("height") or 0,
                    "duration": round(video.get("duration") or 0), **extra}, item, None
        if kind == "audio":
            return {**ident, "duration": 0, **extra}, item, None
        return {**ident, **extra}, item, None

    async def _send_media(self, request: Request, params: dict, files: dict, chat: dict, kind: str,
                          method: str) -> Response:
        t0 = received_at(request)
        caption = str(params.get("caption") or "")
        if visible_length(caption, params.get("parse_mode")) > MAX_CAPTION:
            return fail(400, "Bad Request: message caption is too long")
        reply, err = self._reply(chat, params)
        if err:
            return err
        file_obj, item, err = await self._file_object(kind, files.get(kind) or params.get(kind), files)
        if err:
            return err
        message = self._message(chat, t0, reply)
        message[kind] = file_obj
        if caption:
            message["caption"] = caption
        self._deliver(chat, params, method, [message], caption, [item], t0, reply)
        return ok(message)

    async def m_sendphoto(self, request: Request, params: dict, files: dict, chat: dict) -> Response:
        return await self._send_media(request, params, files, chat, "photo", "sendPhoto")

    async def m_sendvideo(self, request: Request, params: dict, files: dict, chat: dict) -> Response:
        return await self._send_media(request, params, files, chat, "video", "sendVideo")

    async def m_sendaudio(self, request: Request, params: dict, files: dict, chat: dict) -> Response:
        return await self._send_media(request, params, files, chat, "audio", "sendAudio")

    async def m_senddocument(self, request: Request, params: dict, files: dict, chat: dict) -> Response:
        return await self._send_media(request, params, files, chat, "document", "sendDocument")

    async def m_sendmediagroup(self, request: Request, params: dict, files: dict, chat: dict) -> Response:
        t0 = received_at(request)
        items = params.get("media")
        if not isinstance(items, list) or not 2 <= len(items) <= 10:  # 2-10 [C]; text [U]
            return fail(400, "Bad Request: media group must contain 2-10 items")
        kinds = []
        for item in items:
            if not isinstance(item, dict) or item.get("type") not in ("photo", "video", "audio", "document"):
                return fail(400, "Bad Request: unsupported media type in the media group")
            kinds.append(item["type"])
        for solo in ("document", "audio"):  # [U] rule and text
            if solo in kinds and len(set(kinds)) > 1:
                return fail(400, f"Bad Request: {solo} can't be mixed with other media types")
        for item in items:
            if visible_length(str(item.get("caption") or ""), item.get("parse_mode")) > MAX_CAPTION:
                return fail(400, "Bad Request: message caption is too long")
        reply, err = self._reply(chat, params)
        if err:
            return err
        objects, media = [], []
        for item in items:
            file_obj, media_entry, err = await self._file_object(item["type"], item.get("media"), files)
            if err:
                return err
            objects.append(file_obj)
            media.append(media_entry)
        group_id = str(10**17 + len(self.state.deliveries))
        messages = []
        for item, file_obj in zip(items, objects):
            message = self._message(chat, t0, reply)
            message["media_group_id"] = group_id
            message[item["type"]] = file_obj
            if item.get("caption"):
                message["caption"] = str(item["caption"])
            messages.append(message)
        text = next((str(i["caption"]) for i in items if i.get("caption")), "")
        self._deliver(chat, params, "sendMediaGroup", messages, text, media, t0, reply)
        return ok(messages)

    async def not_found(self, request: Request) -> Response:
        return fail(404, "Not Found")


def routes(state: SandboxState) -> list[Route]:
    sandbox = TelegramSandbox(state)
    return [
        Route("/telegram/bot{token}/{method}", sandbox.endpoint, methods=["GET", "POST"]),
        Route("/telegram/{rest:path}", sandbox.not_found, methods=["GET", "POST"]),
    ]
