"""Schedule a burst through the API, let it settle, and count every post against the sandbox and
Temporal: the verdict every fault scenario reports."""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import httpx
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from chaos.stack import ChaosStack
from herald.contracts import PostOutcome

TELEGRAM_TOKEN = "123456:" + "C" * 35
DONE = ("published", "failed", "canceled")


@dataclass
class Burst:
    post_ids: list[str]
    text_of: dict[str, str]
    first_at: datetime
    last_at: datetime
    accounts: list[str] = field(default_factory=list)

    def __add__(self, other: "Burst") -> "Burst":
        return Burst(self.post_ids + other.post_ids, self.text_of | other.text_of, min(self.first_at, other.first_at),
                     max(self.last_at, other.last_at), self.accounts)


@dataclass
class Verdict:
    scheduled: int
    published: int = 0
    failed: int = 0
    reasons: Counter = field(default_factory=Counter)
    duplicates: int = 0
    lost: int = 0
    disagreements: list[str] = field(default_factory=list)
    unknown_delivered: int = 0  # outcome_unknown failures the network did receive (once)
    duplicate_posts: list[str] = field(default_factory=list)  # "post id: received at t1, t2, ..."

    @property
    def ok(self) -> bool:
        return self.duplicates == 0 and self.lost == 0 and not self.disagreements

    def row(self, scenario: str) -> str:
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(self.reasons.items())) or "-"
        return (f"| {scenario} | {self.scheduled} | {self.published} | {self.failed} ({reasons}) | "
                f"{self.duplicates} | {self.lost} | {'yes' if not self.disagreements else len(self.disagreements)} |")


def report(scenario: str, verdict: Verdict, problems: list[str] = (), extras: Verdict | None = None) -> None:
    """Print the scenario's table row and whatever went wrong, then exit: 0 when no post was
    duplicated or lost, store and workflows agree, and the scenario's own checks passed."""
    print("| scenario | scheduled | published | failed (reasons) | duplicates | lost | store = workflows |")
    print(verdict.row(scenario))
    verdicts = [verdict] + ([extras] if extras is not None else [])
    for v in verdicts:
        for line in v.duplicate_posts:
            print("  duplicate:", line)
        for line in v.disagreements[:20]:
            print("  disagreement:", line)
    for line in problems[:40]:
        print("  problem:", line)
    if len(problems) > 40:
        print(f"  ... and {len(problems) - 40} more")
    sys.exit(0 if all(v.ok for v in verdicts) and not problems else 1)


def client(stack: ChaosStack) -> httpx.Client:
    return httpx.Client(base_url=stack.api, headers={"Authorization": f"Bearer {stack.key}"}, timeout=120)


def discord_webhook_id(i: int) -> str:
    """The sandbox webhook id of account i (odd i), e.g. to aim a fault at that account."""
    return str(700000 + i)


def connect_accounts(c: httpx.Client, accounts: int, tag: str) -> list[str]:
    """Connect `accounts` accounts, even i a Telegram chat, odd i a Discord webhook; their handles."""
    handles = []
    for i in range(accounts):
        body = ({"provider": "telegram", "botToken": TELEGRAM_TOKEN, "chatId": f"@{tag}{i}"} if i % 2 == 0 else
                {"provider": "discord",
                 "webhookUrl": f"https://discord.com/api/webhooks/{discord_webhook_id(i)}/{tag}-token-{i}"})
        r = c.post("/v1/connections/start", json=body)
        r.raise_for_status()
        handles.append(r.json()["connection"]["account"]["handle"])
    return handles


def schedule(stack: ChaosStack, n: int, accounts: int = 10, start_in: float = 40.0, window: float = 30.0,
             tag: str = "chaos") -> Burst:
    """n posts over `accounts` (half Telegram chats, half Discord webhooks), due evenly across
    `window` seconds starting `start_in` seconds from now."""
    with client(stack) as c:
        handles = connect_accounts(c, accounts, tag)
        first = datetime.now(timezone.utc) + timedelta(seconds=start_in)
        step = window / max(1, n - 1)
        ids, text_of = [], {}
        for start in range(0, n, 100):
            posts = [{"account": handles[i % accounts], "text": f"{tag} post {i}",
                      "publish_at": (first + timedelta(seconds=i * step)).isoformat()} for i in range(start, min(n, start + 100))]
            r = c.post("/v1/posts/apply", json={"idempotencyKey": f"{tag}-{first.isoformat()}-{start}", "posts": posts})
            if r.status_code != 201:
                raise SystemExit(f"apply failed: {r.status_code} {r.text[:300]}")
            for post in r.json()["posts"]:
                ids.append(post["id"])
                text_of[post["id"]] = post["description"]
    return Burst(ids, text_of, first, first + timedelta(seconds=window), handles)


def burst_of(runs: list[dict]) -> Burst:
    """The posts of apply answers (a run's JSON each), counted like a burst."""
    posts = [p for run in runs for p in run["posts"]]
    times = [datetime.fromisoformat(p["publishAtUtc"].replace("Z", "+00:00")) for p in posts]
    return Burst([p["id"] for p in posts], {p["id"]: p["description"] for p in posts}, min(times), max(times))


def documented_error(r: httpx.Response, status: int, code: str) -> str | None:
    """None when `r` is `status` with {"ok": false, "code": code, "message", "details"}; else what differs."""
    try:
        body = r.json()
    except ValueError:
        return f"{r.status_code}, not JSON: {r.text[:200]!r}"
    if r.status_code != status or not isinstance(body, dict) or body.get("code") != code:
        return f"{r.status_code} {body.get('code') if isinstance(body, dict) else body!r}, expected {status} {code}"
    if body.get("ok") is not False or set(body) != {"ok", "code", "message", "details"} or not body["message"]:
        return f"{status} {code} but not in the documented shape: {sorted(body)}"
    return None


def settle(stack: ChaosStack, burst: Burst, timeout: float = 600) -> dict[str, dict]:
    """Wait until every post is final in the store (or the timeout); returns the posts by id."""
    deadline = time.monotonic() + timeout
    with client(stack) as c:
        while True:
            posts = {}
            for offset in range(0, len(burst.post_ids) + 500, 500):
                page = c.get("/v1/posts", params={"limit": 500, "offset": offset}).json()["posts"]
                posts |= {p["id"]: p for p in page if p["id"] in burst.text_of}
                if len(page) < 500:
                    break
            if all(posts.get(pid, {}).get("status") in DONE for pid in burst.post_ids) or time.monotonic() > deadline:
                return posts
            time.sleep(2)


async def _workflow_statuses(stack: ChaosStack, post_ids: list[str]) -> dict[str, str]:
    temporal = await Client.connect(stack.settings.temporal_target, data_converter=pydantic_data_converter)

    async def one(pid: str) -> tuple[str, str]:
        try:
            outcome = await asyncio.wait_for(
                temporal.get_workflow_handle(f"post-{pid}", result_type=PostOutcome).result(), timeout=30)
            return pid, outcome.status
        except Exception as exc:  # noqa: BLE001 - reported as a disagreement
            return pid, f"no result ({type(exc).__name__})"

    results = []
    for start in range(0, len(post_ids), 50):
        results += await asyncio.gather(*(one(pid) for pid in post_ids[start:start + 50]))
    return dict(results)


def verdict(stack: ChaosStack, burst: Burst, posts: dict[str, dict]) -> Verdict:
    deliveries = httpx.get(f"{stack.sandbox}/_sandbox/deliveries", timeout=60).json()["deliveries"]
    sent = Counter(d["text"] for d in deliveries)
    flows = asyncio.run(_workflow_statuses(stack, burst.post_ids))
    v = Verdict(scheduled=len(burst.post_ids))
    for pid in burst.post_ids:
        post = posts.get(pid, {})
        status, copies = post.get("status"), sent[burst.text_of[pid]]
        v.duplicates += max(0, copies - 1)
        if copies > 1:
            at = ", ".join(d["receivedAt"] for d in deliveries if d["text"] == burst.text_of[pid])
            v.duplicate_posts.append(f"{pid} ({status}): received {copies}x, at {at}")
        if status == "published":
            v.published += 1
            if copies == 0:
                v.lost += 1  # the store says published, the network never got it
        elif status in ("failed", "canceled"):
            v.failed += 1
            v.reasons[post.get("errorCode") or status] += 1
            # A failed post with a copy out there is only acceptable when its failure says so.
            if copies and post.get("errorCode") == "outcome_unknown":
                v.unknown_delivered += 1
            if copies and post.get("errorCode") != "outcome_unknown":
                v.disagreements.append(f"{pid}: {status} ({post.get('errorCode')}) but delivered {copies}x")
        else:
            v.lost += 1  # never reached a final status
        if status in DONE and flows[pid] != status:
            v.disagreements.append(f"{pid}: store {status}, workflow {flows[pid]}")
    return v


# --- requests sent while a part is down -------------------------------------------------------


@dataclass
class Answer:
    """One API request made during an outage: what it answered and when it finished."""
    what: str
    sent_at: float  # seconds after the fault
    seconds: float
    status: int | None = None
    code: str | None = None
    problem: str | None = None  # None: the answer was one of the acceptable ones
    body: dict | None = None

    def line(self) -> str:
        verdict = "ok" if self.problem is None else f"UNEXPECTED: {self.problem}"
        return (f"{self.what}: {self.status} {self.code or ''} after {self.seconds:.1f} s "
                f"(sent at fault {self.sent_at:+.1f} s) - {verdict}")


def small_run(accounts: list[str], tag: str, key: str, at: datetime, count: int) -> dict:
    """An apply body: `count` posts due at `at` over `accounts`, texts "<tag> post <i>"."""
    return {"idempotencyKey": key,
            "posts": [{"account": accounts[i % len(accounts)], "text": f"{tag} post {i}", "publish_at": at.isoformat()}
                      for i in range(count)]}


def in_background(target, *args, **kwargs) -> tuple[threading.Thread, list]:  # noqa: ANN001, ANN003
    """Run target(*args, **kwargs) in a daemon thread; its result lands in the returned list."""
    out: list = []
    thread = threading.Thread(target=lambda: out.append(target(*args, **kwargs)), daemon=True)
    thread.start()
    return thread, out


def ask(c: httpx.Client, what: str, method: str, url: str, fault_at: float, accept: dict[int, str | None],
        **kwargs) -> Answer:  # noqa: ANN003
    """Send one request; `accept` maps each acceptable status to the error code it must carry in
    the documented shape (None: a success, any body)."""
    start = time.monotonic()
    answer = Answer(what, start - fault_at, 0.0)
    try:
        r = c.request(method, url, **kwargs)
    except httpx.HTTPError as exc:
        answer.seconds = time.monotonic() - start
        answer.problem = f"no answer ({type(exc).__name__})"
        return answer
    answer.seconds = time.monotonic() - start
    answer.status = r.status_code
    try:
        answer.body = r.json()
        answer.code = answer.body.get("code") if isinstance(answer.body, dict) else None
    except ValueError:
        pass
    if r.status_code not in accept:
        answer.problem = f"status {r.status_code} {r.text[:300]!r}"
    elif accept[r.status_code] is not None:
        answer.problem = documented_error(r, r.status_code, accept[r.status_code])  # type: ignore[arg-type]
    return answer


def store_rows_for_key(stack: ChaosStack, idempotency_key: str) -> list[dict]:
    """Straight from the store: each run with this idempotency key, with its post and job counts."""
    from sqlalchemy import func
    from sqlmodel import select

    from store.db import Database
    from store.models import Job, Post, Run

    db = Database(stack.settings.db_url)
    try:
        with db.session() as s:
            runs = s.exec(select(Run).where(Run.idempotency_key == idempotency_key)).all()
            return [{"run": r.id, "workflowStarted": r.workflow_started, "totalPosts": r.total_posts,
                     "posts": s.exec(select(func.count()).select_from(Post).where(Post.run_id == r.id)).one(),
                     "jobs": s.exec(select(func.count()).select_from(Job).where(Job.run_id == r.id)).one()}
                    for r in runs]
    finally:
        db.dispose()
