"""Campaigns, drafts, approvals and edits end to end over HTTP, against `herald dev` (real Temporal
dev server, workers, API) and the sandbox. Publish lead is 5 s in this stack."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from herald.contracts import PostOutcome
from tests.e2e_stack import Stack, _sha, assert_error, at, deliveries, utc, wait_post
from tests.support import DISCORD_WEBHOOK, TELEGRAM_TOKEN

pytestmark = pytest.mark.e2e

LEAD = 5.0
DONE = ("published", "failed", "canceled")


def campaign_body(telegram: dict, discord: dict, start: str, **extra) -> dict:  # noqa: ANN003
    """The README's example: a thread of three on two networks, per-network captions, a post type
    offset (Discord: a forum post first, the plain channel message 3 s later) and approval."""
    return {
        "timezone": "UTC",
        "require_approval": True,
        "campaigns": [{
            "id": "launch", "name": "Launch",
            "caption": "We shipped v2",
            "platform_captions": {"telegram": "We shipped v2 — details in the replies"},
            "platform_types": {"discord": ["forum", "message"]},
            "type_schedule": {"forum": "+0s", "message": "+3s"},
            "targets": [
                {"account": telegram["handle"], "publish_at": start, "steps": [
                    {"id": "announce"},
                    {"id": "details", "interaction_type": "reply", "parent_step_id": "announce", "text": "2/3 details"},
                    {"id": "thanks", "interaction_type": "reply", "parent_step_id": "details", "text": "3/3 thanks"},
                ]},
                {"account": discord["handle"], "publish_at": start, "steps": [
                    {"id": "announce", "name": "v2 is out"},
                    {"id": "details", "interaction_type": "reply", "parent_step_id": "announce", "text": "2/3 details"},
                    {"id": "thanks", "interaction_type": "reply", "parent_step_id": "details", "text": "3/3 thanks"},
                ]},
            ],
        }],
        **extra,
    }


def test_campaign_thread_captions_type_offset_and_approval(stack: Stack, api: httpx.Client, telegram: dict,
                                                           discord: dict) -> None:
    start = at(15)
    body = campaign_body(telegram, discord, start, idempotencyKey=f"launch-{time.time()}")

    checked = api.post("/v1/posts/validate", json=body).json()
    assert checked["sourceModel"] == "campaigns_v2" and checked["totalCampaigns"] == 1
    assert checked["totalPosts"] == 7  # 3 Telegram + Discord forum, message and 2 replies
    by_path = {(p["path"], p["postType"]): p for p in checked["posts"]}
    tg_root = by_path[("campaigns[0].targets[0].steps[0]", "message")]
    assert tg_root["description"] == "We shipped v2 — details in the replies"
    forum = by_path[("campaigns[0].targets[1].steps[0]", "forum")]
    message = by_path[("campaigns[0].targets[1].steps[0]", "message")]
    assert forum["description"] == message["description"] == "We shipped v2"
    assert forum["settings"]["threadName"] == "v2 is out"
    assert utc(message["publishAtUtc"]) - utc(forum["publishAtUtc"]) == timedelta(seconds=3)
    assert all(p["requireApproval"] for p in checked["posts"])

    applied = api.post("/v1/posts/apply", json=body)
    assert applied.status_code == 201, applied.text
    run = applied.json()
    run_id = run["run"]["id"]
    assert {p["status"] for p in run["posts"]} == {"pending_approval"}
    pending = api.get("/v1/posts", params={"status": "pending_approval", "runId": run_id}).json()
    assert pending["total"] == 7
    assert api.get(f"/v1/runs/{run_id}").json()["summary"] == {"pending_approval": 7}
    assert api.get("/v1/posts", params={"campaignId": "launch", "runId": run_id}).json()["total"] == 7

    graph = api.get(f"/v1/runs/{run_id}/campaign").json()
    (campaign,) = graph["campaigns"]
    tg_steps = campaign["targets"][0]["steps"]
    assert [s["stepId"] for s in tg_steps] == ["announce", "details", "thanks"]
    assert tg_steps[1]["posts"][0]["parentPostId"] == tg_steps[0]["posts"][0]["id"]

    time.sleep(LEAD + 2)  # past the lead window: nothing may publish without approval
    assert deliveries(stack) == []
    reviewed = api.post(f"/v1/runs/{run_id}/approve", json={"note": "go", "reviewer": "alice"}).json()
    assert [r["ok"] for r in reviewed["results"]] == [True] * 7
    post = api.get(f"/v1/posts/{run['posts'][0]['id']}").json()["post"]
    assert post["review"]["state"] == "approved" and post["review"]["by"] == "alice" and post["review"]["note"] == "go"

    for p in run["posts"]:
        assert wait_post(api, p["id"], DONE, timeout=60)["status"] == "published", p
    tg = deliveries(stack, "telegram")
    assert [d["text"] for d in tg] == ["We shipped v2 — details in the replies", "2/3 details", "3/3 thanks"]
    assert tg[1]["replyToMessageId"] == int(tg[0]["id"]) and tg[2]["replyToMessageId"] == int(tg[1]["id"])
    dc = deliveries(stack, "discord")
    forum_msg = next(d for d in dc if d["payload"].get("thread_name") == "v2 is out")
    replies = [d for d in dc if d["text"] in ("2/3 details", "3/3 thanks")]
    assert [d["text"] for d in replies] == ["2/3 details", "3/3 thanks"]
    assert [d["threadId"] for d in replies] == [forum_msg["id"]] * 2, (forum_msg, replies)  # the replies went into the forum post's thread
    plain = next(d for d in dc if d["text"] == "We shipped v2" and d is not forum_msg)
    assert plain["threadId"] is None
    assert utc(plain["receivedAt"]) - utc(forum_msg["receivedAt"]) >= timedelta(seconds=2.5)


def test_campaign_preview_builds_the_graph_and_reports_every_problem(api: httpx.Client, telegram: dict,
                                                                     discord: dict) -> None:
    before = api.get("/v1/posts").json()["total"]
    good = api.post("/v1/campaigns/preview", json=campaign_body(telegram, discord, at(3600)))
    assert good.status_code == 200, good.text
    preview = good.json()
    assert preview["totalPosts"] == 7 and preview["campaigns"][0]["targets"][1]["steps"][2]["stepId"] == "thanks"
    assert {p["token"] for p in preview["preflight"]} == {"valid"}
    assert {p["account"] for p in preview["preflight"]} == {telegram["handle"], discord["handle"]}

    bad = {"campaigns": [{"name": "broken", "targets": [
        {"account": telegram["handle"], "publish_at": at(3600), "steps": [
            {"id": "a", "text": "root"},
            {"id": "b", "interaction_type": "reply", "parent_step_id": "nope", "text": "x"},
            {"id": "c", "interaction_type": "comment", "parent_step_id": "a", "text": "x"},
            {"id": "d", "interaction_type": "reply", "parent_step_id": "a", "text": "x", "offset": "-1h"},
            {"id": "e", "interaction_type": "reply", "parent_step_id": "f", "text": "x"},
            {"id": "f", "interaction_type": "reply", "parent_step_id": "e", "text": "x"},
        ]},
        {"account": discord["handle"], "publish_at": at(3600), "steps": [
            {"id": "a", "text": "plain message"},
            {"id": "b", "interaction_type": "reply", "parent_step_id": "a", "text": "x"},
        ]},
    ]}]}
    problems = assert_error(api.post("/v1/campaigns/preview", json=bad), 422, "validation_failed")["details"]["problems"]
    paths = {p["path"] for p in problems}
    t0, t1 = "campaigns[0].targets[0].steps", "campaigns[0].targets[1].steps"
    assert f"{t0}[1].parent_step_id" in paths  # unknown parent
    assert f"{t0}[2].interaction_type" in paths  # telegram cannot comment
    assert f"{t0}[3].publish_at" in paths  # before its parent
    assert any(p["path"] in (f"{t0}[4].parent_step_id", f"{t0}[5].parent_step_id") and "cycle" in p["message"] for p in problems)
    assert f"{t1}[1].interaction_type" in paths  # a Discord webhook cannot reply to a plain message
    flat = {"posts": [{"account": telegram["handle"], "text": "x", "publish_at": at(3600)}]}
    assert_error(api.post("/v1/campaigns/preview", json=flat), 409, "not_a_campaign_schedule")
    assert api.get("/v1/posts").json()["total"] == before  # preview creates nothing

    flat_run = api.post("/v1/posts/apply", json=flat).json()
    assert_error(api.get(f"/v1/runs/{flat_run['run']['id']}/campaign"), 409, "not_a_campaign_run")
    api.delete(f"/v1/posts/{flat_run['posts'][0]['id']}")


def test_draft_then_publish_with_start_at_shifts_every_time_once(stack: Stack, api: httpx.Client, telegram: dict) -> None:
    body = {"mode": "draft", "posts": [
        {"account": telegram["handle"], "text": "first", "publish_at": "2030-01-01T09:00:00Z"},
        {"account": telegram["handle"], "text": "second", "publish_at": "2030-01-01T10:30:00Z"},
        {"account": telegram["handle"], "text": "dropped", "publish_at": "2030-01-01T11:00:00Z"},
    ]}
    draft = api.post("/v1/posts/apply", json=body).json()
    run_id = draft["run"]["id"]
    first, second, dropped = (p["id"] for p in draft["posts"])
    assert draft["run"]["status"] == "draft" and {p["status"] for p in draft["posts"]} == {"draft"}
    # Drafts stay editable without any workflow, and can lose a post.
    assert api.patch(f"/v1/posts/{first}", json={"text": "first!"}).json()["post"]["description"] == "first!"
    assert api.delete(f"/v1/posts/{dropped}").json()["post"]["status"] == "canceled"
    time.sleep(1)
    assert deliveries(stack) == []

    assert_error(api.post(f"/v1/runs/{run_id}/publish", json={"startAt": "soon"}), 422, "validation_failed")
    assert_error(api.post(f"/v1/runs/{run_id}/publish", json={"startAt": "2001-01-01T00:00:00Z"}), 422, "validation_failed")
    assert api.get(f"/v1/runs/{run_id}").json()["run"]["status"] == "draft"  # refused: nothing changed

    start = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(seconds=10)
    published = api.post(f"/v1/runs/{run_id}/publish", json={"startAt": start.isoformat()}).json()
    assert published["duplicate"] is False and published["run"]["mode"] == "scheduled"
    times = {p["id"]: p["publishAtUtc"] for p in published["posts"]}
    assert utc(times[first]) == start
    assert utc(times[second]) == start + timedelta(minutes=90)  # the same delta for every post
    again = api.post(f"/v1/runs/{run_id}/publish", json={"startAt": (start + timedelta(days=1)).isoformat()}).json()
    assert again["duplicate"] is True and {p["id"]: p["publishAtUtc"] for p in again["posts"]} == times

    assert wait_post(api, first, DONE, timeout=40)["status"] == "published"
    assert [d["text"] for d in deliveries(stack)] == ["first!"]
    assert api.delete(f"/v1/posts/{second}").json()["post"]["status"] == "canceled"
    assert api.get(f"/v1/posts/{dropped}").json()["post"]["status"] == "canceled"


def test_reject_expire_and_refused_approvals(stack: Stack, api: httpx.Client, discord: dict) -> None:
    body = {"require_approval": True, "approval": {"onLate": "expire", "graceSeconds": 2}, "posts": [
        {"account": discord["handle"], "text": "will be rejected", "publish_at": at(3600)},
        {"account": discord["handle"], "text": "nobody looks", "publish_at": at(LEAD + 3)},
        {"account": discord["handle"], "text": "no review needed", "publish_at": at(LEAD + 3), "require_approval": False},
    ]}
    run = api.post("/v1/posts/apply", json=body).json()
    rejected, expiring, plain = (p["id"] for p in run["posts"])
    assert [p["status"] for p in run["posts"]] == ["pending_approval", "pending_approval", "scheduled"]

    r = api.post(f"/v1/posts/{rejected}/reject", json={"note": "off-brand"})
    assert r.status_code == 200, r.text
    post = r.json()["post"]
    assert (post["status"], post["errorCode"], post["review"]["state"]) == ("canceled", "approval_rejected", "rejected")
    assert post["error"].endswith(": off-brand")
    assert_error(api.post(f"/v1/posts/{rejected}/approve"), 409, "post_not_reviewable")
    assert_error(api.post(f"/v1/posts/{plain}/approve"), 409, "approval_not_required")
    assert_error(api.post(f"/v1/posts/{expiring}/approve", json={"note": 5}), 400, "invalid_request")

    expired = wait_post(api, expiring, DONE, timeout=40)
    assert (expired["status"], expired["errorCode"]) == ("failed", "approval_expired")
    assert wait_post(api, plain, DONE, timeout=40)["status"] == "published"
    assert_error(api.post(f"/v1/posts/{plain}/reject"), 409, "approval_not_required")
    assert [d["text"] for d in deliveries(stack)] == ["no review needed"]


def test_edit_before_publish_moves_the_post_and_is_refused_after(stack: Stack, api: httpx.Client, telegram: dict,
                                                                discord: dict) -> None:
    run = api.post("/v1/posts/apply", json={"posts": [
        {"account": telegram["handle"], "text": "draft wording", "publish_at": at(3600)}]}).json()
    post_id = run["posts"][0]["id"]
    new_time = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(seconds=12)

    problems = assert_error(api.patch(f"/v1/posts/{post_id}", json={"text": "x" * 5000, "colour": "red"}), 422)["details"]["problems"]
    assert {p["path"] for p in problems} == {"colour"}  # unknown fields are refused before anything else
    problems = assert_error(api.patch(f"/v1/posts/{post_id}", json={"text": "x" * 5000}), 422)["details"]["problems"]
    assert [p["path"] for p in problems] == ["description"]
    assert_error(api.patch(f"/v1/posts/{post_id}", json={"publishAt": "2001-01-01T00:00:00Z"}), 422)
    assert_error(api.patch(f"/v1/posts/{post_id}", json={}), 400, "invalid_request")
    assert api.get(f"/v1/posts/{post_id}").json()["post"]["description"] == "draft wording"

    edited = api.patch(f"/v1/dashboard/posts/{post_id}", json={"text": "final wording", "publishAt": new_time.isoformat()})
    assert edited.status_code == 200, edited.text
    assert edited.json()["post"]["description"] == "final wording"
    assert utc(edited.json()["post"]["publishAtUtc"]) == new_time

    # Moving it to another account (and so another network) re-runs its checks and its workflow follows.
    moved = api.patch(f"/v1/posts/{post_id}", json={"account": discord["handle"]})
    assert moved.status_code == 200, moved.text
    assert moved.json()["post"]["provider"] == "discord"

    assert wait_post(api, post_id, DONE, timeout=40)["status"] == "published"
    (delivery,) = deliveries(stack)
    assert delivery["provider"] == "discord" and delivery["text"] == "final wording"
    assert utc(delivery["receivedAt"]) >= new_time
    assert_error(api.patch(f"/v1/posts/{post_id}", json={"text": "too late"}), 409, "post_not_editable")
    assert api.get(f"/v1/posts/{post_id}").json()["post"]["description"] == "final wording"


async def test_cancel_racing_the_publish_window_has_exactly_one_winner(stack: Stack, api: httpx.Client, telegram: dict) -> None:
    """Cancels fired around the moment each post enters publishing (publish_at - lead): every post
    ends either canceled with nothing sent, or published exactly once, and the store, the API's
    answer and the workflow's result all say the same."""
    n = 8
    publish_at = datetime.now(timezone.utc) + timedelta(seconds=LEAD + 8)
    run = api.post("/v1/posts/apply", json={"posts": [
        {"account": telegram["handle"], "text": f"race {i}", "publish_at": publish_at.isoformat()} for i in range(n)]}).json()
    ids = [p["id"] for p in run["posts"]]
    window = publish_at - timedelta(seconds=LEAD)
    answers: dict[str, int] = {}

    def cancel_at(post_id: str, offset: float) -> None:
        delay = (window + timedelta(seconds=offset) - datetime.now(timezone.utc)).total_seconds()
        time.sleep(max(0.0, delay))
        with stack.client() as c:
            answers[post_id] = c.delete(f"/v1/posts/{post_id}").status_code

    threads = [threading.Thread(target=cancel_at, args=(pid, -1.0 + 2.0 * i / (n - 1))) for i, pid in enumerate(ids)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    finals = {pid: wait_post(api, pid, DONE, timeout=60)["status"] for pid in ids}
    sent = [d["text"] for d in deliveries(stack, "telegram")]
    results = await _workflow_results(stack, ids)
    for i, pid in enumerate(ids):
        assert answers[pid] in (200, 409), answers
        expected = "canceled" if answers[pid] == 200 else "published"
        assert finals[pid] == expected == results[pid], (pid, answers[pid], finals[pid], results[pid])
        assert sent.count(f"race {i}") == (1 if expected == "published" else 0)
    print(f"cancel race: {sum(a == 200 for a in answers.values())} canceled, {sum(a == 409 for a in answers.values())} published")


async def _workflow_results(stack: Stack, post_ids: list[str]) -> dict[str, str]:
    client = await Client.connect(f"127.0.0.1:{stack.env['HERALD_TEMPORAL_PORT']}", data_converter=pydantic_data_converter)
    out = {}
    for pid in post_ids:
        outcome = await client.get_workflow_handle(f"post-{pid}", result_type=PostOutcome).result()
        out[pid] = outcome.status
    return out


def test_editing_media_prepares_it_again(stack: Stack, api: httpx.Client, discord: dict) -> None:
    src = stack.data_dir.parent / "media-src"
    run = api.post("/v1/posts/apply", json={"posts": [
        {"account": discord["handle"], "text": "picture", "publish_at": at(LEAD + 12), "media_link": f"{stack.media}/pic0.png"}]}).json()
    post_id = run["posts"][0]["id"]
    time.sleep(1)  # the first picture is being fetched ahead of time
    r = api.patch(f"/v1/posts/{post_id}", json={"assets": [f"{stack.media}/pic1.png", f"{stack.media}/pic2.png"]})
    assert r.status_code == 200, r.text
    assert [a["url"] for a in r.json()["post"]["assets"]] == [f"{stack.media}/pic1.png", f"{stack.media}/pic2.png"]
    assert wait_post(api, post_id, DONE, timeout=40)["status"] == "published"
    (delivery,) = deliveries(stack)
    assert [m["sha256"] for m in delivery["media"]] == [_sha(src / "pic1.png"), _sha(src / "pic2.png")]


def test_a_reply_waits_for_its_parent_and_retries_onto_the_retried_parent(stack: Stack, api: httpx.Client,
                                                                         telegram: dict) -> None:
    httpx.post(f"{stack.sandbox}/_sandbox/faults", json={"provider": "telegram", "kind": "reject_content", "count": 1}).raise_for_status()
    body = {"campaigns": [{"name": "thread", "targets": [{"account": telegram["handle"], "publish_at": at(LEAD + 3), "steps": [
        {"id": "a", "text": "parent"}, {"id": "b", "interaction_type": "reply", "parent_step_id": "a", "text": "child"}]}]}]}
    parent, child = (p["id"] for p in api.post("/v1/posts/apply", json=body).json()["posts"])
    assert wait_post(api, parent, DONE, timeout=40)["errorCode"] == "content_rejected"
    orphan = wait_post(api, child, DONE, timeout=40)
    assert (orphan["status"], orphan["errorCode"]) == ("failed", "parent_not_published")
    assert deliveries(stack) == []

    assert_error(api.post(f"/v1/posts/{child}/retry"), 409, "parent_not_published")
    assert api.post(f"/v1/posts/{parent}/retry").status_code == 200
    assert wait_post(api, parent, DONE, timeout=40)["status"] == "published"
    assert api.post(f"/v1/posts/{child}/retry").status_code == 200
    assert wait_post(api, child, DONE, timeout=40)["status"] == "published"
    first, second = deliveries(stack, "telegram")
    assert (first["text"], second["text"]) == ("parent", "child")
    assert second["replyToMessageId"] == int(first["id"])


def test_a_draft_can_be_approved_before_it_is_published(api: httpx.Client, telegram: dict) -> None:
    draft = api.post("/v1/posts/apply", json={"mode": "draft", "require_approval": True, "posts": [
        {"account": telegram["handle"], "text": "pre-approved", "publish_at": at(3600)},
        {"account": telegram["handle"], "text": "still pending", "publish_at": at(3600)}]}).json()
    approved, pending = (p["id"] for p in draft["posts"])
    r = api.post(f"/v1/posts/{approved}/approve", json={"reviewer": "carol"})
    assert r.status_code == 200, r.text
    assert (r.json()["post"]["status"], r.json()["post"]["review"]["state"]) == ("draft", "approved")
    published = api.post(f"/v1/runs/{draft['run']['id']}/publish").json()
    assert {p["id"]: p["status"] for p in published["posts"]} == {approved: "scheduled", pending: "pending_approval"}
    assert published["summary"] == {"scheduled": 1, "pending_approval": 1}
    for post_id in (approved, pending):
        assert api.delete(f"/v1/posts/{post_id}").json()["post"]["status"] == "canceled"


def test_zz_no_secret_in_any_log_line(stack: Stack, api: httpx.Client) -> None:
    """Runs last in the e2e session: every process's log so far (Temporal, workers, API,
    sandbox) holds neither a provider credential nor an API key secret."""
    created = api.post("/v1/keys", json={"label": "log-check"}).json()["key"]["secret"]
    api.post("/v1/connections/start", json={"provider": "telegram", "botToken": TELEGRAM_TOKEN + "x", "chatId": "@nope"})
    log = (stack.data_dir.parent / "dev.log").read_text(errors="replace")
    assert "bot<redacted>/getMe" in log  # the provider calls are logged, with the token taken out
    webhook_token = DISCORD_WEBHOOK.rsplit("/", 1)[1]
    for secret in (TELEGRAM_TOKEN, TELEGRAM_TOKEN.split(":")[1], webhook_token, created):
        assert secret not in log, "a secret reached the log"
    # The one exception: `herald dev`'s start-up banner shows the development key, by design.
    lines = [line for line in log.splitlines() if stack.key in line]
    assert len(lines) == 1 and lines[0].split() == ["Dev", "API", "key", stack.key], lines
