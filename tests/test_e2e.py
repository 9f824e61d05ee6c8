"""End to end over HTTP: `herald dev` (a real Temporal dev server, worker, API and sandbox in
their own processes), driven only through the public API and the sandbox's inspection routes."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from datetime import datetime, timedelta

import httpx
import pytest

from tests.e2e_stack import Stack, _sha, assert_error, at, deliveries, wait_post
from tests.support import DISCORD_WEBHOOK, TELEGRAM_TOKEN, wait_for

pytestmark = pytest.mark.e2e


# --- status, keys, auth -------------------------------------------------------------------------


def test_health_reports_polling_workers(stack: Stack) -> None:
    body = httpx.get(f"{stack.api}/health").json()
    assert body["ok"] is True and body["status"] == "ok"
    assert body["db"]["ok"] and body["temporal"]["ok"]
    assert body["workers"]["queues"]["workflow"]["pollers"] >= 1
    assert body["workers"]["queues"]["activity"]["pollers"] >= 1


def test_keys_lifecycle_and_both_auth_headers(stack: Stack, api: httpx.Client) -> None:
    r = api.post("/v1/keys/validate")
    assert r.status_code == 200 and r.json()["tenant"]["name"] == "default"
    created = api.post("/v1/keys", json={"label": "agent"})
    assert created.status_code == 201
    new = created.json()["key"]
    assert new["secret"].startswith(new["prefix"])
    listed = api.get("/v1/keys").json()["keys"]
    assert new["id"] in [k["id"] for k in listed]
    assert all("secret" not in k for k in listed) and new["secret"] not in api.get("/v1/keys").text
    other = httpx.Client(base_url=stack.api, headers={"X-API-Key": new["secret"]})
    assert other.post("/v1/keys/validate").status_code == 200
    assert_error(other.delete(f"/v1/keys/{new['id']}"), 409, "cannot_revoke_self")
    assert api.delete(f"/v1/keys/{new['id']}").json()["key"]["revokedAt"]
    assert_error(other.post("/v1/keys/validate"), 401, "invalid_api_key")
    assert_error(httpx.get(f"{stack.api}/v1/posts"), 401, "unauthorized")


def test_errors_always_have_the_documented_shape(stack: Stack, api: httpx.Client) -> None:
    assert_error(api.get("/v1/nope"), 404, "not_found")
    assert_error(api.put("/v1/posts/validate"), 405, "method_not_allowed")
    assert_error(api.post("/v1/posts/validate", content=b"{not json", headers={"content-type": "application/json"}), 422)
    assert_error(api.get("/v1/posts", params={"limit": "-1"}), 422, "invalid_request")
    # Found by the fuzzer: an offset beyond a 64-bit integer was a 500.
    assert_error(api.get("/v1/posts", params={"offset": str(10**27)}), 422, "invalid_request")
    assert_error(api.get("/v1/jobs", params={"offset": str(10**27)}), 422, "invalid_request")
    assert_error(api.get("/v1/posts", params={"from": "yesterday"}), 400, "invalid_request")
    assert_error(api.get("/v1/posts/post_doesnotexist"), 404, "not_found")
    assert_error(api.post("/v1/connections/start", json=["x"]), 400)
    assert_error(api.post("/v1/connections/start", json={"provider": "myspace"}), 400, "provider_not_supported")


def test_cli_keys_create_gives_an_isolated_workspace(stack: Stack, api: httpx.Client, telegram: dict) -> None:
    out = subprocess.run([sys.executable, "-m", "herald.cli", "keys", "create", "--workspace", "rival", "--label", "x"],
                         env=stack.env, cwd=stack.data_dir.parent, capture_output=True, text=True, check=True).stdout
    secret = next(line.split()[-1] for line in out.splitlines() if line.startswith("secret:"))
    run = api.post("/v1/posts/apply", json={"posts": [{"account": telegram["handle"], "text": "mine", "publish_at": at(3600)}]}).json()
    post_id, run_id = run["posts"][0]["id"], run["run"]["id"]
    with stack.client(secret) as rival:
        assert rival.post("/v1/keys/validate").json()["tenant"]["name"] == "rival"
        for path in (f"/v1/posts/{post_id}", f"/v1/posts/{post_id}/attempts", f"/v1/runs/{run_id}",
                     f"/v1/runs/{run_id}/status", f"/v1/accounts/{telegram['id']}/settings"):
            assert_error(rival.get(path), 404, "not_found")
        assert_error(rival.delete(f"/v1/posts/{post_id}"), 404)
        assert rival.get("/v1/posts").json()["total"] == 0
        assert rival.get("/v1/accounts").json()["accounts"] == []
        # Scheduling onto another workspace's account is "no such account".
        body = assert_error(rival.post("/v1/posts/validate", json={"posts": [{"account": telegram["handle"], "text": "x", "publish_at": at(60)}]}), 422)
        assert body["details"]["problems"][0]["path"] == "posts[0].account"
    assert api.delete(f"/v1/posts/{post_id}").json()["post"]["status"] == "canceled"


# --- connections and accounts --------------------------------------------------------------------


def test_connections_verify_with_the_network(stack: Stack, api: httpx.Client, discord: dict, telegram: dict) -> None:
    assert discord["handle"] == "discord:111222333"
    assert telegram["handle"].startswith("telegram:-100") and telegram["displayName"]
    # Only Discord's own hosts are accepted: nothing else is ever called.
    assert_error(api.post("/v1/connections/start", json={"provider": "discord", "webhook_url": "https://evil.example/api/webhooks/1/x"}),
                 400, "invalid_credentials")
    assert_error(api.post("/v1/connections/start", json={"provider": "telegram", "bot_token": "nope", "chat_id": "@x"}),
                 400, "invalid_credentials")
    assert_error(api.post("/v1/connections/start", json={"provider": "telegram", "botToken": "123456:invalid" + "A" * 30, "chatId": "@x"}),
                 400, "provider_auth_failed")
    conns = api.get("/v1/connections").json()["connections"]
    assert {c["provider"] for c in conns} >= {"discord", "telegram"}
    assert TELEGRAM_TOKEN not in api.get("/v1/connections").text and TELEGRAM_TOKEN not in api.get("/v1/accounts").text
    caps = api.get(f"/v1/accounts/{telegram['id']}/capabilities").json()["capabilities"][0]
    assert caps["canPublish"] is True and caps["media"]["max_text_chars"] == 4096
    fields = api.get(f"/v1/accounts/{discord['id']}/settings").json()["publishSettings"]["fields"]
    assert "threadId" in [f["id"] for f in fields]
    # Reconnecting updates the same account in place.
    again = api.post("/v1/connections/start", json={"provider": "discord", "webhookUrl": DISCORD_WEBHOOK}).json()
    assert again["connection"]["account"]["id"] == discord["id"]


def test_disconnected_account_cannot_be_scheduled(api: httpx.Client) -> None:
    acct = api.post("/v1/connections/start", json={"provider": "discord", "webhookUrl": "https://discord.com/api/webhooks/987/tok-zz"}).json()["connection"]["account"]
    assert api.delete(f"/v1/accounts/{acct['id']}").json()["connection"]["status"] == "disconnected"
    assert acct["id"] not in [a["id"] for a in api.get("/v1/accounts").json()["accounts"]]
    assert_error(api.post("/v1/posts/apply", json={"posts": [{"account": acct["handle"], "text": "x", "publish_at": at(60)}]}), 422)


# --- publishing ---------------------------------------------------------------------------------


def test_apply_publishes_text_and_media_on_time(stack: Stack, api: httpx.Client, telegram: dict, discord: dict) -> None:
    src = stack.data_dir.parent / "media-src"
    t1 = at(4)
    body = {
        "timezone": "UTC",
        "posts": [
            {"account": telegram["handle"], "description": "Telegram text", "publish_at": t1},
            {"account": discord["handle"], "text": "Discord with a picture", "publishAt": t1,
             "media_link": f"{stack.media}/pic0.png"},
            {"account": telegram["handle"], "text": "An album", "publish_at": t1,
             "assets": [f"{stack.media}/pic1.png", {"url": f"{stack.media}/pic2.png"}]},
        ],
    }
    r = api.post("/v1/posts/apply", json=body)
    assert r.status_code == 201, r.text
    run = r.json()
    assert run["duplicate"] is False and run["run"]["totalPosts"] == 3
    assert run["run"]["temporalUrl"].endswith(f"/workflows/run-{run['run']['id']}")
    ids = [p["id"] for p in run["posts"]]
    posts = [wait_post(api, pid, ("published", "failed")) for pid in ids]
    assert [p["status"] for p in posts] == ["published"] * 3, posts

    by_text = {d["text"]: d for d in deliveries(stack)}
    assert set(by_text) == {"Telegram text", "Discord with a picture", "An album"}
    assert [m["sha256"] for m in by_text["Discord with a picture"]["media"]] == [_sha(src / "pic0.png")]
    assert [m["sha256"] for m in by_text["An album"]["media"]] == [_sha(src / "pic1.png"), _sha(src / "pic2.png")]
    assert all(m["mime"] == "image/png" for m in by_text["An album"]["media"])
    # On the second: the sandbox received every post within a second of its publish time.
    due = datetime.fromisoformat(t1.replace("Z", "+00:00"))
    for d in by_text.values():
        received = datetime.fromisoformat(d["receivedAt"].replace("Z", "+00:00"))
        assert timedelta(0) <= received - due < timedelta(seconds=1), d["receivedAt"]

    status = api.get(f"/v1/runs/{run['run']['id']}/status").json()
    assert status["summary"] == {"published": 3}
    wait_for(lambda: api.get(f"/v1/runs/{run['run']['id']}").json()["run"]["status"] == "completed", timeout=30, what="run completed")
    table = api.get(f"/v1/runs/{run['run']['id']}/table").json()["rows"]
    assert [row["postId"] for row in table] == ids
    attempts = api.get(f"/v1/posts/{ids[0]}/attempts").json()["attempts"]
    assert [a["outcome"] for a in attempts] == ["published"]
    jobs = api.get("/v1/jobs", params={"runId": run["run"]["id"]}).json()
    assert jobs["total"] == 3 and {j["status"] for j in jobs["jobs"]} == {"completed"}


def test_idempotent_apply_even_when_racing(stack: Stack, api: httpx.Client, telegram: dict) -> None:
    body = {"idempotencyKey": f"race-{time.time_ns()}", "posts": [{"account": telegram["handle"], "text": "once", "publish_at": at(3600)}]}

    async def fire() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=stack.api, headers={"Authorization": f"Bearer {stack.key}"}, timeout=60) as c:
            return await asyncio.gather(*(c.post("/v1/posts/apply", json=body) for _ in range(6)))

    responses = asyncio.run(fire())
    assert all(r.status_code in (200, 201) for r in responses), [r.text for r in responses]
    run_ids = {r.json()["run"]["id"] for r in responses}
    assert len(run_ids) == 1
    assert sorted(r.json()["duplicate"] for r in responses) == [False] + [True] * 5
    assert api.get("/v1/posts", params={"runId": run_ids.pop()}).json()["total"] == 1
    changed = dict(body, posts=[dict(body["posts"][0], text="different")])
    assert_error(api.post("/v1/posts/apply", json=changed), 409, "idempotency_key_reused")
    for r in responses[:1]:
        api.delete(f"/v1/posts/{r.json()['posts'][0]['id']}")


def test_bad_schedules_are_refused_and_change_nothing(api: httpx.Client, telegram: dict, discord: dict) -> None:
    before = api.get("/v1/posts").json()["total"]
    body = {"timezone": "Europe/Paris", "posts": [
        {"account": telegram["handle"], "text": "ok", "publish_at": at(60)},
        {"account": discord["handle"], "text": "x" * 2150, "publish_at": at(60)},
        {"account": telegram["handle"], "text": "gap", "publish_at": "2027-03-28T02:30:00"},
        {"account": "discord:404", "text": "who", "publish_at": at(60)},
    ]}
    err = assert_error(api.post("/v1/posts/apply", json=body), 422, "validation_failed")
    problems = {p["path"]: p["message"] for p in err["details"]["problems"]}
    assert problems["posts[1].description"] == "2,150 characters, discord allows 2,000"
    assert "does not exist in Europe/Paris" in problems["posts[2].publish_at"]
    assert "posts[3].account" in problems
    assert api.get("/v1/posts").json()["total"] == before
    assert_error(api.post("/v1/posts/validate", json={"posts": []}), 422, "validation_failed")
    ok = api.post("/v1/posts/validate", json={"schedule": {"timezone": "America/New_York", "posts": [
        {"account": telegram["handle"], "text": "local", "publishAt": "2030-01-15T09:00"}]}})
    assert ok.status_code == 200, ok.text
    assert ok.json()["posts"][0]["publishAtUtc"] == "2030-01-15T14:00:00.000Z"
    assert api.get("/v1/posts").json()["total"] == before


def test_cancel_then_refuse_cancel_after_publish(stack: Stack, api: httpx.Client, discord: dict) -> None:
    run = api.post("/v1/posts/apply", json={"posts": [
        {"account": discord["handle"], "text": "later", "publish_at": at(3600)},
        {"account": discord["handle"], "text": "now", "publish_at": at(2)},
    ]}).json()
    later, now = (p["id"] for p in run["posts"])
    canceled = api.delete(f"/v1/posts/{later}")
    assert canceled.status_code == 200 and canceled.json()["post"]["status"] == "canceled"
    assert api.delete(f"/v1/posts/{later}").json()["post"]["status"] == "canceled"  # idempotent
    wait_post(api, now, ("published",))
    assert_error(api.delete(f"/v1/posts/{now}"), 409, "post_not_cancelable")
    assert [d["text"] for d in deliveries(stack)] == ["now"]
    filtered = api.get("/v1/posts", params={"run_id": run["run"]["id"], "status": "canceled"}).json()
    assert [p["id"] for p in filtered["posts"]] == [later]


def test_retry_a_failed_post(stack: Stack, api: httpx.Client, telegram: dict) -> None:
    httpx.post(f"{stack.sandbox}/_sandbox/faults", json={"provider": "telegram", "kind": "reject_content"}).raise_for_status()
    run = api.post("/v1/posts/apply", json={"posts": [{"account": telegram["handle"], "text": "second time lucky", "publish_at": at(2)}]}).json()
    post_id = run["posts"][0]["id"]
    failed = wait_post(api, post_id, ("failed",))
    assert failed["errorCode"] == "content_rejected"
    retried = api.post(f"/v1/posts/{post_id}/retry")
    assert retried.status_code == 200, retried.text
    published = wait_post(api, post_id, ("published",))
    assert published["attempts"] == 1  # the retry's own first attempt
    assert [d["text"] for d in deliveries(stack)] == ["second time lucky"]
    assert_error(api.post(f"/v1/posts/{post_id}/retry"), 409, "post_not_retryable")
    wait_for(lambda: api.get(f"/v1/runs/{run['run']['id']}").json()["run"]["status"] == "completed", timeout=30, what="run completed")


def test_unknown_outcome_is_not_retried_without_force(stack: Stack, api: httpx.Client, discord: dict) -> None:
    httpx.post(f"{stack.sandbox}/_sandbox/faults", json={"provider": "discord", "kind": "drop_after_accept"}).raise_for_status()
    run = api.post("/v1/posts/apply", json={"posts": [{"account": discord["handle"], "text": "maybe", "publish_at": at(2)}]}).json()
    post_id = run["posts"][0]["id"]
    failed = wait_post(api, post_id, ("failed", "published"))
    assert failed["status"] == "failed" and failed["errorCode"] == "outcome_unknown"
    assert len(deliveries(stack, "discord")) == 1
    assert_error(api.post(f"/v1/posts/{post_id}/retry"), 409, "outcome_unknown")
    rec = api.post(f"/v1/posts/{post_id}/reconcile")
    assert rec.status_code == 200 and rec.json()["reconcile"]["state"] == "unknowable"


def test_dev_refuses_a_taken_port(stack: Stack) -> None:
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "herald.cli", "dev"], env=stack.env, capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert "already in use" in proc.stderr
    assert time.monotonic() - started < 30
