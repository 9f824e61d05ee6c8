"""Scenario 3: restart the app database (PostgreSQL, fast shutdown) at a seeded moment inside a
burst, keep it down a few seconds, start it again, and count every post.

The stack runs on a private, throwaway Postgres cluster (chaos/pg.py), never on the machine's
shared service. From a second before the stop, a writer applies small runs back to back (five
posts each, one idempotencyKey per run), so one apply is in flight when the database goes away.
While it is down the scenario also asks for a list, an apply and a cancel, each of which must
answer 503 `database_unavailable` in the documented shape. After the restart every apply is
retried once with its own key and body, and the store must then hold, for each key, exactly one
started run with all its posts and jobs: nothing half-written. Those runs' posts are counted
with the burst's.

`--during wake` moves the outage from the burst's publish times to the moments its workflows
wake (publish time minus HERALD_PUBLISH_LEAD_SECONDS), when each publish activity loads its
post from the store.

Usage: python -m chaos.db_restart [-n 300] [--window 40] [--down SECONDS] [--seed S] [--during send|wake]
Exit code 0 when no post was duplicated or lost, the store agrees with every workflow, every
answer during the outage was an acceptable one and nothing was half-written."""

from __future__ import annotations

import argparse
import random
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import httpx

from chaos import burst as b
from chaos.pg import private_postgres
from chaos.stack import ChaosStack, chaos_stack

DOWN = {503: "database_unavailable"}
WRITER_LEAD = 1.0  # the writer starts this long before the stop
WRITER_POSTS = 5  # posts in each of the writer's runs


@dataclass
class Outcome:
    verdict: b.Verdict
    extras: b.Verdict  # the runs the writer applied around the outage (after their retries)
    answers: list[b.Answer] = field(default_factory=list)
    writes: dict[str, int] = field(default_factory=dict)  # writer answers by status, before the restart
    checks: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # failed posts with their recorded reason
    problems: list[str] = field(default_factory=list)


def _writer(c: httpx.Client, accounts: list[str], tag: str, due: datetime, fault_at: list[float],
            stop: threading.Event) -> list[tuple[dict, b.Answer]]:
    """Apply small runs back to back, so one is in flight when the database stops; end at the
    first answer that is not a 201 (or at `stop`). Returns each body with its answer."""
    out = []
    i = 0
    while not stop.is_set():
        body = b.small_run(accounts, f"{tag} w{i}", f"{tag}-w{i}", due, WRITER_POSTS)
        sent = time.monotonic()
        answer = b.ask(c, f"apply {body['idempotencyKey']}", "POST", "/v1/posts/apply", sent, {201: None} | DOWN,
                       json=body)
        # Seconds after the fault (negative: sent before it), once the fault moment is known.
        answer.sent_at = sent - fault_at[0] if fault_at else -(time.monotonic() - sent)
        out.append((body, answer))
        i += 1
        if answer.status != 201:
            break
    return out


def run(n: int, window: float, down: float, seed: int, during: str) -> Outcome:
    rng = random.Random(seed)
    tag = f"dbr{seed}"
    with private_postgres() as pg, chaos_stack(publishers=2, database_url=pg.url) as stack, b.client(stack) as c:
        lead = stack.settings.publish_lead_seconds
        # Waking inside the measured window needs the burst further out than the lead.
        start_in = 15 + n / 30 + (lead + 10 if during == "wake" else 0)
        burst = b.schedule(stack, n, start_in=start_in, window=window, tag=tag)
        span = (burst.last_at - burst.first_at).total_seconds()
        target = burst.first_at - timedelta(seconds=lead if during == "wake" else 0)
        # A post far in the future, to cancel during the outage.
        probe = c.post("/v1/posts/apply", json=b.small_run(burst.accounts, f"{tag} probe", f"{tag}-probe",
                                                             burst.last_at + timedelta(hours=1), 1))
        probe.raise_for_status()
        probe_id = probe.json()["posts"][0]["id"]
        outage_body = b.small_run(burst.accounts, f"{tag} outage", f"{tag}-outage", burst.last_at + timedelta(seconds=30), 2)

        at = rng.uniform(0, span)
        until_fault = (target - datetime.now(timezone.utc)).total_seconds() + at
        time.sleep(max(0.0, until_fault - WRITER_LEAD))
        fault_at: list[float] = []
        stop_writer = threading.Event()
        writer = b.in_background(_writer, c, burst.accounts, tag, burst.last_at + timedelta(seconds=30), fault_at,
                                 stop_writer)
        time.sleep(max(0.0, (target - datetime.now(timezone.utc)).total_seconds() + at))
        print(f"stop Postgres (fast) at {'wake-up' if during == 'wake' else 'burst'} +{at:.1f} s for {down:.0f} s",
              flush=True)
        fault_at.append(time.monotonic())
        pg.stop("fast")
        stopped = time.monotonic() - fault_at[0]
        requests = [
            ("GET /v1/posts", "GET", "/v1/posts", {"params": {"limit": 1}}),
            ("POST /v1/posts/apply (new run)", "POST", "/v1/posts/apply", {"json": outage_body}),
            (f"DELETE /v1/posts/{probe_id}", "DELETE", f"/v1/posts/{probe_id}", {}),
        ]
        answers = [b.ask(c, what, method, url, fault_at[0], DOWN, **kw) for what, method, url, kw in requests]
        answers.append(b.ask(c, "GET /health", "GET", "/health", fault_at[0], {503: "degraded"}))
        time.sleep(max(0.0, down - (time.monotonic() - fault_at[0])))
        pg.start()
        restarted = time.monotonic() - fault_at[0]
        stop_writer.set()
        writer[0].join(timeout=120)
        print(f"Postgres stopped in {stopped:.1f} s, accepting connections again at fault +{restarted:.1f} s", flush=True)

        out = Outcome(verdict=b.Verdict(0), extras=b.Verdict(0), answers=answers)
        for answer in answers:
            if answer.problem:
                out.problems.append(answer.line())
        writes = writer[1][0] if writer[1] else []
        for body, answer in writes:
            key = f"{answer.status} {answer.code or ''}".strip()
            out.writes[key] = out.writes.get(key, 0) + 1
            if answer.problem:
                out.problems.append(answer.line())
        if writes:
            out.checks.append(f"the writer's last apply (in flight when the database stopped): {writes[-1][1].line()}")
        try:
            stack.wait_healthy(timeout=180)
            out.checks.append(f"/health 200 again at fault +{time.monotonic() - fault_at[0]:.1f} s")
        except Exception as exc:  # noqa: BLE001 - reported
            out.problems.append(f"/health not 200 within 180 s of the restart: {exc}")
        runs = _retry_and_count(stack, c, out, [(outage_body, answers[1])] + writes)
        status = c.get(f"/v1/posts/{probe_id}").json()["post"]["status"]
        out.checks.append(f"probe post after the 503 cancel: {status}")
        if status != "scheduled":
            out.problems.append(f"the cancel answered {answers[2].status} but the post is {status}")

        extras = b.burst_of(runs)
        posts = b.settle(stack, burst + extras)
        out.verdict = b.verdict(stack, burst, posts)
        out.extras = b.verdict(stack, extras, posts)
        out.failures = [_failure(posts[pid], "burst" if pid in burst.text_of else "applied around the outage")
                        for pid in burst.post_ids + extras.post_ids if posts.get(pid, {}).get("status") == "failed"]
        for name, child in stack.children.items():
            if child.proc.poll() is not None:
                out.problems.append(f"{name} exited with code {child.proc.returncode}")
        return out


def _failure(post: dict, where: str) -> str:
    error = " ".join((post["error"] or "").split())[:160]
    return f"{post['id']} ({where}, due {post['publishAtUtc']}): {post['errorCode']}: {error}"


def _retry_and_count(stack: ChaosStack, c: httpx.Client, out: Outcome, applied: list[tuple[dict, b.Answer]]) -> list[dict]:
    """Retry every apply with its own key and body; then each key must have exactly one started
    run with all its posts and jobs. Returns the runs (as the retries answered them)."""
    runs, half_written, answers = [], [], {}
    for body, first in applied:
        key = body["idempotencyKey"]
        before = b.store_rows_for_key(stack, key)
        if first.status == 503 and before and not before[0]["workflowStarted"]:
            out.checks.append(f"{key}: answered 503, stored but not started before its retry: {before}")
        r = c.post("/v1/posts/apply", json=body)
        answers[r.status_code] = answers.get(r.status_code, 0) + 1
        if r.status_code not in (200, 201) or (first.status == 201 and r.status_code != 200):
            out.problems.append(f"{key}: retried apply answered {r.status_code}: {r.text[:300]}")
            continue
        runs.append(r.json())
        rows = b.store_rows_for_key(stack, key)
        count = len(body["posts"])
        if [(x["posts"], x["jobs"], x["totalPosts"], x["workflowStarted"]) for x in rows] != [(count, count, count, True)]:
            half_written.append(f"{key}: {rows}")
    out.checks.append(f"{len(applied)} applies retried after the restart: "
                      + ", ".join(f"{n} x {s}" for s, n in sorted(answers.items()))
                      + "; each key then has one started run with all its posts and jobs: "
                      + ("yes" if not half_written else f"NO ({len(half_written)})"))
    out.problems += [f"half-written: {line}" for line in half_written]
    return runs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=300, help="posts in the burst (default 300)")
    ap.add_argument("--window", type=float, default=40.0, help="seconds the burst's publish times span (default 40)")
    ap.add_argument("--down", type=float, default=5.0, help="seconds the database stays stopped (default 5)")
    ap.add_argument("--seed", type=int, default=int(time.time()), help="random seed (printed; rerun with it)")
    ap.add_argument("--during", choices=("send", "wake"), default="send",
                    help="the outage falls inside the burst's publish times (send, default) or its wake-ups (wake)")
    args = ap.parse_args()
    print(f"seed {args.seed}", flush=True)
    started = time.monotonic()
    out = run(args.n, args.window, args.down, args.seed, args.during)
    print("\nDuring the outage:")
    for answer in out.answers:
        print("  " + answer.line())
    print("  the writer's applies before the restart: " + ", ".join(f"{n} x {s}" for s, n in sorted(out.writes.items())))
    print("Around it:")
    for line in out.checks:
        print("  " + line)
    print(f"The runs applied around the outage (after their retries): {out.extras.scheduled} posts, "
          f"{out.extras.published} published, {out.extras.failed} failed {dict(out.extras.reasons) or ''}, "
          f"{out.extras.duplicates} duplicates, {out.extras.lost} lost, {len(out.extras.disagreements)} disagreements")
    for line in out.failures[:20]:
        print("  failed:", line)
    if len(out.failures) > 20:
        print(f"  ... and {len(out.failures) - 20} more failed posts")
    if out.verdict.reasons.get("outcome_unknown"):
        print(f"outcome_unknown failures the sandbox did receive (once): {out.verdict.unknown_delivered} "
              f"of {out.verdict.reasons['outcome_unknown']}")
    print(f"\n({time.monotonic() - started:.0f} s)")
    where = "its wake-ups" if args.during == "wake" else "the burst"
    b.report(f"Postgres stopped (fast) during {where} for {args.down:.0f} s, restarted (seed {args.seed})",
             out.verdict, out.problems, out.extras)


if __name__ == "__main__":
    main()
