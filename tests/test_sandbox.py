"""The provider sandbox over real HTTP: API shapes, inspection, faults, reset."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import time
from datetime import datetime

import httpx
import pytest

from tests.support import SSL_CONTEXT

TG = "777000111:AAF_sandbox-token-abcdefghijklmnopqrstu"
HOOK = "/discord/api/v10/webhooks/4242/tok-en_1"
@pytest.fixture(scope="module")
def api(sandbox_url):
    with httpx.Client(base_url=sandbox_url, timeout=10, verify=SSL_CONTEXT) as client:
        yield client


@pytest.fixture(autouse=True)
def _reset(clean_sandbox):
    """Every test starts from an empty sandbox."""


def deliveries(api, **params) -> list[dict]:
    return api.get("/_sandbox/deliveries", params=params).json()["deliveries"]


def fault(api, **body) -> dict:
    response = api.post("/_sandbox/faults", json=body)
    assert response.status_code == 201, response.text
    return response.json()["fault"]


def tg(api, method: str, **kw) -> httpx.Response:
    return api.post(f"/telegram/bot{TG}/{method}", **kw)


# --- inspection -------------------------------------------------------------------------------------


def test_health(api):
    assert api.get("/_sandbox/health").json() == {"ok": True}


def test_delivery_record_and_received_at(api):
    before = time.time()
    message = api.post(f"{HOOK}?wait=true", json={"content": "hello"}).json()
    after = time.time()
    [d] = deliveries(api)
    assert (d["id"], d["provider"], d["target"], d["text"], d["media"]) == (message["id"], "discord", "4242", "hello", [])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", d["receivedAt"])
    stamp = datetime.fromisoformat(d["receivedAt"].replace("Z", "+00:00")).timestamp()
    assert before - 0.001 <= stamp <= after


def test_deliveries_filters(api):
    api.post(f"{HOOK}?wait=true", json={"content": "d"})
    tg(api, "sendMessage", json={"chat_id": "@news", "text": "t"})
    tg(api, "sendMessage", json={"chat_id": 99, "text": "t2"})
    assert [d["provider"] for d in deliveries(api)] == ["discord", "telegram", "telegram"]
    assert [d["text"] for d in deliveries(api, provider="telegram")] == ["t", "t2"]
    assert [d["text"] for d in deliveries(api, provider="telegram", target="99")] == ["t2"]
    assert api.get("/_sandbox/deliveries", params={"provider": "myspace"}).status_code == 400


def test_reset_clears_everything(api):
    tg(api, "sendMessage", json={"chat_id": 5, "text": "one"})
    fault(api, provider="discord", kind="server_error")
    api.delete("/_sandbox")
    assert deliveries(api) == [] and api.get("/_sandbox/faults").json() == {"faults": []}
    assert tg(api, "sendMessage", json={"chat_id": 5, "text": "again"}).json()["result"]["message_id"] == 1


# --- faults ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("body", [
    None, [], {"provider": "myspace", "kind": "rate_limit"}, {"provider": "discord", "kind": "explode"},
    {"provider": "discord", "kind": "rate_limit", "count": 0},
    {"provider": "discord", "kind": "rate_limit", "count": "2"},
    {"provider": "discord", "kind": "rate_limit", "retryAfter": -1},
    {"provider": "discord", "kind": "timeout", "delaySeconds": "soon"},
    {"provider": "discord", "kind": "rate_limit", "colour": "red"},
    {"provider": "x", "kind": "slow"},  # emulated for Discord and Telegram only
])
def test_bad_fault_bodies(api, body):
    response = api.post("/_sandbox/faults", json=body)
    assert response.status_code == 400 and response.json()["error"]
    assert api.post("/_sandbox/faults", content=b"{nope").status_code == 400


def test_faults_count_fifo_and_listing(api):
    fault(api, provider="discord", kind="server_error", count=2)
    fault(api, provider="discord", kind="rate_limit", retryAfter=0.25)
    listed = api.get("/_sandbox/faults").json()["faults"]
    assert [(f["kind"], f["count"]) for f in listed] == [("server_error", 2), ("rate_limit", 1)]
    statuses = [api.post(f"{HOOK}?wait=true", json={"content": str(i)}).status_code for i in range(4)]
    assert statuses == [500, 500, 429, 200]
    assert [d["text"] for d in deliveries(api)] == ["3"]
    fault(api, provider="telegram", kind="server_error")
    api.delete("/_sandbox/faults")
    assert api.get("/_sandbox/faults").json() == {"faults": []}


def test_faults_only_hit_publishing_calls_and_their_target(api):
    fault(api, provider="discord", kind="auth_error", target="999")
    fault(api, provider="telegram", kind="server_error", target="@other")
    assert api.get(HOOK).status_code == 200  # not a publish
    assert api.post(f"{HOOK}?wait=true", json={"content": "x"}).status_code == 200  # other webhook
    assert tg(api, "getMe").status_code == 200
    assert tg(api, "sendMessage", json={"chat_id": "@news", "text": "x"}).status_code == 200
    assert api.post("/discord/api/v10/webhooks/999/t?wait=true", json={"content": "x"}).status_code == 401
    assert tg(api, "sendMessage", json={"chat_id": "@other", "text": "x"}).status_code == 500
    assert api.get("/_sandbox/faults").json() == {"faults": []}


def test_slow_answers_late_and_publishes_even_when_the_client_gives_up(api):
    fault(api, provider="discord", kind="slow", delaySeconds=0.6)
    started = time.monotonic()
    response = api.post(f"{HOOK}?wait=true", json={"content": "late"})
    assert response.status_code == 200 and time.monotonic() - started >= 0.55
    fault(api, provider="telegram", kind="slow", delaySeconds=0.6)
    with pytest.raises(httpx.ReadTimeout):
        tg(api, "sendMessage", json={"chat_id": "@news", "text": "abandoned"}, timeout=0.2)
    time.sleep(0.7)
    assert [d["text"] for d in deliveries(api)] == ["late", "abandoned"]


def test_discord_rate_limit_shape(api):
    fault(api, provider="discord", kind="rate_limit", retryAfter=1.5)
    response = api.post(f"{HOOK}?wait=true", json={"content": "x"})
    assert response.status_code == 429
    assert response.json() == {"message": "You are being rate limited.", "retry_after": 1.5, "global": False}
    headers = response.headers
    assert headers["retry-after"] == "2" and headers["x-ratelimit-reset-after"] == "1.500"
    for name in ("x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset", "x-ratelimit-bucket",
                 "x-ratelimit-scope"):
        assert name in headers


def test_telegram_fault_shapes(api):
    fault(api, provider="telegram", kind="rate_limit", retryAfter=3)
    fault(api, provider="telegram", kind="server_error")
    fault(api, provider="telegram", kind="auth_error")
    fault(api, provider="telegram", kind="reject_content", message="PHOTO_INVALID_DIMENSIONS")
    bodies = [tg(api, "sendMessage", json={"chat_id": 1, "text": "x"}).json() for _ in range(4)]
    assert bodies == [
        {"ok": False, "error_code": 429, "description": "Too Many Requests: retry after 3",
         "parameters": {"retry_after": 3}},
        {"ok": False, "error_code": 500, "description": "Internal Server Error"},
        {"ok": False, "error_code": 401, "description": "Unauthorized"},
        {"ok": False, "error_code": 400, "description": "Bad Request: PHOTO_INVALID_DIMENSIONS"},
    ]
    assert deliveries(api) == []


@pytest.mark.parametrize("provider", ["discord", "telegram"])
def test_timeout_holds_then_504_without_storing(api, provider):
    fault(api, provider=provider, kind="timeout", delaySeconds=0.3)
    started = time.monotonic()
    if provider == "discord":
        response = api.post(f"{HOOK}?wait=true", json={"content": "x"})
    else:
        response = tg(api, "sendMessage", json={"chat_id": 1, "text": "x"})
    assert response.status_code == 504 and time.monotonic() - started >= 0.3
    assert deliveries(api) == []


@pytest.mark.parametrize("provider", ["discord", "telegram"])
def test_drop_after_accept_stores_once_and_breaks_the_response(api, provider):
    fault(api, provider=provider, kind="drop_after_accept")
    with pytest.raises(httpx.RemoteProtocolError):
        if provider == "discord":
            api.post(f"{HOOK}?wait=true", json={"content": "kept"})
        else:
            tg(api, "sendMessage", json={"chat_id": 1, "text": "kept"})
    assert [d["text"] for d in deliveries(api)] == ["kept"]


# --- discord ------------------------------------------------------------------------------------------------


def test_discord_webhook_object_and_auth(api):
    hook = api.get("/discord/api/webhooks/4242/tok-en_1").json()  # unversioned path too
    assert hook["id"] == "4242" and hook["type"] == 1 and hook["token"] == "tok-en_1"
    assert hook["guild_id"] == api.get(HOOK).json()["guild_id"]  # deterministic
    assert api.patch(HOOK, json={"name": "Renamed"}).json()["name"] == "Renamed"
    assert api.get("/discord/api/v10/webhooks/4242/invalid-x").json() == {"message": "Invalid Webhook Token", "code": 50027}
    assert api.get("/discord/api/v10/webhooks/abc/t").status_code == 400


def test_discord_validation(api):
    assert api.post(f"{HOOK}?wait=true", json={"content": "x" * 2000}).status_code == 200
    too_long = api.post(f"{HOOK}?wait=true", json={"content": "x" * 2001})
    assert too_long.status_code == 400 and too_long.json() == {
        "message": "Invalid Form Body", "code": 50035,
        "errors": {"content": {"_errors": [{"code": "BASE_TYPE_MAX_LENGTH", "message": "Must be 2000 or fewer in length."}]}},
    }
    empty = api.post(f"{HOOK}?wait=true", json={"content": ""})
    assert empty.status_code == 400 and empty.json()["code"] == 50006
    assert api.post(f"{HOOK}?wait=true", content=b"{", headers={"content-type": "application/json"}).status_code == 400
    big = api.post(f"{HOOK}?wait=true", files={"files[0]": ("a.bin", b"\0" * (10 * 1024 * 1024 + 1))})
    assert big.status_code == 413 and big.json()["code"] == 40005
    many = api.post(f"{HOOK}?wait=true", files=[(f"files[{i}]", (f"{i}.txt", b"x")) for i in range(11)])
    assert many.status_code == 400 and many.json()["code"] == 50035
    assert len(deliveries(api)) == 1


def test_discord_wait_false_and_multipart(api):
    assert api.post(HOOK, json={"content": "fire and forget"}).status_code == 204
    response = api.post(
        f"{HOOK}?wait=true",
        data={"payload_json": '{"content": "pic", "attachments": [{"id": 0, "filename": "p.png", "description": "alt"}]}'},
        files={"files[0]": ("p.png", b"\x89PNG-bytes", "image/png")},
    )
    message = response.json()
    assert message["attachments"][0] | {"id": None, "url": None, "proxy_url": None} == {
        "id": None, "filename": "p.png", "size": 10, "url": None, "proxy_url": None,
        "content_type": "image/png", "description": "alt",
    }
    d = deliveries(api)
    assert [x["text"] for x in d] == ["fire and forget", "pic"]
    assert d[1]["media"] == [{"sha256": hashlib.sha256(b"\x89PNG-bytes").hexdigest(), "mime": "image/png",
                              "size": 10, "filename": "p.png"}]


def test_discord_messages_get_delete(api):
    message = api.post(f"{HOOK}?wait=true", json={"content": "m"}).json()
    url = f"{HOOK}/messages/{message['id']}"
    assert api.get(url).json() == message
    assert api.get(f"/discord/api/v10/webhooks/5555/tok/messages/{message['id']}").status_code == 404
    assert api.delete(url).status_code == 204
    assert api.get(url).json() == {"message": "Unknown Message", "code": 10008}
    assert api.delete(url).status_code == 404
    assert deliveries(api)[0]["deleted"] is True  # kept, marked


def test_discord_thread_messages_need_thread_id(api):
    message = api.post(f"{HOOK}?wait=true&thread_id=31337", json={"content": "t"}).json()
    assert message["channel_id"] == "31337"
    url = f"{HOOK}/messages/{message['id']}"
    assert api.get(url).status_code == 404
    assert api.get(url, params={"thread_id": "31337"}).status_code == 200
    forum = api.post(f"{HOOK}?wait=true", json={"content": "post", "thread_name": "Topic"}).json()
    assert forum["channel_id"] == forum["id"]  # a forum post's thread id is its starter message id


def test_discord_snowflakes_increase(api):
    ids = [int(api.post(f"{HOOK}?wait=true", json={"content": str(i)}).json()["id"]) for i in range(5)]
    assert ids == sorted(set(ids))


# --- telegram ---------------------------------------------------------------------------------------------


def test_telegram_token_and_method_routing(api):
    assert api.get("/telegram/bot123:short/getMe").json() == {"ok": False, "error_code": 404, "description": "Not Found"}
    bad = api.get("/telegram/bot123:invalid-abcdefghijklmnopqrstuvwxyz0123/getMe")
    assert bad.status_code == 401 and bad.json()["description"] == "Unauthorized"
    assert api.get(f"/telegram/bot{TG}/getNothing").status_code == 404
    me = api.get(f"/telegram/bot{TG}/getme").json()["result"]  # method names are case-insensitive
    assert me["id"] == 777000111 and me["is_bot"] is True


def test_telegram_chats(api):
    channel = api.get(f"/telegram/bot{TG}/getChat", params={"chat_id": "@News_Room"}).json()["result"]
    assert channel["type"] == "channel" and channel["username"] == "News_Room" and str(channel["id"]).startswith("-100")
    again = tg(api, "getChat", data={"chat_id": str(channel["id"])}).json()["result"]  # urlencoded
    assert again == channel
    assert tg(api, "getChat", json={"chat_id": -1001234567890}).json()["result"]["type"] == "channel"
    assert tg(api, "getChat", json={"chat_id": 42}).json()["result"]["type"] == "private"
    assert tg(api, "getChat", json={"chat_id": "nope"}).json()["description"] == "Bad Request: chat not found"


def test_telegram_send_message_rules(api):
    ok = tg(api, "sendMessage", json={"chat_id": 7, "text": "x" * 4096}).json()
    assert ok["ok"] is True and ok["result"]["message_id"] == 1 and ok["result"]["chat"]["id"] == 7
    assert tg(api, "sendMessage", json={"chat_id": 7, "text": "x" * 4097}).json()["description"] == (
        "Bad Request: message is too long")
    assert tg(api, "sendMessage", json={"chat_id": 7, "text": ""}).json()["description"] == (
        "Bad Request: message text is empty")
    html = "<b>" + "x" * 4096 + "</b>"
    assert tg(api, "sendMessage", json={"chat_id": 7, "text": html, "parse_mode": "HTML"}).json()["ok"] is True
    reply = tg(api, "sendMessage", data={"chat_id": "7", "text": "re",
                                          "reply_parameters": '{"message_id": 1}'}).json()["result"]
    assert reply["message_id"] == 3 and reply["reply_to_message"]["message_id"] == 1
    orphan = tg(api, "sendMessage", json={"chat_id": 7, "text": "re", "reply_parameters": {"message_id": 99}})
    assert orphan.json()["description"] == "Bad Request: message to be replied not found"
    assert deliveries(api)[-1]["replyToMessageId"] == 1


def _png(width: int, height: int) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("L", (width, height), 128).save(buf, "PNG")
    return buf.getvalue()


def test_telegram_send_photo_and_caption(api):
    photo = _png(5, 7)
    result = tg(api, "sendPhoto", data={"chat_id": "@pics", "caption": "c" * 1024},
                files={"photo": ("p.png", photo, "image/png")}).json()["result"]
    assert result["photo"][0]["width"] == 5 and result["photo"][0]["height"] == 7
    assert result["caption"] == "c" * 1024
    long_caption = tg(api, "sendPhoto", data={"chat_id": "@pics", "caption": "c" * 1025},
                      files={"photo": ("p.png", photo, "image/png")})
    assert long_caption.json()["description"] == "Bad Request: message caption is too long"
    assert tg(api, "sendPhoto", json={"chat_id": "@pics"}).json()["description"] == (
        "Bad Request: there is no photo in the request")
    [d] = deliveries(api)
    assert d["media"][0]["sha256"] == hashlib.sha256(photo).hexdigest() and d["media"][0]["size"] == len(photo)
    assert d["media"][0]["image"] == {"format": "PNG", "width": 5, "height": 7, "exif": False, "gps": False}


def test_telegram_photo_dimension_rules(api):
    # Bot API sendPhoto: width + height <= 10,000 and a side ratio of at most 20.
    for size in ((6000, 4001), (2100, 100)):
        r = tg(api, "sendPhoto", data={"chat_id": "@pics"}, files={"photo": ("p.png", _png(*size), "image/png")})
        assert r.json()["description"] == "Bad Request: PHOTO_INVALID_DIMENSIONS", size
    assert tg(api, "sendPhoto", data={"chat_id": "@pics"},
              files={"photo": ("p.png", _png(6000, 4000), "image/png")}).json()["ok"] is True
    not_an_image = tg(api, "sendPhoto", data={"chat_id": "@pics"}, files={"photo": ("p.png", b"GIF89a" + b"\0" * 9, "image/png")})
    assert not_an_image.json()["description"] == "Bad Request: IMAGE_PROCESS_FAILED"
    assert len(deliveries(api)) == 1


def test_telegram_media_group(api):
    files = {f"f{i}": (f"{i}.png", _png(4 + i, 4), "image/png") for i in range(3)}
    media = [{"type": "photo", "media": f"attach://f{i}"} for i in range(3)]
    media[0]["caption"] = "album"
    result = tg(api, "sendMediaGroup", data={"chat_id": "@pics", "media": json.dumps(media)}, files=files).json()
    assert [m["message_id"] for m in result["result"]] == [1, 2, 3]
    assert len({m["media_group_id"] for m in result["result"]}) == 1
    [d] = deliveries(api)
    assert d["id"] == "1" and d["text"] == "album" and len(d["media"]) == 3

    def group(items, **extra):
        return tg(api, "sendMediaGroup", data={"chat_id": "@pics", "media": json.dumps(items)},
                  files=files, **extra).json()

    assert group(media[:1])["ok"] is False
    assert group([{"type": "photo", "media": "attach://f0"}] * 11)["ok"] is False
    mixed = group([{"type": "photo", "media": "attach://f0"}, {"type": "document", "media": "attach://f1"}])
    assert mixed["ok"] is False and "mixed" in mixed["description"]
    assert group([{"type": "photo", "media": "attach://zz"}, media[1]])["description"] == (
        "Bad Request: wrong file identifier/HTTP URL specified")
    assert len(deliveries(api)) == 1


def test_telegram_delete_message(api):
    tg(api, "sendMessage", json={"chat_id": 3, "text": "x"})
    assert tg(api, "deleteMessage", json={"chat_id": 3, "message_id": 1}).json() == {"ok": True, "result": True}
    again = tg(api, "deleteMessage", json={"chat_id": 3, "message_id": 1}).json()
    assert again["description"] == "Bad Request: message to delete not found"
    assert deliveries(api)[0]["deleted"] is True


# --- load ---------------------------------------------------------------------------------------------------


async def test_burst_of_concurrent_posts(sandbox_url):
    limits = httpx.Limits(max_connections=50)
    async with httpx.AsyncClient(base_url=sandbox_url, limits=limits, timeout=30, verify=SSL_CONTEXT) as client:
        await client.delete("/_sandbox")
        started = time.monotonic()
        responses = await asyncio.gather(*[
            client.post(f"{HOOK}?wait=true", json={"content": f"m{i}"}) for i in range(100)
        ] + [
            client.post(f"/telegram/bot{TG}/sendMessage", json={"chat_id": "@burst", "text": f"t{i}"})
            for i in range(100)
        ])
        elapsed = time.monotonic() - started
        assert all(r.status_code == 200 for r in responses)
        listed = (await client.get("/_sandbox/deliveries")).json()["deliveries"]
    assert len(listed) == 200 and len({(d["provider"], d["id"]) for d in listed}) == 200
    assert sorted(int(d["id"]) for d in listed if d["provider"] == "telegram") == list(range(1, 101))
    assert elapsed < 10
