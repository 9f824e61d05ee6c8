"""Discord through an incoming webhook ("Execute Webhook").

Facts from /work/shared/reference/providers.md §11, which cites discord-docs
(discord/discord-api-docs @ c98d64bc): developers/resources/webhook.mdx (Get Webhook with
Token, Execute Webhook, Get/Delete Webhook Message), developers/reference.mdx (Uploading
Files), developers/topics/rate-limits.mdx, developers/topics/opcodes-and-status-codes.mdx.
Tags: [C] confirmed in the docs, [U] unconfirmed.

The webhook URL *is* the credential (id + token, no header) [C]. We never call the URL the user
pasted: we only take its id and token and call ``{base_url}/webhooks/{id}/{token}``, so a
crafted URL cannot make the server reach an arbitrary host, and dev mode reaches the sandbox.
"""

from __future__ import annotations

import json
import re
from typing import Any, ClassVar
from urllib.parse import urlsplit

import httpx

from providers.base import (
    AccountIdentity,
    Adapter,
    AuthExpired,
    ContentRejected,
    Limits,
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
    max_text_chars=2000,  # message content <= 2,000 characters [C webhook.mdx, Execute Webhook]
    max_media=10,  # attachments per message [U]: no source found, 10 is the common figure
    max_file_bytes=10 * 1024 * 1024,  # 10 MiB per file by default [C reference.mdx, Uploading Files]
    source=(
        "discord-docs @c98d64bc developers/resources/webhook.mdx (Execute Webhook: content 2,000, "
        "embeds 10 / 6,000 chars) and developers/reference.mdx (Uploading Files: 10 MiB); "
        "10 attachments per message is unconfirmed [U]; see providers.md §11"
    ),
)
MAX_EMBEDS = 10  # [C webhook.mdx]
MAX_EMBED_CHARS = 6000  # title+description+fields+footer+author across all embeds [C]
MAX_THREAD_NAME = 100  # channel/thread names are 1-100 characters [U]

SETTINGS = ("threadId", "threadName", "allowMentions", "embeds")

WEBHOOK_HOSTS = {"discord.com", "discordapp.com", "canary.discord.com", "ptb.discord.com"}
WEBHOOK_PATH = re.compile(r"^/api(?:/v\d+)?/webhooks/(\d{1,20})/([A-Za-z0-9_-]+)/?$")
REJECTED_WEBHOOK = "Discord rejected this webhook (unknown webhook or invalid token)"
# JSON error codes [C opcodes-and-status-codes.mdx].
UNKNOWN_MESSAGE, UNKNOWN_WEBHOOK = 10008, 10015


def parse_webhook_url(url: Any) -> tuple[str, str]:
    """``https://discord.com/api/webhooks/<id>/<token>`` -> (id, token), or ValueError.

    Messages never repeat the URL: it contains the token.
    """
    if not isinstance(url, str) or not url.strip():
        raise ValueError("webhookUrl is required (https://discord.com/api/webhooks/<id>/<token>)")
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise ValueError("webhookUrl is not a valid URL") from None
    host = (parts.hostname or "").lower()
    if parts.scheme != "https" or host not in WEBHOOK_HOSTS or parts.username or port not in (None, 443):
        raise ValueError(
            "webhookUrl must be an https URL on discord.com (or discordapp.com, canary.discord.com, "
            f"ptb.discord.com); got host {host or '(none)'!r}"
        )
    match = WEBHOOK_PATH.match(parts.path)
    if not match:
        raise ValueError("webhookUrl must look like https://discord.com/api/webhooks/<id>/<token>")
    return match.group(1), match.group(2)


def _embed_chars(embeds: list[Any]) -> int:
    total = 0
    for embed in embeds:
        if not isinstance(embed, dict):
            continue
        total += len(str(embed.get("title") or "")) + len(str(embed.get("description") or ""))
        total += len(str((embed.get("footer") or {}).get("text") or ""))
        total += len(str((embed.get("author") or {}).get("name") or ""))
        for f in embed.get("fields") or []:
            if isinstance(f, dict):
                total += len(str(f.get("name") or "")) + len(str(f.get("value") or ""))
    return total


def _flatten_errors(errors: Any, path: str = "") -> list[str]:
    """Discord 50035 bodies nest field errors: {"content": {"_errors": [{"message": ...}]}}."""
    if not isinstance(errors, dict):
        return []
    out = [
        f"{path or 'body'}: {e.get('message')}" for e in errors.get("_errors", []) if isinstance(e, dict)
    ]
    for key, sub in errors.items():
        if key != "_errors":
            out += _flatten_errors(sub, f"{path}.{key}" if path else str(key))
    return out


def classify(response: httpx.Response, token: str, *, publishing: bool = False) -> ProviderError:
    """The taxonomy error for a Discord error answer. Tokens are scrubbed from the text."""
    status = response.status_code
    body = json_body(response)
    code = body.get("code")
    text = str(body.get("message") or response.reason_phrase or "error")
    details = _flatten_errors(body.get("errors"))
    if details:
        text += " (" + "; ".join(details) + ")"
    text = f"Discord {status}" + (f" [{code}]" if code else "") + f": {text}"
    if token:
        text = text.replace(token, "***")
    if status == 429:
        # Body retry_after is float seconds; the Retry-After header is the fallback [C rate-limits.mdx].
        # Neither present (e.g. a Cloudflare ban page): wait a conservative 5 s (our choice).
        retry = body.get("retry_after")
        if not isinstance(retry, (int, float)):
            try:
                retry = float(response.headers.get("retry-after", ""))
            except ValueError:
                retry = 5.0
        return RateLimited(text, retry_after=retry)
    if status in (401, 403, 404):  # 50027 invalid token (401), 10015 unknown webhook (404) [C]
        return AuthExpired(f"{REJECTED_WEBHOOK}: {text}", http_status=status)
    if publishing and status == 504:
        # A gateway timeout means the origin may still have executed the webhook: not safe to retry.
        return OutcomeUnknown(f"{text}; the message may have been posted", http_status=status)
    if status >= 500:
        return ProviderUnavailable(text, http_status=status)
    # 400 50035 invalid form body, 50006 empty message, 413 40005 too large, other 4xx.
    return ContentRejected(text, http_status=status)


def _thread_of(request: PublishRequest) -> str | None:
    """The thread a post goes into: settings.threadId, else the parent of a reply. A reply is a
    message in the thread whose id is the parent's id -- a forum post's thread (thread_name) and
    a thread started from a message both take the starter message's id [U: not in providers.md]."""
    thread_id = (request.settings or {}).get("threadId") or request.reply_to
    return str(thread_id) if thread_id else None


class DiscordAdapter(Adapter):
    provider = "discord"
    limits = LIMITS
    shapes: ClassVar[list[str]] = ["text", "images", "videos", "files", "thread"]
    settings_fields: ClassVar[list[dict[str, Any]]] = [
        {"id": "threadId", "type": "string", "label": "Post into this thread (channel id)"},
        {"id": "threadName", "type": "string", "label": "Create a forum post with this title"},
        {"id": "allowMentions", "type": "boolean", "default": False,
         "label": "Let @everyone/@here/role mentions ping (off by default)"},
        {"id": "embeds", "type": "array", "label": "Discord embed objects (at most 10)"},
    ]

    # --- pure check ---------------------------------------------------------------------------

    @classmethod
    def check_post(cls, draft: PostDraft) -> list[Problem]:
        lim = cls.limits
        settings = draft.settings or {}
        problems = unknown_settings(settings, SETTINGS, "discord") + media_fit_problems(settings)
        text = draft.text or ""
        if len(text) > lim.max_text_chars:
            problems.append(Problem(
                field="description",
                message=f"{n(len(text))} characters, discord allows {n(lim.max_text_chars)}",
            ))
        embeds = settings.get("embeds")
        if embeds is not None:
            if not isinstance(embeds, list) or not all(isinstance(e, dict) for e in embeds):
                problems.append(Problem(field="settings.embeds", message="must be a list of embed objects"))
                embeds = []
            elif len(embeds) > MAX_EMBEDS:
                problems.append(Problem(
                    field="settings.embeds",
                    message=f"{n(len(embeds))} embeds, discord allows {MAX_EMBEDS}",
                ))
            elif (chars := _embed_chars(embeds)) > MAX_EMBED_CHARS:
                problems.append(Problem(
                    field="settings.embeds",
                    message=f"{n(chars)} characters across embeds, discord allows {n(MAX_EMBED_CHARS)}",
                ))
        # At least one of content, embeds, file (or components/poll, which we don't send) [C].
        # Whitespace-only content counts as empty [U].
        if not text.strip() and not draft.media and not embeds:
            problems.append(Problem(
                field="description", message="the post is empty: discord needs text, media or an embed"
            ))
        if len(draft.media) > lim.max_media:
            problems.append(Problem(
                field="assets",
                message=f"{n(len(draft.media))} files, discord allows {lim.max_media} attachments per message",
            ))
        for i, ref in enumerate(draft.media):
            # Images and videos get a rendition within 10 MiB (providers/media_profiles.py).
            if kind_of(ref) in ("image", "video"):
                continue
            if ref.size is not None and ref.size > lim.max_file_bytes:
                problems.append(Problem(
                    field=f"assets[{i}]",
                    message=f"{size_text(ref.size, binary=True)}, discord allows 10 MiB per file",
                ))
        problems += expect_bool(settings, "allowMentions")
        thread_id = settings.get("threadId")
        if thread_id is not None and not str(thread_id).isdigit():
            problems.append(Problem(field="settings.threadId", message="must be a Discord thread id (digits)"))
        name = settings.get("threadName")
        if name is not None:
            if not isinstance(name, str) or not name.strip():
                problems.append(Problem(field="settings.threadName", message="must be a non-empty string"))
            elif len(name) > MAX_THREAD_NAME:
                problems.append(Problem(
                    field="settings.threadName",
                    message=f"{n(len(name))} characters, discord allows {MAX_THREAD_NAME}",
                ))
            if thread_id is not None or draft.is_reply:
                problems.append(Problem(
                    field="settings.threadName",
                    message="threadName starts a new thread; it cannot be combined with threadId or a reply",
                ))
        return problems

    # --- calls --------------------------------------------------------------------------------

    def _webhook_url(self, credentials: dict[str, Any]) -> tuple[str, str]:
        token = str(credentials["webhook_token"])
        return f"{self.base_url}/webhooks/{credentials['webhook_id']}/{token}", token

    async def _get_webhook(self, webhook_id: str, token: str) -> dict[str, Any]:
        request = self.http.build_request("GET", f"{self.base_url}/webhooks/{webhook_id}/{token}")
        response = await send_readonly(self.http, request)
        if response.status_code in (401, 404):
            raise AuthExpired(REJECTED_WEBHOOK, http_status=response.status_code)
        if response.status_code != 200:
            raise classify(response, token)
        return json_body(response)

    async def connect(self, params: dict[str, Any]) -> AccountIdentity:
        webhook_id, token = parse_webhook_url(params.get("webhookUrl") or params.get("webhook_url"))
        hook = await self._get_webhook(webhook_id, token)
        guild_id = hook.get("guild_id")
        channel_id = hook.get("channel_id")
        return AccountIdentity(
            handle=f"discord:{webhook_id}",
            external_id=webhook_id,
            display_name=hook.get("name"),
            account_type="webhook",
            credentials={
                "webhook_id": webhook_id,
                "webhook_token": token,
                "guild_id": guild_id,  # not secret; kept here so publish can build message links
                "channel_id": channel_id,
            },
            metadata={"guild_id": guild_id, "channel_id": channel_id, "name": hook.get("name")},
        )

    async def check_credentials(self, credentials: dict[str, Any]) -> None:
        await self._get_webhook(str(credentials["webhook_id"]), str(credentials["webhook_token"]))

    def _result(self, credentials: dict[str, Any], message: dict[str, Any], status: int) -> PublishResult:
        mid = str(message["id"])
        guild = credentials.get("guild_id")
        channel = message.get("channel_id") or credentials.get("channel_id")
        # Message link format [3P]; a message in a thread links through the thread's channel id.
        url = f"https://discord.com/channels/{guild}/{channel}/{mid}" if guild and channel else None
        # A message in a thread (or a new forum post) answers with the thread as its channel [U];
        # replies to it go into that thread.
        thread = str(channel) if channel and channel != credentials.get("channel_id") else None
        return PublishResult(provider_post_id=mid, provider_url=url, http_status=status, provider_thread_id=thread)

    async def prepare_publish(self, credentials: dict[str, Any], request: PublishRequest) -> PreparedPublish:
        url, token = self._webhook_url(credentials)
        settings = request.settings or {}
        # Always wait=true: otherwise Discord answers 204 without the message and swallows
        # errors for unsaved messages [C webhook.mdx].
        params = {"wait": "true"}
        thread_id = _thread_of(request)
        if thread_id:
            params["thread_id"] = thread_id
        payload: dict[str, Any] = {}
        if request.text:
            payload["content"] = request.text
        if settings.get("allowMentions") is not True:
            payload["allowed_mentions"] = {"parse": []}  # no @everyone / role / user pings
        if settings.get("threadName"):
            payload["thread_name"] = settings["threadName"]
        if settings.get("embeds"):
            payload["embeds"] = settings["embeds"]
        if request.media:
            # Multipart: payload_json + files[i], attachments[i] carries the alt text [C reference.mdx].
            blobs = await read_media(request.media)
            payload["attachments"] = [
                {"id": i, "filename": m.filename, **({"description": m.alt_text} if m.alt_text else {})}
                for i, m in enumerate(request.media)
            ]
            http_request = self.http.build_request(
                "POST", url, params=params,
                data={"payload_json": json.dumps(payload)},
                files=[
                    (f"files[{i}]", (m.filename, blob, m.mime))
                    for i, (m, blob) in enumerate(zip(request.media, blobs))
                ],
            )
        else:
            http_request = self.http.build_request("POST", url, params=params, json=payload)

        def parse(response: httpx.Response) -> PublishResult:
            if response.status_code != 200:
                raise classify(response, token, publishing=True)
            return self._result(credentials, response.json(), response.status_code)

        return PreparedRequest(self.http, http_request, parse)

    async def reconcile(
        self, credentials: dict[str, Any], request: PublishRequest, provider_post_id: str | None
    ) -> ReconcileResult:
        if not provider_post_id:
            # Execute Webhook takes no idempotency key and a webhook token cannot list or search
            # channel messages (only GET one message by id) [C webhook.mdx]; without the id we
            # cannot tell whether an interrupted call posted.
            return ReconcileResult(
                state="unknowable",
                detail="Discord webhooks cannot list messages and have no idempotency key; "
                "check the channel by hand before posting again",
            )
        url, token = self._webhook_url(credentials)
        # A message inside a thread is only found with ?thread_id= [C webhook.mdx, Get Webhook
        # Message]; without it a 404 would wrongly prove absence and invite a duplicate post.
        thread_id = _thread_of(request)
        if not thread_id and (request.settings or {}).get("threadName"):
            thread_id = provider_post_id  # a forum post: the thread id is the starter message id
        params = {"thread_id": thread_id} if thread_id else None
        lookup = self.http.build_request("GET", f"{url}/messages/{provider_post_id}", params=params)
        response = await send_readonly(self.http, lookup)
        if response.status_code == 200:
            return ReconcileResult(state="found", result=self._result(credentials, response.json(), 200))
        if response.status_code == 404 and json_body(response).get("code") != UNKNOWN_WEBHOOK:
            return ReconcileResult(state="absent", detail="Discord: Unknown Message")
        raise classify(response, token)

    async def delete(self, credentials: dict[str, Any], provider_post_id: str) -> None:
        # Deleting a message that lives in a thread needs ?thread_id= [C webhook.mdx]; we only have
        # the message id here. So after a 404 we retry once as a forum post (whose thread id is its
        # own id). A reply posted into someone else's thread cannot be found this way: the 404 is
        # then taken as "already deleted" (a known limitation, see the report / README).
        url, token = self._webhook_url(credentials)
        for gone_statuses, params in (((404,), None), ((400, 404), {"thread_id": provider_post_id})):
            request = self.http.build_request("DELETE", f"{url}/messages/{provider_post_id}", params=params)
            response = await send_readonly(self.http, request)  # deleting twice is harmless
            if response.status_code in (200, 204):
                return
            unknown_webhook = json_body(response).get("code") == UNKNOWN_WEBHOOK
            if response.status_code not in gone_statuses or unknown_webhook:
                raise classify(response, token)
        # 10008 Unknown Message (10003 Unknown Channel / 400 for the thread probe): already deleted.
