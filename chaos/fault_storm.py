"""Scenario 5: a seeded storm of sandbox faults on both providers during a burst.

Injected at seeded moments of the burst (each fault hits the next matching publish calls):
rate limits with Retry-After 2-5 s (one to three 429s in a row), 5xx storms (four to eight 500s
in a row), timeouts (the sandbox holds the call beyond HERALD_PROVIDER_TIMEOUT_SECONDS, 5 s
here), drops after accept (the message is stored, the connection cut before the answer), and
auth errors on one Discord account from a seeded moment on (its token "revoked").

Besides the usual verdict it checks, from GET /v1/posts/{id}/attempts, the sandbox's deliveries
and the sandbox's own count of consumed faults:
- every fault the sandbox served appears as exactly one recorded attempt of that kind (so no
  call was made, or retried, behind the workflow's back);
- every rate-limited attempt recorded the Retry-After the sandbox sent, and its next call came no
  earlier than that (the smallest margin is reported; it is a lower bound: measured from when
  the workflow recorded the 429 to when it scheduled, or the sandbox received, the next call);
- a 5xx is always retried, and a post whose faults were only 429s and 5xx ends published;
- a timeout or a drop ends the post `outcome_unknown` (Discord webhooks and Telegram bots cannot
  be asked whether a message exists), never retried; a dropped post is delivered exactly once,
  a timed-out one never;
- the auth account's posts end `account_reauth_required` (those sent before the fault are
  published), the account is `needs_reauth`, and no other account is.

Usage: python -m chaos.fault_storm [-n 300] [--window 40] [--seed S]
Exit code 0 when no post was duplicated or lost, the store agrees with every workflow, and every
check above held."""

from __future__ import annotations

import argparse
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone

import httpx

from chaos import burst as b
from chaos.stack import ChaosStack, chaos_stack

SCENARIO = "sandbox fault storm during the burst"
PROVIDER_TIMEOUT = 5.0
TIMEOUT_HOLD = 8.0  # the sandbox holds a timed-out call this long: beyond the provider timeout
ACCOUNTS = 10
KINDS = ("rate_limit", "server_error", "timeout", "drop_after_accept", "auth_error")


@dataclass
class Injection:
    at: float  # seconds after the burst's first post is due
    body: dict
    fault_id: int | None = None
    injected_at: float | None = None  # wall clock, once the sandbox accepted it


@dataclass
class Outcome:
    verdict: b.Verdict
    figures: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def fault_plan(rng: random.Random, n: int, window: float, auth_webhook: str) -> list[Injection]:
    """The seeded storm, scaled to the burst (n = 300: 12 rate limits, 4 storms of 5xx, 4 timeouts,
    6 drops), at moments from just before the first post to 3 s before the last."""
    scale = n / 300
    at = lambda: rng.uniform(-1.0, max(0.0, window - 3.0))  # noqa: E731
    provider = lambda: rng.choice(("telegram", "discord"))  # noqa: E731
    plan = [Injection(at(), {"provider": provider(), "kind": "rate_limit", "count": rng.randint(1, 3),
                             "retryAfter": round(rng.uniform(2.0, 5.0), 1)})
            for _ in range(max(2, round(12 * scale)))]
    plan += [Injection(at(), {"provider": provider(), "kind": "server_error", "count": rng.randint(4, 8),
                              "message": f"sandbox 5xx storm {i}"}) for i in range(max(1, round(4 * scale)))]
    plan += [Injection(at(), {"provider": provider(), "kind": "timeout", "delaySeconds": TIMEOUT_HOLD})
             for _ in range(max(1, round(4 * scale)))]
    plan += [Injection(at(), {"provider": provider(), "kind": "drop_after_accept"})
             for _ in range(max(1, round(6 * scale)))]
    # The token is revoked early in the burst and stays revoked (count: more calls than can come).
    plan.append(Injection(rng.uniform(0.0, window / 4), {"provider": "discord", "kind": "auth_error",
                                                       "target": auth_webhook, "count": 100_000}))
    return sorted(plan, key=lambda i: i.at)


def ts(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def attempt_kind(a: dict) -> str | None:
    """Which sandbox fault (if any) an attempt met, from what Herald recorded."""
    outcome, status, error = a["outcome"], a["httpStatus"], a["error"] or ""
    if outcome == "rate_limited":
        return "rate_limit"
    if outcome == "transient" and status is not None and status >= 500:
        return "server_error"
    if outcome == "unknown":
        return "timeout" if "Timeout" in error else "drop_after_accept"
    if outcome == "auth":
        return "auth_error"
    return None


def run(n: int = 300, window: float = 40.0, seed: int = 1) -> Outcome:
    rng = random.Random(seed)
    auth_index = rng.choice(range(1, ACCOUNTS, 2))  # odd accounts are Discord webhooks
    auth_webhook = b.discord_webhook_id(auth_index)
    env = {"HERALD_PROVIDER_TIMEOUT_SECONDS": f"{PROVIDER_TIMEOUT:g}"}
    with chaos_stack(publishers=2, extra_env=env) as stack:
        burst = b.schedule(stack, n, start_in=15 + n / 30, window=window, tag=f"storm{seed}")
        plan = fault_plan(rng, n, window, auth_webhook)
        for inj in plan:
            delay = (burst.first_at - datetime.now(timezone.utc)).total_seconds() + inj.at
            time.sleep(max(0.0, delay))
            r = httpx.post(f"{stack.sandbox}/_sandbox/faults", json=inj.body, timeout=10)
            r.raise_for_status()
            inj.fault_id, inj.injected_at = r.json()["fault"]["id"], time.time()
        print(f"injected {len(plan)} faults: " + ", ".join(f"{k} {v}" for k, v in
                                                          Counter(i.body['kind'] for i in plan).items()), flush=True)
        posts = b.settle(stack, burst)
        verdict = b.verdict(stack, burst, posts)
        out = Outcome(verdict)
        check(stack, burst, posts, plan, auth_webhook, out)
    return out


def check(stack: ChaosStack, burst: b.Burst, posts: dict[str, dict], plan: list[Injection], auth_webhook: str,
          out: Outcome) -> None:
    problems, figures = out.problems, out.figures
    pending = httpx.get(f"{stack.sandbox}/_sandbox/faults", timeout=30).json()["faults"]
    remaining = {f["id"]: f["count"] for f in pending}
    served: Counter = Counter()
    for inj in plan:
        served[(inj.body["provider"], inj.body["kind"])] += inj.body.get("count", 1) - remaining.get(inj.fault_id, 0)
    deliveries = httpx.get(f"{stack.sandbox}/_sandbox/deliveries", timeout=60).json()["deliveries"]
    received: dict[str, list[float]] = {}
    for d in deliveries:
        received.setdefault(d["text"], []).append(ts(d["receivedAt"]))
    with b.client(stack) as c:
        attempts = {pid: sorted(c.get(f"/v1/posts/{pid}/attempts").json()["attempts"], key=lambda a: a["attempt"])
                    for pid in burst.post_ids}
        accounts = c.get("/v1/accounts").json()["accounts"]

    # 1. Every fault the sandbox served is one recorded attempt of that kind.
    met: Counter = Counter()
    for pid, tries in attempts.items():
        for a in tries:
            if (kind := attempt_kind(a)) is not None:
                met[(posts[pid]["provider"], kind)] += 1
    for key in sorted(set(served) | set(met)):
        if served[key] != met[key]:
            problems.append(f"{key[0]} {key[1]}: the sandbox served {served[key]}, "
                            f"Herald recorded {met[key]} attempts")
    figures.append("faults served by the sandbox (= attempts recorded): " + ", ".join(
        f"{kind} {sum(v for (p, k), v in served.items() if k == kind)}" for kind in KINDS))

    # 2. Per post: the outcome its faults call for.
    asked = {p: {inj.body["retryAfter"] if p == "discord" else float(-(-inj.body["retryAfter"] // 1))
                 for inj in plan if inj.body["kind"] == "rate_limit" and inj.body["provider"] == p}
             for p in ("telegram", "discord")}
    margins: list[tuple[float, str]] = []
    by_kind: dict[str, set[str]] = {kind: set() for kind in KINDS}
    for pid, tries in attempts.items():
        post, text = posts[pid], burst.text_of[pid]
        kinds = [attempt_kind(a) for a in tries]
        for kind in kinds:
            if kind:
                by_kind[kind].add(pid)
        copies = len(received.get(text, []))
        final = post.get("status"), post.get("errorCode")
        terminal = next((k for k in kinds if k in ("timeout", "drop_after_accept", "auth_error")), None)
        if terminal is not None and kinds.index(terminal) != len(kinds) - 1:
            problems.append(f"{pid}: retried after a {terminal} (attempts {kinds})")
        if terminal in ("timeout", "drop_after_accept"):
            want, want_copies = ("failed", "outcome_unknown"), (0 if terminal == "timeout" else 1)
        elif terminal == "auth_error":
            want, want_copies = ("failed", "account_reauth_required"), 0
        else:
            want, want_copies = ("published", None), 1
        if final != want or copies != want_copies:
            problems.append(f"{pid}: ended {final[0]} ({final[1]}) delivered {copies}x after {kinds}; "
                            f"expected {want[0]} ({want[1]}) delivered {want_copies}x")
        for i, a in enumerate(tries):
            if kinds[i] == "server_error" and i == len(tries) - 1:
                problems.append(f"{pid}: a 5xx was not retried")
            if kinds[i] != "rate_limit":
                continue
            wanted = a["retryAfterSeconds"]
            if wanted is None or wanted not in asked[post["provider"]]:
                problems.append(f"{pid}: attempt {a['attempt']} recorded Retry-After {wanted}, "
                                f"the sandbox sent one of {sorted(asked[post['provider']])}")
            if i == len(tries) - 1:
                problems.append(f"{pid}: a rate-limited attempt was not retried")
                continue
            nxt = tries[i + 1]
            # The next call left no earlier than the workflow scheduled it; when it was the one
            # that published, the sandbox's receipt is the call's real arrival.
            next_at = ts(nxt["startedAt"])
            if nxt["outcome"] == "published" and copies == 1:
                next_at = max(next_at, received[text][0])
            margin = next_at - ts(a["finishedAt"]) - (wanted or 0)
            margins.append((margin, f"{pid} attempt {a['attempt']}"))
            if margin < 0:
                problems.append(f"{pid}: attempt {nxt['attempt']} came {-margin:.3f} s earlier than the "
                                f"Retry-After of {wanted} s asked (attempts {tries})")
    if margins:
        low, where = min(margins)
        figures.append(f"rate-limited attempts {len(margins)}: each next call at least Retry-After later; "
                       f"smallest margin {low:.3f} s ({where}), largest {max(margins)[0]:.3f} s")
    for kind in ("server_error", "timeout", "drop_after_accept"):
        hit = by_kind[kind]
        figures.append(f"{kind}: {len(hit)} posts hit; ended " + ", ".join(
            f"{s} {v}" for s, v in sorted(Counter(f"{posts[p]['status']}"
                                                  + (f" ({posts[p]['errorCode']})" if posts[p]["errorCode"] else "")
                                                  for p in hit).items())) if hit else f"{kind}: no post hit")

    # 3. The auth account.
    auth = next((a for a in accounts if a["provider"] == "discord" and a["externalId"] == auth_webhook), None)
    revoked_at = next(i.injected_at for i in plan if i.body["kind"] == "auth_error")
    if auth is None:
        problems.append(f"no account for webhook {auth_webhook}")
        return
    if auth["status"] != "needs_reauth":
        problems.append(f"account {auth['handle']} is {auth['status']}, expected needs_reauth")
    flagged = [a["handle"] for a in accounts if a["status"] == "needs_reauth" and a["id"] != auth["id"]]
    if flagged:
        problems.append(f"accounts flagged needs_reauth without an auth error: {flagged}")
    on_auth = [pid for pid in burst.post_ids if posts[pid]["accountId"] == auth["id"]]
    late = [pid for pid in on_auth if posts[pid]["status"] == "published"
            and received.get(burst.text_of[pid], [0.0])[0] > (revoked_at or 0)]
    if late:
        problems.append(f"posts of {auth['handle']} published after its token was revoked: {late[:5]}")
    elsewhere = [pid for pid in burst.post_ids if posts[pid]["errorCode"] == "account_reauth_required"
                 and pid not in on_auth]
    if elsewhere:
        problems.append(f"posts of other accounts ended account_reauth_required: {elsewhere[:5]}")
    ends = Counter(posts[pid]["status"] + (f" ({posts[pid]['errorCode']})" if posts[pid]["errorCode"] else "")
                   for pid in on_auth)
    figures.append(f"auth account {auth['handle']} ({auth['status']}): {len(on_auth)} posts, "
                   + ", ".join(f"{k} {v}" for k, v in sorted(ends.items())))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=300, help="posts in the burst (default 300)")
    ap.add_argument("--window", type=float, default=40.0, help="seconds the burst's publish times span (default 40)")
    ap.add_argument("--seed", type=int, default=int(time.time()), help="random seed (printed; rerun with it)")
    args = ap.parse_args()
    print(f"seed {args.seed}", flush=True)
    started = time.monotonic()
    out = run(args.n, args.window, args.seed)
    print(f"run time {time.monotonic() - started:.0f} s")
    for line in out.figures:
        print(" -", line)
    b.report(f"{SCENARIO} (seed {args.seed})", out.verdict, out.problems)


if __name__ == "__main__":
    main()
