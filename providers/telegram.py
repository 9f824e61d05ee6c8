"""Telegram through the Bot API (a bot that is an administrator of the target chat).

Facts from /work/shared/reference/providers.md §12, which cites ptb
(python-telegram-bot @ 1183d401, Bot API 10.0): src/telegram/constants.py (MessageLimit,
FileSizeLimit, MediaGroupLimit), _bot.py (send_* and delete_message docstrings),
request/_baserequest.py (error parsing); docs https://core.telegram.org/bots/api.
Tags: [C] confirmed, [3P] third party, [U] unconfirmed.

The bot token is part of every URL path (``/bot<token>/<method>``), so error messages here are
built from Telegram's ``description`` only and scrubbed of the token; never from the URL.
"""

from __future__ import annotations

import html
import json
import re
from typing import Any, ClassVar

import httpx

from providers.base import (
    AccountIdentity,
    Adapter,
    AuthExpired,
    ContentRejected,
    Limits,
    MediaFile,
    OutcomeUnknown,
    PostDraft,
    PreparedPublish,
    Problem,
    ProviderError,
    ProviderUnavailable,
    PublishRequest,
    PublishResult,
    RateLimited,
    ReconcileResult,
)
from providers.http_media import (
    PreparedRequest,
    expect_bool,
    json_body,
    media_fit_problems,
    kind_of,
    n,
    read_media,
    send_readonly,
    size_text,
    unknown_settings,
)

LIMITS = Limits(
    max_text_chars=4096,  # MessageLimit.MAX_TEXT_LENGTH, after entity parsing [C ptb]
    max_caption_chars=1024,  # MessageLimit.CAPTION_LENGTH [C ptb]
    max_media=10,  # MediaGroupLimit.MAX_MEDIA_LENGTH [C ptb]
    min_media_group=2,  # MediaGroupLimit.MIN_MEDIA_LENGTH [C ptb]; one item is sent on its own
    max_file_bytes=50_000_000,  # FileSizeLimit.FILESIZE_UPLOAD = int(50e6) [C ptb]
    max_bytes_by_kind={"image": 10_000_000},  # FileSizeLimit.PHOTOSIZE_UPLOAD = int(10e6) [C ptb]
    source=(
        "ptb @1183d401 src/telegram/constants.py (Bot API 10.0): MessageLimit.MAX_TEXT_LENGTH 4,096, "
        "CAPTION_LENGTH 1,024, MediaGroupLimit 2-10, FileSizeLimit.FILESIZE_UPLOAD 50 MB, "
        "PHOTOSIZE_UPLOAD 10 MB (multipart upload); see providers.md §12"
    ),
)

SETTINGS = ("parseMode", "disableLinkPreview", "silent")
PARSE_MODES = ("HTML", "MarkdownV2", "Markdown")
TOKEN = re.compile(r"^\d+:[A-Za-z0-9_-]{30,}$")
CHAT_ID = re.compile(r"^(?:-?\d{1,20}|@[A-Za-z0-9_]{1,64})$")

# Kind -> (method, multipart field / InputMedia type).
METHODS = {
    "image": ("sendPhoto", "photo"),
    "video": ("sendVideo", "video"),
    "audio": ("sendAudio", "audio"),
    "other": ("sendDocument", "document"),
}


def visible_length(text: str, parse_mode: str | None) -> int:
    """Characters Telegram counts: the limits apply *after* entity parsing [C ptb].

    An approximation: HTML tags are dropped and entities unescaped; for Markdown the markup
    characters and backslash escapes are dropped and ``[label](url)`` counts as its label.
    Counted in code points; whether Telegram counts UTF-16 units instead is unconfirmed [U].
    """
    if parse_mode == "HTML":
        return len(html.unescape(re.sub(r"<[^>]*>", "", text)))
    if parse_mode in ("MarkdownV2", "Markdown"):
        text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
        text = re.sub(r"\\(.)", "\x00", text)  # an escaped character is one visible character
        return len(re.sub(r"[*_~|`]", "", text))
    return len(text)


def group_problem(kinds: list[str]) -> str | None:
    """Documents and audio can only be grouped with items of their own type [U grouping rule]."""
    distinct = set(kinds)
    for solo, label in (("other", "documents"), ("audio", "audio files")):
        if solo in distinct and len(distinct) > 1:
            return f"telegram albums cannot mix {label} with other media types"
    return None


def message_url(chat: dict[str, Any], message_id: Any) -> str | None:
    # t.me/<username>/<id> for public chats, t.me/c/<id without -100>/<id> for private ones [3P].
    if chat.get("username"):
        return f"https://t.me/{chat['username']}/{message_id}"
    chat_id = str(chat.get("id", ""))
    if chat_id.startswith("-100"):
        return f"https://t.me/c/{chat_id[4:]}/{message_id}"
    return None


def classify(response: httpx.Response, token: str, *, publishing: bool = False) -> ProviderError:
    """Error body ``{"ok":false,"error_code","description","parameters"}`` [C shape]."""
    status = response.status_code
    body = json_body(response)
    desc = str(body.get("description") or response.reason_phrase or "error")
    if token:
        desc = desc.replace(token, "***")
    params = body.get("parameters") if isinstance(body.get("parameters"), dict) else {}
    text = f"Telegram {status}: {desc}"
    if status == 429:
        retry = params.get("retry_after")  # seconds [C]
        if not isinstance(retry, (int, float)):
            try:
                retry = float(response.headers.get("retry-after", ""))
            except ValueError:
                retry = 5.0  # our conservative default when Telegram gives none
        return RateLimited(text, retry_after=retry)
    if params.get("migrate_to_chat_id"):
        # The group was upgraded to a supergroup [C]: every later post would fail the same way
        # until the account is reconnected with the new id, so this is a re-auth, not one bad post.
        return AuthExpired(
            f"the Telegram group became a supergroup with the new chat id "
            f"{params['migrate_to_chat_id']}; reconnect the account with that id",
            http_status=status,
        )
    if status == 401:
        return AuthExpired("Telegram rejected the bot token (401 Unauthorized)", http_status=status)
    if status == 404:  # malformed or unknown token: /bot<token>/ does not route [C codes]
        return AuthExpired("Telegram does not recognize the bot token (404 Not Found)", http_status=status)
    if status == 403:  # bot kicked, not a member, or not allowed to post [U text]
        return AuthExpired(
            f"{text} (the bot must be an administrator of the chat allowed to post)", http_status=status
        )
    if publishing and status == 504:
        return OutcomeUnknown(f"{text}; the message may have been posted", http_status=status)
    if status >= 500:
        return ProviderUnavailable(text, http_status=status)
    return ContentRejected(text, http_status=status)


def _form_value(value: Any) -> str:
    """Multipart bodies carry nested objects as JSON strings and booleans as true/false."""
    if isinstance(value, (dict, list, bool)):
        return json.dumps(value)
    return str(value)


class TelegramAdapter(Adapter):
    provider = "telegram"
    limits = LIMITS
    shapes: ClassVar[list[str]] = ["text", "image", "video", "document", "album", "reply"]
    settings_fields: ClassVar[list[dict[str, Any]]] = [
        {"id": "parseMode", "type": "enum", "options": ["HTML", "MarkdownV2", "Markdown"]},
        {"id": "disableLinkPreview", "type": "boolean", "default": False},
        {"id": "silent", "type": "boolean", "default": False, "label": "Send without notification"},
    ]

    # --- pure check ---------------------------------------------------------------------------

    @classmethod
    def check_post(cls, draft: PostDraft) -> list[Problem]:
        lim = cls.limits
        settings = draft.settings or {}
        problems = unknown_settings(settings, SETTINGS, "telegram") + media_fit_problems(settings)
        parse_mode = settings.get("parseMode")
        if parse_mode is not None and parse_mode not in PARSE_MODES:
            problems.append(Problem(field="settings.parseMode", message=f"must be one of {', '.join(PARSE_MODES)}"))
            parse_mode = None
        problems += expect_bool(settings, "disableLinkPreview") + expect_bool(settings, "silent")

        text = draft.text or ""
        length = visible_length(text, parse_mode)
        if draft.media:
            if length > lim.max_caption_chars:
                problems.append(Problem(
                    field="description",
                    message=f"{n(length)} characters, telegram allows {n(lim.max_caption_chars)} "
                    "in a caption (posts with media)",
                ))
        elif not text.strip():
            problems.append(Problem(field="description", message="the post is empty: telegram needs text or media"))
        elif length > lim.max_text_chars:
            problems.append(Problem(
                field="description", message=f"{n(length)} characters, telegram allows {n(lim.max_text_chars)}"
            ))

        if len(draft.media) > lim.max_media:
            problems.append(Problem(
                field="assets",
                message=f"{n(len(draft.media))} media items, telegram allows up to {lim.max_media} in one album",
            ))
        kinds = [kind_of(ref) for ref in draft.media]
        if len(kinds) >= lim.min_media_group and (msg := group_problem(kinds)):
            problems.append(Problem(field="assets", message=msg))
        for i, (ref, kind) in enumerate(zip(draft.media, kinds)):
            cap = lim.max_bytes_by_kind.get(kind, lim.max_file_bytes)
            # Images and videos get a rendition that fits (providers/media_profiles.py); whether
            # one can exist is decided by the media profile check, not by the original's size.
            if kind in ("image", "video"):
                continue
            if ref.size is not None and ref.size > cap:
                what = "photos" if kind == "image" else "files"
                problems.append(Problem(
                    field=f"assets[{i}]",
                    message=f"{size_text(ref.size, binary=False)}, "
                    f"telegram allows {cap // 1_000_000} MB for {what}",
                ))
        return problems

    # --- calls --------------------------------------------------------------------------------

    def _url(self, token: str, method: str) -> str:
        return f"{self.base_url}/bot{token}/{method}"

    async def _call(self, token: str, method: str, payload: dict[str, Any], *, auth: bool) -> Any:
        """A read-only / idempotent call. ``auth``: every 4xx means the credentials don't work."""
        request = self.http.build_request("POST", self._url(token, method), json=payload)
        response = await send_readonly(self.http, request)
        body = json_body(response)
        if response.status_code == 200 and body.get("ok") is True:
            return body.get("result")
        error = classify(response, token)
        if auth and isinstance(error, ContentRejected):  # e.g. 400 "Bad Request: chat not found"
            raise AuthExpired(
                f"{error.message} (is the bot a member of this chat?)", http_status=error.http_status
            )
        raise error

    async def _identify(self, token: str, chat_id: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        bot = await self._call(token, "getMe", {}, auth=True)
        chat = await self._call(token, "getChat", {"chat_id": chat_id}, auth=True)
        return bot or {}, chat or {}

    async def connect(self, params: dict[str, Any]) -> AccountIdentity:
        token = str(params.get("botToken") or params.get("bot_token") or "").strip()
        chat_id = str(params.get("chatId") or params.get("chat_id") or "").strip()
        if not TOKEN.match(token):  # never echo the token
            raise ValueError("botToken must look like 123456789:AA… (the token @BotFather gave you)")
        if not CHAT_ID.match(chat_id):
            raise ValueError("chatId must be a numeric chat id (e.g. -1001234567890) or @channelusername")
        bot, chat = await self._identify(token, chat_id)
        numeric = int(chat["id"])
        return AccountIdentity(
            handle=f"telegram:{numeric}",
            external_id=str(numeric),
            display_name=chat.get("title") or chat.get("username") or chat.get("first_name"),
            account_type=chat.get("type"),
            credentials={"bot_token": token, "chat_id": numeric},
            metadata={
                "bot_username": bot.get("username"),
                "chat_username": chat.get("username"),
                "chat_type": chat.get("type"),
            },
        )

    async def check_credentials(self, credentials: dict[str, Any]) -> None:
        await self._identify(str(credentials["bot_token"]), credentials["chat_id"])

    async def prepare_publish(self, credentials: dict[str, Any], request: PublishRequest) -> PreparedPublish:
        token = str(credentials["bot_token"])
        settings = request.settings or {}
        fields: dict[str, Any] = {"chat_id": credentials["chat_id"]}
        parse_mode = settings.get("parseMode")
        if parse_mode:
            fields["parse_mode"] = parse_mode
        if settings.get("silent"):
            fields["disable_notification"] = True
        if request.reply_to:
            try:
                parent = int(request.reply_to)
            except ValueError:
                raise ContentRejected("reply_to is not a Telegram message id") from None
            # allow_sending_without_reply false: a reply whose parent is gone fails loudly [C].
            fields["reply_parameters"] = {"message_id": parent, "allow_sending_without_reply": False}

        media = request.media
        if not media:
            fields["text"] = request.text or ""
            if settings.get("disableLinkPreview"):
                fields["link_preview_options"] = {"is_disabled": True}
            http_request = self.http.build_request("POST", self._url(token, "sendMessage"), json=fields)
        else:
            blobs = await read_media(media)
            if len(media) == 1:
                method, field = METHODS[media[0].kind]
                if request.text:
                    fields["caption"] = request.text
                files = [(field, self._file(media[0], blobs[0]))]
            else:
                # Uploaded files are referenced as attach://<part name>; the album caption goes
                # on the first item [U].
                method = "sendMediaGroup"
                items = []
                for i, m in enumerate(media):
                    item: dict[str, Any] = {"type": METHODS[m.kind][1], "media": f"attach://file{i}"}
                    if i == 0 and request.text:
                        item["caption"] = request.text
                        if parse_mode:
                            item["parse_mode"] = parse_mode
                    items.append(item)
                fields.pop("parse_mode", None)
                fields["media"] = items
                files = [(f"file{i}", self._file(m, b)) for i, (m, b) in enumerate(zip(media, blobs))]
            http_request = self.http.build_request(
                "POST", self._url(token, method),
                data={k: _form_value(v) for k, v in fields.items()}, files=files,
            )

        def parse(response: httpx.Response) -> PublishResult:
            body = json_body(response)
            if response.status_code != 200 or body.get("ok") is not True:
                raise classify(response, token, publishing=True)
            result = body["result"]
            first = result[0] if isinstance(result, list) else result  # albums answer a list
            mid = first["message_id"]
            return PublishResult(
                provider_post_id=str(mid),
                provider_url=message_url(first.get("chat") or {}, mid),
                http_status=response.status_code,
            )

        return PreparedRequest(self.http, http_request, parse)

    @staticmethod
    def _file(media: MediaFile, blob: bytes) -> tuple[str, bytes, str]:
        return (media.filename, blob, media.mime)

    async def reconcile(
        self, credentials: dict[str, Any], request: PublishRequest, provider_post_id: str | None
    ) -> ReconcileResult:
        # The Bot API method list (core.telegram.org/bots/api) has nothing that fetches a message by
        # id or reads a chat's history: bots only receive updates, and not for their own messages
        # [U]. send* takes no idempotency key, and probing with an edit, copy or forward would be a
        # write. So even with an id the honest answer is "unknowable".
        detail = (
            "Telegram bots cannot read messages back: the Bot API has no method to fetch a message "
            "by id or list a chat's history; check the chat by hand before posting again"
        )
        return ReconcileResult(state="unknowable", detail=detail)

    async def delete(self, credentials: dict[str, Any], provider_post_id: str) -> None:
        # deleteMessage works on messages younger than 48 h [C]. Albums: only the message whose id
        # we kept (the first item) is deleted.
        try:
            message_id = int(provider_post_id)
        except ValueError:
            raise ContentRejected("not a Telegram message id") from None
        token = str(credentials["bot_token"])
        payload = {"chat_id": credentials["chat_id"], "message_id": message_id}
        try:
            await self._call(token, "deleteMessage", payload, auth=False)
        except ContentRejected as exc:
            if "message to delete not found" in exc.message.lower():
                return  # already deleted
            raise
