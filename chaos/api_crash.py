"""Scenario 4: the API dies between writing a run and starting its workflow; the safety-net sweep
starts it.

The burst is applied as `--runs` runs (post i in run i % runs, all due in one window). For a
seeded `--crashes` of the applies (always the last), the API runs with
HERALD_FAULT_EXIT_AFTER_RUN_WRITE: it commits the run and exits (os._exit(70)) before starting the
RunWorkflow, so the client's connection drops and no answer arrives. Right after each crash the
scenario proves from the store and Temporal that the run and its posts were written and that
neither its RunWorkflow nor any of its PostWorkflows exists; then the API is restarted (without
the hook after the last apply). The client learns the unanswered posts' ids with GET /v1/posts
(their texts are unique).

One unanswered apply is repeated at once with the same idempotencyKey, as a client that lost its
connection would: the API answers with the same run and starts it. The others are left to the
sweep (every 5 s here; it starts a run 30 s after it was written). When the last one becomes due,
two extra sweeps are started at the same moment, so several sweeps race for it. After the sweep,
one swept apply is repeated: the same run comes back and nothing is started. After the burst has
settled the `herald-sweep` schedule is triggered twice more: those sweeps must start nothing.
Finally every run and post must have exactly one workflow execution in Temporal.

Usage: python -m chaos.api_crash [-n 300] [--window 40] [--runs 12] [--crashes 8] [--seed S]
Exit code 0 when no post was duplicated or lost, the store agrees with every workflow, and every
check above held."""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Awaitable, Callable

import httpx
from sqlmodel import select
from temporalio.client import Client, ScheduleOverlapPolicy, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from activities.sweeper import RUN_START_GRACE
from chaos import burst as b
from chaos.stack import ChaosStack, chaos_stack
from herald import temporal as t
from herald.contracts import SweepReport
from herald.dev import spawn, wait_until
from store.db import Database
from store.models import Post, Run
from workers.main import SWEEP_SCHEDULE_ID

SCENARIO = "API exits between the run's commit and its workflow start, restarted; the sweep starts the runs"
HOOK_ENV = {"HERALD_FAULT_EXIT_AFTER_RUN_WRITE": "true"}
CRASH_EXIT_CODE = 70
SWEEP_EVERY = 5.0
ACCOUNTS = 10
# What one apply costs when the API dies on it: the apply, the checks and a restart (measured
# about 2 s on the 2-core project machine); used only to schedule the burst late enough.
CRASHED_APPLY_SECONDS = 5.0


@dataclass
class Unanswered:
    """An apply whose answer never came: what the store holds for it."""
    index: int
    body: dict
    run_id: str
    post_ids: list[str]
    written_at: datetime
    checked_after: float  # seconds after the write that its workflows were found missing


@dataclass
class Outcome:
    verdict: b.Verdict
    figures: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


# --- helpers --------------------------------------------------------------------------------------


def on_temporal(stack: ChaosStack, fn: Callable[[Client], Awaitable[Any]]) -> Any:
    async def go() -> Any:
        return await fn(await t.connect(stack.settings.temporal_target, stack.settings.temporal_namespace))
    return asyncio.run(go())


async def workflow_exists(temporal: Client, workflow_id: str) -> bool:
    try:
        await temporal.get_workflow_handle(workflow_id).describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True


async def executions(temporal: Client, workflow_type: str) -> Counter:
    """How many executions each workflow id of this type has (open and closed)."""
    count: Counter = Counter()
    async for wf in temporal.list_workflows(f"WorkflowType = '{workflow_type}'"):
        count[wf.id] += 1
    return count


async def sweep_reports(temporal: Client) -> list[tuple[datetime, SweepReport]]:
    """Every finished sweep pass (scheduled, triggered or started by hand): its start and report."""
    out = []
    async for wf in temporal.list_workflows("WorkflowType = 'SweepWorkflow'"):
        if wf.status == WorkflowExecutionStatus.COMPLETED:
            handle = temporal.get_workflow_handle(wf.id, run_id=wf.run_id, result_type=SweepReport)
            out.append((wf.start_time, await handle.result()))
    return sorted(out, key=lambda item: item[0])


def utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def stored_run(db: Database, key: str) -> tuple[Run | None, list[Post]]:
    with db.session() as s:
        run = s.exec(select(Run).where(Run.idempotency_key == key)).first()
        posts = list(s.exec(select(Post).where(Post.run_id == run.id).order_by(Post.position)).all()) if run else []
        return run, posts


def start_api(stack: ChaosStack, hook: bool) -> None:
    """Start the API (stopping a running one first), with the crash hook on or off."""
    old = stack.children.get("api")
    if old is not None and old.proc.poll() is None:
        old.proc.terminate()
        old.proc.wait(timeout=30)
    stack.children["api"] = spawn("api", stack.commands["api"], stack.env | (HOOK_ENV if hook else {}))
    wait_until("the API", lambda: httpx.get(f"{stack.api}/health", timeout=10).status_code == 200,
               [stack.children["api"]])


def read_back(c: httpx.Client, tag: str) -> dict[str, dict]:
    """The burst's posts as the client sees them through GET /v1/posts, by text."""
    out: dict[str, dict] = {}
    offset = 0
    while True:
        page = c.get("/v1/posts", params={"limit": 500, "offset": offset}).json()["posts"]
        out |= {p["description"]: p for p in page if p["description"].startswith(f"{tag} post ")}
        if len(page) < 500:
            return out
        offset += 500


# --- the scenario ---------------------------------------------------------------------------------


def run(n: int = 300, window: float = 40.0, seed: int = 1, runs: int = 12, crashes: int = 8,
        start_in: float | None = None, final_sweeps: bool = True) -> Outcome:
    """`start_in` (seconds until the first post is due) defaults to late enough for the sweep to
    start every run before its posts are due; a shorter one (CI) lets them publish late instead."""
    assert 1 <= crashes <= runs, "crashes must be between 1 and runs"
    rng = random.Random(seed)
    crashed = set(rng.sample(range(runs - 1), crashes - 1)) | {runs - 1}  # the last apply always crashes
    # One unanswered apply is repeated by the client at once (not the last: the sweeps race for that one).
    repeated = rng.choice(sorted(crashed - {runs - 1})) if crashes >= 2 else None
    tag = f"crash{seed}"
    grace = RUN_START_GRACE.total_seconds()
    on_time_expected = start_in is None
    if start_in is None:
        start_in = runs * 1.5 + crashes * CRASHED_APPLY_SECONDS + grace + 3 * SWEEP_EVERY + 15
    figures: list[str] = []
    problems: list[str] = []

    with chaos_stack(publishers=2, extra_env={"HERALD_SWEEP_INTERVAL_SECONDS": f"{SWEEP_EVERY:g}"}) as stack:
        db = Database(stack.settings.db_url)
        with b.client(stack) as c:
            handles = b.connect_accounts(c, ACCOUNTS, tag)
        first = datetime.now(timezone.utc) + timedelta(seconds=start_in)
        step = window / max(1, n - 1)
        bodies = [{"idempotencyKey": f"{tag}-run{k}", "posts": [
            {"account": handles[i % ACCOUNTS], "text": f"{tag} post {i}",
             "publish_at": (first + timedelta(seconds=i * step)).isoformat()}
            for i in range(k, n, runs)]} for k in range(runs)]

        answered: dict[int, dict] = {}
        unanswered: dict[int, Unanswered] = {}
        hook_on = False  # the stack started the API without the hook
        if 0 in crashed:
            start_api(stack, hook=True)
            hook_on = True
        apply_started = time.monotonic()
        for k, body in enumerate(bodies):
            with b.client(stack) as c:
                if k in crashed:
                    try:
                        r = c.post("/v1/posts/apply", json=body)
                        problems.append(f"apply {k}: the crash hook was on, yet the API answered {r.status_code}")
                    except httpx.TransportError:
                        pass  # the connection dropped: the API died
                    code = stack.children["api"].proc.wait(timeout=30)
                    if code != CRASH_EXIT_CODE:
                        problems.append(f"apply {k}: the API exited with {code}, expected {CRASH_EXIT_CODE}")
                    unanswered[k] = check_written_not_started(stack, db, k, body, problems)
                else:
                    r = c.post("/v1/posts/apply", json=body)
                    if r.status_code != 201:
                        raise SystemExit(f"apply {k} failed: {r.status_code} {r.text[:300]}")
                    answered[k] = r.json()
            hook_next = k + 1 in crashed
            if k in crashed or hook_next != hook_on:
                start_api(stack, hook=hook_next)
                hook_on = hook_next
            if k == repeated:
                repeat_apply(stack, db, unanswered[k], problems, "at once (before the sweep)",
                             expect_started_by_api=True)
        apply_seconds = time.monotonic() - apply_started
        figures.append(f"{runs} applies ({crashes} crashed the API, each exit {CRASH_EXIT_CODE}) took "
                       f"{apply_seconds:.0f} s; the burst's first post was due {start_in:.0f} s after the first apply")
        checked = [u.checked_after for u in unanswered.values()]
        figures.append(f"every crashed apply: run and {sum(len(u.post_ids) for u in unanswered.values())} posts "
                       f"in the store, workflow_started false, no run-/post- workflow in Temporal "
                       f"(checked {min(checked):.2f}-{max(checked):.2f} s after the write; the sweep waits "
                       f"{grace:.0f} s)")

        # The client side: the ids of the posts whose apply never answered, from GET /v1/posts.
        with b.client(stack) as c:
            seen = read_back(c, tag)
        for u in unanswered.values():
            got = [seen.get(p["text"], {}) for p in u.body["posts"]]
            if [p.get("id") for p in got] != u.post_ids or {p.get("runId") for p in got} != {u.run_id}:
                problems.append(f"apply {u.index}: GET /v1/posts does not show the stored posts of run {u.run_id}")
        post_ids = [p["id"] for p in seen.values()]
        burst = b.Burst(post_ids, {p["id"]: p["description"] for p in seen.values()}, first,
                        first + timedelta(seconds=window))
        if len(post_ids) != n:
            problems.append(f"GET /v1/posts shows {len(post_ids)} of the burst's {n} posts")

        swept = {k: u for k, u in unanswered.items() if k != repeated}
        race_sweeps(stack, db, unanswered[runs - 1], figures)
        started_at = wait_started(stack, db, swept, problems)
        check_start_times(swept, started_at, on_time_expected, figures, problems)
        if swept:
            again = rng.choice(sorted(swept))
            repeat_apply(stack, db, swept[again], problems, "after the sweep started it", expect_started_by_api=False)

        posts = b.settle(stack, burst)
        verdict = b.verdict(stack, burst, posts)

        settled_at = datetime.now(timezone.utc)
        if final_sweeps:
            trigger_sweeps(stack)
        check_single_executions(stack, answered, unanswered, swept, repeated, post_ids, settled_at,
                                final_sweeps, figures, problems)
        db.dispose()
    return Outcome(verdict, figures, problems)


def check_written_not_started(stack: ChaosStack, db: Database, k: int, body: dict, problems: list[str]) -> Unanswered:
    """Right after a crash: the run is in the store, not marked started, and Temporal has neither
    its RunWorkflow nor any of its PostWorkflows."""
    run, posts = stored_run(db, body["idempotencyKey"])
    if run is None:
        raise SystemExit(f"apply {k}: the API died but no run was written (the hook fired before the commit?)")
    texts = [p.description for p in posts]
    if texts != [p["text"] for p in body["posts"]]:
        problems.append(f"apply {k}: run {run.id} holds {len(posts)} posts, not the {len(body['posts'])} applied")
    if run.workflow_started:
        problems.append(f"apply {k}: run {run.id} is marked workflow_started although the API died first")

    async def missing(temporal: Client) -> list[str]:
        ids = [t.run_workflow_id(run.id)] + [t.post_workflow_id(p.id) for p in posts]
        found = await asyncio.gather(*(workflow_exists(temporal, wid) for wid in ids))
        return [wid for wid, exists in zip(ids, found) if exists]

    existing = on_temporal(stack, missing)
    written_at = utc(run.created_at)
    after = (datetime.now(timezone.utc) - written_at).total_seconds()
    if existing:
        problems.append(f"apply {k}: workflows exist although the API died before starting them: {existing[:3]}")
    if after >= RUN_START_GRACE.total_seconds():
        problems.append(f"apply {k}: checked {after:.1f} s after the write: the sweep may have run already")
    print(f"apply {k}: the API died after writing run {run.id} ({len(posts)} posts); "
          f"no workflow exists {after:.2f} s after the write", flush=True)
    return Unanswered(k, body, run.id, [p.id for p in posts], written_at, after)


def repeat_apply(stack: ChaosStack, db: Database, u: Unanswered, problems: list[str], when: str,
                 expect_started_by_api: bool) -> None:
    """Repeat an unanswered apply with its idempotencyKey: the same run must come back, no new
    run or post; the first repeat starts the run (the API's own repair)."""
    with b.client(stack) as c:
        r = c.post("/v1/posts/apply", json=u.body)
    body = r.json()
    if r.status_code != 200 or not body.get("duplicate"):
        problems.append(f"repeat of apply {u.index} {when}: {r.status_code} duplicate={body.get('duplicate')}")
        return
    if body["run"]["id"] != u.run_id or [p["id"] for p in body["posts"]] != u.post_ids:
        problems.append(f"repeat of apply {u.index} {when}: answered run {body['run']['id']}, stored {u.run_id}")
    run, posts = stored_run(db, u.body["idempotencyKey"])
    if run is None or run.id != u.run_id or len(posts) != len(u.post_ids):
        problems.append(f"repeat of apply {u.index} {when}: the store changed")
    if expect_started_by_api:
        if run is None or not run.workflow_started:
            problems.append(f"repeat of apply {u.index} {when}: the run is still not marked started")
        if not on_temporal(stack, lambda temporal: workflow_exists(temporal, t.run_workflow_id(u.run_id))):
            problems.append(f"repeat of apply {u.index} {when}: no RunWorkflow after the repeat")
    print(f"apply {u.index} repeated with its idempotencyKey {when}: {r.status_code}, the same run {u.run_id}",
          flush=True)


def race_sweeps(stack: ChaosStack, db: Database, last: Unanswered, figures: list[str]) -> None:
    """When the last unanswered run becomes due for the sweep, start two extra sweeps at once, so
    they race each other (and the schedule's own) to start it."""
    due = last.written_at + RUN_START_GRACE + timedelta(seconds=0.2)
    time.sleep(max(0.0, (due - datetime.now(timezone.utc)).total_seconds()))
    already = stored_run(db, last.body["idempotencyKey"])[0]

    async def two(temporal: Client) -> list[SweepReport]:
        handles = await asyncio.gather(*(temporal.start_workflow(
            "SweepWorkflow", id=f"chaos-sweep-race-{i}-{last.run_id}", task_queue=stack.settings.task_queue,
            result_type=SweepReport) for i in range(2)))
        return list(await asyncio.gather(*(h.result() for h in handles)))

    reports = on_temporal(stack, two)
    claimed = sum(last.run_id in r.runs_started for r in reports)
    before = "already started by the schedule" if already and already.workflow_started else "not yet started"
    figures.append(f"two sweeps started together when run {last.run_id} became due ({before}); "
                   f"{claimed} of them reported starting it")


def wait_started(stack: ChaosStack, db: Database, swept: dict[int, Unanswered],
                 problems: list[str]) -> dict[int, datetime]:
    """Wait until the store marks every swept run started; when each RunWorkflow started (Temporal)."""
    deadline = time.monotonic() + RUN_START_GRACE.total_seconds() + 6 * SWEEP_EVERY + 30
    pending = dict(swept)
    while pending and time.monotonic() < deadline:
        for k, u in list(pending.items()):
            run = stored_run(db, u.body["idempotencyKey"])[0]
            if run is not None and run.workflow_started:
                del pending[k]
        time.sleep(0.5)
    for u in pending.values():
        problems.append(f"run {u.run_id} (apply {u.index}) was never started")

    async def starts(temporal: Client) -> dict[int, datetime]:
        out = {}
        for k, u in swept.items():
            if k not in pending:
                out[k] = (await temporal.get_workflow_handle(t.run_workflow_id(u.run_id)).describe()).start_time
        return out

    return on_temporal(stack, starts)


def check_start_times(swept: dict[int, Unanswered], started_at: dict[int, datetime], on_time_expected: bool,
                      figures: list[str], problems: list[str]) -> None:
    """Each swept run started after the sweep's grace (so by the sweep), and before its first
    post was due when the burst was scheduled late enough for that."""
    grace = RUN_START_GRACE.total_seconds()
    delays, aheads = [], []
    for k, u in sorted(swept.items()):
        if k not in started_at:
            continue
        delay = (started_at[k] - u.written_at).total_seconds()
        ahead = (min(datetime.fromisoformat(p["publish_at"]) for p in u.body["posts"]) - started_at[k]).total_seconds()
        delays.append(delay)
        aheads.append(ahead)
        if delay < grace:
            problems.append(f"run {u.run_id}: its RunWorkflow started {delay:.1f} s after the write, "
                            f"inside the sweep's {grace:.0f} s grace: not by the sweep")
        if on_time_expected and ahead < 0:
            problems.append(f"run {u.run_id}: started {-ahead:.1f} s after its first post was due")
    if delays:
        figures.append(f"the sweep started {len(delays)} of {len(swept)} runs {min(delays):.1f}-{max(delays):.1f} s "
                       f"after their write; the first post of each was then due in {min(aheads):.1f} s or more")


def trigger_sweeps(stack: ChaosStack) -> None:
    """Two more passes of the `herald-sweep` schedule after everything has settled (the schedule
    names each pass by its second, so the two are a second apart); wait until both finished."""
    async def go(temporal: Client) -> None:
        handle = temporal.get_schedule_handle(SWEEP_SCHEDULE_ID)
        for _ in range(2):
            await handle.trigger(overlap=ScheduleOverlapPolicy.ALLOW_ALL)
            await asyncio.sleep(1.2)

    on_temporal(stack, go)
    time.sleep(2 * SWEEP_EVERY)  # the triggered passes and two scheduled ones finish


def check_single_executions(stack: ChaosStack, answered: dict[int, dict], unanswered: dict[int, Unanswered],
                            swept: dict[int, Unanswered], repeated: int | None, post_ids: list[str],
                            settled_at: datetime, final_sweeps: bool, figures: list[str],
                            problems: list[str]) -> None:
    """One workflow execution per run and post; the sweeps started the swept runs and nothing else."""
    async def gather(temporal: Client) -> tuple[Counter, Counter, list[tuple[datetime, SweepReport]]]:
        return (await executions(temporal, "RunWorkflow"), await executions(temporal, "PostWorkflow"),
                await sweep_reports(temporal))

    run_execs, post_execs, reports = on_temporal(stack, gather)
    run_ids = {k: a["run"]["id"] for k, a in answered.items()} | {k: u.run_id for k, u in unanswered.items()}
    for k, run_id in sorted(run_ids.items()):
        if (count := run_execs[t.run_workflow_id(run_id)]) != 1:
            problems.append(f"run {run_id} (apply {k}) has {count} RunWorkflow executions")
    extra_posts = [pid for pid in post_ids if post_execs[t.post_workflow_id(pid)] != 1]
    for pid in extra_posts[:10]:
        problems.append(f"post {pid} has {post_execs[t.post_workflow_id(pid)]} PostWorkflow executions")

    claimed: Counter = Counter(run_id for _, r in reports for run_id in r.runs_started)
    posts_started = [pid for _, r in reports for pid in r.posts_started]
    for k, u in swept.items():
        if claimed[u.run_id] == 0:
            problems.append(f"run {u.run_id} (apply {k}) was started, but no sweep reports starting it")
    not_for_sweep = [run_ids[k] for k in run_ids if k not in swept and claimed[run_ids[k]]]
    if not_for_sweep:
        problems.append(f"sweeps report starting runs the API had started: {not_for_sweep}")
    if posts_started:
        problems.append(f"sweeps started {len(posts_started)} post workflows (none was overdue): {posts_started[:5]}")
    late = [r for started, r in reports if started > settled_at]
    if final_sweeps and len(late) < 2:
        problems.append(f"only {len(late)} sweep passes ran after the burst settled, expected at least 2")
    busy = [r for r in late if r.runs_started or r.posts_started or r.overdue]
    if busy:
        problems.append(f"{len(busy)} sweep passes after the burst settled started or reported something")
    per_run = sorted({run_execs[t.run_workflow_id(r)] for r in run_ids.values()})
    per_post = sorted({post_execs[t.post_workflow_id(p)] for p in post_ids})
    figures.append(
        f"{len(reports)} sweep passes in all ({len(late)} after the burst settled, starting nothing: {not busy}); "
        f"runs reported started by a sweep: {len(claimed)} of {len(swept)} left to it "
        f"(reports per run: {max(claimed.values(), default=0)} at most); the client's repeat started apply "
        f"{repeated}'s run; RunWorkflow executions per run: {per_run}, PostWorkflow executions per post: {per_post}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=300, help="posts in the burst (default 300)")
    ap.add_argument("--window", type=float, default=40.0, help="seconds the burst's publish times span (default 40)")
    ap.add_argument("--runs", type=int, default=12, help="applies the burst is split into (default 12)")
    ap.add_argument("--crashes", type=int, default=8, help="applies on which the API dies (default 8)")
    ap.add_argument("--seed", type=int, default=int(time.time()), help="random seed (printed; rerun with it)")
    args = ap.parse_args()
    print(f"seed {args.seed}", flush=True)
    started = time.monotonic()
    out = run(args.n, args.window, args.seed, args.runs, args.crashes)
    print(f"run time {time.monotonic() - started:.0f} s")
    for line in out.figures:
        print(" -", line)
    b.report(f"{SCENARIO} ({args.crashes} of {args.runs} applies crashed; seed {args.seed})", out.verdict,
             out.problems)


if __name__ == "__main__":
    main()
