"""TelegramAdapter against the real sandbox over HTTP (uvicorn on a loopback port)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx
import pytest

from providers.base import (
    AuthExpired,
    ContentRejected,
    MediaFile,
    MediaRef,
    OutcomeUnknown,
    PostDraft,
    ProviderError,
    ProviderUnavailable,
    PublishRequest,
    RateLimited,
)
from providers.telegram import LIMITS, TelegramAdapter, classify, message_url
from tests.support import SSL_CONTEXT

TOKEN = "4242424242:AAH-secret_part_abcdefghijklmnopqrstuv"
BAD_TOKEN = "4242424242:invalid_secret_abcdefghijklmnopqrstuv"


# --- fixtures -------------------------------------------------------------------------------------


# One inspection client for the module (the sandbox itself is the session's, from conftest).
API = httpx.Client(timeout=10, verify=SSL_CONTEXT)


@pytest.fixture(autouse=True)
def _reset(clean_sandbox):
    """Every test starts from an empty sandbox."""


@pytest.fixture
def adapter(sandbox_url, http):
    return TelegramAdapter(http, f"{sandbox_url}/telegram")


@pytest.fixture
async def creds(adapter):
    return (await adapter.connect({"botToken": TOKEN, "chatId": "@heraldnews"})).credentials


def deliveries(sandbox_url) -> list[dict]:
    return API.get(f"{sandbox_url}/_sandbox/deliveries", params={"provider": "telegram"}).json()["deliveries"]


def fault(sandbox_url, **body) -> None:
    API.post(f"{sandbox_url}/_sandbox/faults", json={"provider": "telegram", **body}).raise_for_status()


def media_file(tmp_path: Path, name: str, data: bytes, mime: str, kind: str) -> MediaFile:
    path = tmp_path / name
    path.write_bytes(data)
    return MediaFile(path=str(path), filename=name, mime=mime, size=len(data),
                     sha256=hashlib.sha256(data).hexdigest(), kind=kind)


def _png() -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (3, 3), "red").save(buf, "PNG")
    return buf.getvalue()


# A real (tiny) PNG: the sandbox, like Telegram, refuses a photo it cannot decode.
PNG = _png()
MP4 = b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 100


def assert_no_token(exc: BaseException) -> None:
    secret = TOKEN.split(":")[1]
    for text in (str(exc), repr(exc), getattr(exc, "message", "")):
        assert TOKEN not in text and secret not in text and BAD_TOKEN not in text


# --- check_post -------------------------------------------------------------------------------------


def check(**kw) -> list[tuple[str, str]]:
    return [(p.field, p.message) for p in TelegramAdapter.check_post(PostDraft(provider="telegram", **kw))]


def refs(*names: str, size: int | None = None) -> list[MediaRef]:
    return [MediaRef(url=f"https://cdn.example/{n}", size=size) for n in names]


def test_limits():
    assert (LIMITS.max_text_chars, LIMITS.max_caption_chars, LIMITS.max_media, LIMITS.min_media_group) == (
        4096, 1024, 10, 2)
    assert LIMITS.max_file_bytes == 50_000_000 and LIMITS.max_bytes_by_kind == {"image": 10_000_000}
    assert "ptb" in LIMITS.source


def test_check_post_text_boundaries():
    assert check(text="x" * 4096) == []
    assert check(text="x" * 4097) == [("description", "4,097 characters, telegram allows 4,096")]
    assert check(text="", media=refs("a.png")) == []
    assert check(text="x" * 1024, media=refs("a.png")) == []
    assert check(text="x" * 1025, media=refs("a.png")) == [
        ("description", "1,025 characters, telegram allows 1,024 in a caption (posts with media)")
    ]
    assert check(text="") == [("description", "the post is empty: telegram needs text or media")]
    # Limits count text after entity parsing: HTML tags are not characters.
    assert check(text="<b>" + "x" * 4096 + "</b>", settings={"parseMode": "HTML"}) == []
    assert check(text="<b>" + "x" * 4096 + "</b>") != []


def test_check_post_media_groups():
    assert check(text="t", media=refs(*[f"{i}.jpg" for i in range(10)])) == []
    assert check(text="t", media=refs(*[f"{i}.jpg" for i in range(11)])) == [
        ("assets", "11 media items, telegram allows up to 10 in one album")
    ]
    assert check(text="t", media=refs("a.jpg", "b.mp4")) == []  # photos and videos mix
    assert check(text="t", media=refs("a.pdf", "b.zip")) == []  # documents with documents
    assert check(text="t", media=refs("a.mp3", "b.ogg")) == []
    assert check(text="t", media=refs("a.jpg", "b.pdf")) == [
        ("assets", "telegram albums cannot mix documents with other media types")
    ]
    assert check(text="t", media=refs("a.mp3", "b.jpg")) == [
        ("assets", "telegram albums cannot mix audio files with other media types")
    ]
    # kind may be None: inferred from mime first, then the extension; unknown -> other (document).
    mixed = [MediaRef(url="https://x/blob", mime="image/png"), MediaRef(url="https://x/blob2")]
    assert check(text="t", media=mixed)[0][0] == "assets"
    assert check(text="t", media=[MediaRef(url="https://x/a", kind="video"), MediaRef(url="https://x/b.png")]) == []


def test_check_post_sizes():
    # Files sent as they are (documents, audio) are held to the upload limit here; photos and
    # videos are not, since Herald makes a rendition that fits (the media profile check).
    assert check(text="t", media=refs("a.pdf", size=50_000_000)) == []
    assert check(text="t", media=refs("a.pdf", "b.pdf", size=50_000_001))[1] == (
        "assets[1]", "50.0 MB (50,000,001 bytes), telegram allows 50 MB for files"
    )
    assert check(text="t", media=refs("a.png", size=30_000_000)) == []
    assert check(text="t", media=refs("a.mp4", size=80_000_000)) == []


def test_check_post_settings():
    assert check(text="t", settings={"mediaFit": "pad"}) == []
    assert check(text="t", settings={"mediaFit": "stretch"}) == [("settings.mediaFit", "must be one of pad, crop")]
    assert check(text="t", settings={"parseMode": "HTML", "silent": True, "disableLinkPreview": False}) == []
    problems = check(text="t", settings={"parse_mode": "HTML", "parseMode": "html", "silent": 1})
    assert [f for f, _ in problems] == ["settings.parse_mode", "settings.parseMode", "settings.silent"]
    assert "unknown telegram setting 'parse_mode' (supported: disableLinkPreview, mediaFit, parseMode, silent)" == problems[0][1]


def test_message_url():
    assert message_url({"id": -1001234, "username": "chan"}, 5) == "https://t.me/chan/5"
    assert message_url({"id": -1001234567890}, 5) == "https://t.me/c/1234567890/5"
    assert message_url({"id": 42}, 5) is None


# --- connect -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("params", [
    {"botToken": "123:short", "chatId": "@chan"},
    {"botToken": "abc:" + "x" * 40, "chatId": "@chan"},
    {"botToken": TOKEN, "chatId": "not a chat"},
    {"botToken": TOKEN},
    {},
])
async def test_connect_validates_before_any_request(params):
    calls = []
    transport = httpx.MockTransport(lambda request: calls.append(request) or httpx.Response(500))
    async with httpx.AsyncClient(transport=transport, verify=SSL_CONTEXT) as client:
        with pytest.raises(ValueError) as info:
            await TelegramAdapter(client, "https://api.telegram.org").connect(params)
    assert calls == []
    assert_no_token(info.value)


async def test_connect_channel(adapter, sandbox_url):
    identity = await adapter.connect({"bot_token": TOKEN, "chat_id": "@heraldnews"})
    chat = API.post(f"{sandbox_url}/telegram/bot{TOKEN}/getChat", json={"chat_id": "@heraldnews"}).json()["result"]
    assert str(chat["id"]).startswith("-100")
    assert identity.handle == f"telegram:{chat['id']}"
    assert identity.external_id == str(chat["id"])
    assert identity.display_name == chat["title"]
    assert identity.account_type == "channel"
    assert identity.credentials == {"bot_token": TOKEN, "chat_id": chat["id"]}
    assert identity.metadata == {
        "bot_username": "herald_sandbox_4242424242_bot", "chat_username": "heraldnews", "chat_type": "channel",
    }


async def test_connect_private_chat(adapter):
    identity = await adapter.connect({"botToken": TOKEN, "chatId": 5551234})
    assert identity.handle == "telegram:5551234" and identity.account_type == "private"


async def test_connect_rejected_token(adapter):
    with pytest.raises(AuthExpired) as info:
        await adapter.connect({"botToken": BAD_TOKEN, "chatId": "@chan"})
    assert "401" in info.value.message
    assert_no_token(info.value)


async def test_check_credentials(adapter, creds):
    await adapter.check_credentials(creds)
    with pytest.raises(AuthExpired):
        await adapter.check_credentials({**creds, "bot_token": BAD_TOKEN})


# --- publish ---------------------------------------------------------------------------------------------


async def test_publish_text(adapter, creds, sandbox_url):
    request = PublishRequest(post_id="p", text="<b>hi</b> https://example.com",
                             settings={"parseMode": "HTML", "silent": True, "disableLinkPreview": True})
    result = await adapter.publish(creds, request)
    [d] = deliveries(sandbox_url)
    assert d["id"] == result.provider_post_id == "1"
    assert d["target"] == str(creds["chat_id"]) and d["text"] == "<b>hi</b> https://example.com"
    assert d["method"] == "sendMessage"
    assert d["payload"]["parse_mode"] == "HTML"
    assert d["payload"]["disable_notification"] is True
    assert d["payload"]["link_preview_options"] == {"is_disabled": True}
    assert result.provider_url == "https://t.me/heraldnews/1" and result.http_status == 200
    second = await adapter.publish(creds, PublishRequest(post_id="q", text="next"))
    assert second.provider_post_id == "2"  # sequential per chat


async def test_private_channel_url(adapter):
    creds = (await adapter.connect({"botToken": TOKEN, "chatId": "-1009876543210"})).credentials
    result = await adapter.publish(creds, PublishRequest(post_id="p", text="hi"))
    assert result.provider_url == "https://t.me/c/9876543210/1"


async def test_reply_parameters_reach_the_sandbox(adapter, creds, sandbox_url):
    parent = await adapter.publish(creds, PublishRequest(post_id="a", text="parent"))
    await adapter.publish(creds, PublishRequest(post_id="b", text="child", reply_to=parent.provider_post_id))
    d = deliveries(sandbox_url)[1]
    assert d["replyToMessageId"] == int(parent.provider_post_id)
    assert d["payload"]["reply_parameters"] == {
        "message_id": int(parent.provider_post_id), "allow_sending_without_reply": False,
    }
    with pytest.raises(ContentRejected) as info:
        await adapter.publish(creds, PublishRequest(post_id="c", text="orphan", reply_to="999"))
    assert "message to be replied not found" in info.value.message


@pytest.mark.parametrize("name, data, mime, kind, method", [
    ("a.png", PNG, "image/png", "image", "sendPhoto"),
    ("b.mp4", MP4, "video/mp4", "video", "sendVideo"),
    ("c.mp3", b"ID3" + b"\0" * 50, "audio/mpeg", "audio", "sendAudio"),
    ("d.pdf", b"%PDF-1.4" + b"\0" * 50, "application/pdf", "other", "sendDocument"),
])
async def test_publish_single_media(adapter, creds, sandbox_url, tmp_path, name, data, mime, kind, method):
    media = media_file(tmp_path, name, data, mime, kind)
    result = await adapter.publish(creds, PublishRequest(post_id="p", text="caption", media=[media]))
    [d] = deliveries(sandbox_url)
    assert d["method"] == method and d["text"] == "caption" and d["id"] == result.provider_post_id
    received = {k: d["media"][0][k] for k in ("sha256", "mime", "size", "filename")}
    assert received == {"sha256": media.sha256, "mime": mime, "size": len(data), "filename": name}
    assert len(d["media"]) == 1


async def test_media_group_of_three(adapter, creds, sandbox_url, tmp_path):
    media = [
        media_file(tmp_path, "a.png", PNG, "image/png", "image"),
        media_file(tmp_path, "b.mp4", MP4, "video/mp4", "video"),
        media_file(tmp_path, "c.png", PNG + b"c", "image/png", "image"),
    ]
    result = await adapter.publish(creds, PublishRequest(post_id="p", text="album", media=media,
                                                         settings={"parseMode": "HTML"}))
    [d] = deliveries(sandbox_url)  # one delivery, several media items
    assert d["method"] == "sendMediaGroup" and d["text"] == "album"
    assert d["messageIds"] == [1, 2, 3] and result.provider_post_id == "1"
    assert [m["sha256"] for m in d["media"]] == [m.sha256 for m in media]
    assert [i["type"] for i in d["payload"]["media"]] == ["photo", "video", "photo"]
    assert d["payload"]["media"][0]["caption"] == "album" and "caption" not in d["payload"]["media"][1]
    assert result.provider_url == "https://t.me/heraldnews/1"


async def test_provider_validation_is_content_rejected(adapter, creds, tmp_path):
    with pytest.raises(ContentRejected) as info:
        await adapter.publish(creds, PublishRequest(post_id="p", text="x" * 4097))
    assert info.value.message == "Telegram 400: Bad Request: message is too long"
    png = media_file(tmp_path, "a.png", PNG, "image/png", "image")
    with pytest.raises(ContentRejected) as info:
        await adapter.publish(creds, PublishRequest(post_id="p", text="x" * 1025, media=[png]))
    assert "caption is too long" in info.value.message
    with pytest.raises(ContentRejected):
        await adapter.publish(creds, PublishRequest(post_id="p", text="   "))


# --- faults -----------------------------------------------------------------------------------------------


async def test_rate_limit(adapter, creds, sandbox_url):
    fault(sandbox_url, kind="rate_limit", retryAfter=7)
    with pytest.raises(RateLimited) as info:
        await adapter.publish(creds, PublishRequest(post_id="p", text="hi"))
    assert info.value.retry_after == 7 and "retry after 7" in info.value.message
    assert deliveries(sandbox_url) == []


@pytest.mark.parametrize("kind, exc, text", [
    ("server_error", ProviderUnavailable, "Internal Server Error"),
    ("auth_error", AuthExpired, "401"),
    ("reject_content", ContentRejected, "Bad Request: message rejected by a sandbox fault"),
])
async def test_fault_kinds(adapter, creds, sandbox_url, kind, exc, text):
    fault(sandbox_url, kind=kind)
    with pytest.raises(exc) as info:
        await adapter.publish(creds, PublishRequest(post_id="p", text="hi"))
    assert text in info.value.message
    assert deliveries(sandbox_url) == []


async def test_drop_after_accept_media_group(adapter, creds, sandbox_url, tmp_path):
    media = [media_file(tmp_path, f"{i}.png", PNG + bytes([i]), "image/png", "image") for i in range(2)]
    fault(sandbox_url, kind="drop_after_accept")
    with pytest.raises(OutcomeUnknown):
        await adapter.publish(creds, PublishRequest(post_id="p", text="maybe", media=media))
    [d] = deliveries(sandbox_url)
    assert len(d["media"]) == 2


async def test_timeout_is_outcome_unknown(sandbox_url, creds):
    fault(sandbox_url, kind="timeout", delaySeconds=1)
    async with httpx.AsyncClient(timeout=0.3, verify=SSL_CONTEXT) as client:
        with pytest.raises(OutcomeUnknown) as info:
            await TelegramAdapter(client, f"{sandbox_url}/telegram").publish(
                creds, PublishRequest(post_id="p", text="slow"))
    assert_no_token(info.value)
    assert deliveries(sandbox_url) == []


def test_classify_other_answers():
    def resp(status, **body):
        return httpx.Response(status, json={"ok": False, "error_code": status, **body})

    migrated = classify(resp(400, description="Bad Request: group chat was upgraded to a supergroup chat",
                             parameters={"migrate_to_chat_id": -1001111}), TOKEN)
    assert isinstance(migrated, AuthExpired) and "supergroup with the new chat id -1001111" in migrated.message
    assert isinstance(classify(resp(404, description="Not Found"), TOKEN), AuthExpired)
    kicked = classify(resp(403, description="Forbidden: bot was kicked from the channel chat"), TOKEN)
    assert isinstance(kicked, AuthExpired) and "kicked" in kicked.message
    assert isinstance(classify(resp(502, description="Bad Gateway"), TOKEN), ProviderUnavailable)
    assert isinstance(classify(resp(504, description="Gateway Timeout"), TOKEN, publishing=True), OutcomeUnknown)
    echoed = classify(resp(400, description=f"Bad Request: weird {TOKEN}"), TOKEN)
    assert TOKEN not in echoed.message


# --- delete / reconcile ---------------------------------------------------------------------------------------


async def test_delete(adapter, creds, sandbox_url):
    result = await adapter.publish(creds, PublishRequest(post_id="p", text="bye"))
    await adapter.delete(creds, result.provider_post_id)
    assert deliveries(sandbox_url)[0]["deleted"] is True
    await adapter.delete(creds, result.provider_post_id)  # "message to delete not found": fine
    with pytest.raises(AuthExpired):
        await adapter.delete({**creds, "bot_token": BAD_TOKEN}, result.provider_post_id)


async def test_reconcile_is_unknowable(adapter, creds):
    request = PublishRequest(post_id="p", text="hi")
    result = await adapter.publish(creds, request)
    for post_id in (result.provider_post_id, None):
        outcome = await adapter.reconcile(creds, request, post_id)
        assert outcome.state == "unknowable" and "cannot read messages back" in outcome.detail


async def test_no_token_in_any_error(adapter, creds, sandbox_url, tmp_path):
    errors: list[ProviderError] = []
    for kind in ("rate_limit", "server_error", "auth_error", "reject_content", "drop_after_accept"):
        fault(sandbox_url, kind=kind)
        try:
            await adapter.publish(creds, PublishRequest(post_id="p", text="t"))
        except ProviderError as exc:
            errors.append(exc)
    bad = {**creds, "bot_token": BAD_TOKEN}
    for call in (adapter.check_credentials(bad), adapter.delete(bad, "1"),
                 adapter.publish(bad, PublishRequest(post_id="p", text="t")),
                 adapter.publish({**creds, "bot_token": "1:" + "y" * 40 + "/"}, PublishRequest(post_id="p", text="t"))):
        try:
            await call
        except ProviderError as exc:
            errors.append(exc)
    assert len(errors) == 9
    for exc in errors:
        assert_no_token(exc)
    prepared = await adapter.prepare_publish(creds, PublishRequest(post_id="p", text="t"))
    assert TOKEN not in repr(prepared)


async def test_httpx_request_logs_are_redacted(adapter, creds, caplog):
    with caplog.at_level("INFO", logger="httpx"):
        await adapter.publish(creds, PublishRequest(post_id="p", text="logged"))
    assert "HTTP Request" in caplog.text and "/bot<redacted>/sendMessage" in caplog.text
    assert TOKEN.split(":")[1] not in caplog.text
