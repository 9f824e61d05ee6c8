"""Scenario 2: stop the Temporal dev server at a seeded moment inside a burst, keep it down a few
seconds, start it again with the same command (the same SQLite file), and count every post.

While the server is down the scenario also asks the API for things that need Temporal: applying
a new small run, canceling a scheduled post, /health; and a read that does not. After the
restart it checks that the refused apply left nothing in the store, that the same apply then
succeeds (one run, all its posts), and that the refused cancel now works.

Usage: python -m chaos.temporal_restart [-n 300] [--window 40] [--down SECONDS] [--seed S] [--signal term|kill]
Exit code 0 when no post was duplicated or lost, the store agrees with every workflow, and every
answer during the outage was an acceptable one."""

from __future__ import annotations

import argparse
import random
import signal
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import httpx

from chaos import burst as b
from chaos.stack import ChaosStack, chaos_stack
from herald.dev import port_open, wait_until

SIGNALS = {"term": signal.SIGTERM, "kill": signal.SIGKILL}
UNAVAILABLE = {503: "temporal_unavailable"}


@dataclass
class Outcome:
    verdict: b.Verdict
    extras: b.Verdict  # the run applied during the outage (after its retry)
    answers: list[b.Answer] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)  # what was verified around the outage
    problems: list[str] = field(default_factory=list)


def run(n: int, window: float, down: float, seed: int, sig: signal.Signals) -> Outcome:
    rng = random.Random(seed)
    with chaos_stack(publishers=2) as stack, b.client(stack) as c:
        burst = b.schedule(stack, n, start_in=15 + n / 30, window=window, tag=f"trs{seed}")
        span = (burst.last_at - burst.first_at).total_seconds()
        # A post far in the future, to cancel during the outage (its workflow is waiting on a timer).
        probe = c.post("/v1/posts/apply", json=b.small_run(
            burst.accounts, f"trs{seed} probe", f"trs{seed}-probe", burst.last_at + timedelta(hours=1), 1))
        probe.raise_for_status()
        probe_id = probe.json()["posts"][0]["id"]
        # A small run applied during the outage, due after the burst; the same body is retried later.
        outage_key = f"trs{seed}-outage-{burst.first_at.isoformat()}"
        outage_body = b.small_run(burst.accounts, f"trs{seed} outage", outage_key, burst.last_at + timedelta(seconds=30), 2)

        at = rng.uniform(0, span)
        time.sleep(max(0.0, (burst.first_at - datetime.now(timezone.utc)).total_seconds() + at))
        print(f"stop Temporal ({sig.name}) at burst +{at:.1f} s for {down:.0f} s", flush=True)
        fault_at = time.monotonic()
        stack.stop("temporal", sig)
        stopped = time.monotonic() - fault_at
        requests = [
            ("POST /v1/posts/apply (new run)", "POST", "/v1/posts/apply", {201: None} | UNAVAILABLE, {"json": outage_body}),
            (f"DELETE /v1/posts/{probe_id}", "DELETE", f"/v1/posts/{probe_id}", {200: None} | UNAVAILABLE, {}),
            ("GET /v1/posts (a read)", "GET", "/v1/posts", {200: None}, {"params": {"limit": 1}}),
            ("GET /health", "GET", "/health", {503: "degraded", 200: None}, {}),
        ]
        threads = [b.in_background(b.ask, c, what, method, url, fault_at, accept, **kw)
                   for what, method, url, accept, kw in requests]
        time.sleep(max(0.0, down - (time.monotonic() - fault_at)))
        stack.start("temporal")
        wait_until("Temporal", lambda: port_open(stack.settings.temporal_port), [stack.children["temporal"]])
        restarted = time.monotonic() - fault_at
        print(f"Temporal stopped in {stopped:.1f} s, listening again at fault +{restarted:.1f} s", flush=True)
        out = Outcome(verdict=b.Verdict(0), extras=b.Verdict(0))
        for thread, _ in threads:
            thread.join(timeout=180)
        out.answers = [answer for _, result in threads for answer in result]
        for answer in out.answers:
            answer.what += " [answered during the outage]" if answer.sent_at + answer.seconds < restarted else \
                " [answered after the restart]"
            if answer.problem:
                out.problems.append(answer.line())
        retried = _after_restart(stack, c, out, fault_at, outage_key, outage_body, probe_id)
        extras = b.burst_of([retried]) if retried.get("posts") else b.Burst([], {}, burst.first_at, burst.last_at)
        posts = b.settle(stack, burst + extras)
        out.verdict = b.verdict(stack, burst, posts)
        out.extras = b.verdict(stack, extras, posts) if extras.post_ids else b.Verdict(0)
        probe_post = c.get(f"/v1/posts/{probe_id}").json()["post"]
        out.checks.append(f"probe post after the retried cancel: {probe_post['status']}")
        for name, child in stack.children.items():
            if child.proc.poll() is not None:
                out.problems.append(f"{name} exited with code {child.proc.returncode}")
        return out


def _after_restart(stack: ChaosStack, c: httpx.Client, out: Outcome, fault_at: float, outage_key: str,
                   outage_body: dict, probe_id: str) -> dict:
    """Recovery by itself, then: a refused apply wrote nothing and succeeds when retried (its
    answer is returned); a refused cancel left the post alone and works when retried."""
    try:
        stack.wait_healthy(timeout=180)
        out.checks.append(f"/health 200 again at fault +{time.monotonic() - fault_at:.1f} s "
                          "(API and every worker reconnected by themselves)")
    except Exception as exc:  # noqa: BLE001 - reported
        health = httpx.get(f"{stack.api}/health", timeout=30)
        out.problems.append(f"/health not 200 within 180 s of the restart ({exc}): {health.text[:600]}")
    apply_answer = next(a for a in out.answers if a.what.startswith("POST /v1/posts/apply"))
    before = b.store_rows_for_key(stack, outage_key)
    if apply_answer.status == 503:
        out.checks.append(f"store after the 503 apply: {len(before)} run(s) for its idempotencyKey")
        if before:
            out.problems.append(f"the apply answered 503 but the store holds {before}")
    r = c.post("/v1/posts/apply", json=outage_body)
    retried = r.json()
    expected = 201 if apply_answer.status == 503 else 200
    after = b.store_rows_for_key(stack, outage_key)
    out.checks.append(f"the same apply retried after the restart: {r.status_code}; store: {after}")
    if r.status_code != expected:
        out.problems.append(f"the retried apply answered {r.status_code} (expected {expected}): {r.text[:300]}")
    posts = len(outage_body["posts"])
    if [(x["posts"], x["jobs"], x["workflowStarted"]) for x in after] != [(posts, posts, True)]:
        out.problems.append(f"after the retried apply the store holds {after}, expected one started run of {posts} posts")
    cancel_answer = next(a for a in out.answers if a.what.startswith("DELETE"))
    if cancel_answer.status == 503:
        status = c.get(f"/v1/posts/{probe_id}").json()["post"]["status"]
        out.checks.append(f"probe post after the 503 cancel: {status}")
        if status != "scheduled":
            out.problems.append(f"the cancel answered 503 but the post is now {status}")
        r = c.delete(f"/v1/posts/{probe_id}")
        out.checks.append(f"the same cancel retried after the restart: {r.status_code} "
                          f"{r.json().get('post', {}).get('status') or r.json().get('code')}")
        if r.status_code != 200 or r.json()["post"]["status"] != "canceled":
            out.problems.append(f"the retried cancel answered {r.status_code}: {r.text[:300]}")
    return retried


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=300, help="posts in the burst (default 300)")
    ap.add_argument("--window", type=float, default=40.0, help="seconds the burst's publish times span (default 40)")
    ap.add_argument("--down", type=float, default=5.0, help="seconds the server stays stopped (default 5)")
    ap.add_argument("--seed", type=int, default=int(time.time()), help="random seed (printed; rerun with it)")
    ap.add_argument("--signal", choices=sorted(SIGNALS), default="term", help="how the server is stopped (default term)")
    args = ap.parse_args()
    print(f"seed {args.seed}", flush=True)
    started = time.monotonic()
    out = run(args.n, args.window, args.down, args.seed, SIGNALS[args.signal])
    print("\nDuring the outage:")
    for answer in out.answers:
        print("  " + answer.line())
    print("Around it:")
    for line in out.checks:
        print("  " + line)
    print(f"The run applied during the outage (after its retry): {out.extras.scheduled} posts, "
          f"{out.extras.published} published, {out.extras.duplicates} duplicates, {out.extras.lost} lost, "
          f"{len(out.extras.disagreements)} disagreements")
    if out.verdict.reasons.get("outcome_unknown"):
        print(f"outcome_unknown failures the sandbox did receive (once): {out.verdict.unknown_delivered} "
              f"of {out.verdict.reasons['outcome_unknown']}")
    print(f"\n({time.monotonic() - started:.0f} s)")
    b.report(f"Temporal dev server stopped (SIG{args.signal.upper()}) mid-burst for {args.down:.0f} s, "
             f"restarted (seed {args.seed})", out.verdict, out.problems, out.extras)


if __name__ == "__main__":
    main()
