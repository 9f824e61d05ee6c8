"""Burst benchmark: N posts due at the same instant, created through the API, published to the
sandbox. Prints apply throughput, publish lateness (sandbox receivedAt - publish_at) p50 / p95 /
p99 / max, and drain time (publish_at -> every post `published` in the store).

    python bench/burst.py                 # starts its own `herald dev` stack on free ports
    python bench/burst.py -n 200          # a smaller burst
    python bench/burst.py --api http://127.0.0.1:8000 --key hk_live_... --sandbox http://127.0.0.1:8790
                                          # against a stack that is already running (make run)
    python bench/burst.py --set HERALD_PROVIDER_MAX_CONNECTIONS=8
                                          # the stack it starts with a setting changed (repeatable)

The stack it starts uses a fresh data directory, so the figures do not depend on earlier runs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator

import httpx

from herald.dev import DevError, background_stack

TELEGRAM_TOKEN = "123456:" + "B" * 35


@contextmanager
def own_stack(lead: float | None, settings: dict[str, str] | None = None) -> Iterator[tuple[str, str, str]]:
    root = Path(tempfile.mkdtemp(prefix="herald-bench-"))
    # The benchmark measures publishing, not the API's per-key rate limits.
    extra = {"HERALD_LOG_LEVEL": "WARNING", "HERALD_RATE_LIMITS_ENABLED": "false", **(settings or {})}
    if lead is not None:
        extra["HERALD_PUBLISH_LEAD_SECONDS"] = str(lead)
    try:
        with background_stack(root, extra) as stack:
            yield stack.api, stack.key, stack.sandbox
    except DevError as exc:
        raise SystemExit(str(exc)) from None
    finally:
        print(f"(stack log: {root / 'dev.log'})")


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[k]


def parse_ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def process_label(pid: str) -> str | None:
    """A short name for the processes of a Herald stack (None for the rest of the machine)."""
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    words = [w.decode(errors="replace") for w in cmd if w]
    line = " ".join(words)
    if "server start-dev" in line:
        return "temporal"
    if "herald.cli" not in line:
        return "bench" if int(pid) == os.getpid() else None
    sub = words[words.index("herald.cli") + 1:] if "herald.cli" in words else []
    if sub[:1] == ["worker"]:
        role = sub[sub.index("--role") + 1] if "--role" in sub else "all"
        return f"worker:{role}"
    return sub[0] if sub else None


def cpu_times() -> dict[str, tuple[str, float]]:
    """pid -> (label, CPU seconds used so far) for every Herald process on the machine (so run
    nothing else Herald-shaped beside the benchmark when you read these figures)."""
    out = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        label = process_label(pid)
        if label is None:
            continue
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[pid] = (label, (int(fields[11]) + int(fields[12])) / CLK_TCK)
    return out


class CpuSampler(threading.Thread):
    """Samples each stack process's CPU time every 100 ms, to show where the two cores went in
    the seconds around the due time (Linux /proc only)."""

    def __init__(self, due: datetime):
        super().__init__(daemon=True)
        self.due = due.timestamp()
        self.samples: list[tuple[float, dict[str, tuple[str, float]]]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            if time.time() >= self.due - 2:
                self.samples.append((time.time() - self.due, cpu_times()))
            self.stop.wait(0.1)

    def report(self, windows: list[tuple[float, float]]) -> None:
        def at(t: float) -> tuple[float, dict[str, float]]:
            when, snap = min(self.samples, key=lambda s: abs(s[0] - t))
            per: dict[str, float] = {}
            for label, secs in snap.values():
                per[label] = per.get(label, 0.0) + secs
            return when, per

        if not self.samples:
            return
        labels = sorted({lbl for _, snap in self.samples for lbl, _ in snap.values()})
        print("CPU use per process around the due time (% of one core; 200 % = both cores):")
        print("  " + "window".ljust(16) + "".join(lbl.rjust(18) for lbl in labels))
        for a, b in windows:
            if b > self.samples[-1][0] + 0.05:
                break
            (t0, start), (t1, end) = at(a), at(b)
            span = max(t1 - t0, 0.05)  # the samples' own times, not the window's nominal edges
            cells = [f"{100 * (end.get(lbl, 0) - start.get(lbl, 0)) / span:.0f} %".rjust(18) for lbl in labels]
            print("  " + f"{a:+.1f} .. {b:+.1f} s".ljust(16) + "".join(cells))


def run(api: str, key: str, sandbox: str, n: int, per_run: int, accounts: int, margin: float,
        cpu: bool = False) -> None:
    c = httpx.Client(base_url=api, headers={"Authorization": f"Bearer {key}"}, timeout=120)
    httpx.delete(f"{sandbox}/_sandbox").raise_for_status()
    handles = []
    for i in range(accounts):
        if i % 2 == 0:
            body = {"provider": "telegram", "botToken": TELEGRAM_TOKEN, "chatId": f"@bench{i}"}
        else:
            body = {"provider": "discord", "webhookUrl": f"https://discord.com/api/webhooks/{900000 + i}/bench-token-{i}"}
        r = c.post("/v1/connections/start", json=body)
        r.raise_for_status()
        handles.append(r.json()["connection"]["account"]["handle"])

    due = (datetime.now(timezone.utc) + timedelta(seconds=margin)).replace(microsecond=0)
    due_s = due.strftime("%Y-%m-%dT%H:%M:%SZ")
    run_ids = []
    started = time.perf_counter()
    for start in range(0, n, per_run):
        posts = [{"account": handles[i % len(handles)], "text": f"burst post {i}", "publish_at": due_s}
                 for i in range(start, min(n, start + per_run))]
        r = c.post("/v1/posts/apply", json={"idempotencyKey": f"bench-{due_s}-{start}", "posts": posts})
        if r.status_code != 201:
            raise SystemExit(f"apply failed: {r.status_code} {r.text[:500]}")
        run_ids.append(r.json()["run"]["id"])
    apply_seconds = time.perf_counter() - started
    if datetime.now(timezone.utc) > due - timedelta(seconds=5):
        raise SystemExit(f"applying took {apply_seconds:.1f} s, too close to the due time; raise --margin")
    print(f"applied {n} posts in {len(run_ids)} runs in {apply_seconds:.2f} s "
          f"({n / apply_seconds:.0f} posts/s); all due at {due_s}")
    sampler = CpuSampler(due) if cpu else None
    if sampler:
        sampler.start()

    # Wait for every post to be published in the store (the drain), then read the sandbox.
    drained_at = None
    deadline = due + timedelta(seconds=300)
    while datetime.now(timezone.utc) < deadline:
        time.sleep(0.5 if datetime.now(timezone.utc) > due else 1.0)
        if datetime.now(timezone.utc) < due:
            continue
        done = c.get("/v1/posts", params={"status": "published,failed", "limit": 1, "from": due_s, "to": due_s}).json()["total"]
        if done >= n:
            drained_at = datetime.now(timezone.utc)
            break
    if sampler:
        sampler.stop.set()
        sampler.join()
    deliveries = httpx.get(f"{sandbox}/_sandbox/deliveries", timeout=60).json()["deliveries"]
    failed = c.get("/v1/posts", params={"status": "failed", "limit": 1, "from": due_s, "to": due_s}).json()["total"]
    late = [(parse_ts(d["receivedAt"]) - due).total_seconds() for d in deliveries]
    texts = [d["text"] for d in deliveries]
    duplicates = len(texts) - len(set(texts))
    print(f"delivered {len(deliveries)} / {n}; failed {failed}; duplicates {duplicates}")
    if not late:
        raise SystemExit("nothing was delivered")
    print("publish lateness (sandbox receivedAt - publish_at):")
    print(f"  min {min(late) * 1000:.0f} ms  p50 {percentile(late, 50) * 1000:.0f} ms  "
          f"p95 {percentile(late, 95) * 1000:.0f} ms  p99 {percentile(late, 99) * 1000:.0f} ms  "
          f"max {max(late) * 1000:.0f} ms  (mean {statistics.mean(late) * 1000:.0f} ms)")
    early = sum(1 for x in late if x < 0)
    if early:
        print(f"  WARNING: {early} deliveries arrived before publish_at")
    if drained_at:
        print(f"drain time (publish_at -> all {n} posts final in the store): {(drained_at - due).total_seconds():.1f} s")
    else:
        print("drain: not every post reached a final status within 300 s")
    if sampler:
        sampler.report([(-2, -1), (-1, 0), (0, 0.5), (0.5, 1), (1, 1.5), (1.5, 2), (2, 3), (3, 5), (5, 10), (10, 20)])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=1000, help="posts in the burst (default 1000)")
    ap.add_argument("--per-run", type=int, default=100, help="posts per apply request (default 100)")
    ap.add_argument("--accounts", type=int, default=20, help="accounts to spread posts over (default 20)")
    ap.add_argument("--margin", type=float, default=None,
                    help="seconds from now to the due time (default: 70 + n/20, so the workflows have "
                         "started and the lead window has not begun when the burst is applied)")
    ap.add_argument("--set", action="append", default=[], metavar="HERALD_NAME=VALUE",
                    help="a setting for the stack this benchmark starts (repeatable)")
    ap.add_argument("--lead", type=float, default=None,
                    help="HERALD_PUBLISH_LEAD_SECONDS for the stack it starts (default: Herald's default)")
    ap.add_argument("--cpu", action="store_true",
                    help="also print each process's CPU use in windows around the due time (Linux)")
    ap.add_argument("--api"), ap.add_argument("--key"), ap.add_argument("--sandbox")
    args = ap.parse_args()
    margin = args.margin if args.margin is not None else 70 + args.n / 20
    print(f"burst benchmark: n={args.n}, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    if args.api:
        if not (args.key and args.sandbox):
            raise SystemExit("--api needs --key and --sandbox too")
        run(args.api, args.key, args.sandbox, args.n, args.per_run, args.accounts, margin, args.cpu)
        return
    settings = {}
    for item in args.set:
        name, sep, value = item.partition("=")
        if not sep or not name.startswith("HERALD_"):
            raise SystemExit(f"--set wants HERALD_NAME=value, got {item!r}")
        settings[name] = value
    with own_stack(args.lead, settings) as (api, key, sandbox):
        run(api, key, sandbox, args.n, args.per_run, args.accounts, margin, args.cpu)


if __name__ == "__main__":
    main()
