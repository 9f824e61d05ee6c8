"""PostWorkflow: where publishing is decided. One execution per post, id ``post-<postId>``.

    prepare media -> updatable timer until publish_at - lead -> publish activity (holds until
    the exact second, then makes the one irreversible call) -> classify the outcome:

    RateLimited          wait exactly what the provider asked, then try again
    ProviderUnavailable  back off exponentially, then try again
    OutcomeUnknown       reconcile with the provider first; retry only if it provably has nothing
    ContentRejected      fail at once with the provider's message
    AuthExpired          fail with account_reauth_required (and flag the account)
    NotPublishable       fail at once (account disconnected, media unavailable, ...)

Every transition is written to the SQL projection by an activity; this module does no I/O.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Optional

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, TimeoutError as TemporalTimeoutError

with workflow.unsafe.imports_passed_through():
    from herald import failures
    from herald.contracts import (
        AttemptRecord,
        CancelRequest,
        PostOutcome,
        PostState,
        PostStateRecord,
        PostWorkflowInput,
        PrepareMediaInput,
        PublishInput,
        PublishOutput,
        ReconcileInput,
        ReconcileOutput,
        RescheduleRequest,
    )
    from herald.temporal import SA_STATUS

# Projection writes: short, idempotent DB writes, retried freely. Regular activities, not local
# ones: a local activity holds its workflow task open, and in a 1,000-post burst the queued writes
# pushed workflow tasks past their timeout, which cost the sticky cache and forced full replays
# (measured: p99 lateness went from tens of seconds to minutes).
PROJECTION = dict(
    start_to_close_timeout=timedelta(seconds=30),
    retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=10)),
)


async def record(rec: "PostStateRecord") -> str:
    """Write a post's state to the projection; returns the status stored afterwards."""
    return await workflow.execute_activity("record_post_state", rec, result_type=str, **PROJECTION)
# The publish call itself is never retried by Temporal: this workflow decides, after reconciling.
PUBLISH_RETRY = RetryPolicy(maximum_attempts=1)
# Generous: a worker busy with a burst must not be mistaken for a dead one (a lost heartbeat
# after the instant makes the outcome unknown), while a real crash is still noticed in time.
PUBLISH_HEARTBEAT = timedelta(seconds=30)
BACKOFF_INITIAL = 2.0
BACKOFF_MAX = 300.0

# Phases in which the post may still be edited or canceled.
EDITABLE_PHASES = ("scheduled", "preparing")


@workflow.defn(name="PostWorkflow")
class PostWorkflow:
    def __init__(self) -> None:
        self.phase = "scheduled"
        self.publish_at: Optional[datetime] = None
        self.cancel_requested = False
        self.attempts = 0
        self.outcome: Optional[PostOutcome] = None
        self.inp: Optional[PostWorkflowInput] = None

    # --- messages -----------------------------------------------------------------------------

    @workflow.query
    def state(self) -> PostState:
        assert self.inp is not None and self.publish_at is not None
        return PostState(
            post_id=self.inp.post_id, phase=self.phase, publish_at=self.publish_at, attempts=self.attempts
        )

    @workflow.update
    async def cancel(self, request: CancelRequest) -> PostOutcome:
        self.cancel_requested = True
        await workflow.wait_condition(lambda: self.outcome is not None)
        assert self.outcome is not None
        return self.outcome

    @cancel.validator
    def _validate_cancel(self, request: CancelRequest) -> None:
        if self.phase not in EDITABLE_PHASES:
            raise ApplicationError(
                f"post is {self.phase}; it can no longer be canceled", type="PostNotEditable"
            )

    @workflow.update
    async def reschedule(self, request: RescheduleRequest) -> PostState:
        assert self.inp is not None
        self.publish_at = request.publish_at
        await record(PostStateRecord(post_id=self.inp.post_id, status="scheduled", publish_at=request.publish_at))
        return self.state()

    @reschedule.validator
    def _validate_reschedule(self, request: RescheduleRequest) -> None:
        if self.phase not in EDITABLE_PHASES:
            raise ApplicationError(
                f"post is {self.phase}; it can no longer be moved", type="PostNotEditable"
            )
        if request.publish_at.tzinfo is None:
            raise ApplicationError("publish_at must carry a time zone", type="InvalidRequest")

    # --- the run ------------------------------------------------------------------------------

    @workflow.run
    async def run(self, inp: PostWorkflowInput) -> PostOutcome:
        self.inp = inp
        self.publish_at = inp.publish_at
        stored = await record(PostStateRecord(post_id=inp.post_id, status="scheduled", job_id=inp.job_id))
        if stored == "canceled":  # canceled through the API before this workflow existed
            self.cancel_requested = True

        if inp.has_media and not self.cancel_requested:
            self.phase = "preparing"
            failed = await self._prepare_media()
            if failed is not None:
                return failed
            self.phase = "scheduled"

        if await self._wait_until_publish_window():
            return await self._finish(PostOutcome(post_id=inp.post_id, status="canceled"))

        # The publish activity itself writes `publishing` to the store, in the same database
        # round trip as its load: at a burst's wake-up every saved round trip counts.
        self.phase = "publishing"
        workflow.upsert_search_attributes([SA_STATUS.value_set("publishing")])
        return await self._publish_until_done()

    async def _prepare_media(self) -> Optional[PostOutcome]:
        assert self.inp is not None
        try:
            await workflow.execute_activity(
                "prepare_media",
                PrepareMediaInput(post_id=self.inp.post_id),
                start_to_close_timeout=timedelta(minutes=15),
                heartbeat_timeout=timedelta(seconds=60),
                retry_policy=RetryPolicy(maximum_attempts=5, non_retryable_error_types=[failures.NOT_PUBLISHABLE]),
            )
        except ActivityError as err:
            code, message = _code_and_message(err, default_code="media_unavailable")
            return await self._finish(
                PostOutcome(post_id=self.inp.post_id, status="failed", error_code=code, error=message)
            )
        return None

    async def _wait_until_publish_window(self) -> bool:
        """Sleep until publish_at - lead; moves with `reschedule`. True when canceled."""
        assert self.inp is not None
        while not self.cancel_requested:
            assert self.publish_at is not None
            wake_at = self.publish_at - timedelta(seconds=self.inp.lead_seconds)
            delay = (wake_at - workflow.now()).total_seconds()
            if delay <= 0:
                break
            seen = self.publish_at
            try:
                await workflow.wait_condition(
                    lambda: self.cancel_requested or self.publish_at != seen,
                    timeout=timedelta(seconds=delay),
                )
            except asyncio.TimeoutError:
                break
        return self.cancel_requested

    async def _publish_until_done(self) -> PostOutcome:
        assert self.inp is not None and self.publish_at is not None
        inp = self.inp
        deadline = max(self.publish_at, workflow.now()) + timedelta(seconds=inp.deadline_seconds)
        backoff = BACKOFF_INITIAL
        while True:
            self.attempts += 1
            started = workflow.now()
            try:
                out: PublishOutput = await workflow.execute_activity(
                    "publish",
                    PublishInput(post_id=inp.post_id, publish_at=self.publish_at, attempt_no=self.attempts,
                                 max_hold_seconds=inp.lead_seconds + 2.0),
                    result_type=PublishOutput,
                    task_queue=inp.publish_task_queue,
                    start_to_close_timeout=timedelta(seconds=max(60.0, inp.lead_seconds * 2 + 120)),
                    heartbeat_timeout=PUBLISH_HEARTBEAT,
                    retry_policy=PUBLISH_RETRY,
                )
                return await self._published(out.provider_post_id, out.provider_url, out.http_status, started, "published")
            except ActivityError as err:
                decision = await self._classify(err, started)
            if isinstance(decision, PostOutcome):
                return await self._finish(decision)
            wait = decision if decision is not None else backoff
            if decision is None:
                backoff = min(backoff * 2, BACKOFF_MAX)
            if workflow.now() + timedelta(seconds=wait) > deadline:
                return await self._finish(PostOutcome(
                    post_id=inp.post_id, status="failed", error_code="deadline_exceeded",
                    error=f"gave up after {self.attempts} attempts: the publish deadline "
                          f"({inp.deadline_seconds:.0f} s after publish time) would pass",
                    attempts=self.attempts,
                ))
            await self._record("retry_pending")
            await workflow.sleep(timedelta(seconds=wait))
            workflow.upsert_search_attributes([SA_STATUS.value_set("publishing")])

    async def _classify(self, err: ActivityError, started: datetime) -> PostOutcome | float | None:
        """A final outcome, a delay in seconds (rate limit), or None (retry with backoff)."""
        assert self.inp is not None and self.publish_at is not None
        cause = err.cause
        post_id = self.inp.post_id
        if isinstance(cause, TemporalTimeoutError):
            # The activity died (worker crash, lost heartbeat). The call is only ever made at or
            # after publish_at, so a failure noticed before then provably sent nothing.
            if workflow.now() < self.publish_at:
                await self._attempt(started, "crashed", error="publish activity lost before publish time; nothing was sent")
                return 0.0
            return await self._reconcile(started, "the publish activity was lost mid-call")
        if not isinstance(cause, ApplicationError):
            await self._attempt(started, "transient", error=str(cause))
            return None
        code, http_status, retry_after = _details(cause)
        kind = cause.type
        if kind == failures.RATE_LIMITED:
            wait = float(retry_after or 1.0)
            await self._attempt(started, "rate_limited", http_status, code, cause.message, retry_after=wait)
            return wait
        if kind == failures.PROVIDER_UNAVAILABLE:
            await self._attempt(started, "transient", http_status, code, cause.message)
            return None
        if kind == failures.OUTCOME_UNKNOWN:
            return await self._reconcile(started, cause.message, http_status)
        if kind == failures.AUTH_EXPIRED:
            await self._attempt(started, "auth", http_status, code, cause.message)
            return PostOutcome(post_id=post_id, status="failed", error_code="account_reauth_required",
                               error=cause.message, attempts=self.attempts)
        if kind == failures.CONTENT_REJECTED:
            await self._attempt(started, "rejected", http_status, code, cause.message)
            return PostOutcome(post_id=post_id, status="failed", error_code="content_rejected",
                               error=cause.message, attempts=self.attempts)
        if code == "canceled":  # canceled in the store while the activity was starting
            return PostOutcome(post_id=post_id, status="canceled", attempts=self.attempts)
        # NotPublishable or an unexpected bug: fail with what we know rather than loop.
        await self._attempt(started, "rejected", http_status, code, cause.message)
        return PostOutcome(post_id=post_id, status="failed", error_code=code or "not_publishable",
                           error=cause.message, attempts=self.attempts)

    async def _reconcile(self, started: datetime, why: str, http_status: Optional[int] = None) -> PostOutcome | float | None:
        assert self.inp is not None
        res: ReconcileOutput = await workflow.execute_activity(
            "reconcile",
            ReconcileInput(post_id=self.inp.post_id),
            result_type=ReconcileOutput,
            start_to_close_timeout=timedelta(seconds=60),
            retry_policy=RetryPolicy(maximum_attempts=10, maximum_interval=timedelta(seconds=30)),
        )
        if res.state == "found":
            assert res.provider_post_id is not None
            outcome = await self._published(res.provider_post_id, res.provider_url, http_status, started, "reconciled")
            return outcome
        if res.state == "absent":
            await self._attempt(started, "unknown", http_status, "outcome_unknown",
                                f"{why}; reconciled: the provider has no such post, retrying")
            return None
        await self._attempt(started, "unknown", http_status, "outcome_unknown", why)
        return PostOutcome(
            post_id=self.inp.post_id, status="failed", error_code="outcome_unknown",
            error=f"{why}. {res.detail} Herald will not retry automatically, to avoid a duplicate; "
                  "check the destination, then retry with force if it is not there.",
            attempts=self.attempts,
        )

    # --- projection helpers -------------------------------------------------------------------

    async def _published(self, provider_post_id: str, provider_url: Optional[str], http_status: Optional[int],
                         started: datetime, outcome: str) -> PostOutcome:
        assert self.inp is not None
        attempt = AttemptRecord(
            attempt_no=self.attempts, started_at=started, finished_at=workflow.now(), outcome=outcome,
            http_status=http_status, provider_post_id=provider_post_id,
        )
        result = PostOutcome(post_id=self.inp.post_id, status="published", provider_post_id=provider_post_id,
                             provider_url=provider_url, attempts=self.attempts)
        return await self._finish(result, attempt)

    async def _attempt(self, started: datetime, outcome: str, http_status: Optional[int] = None,
                       code: Optional[str] = None, error: Optional[str] = None,
                       retry_after: Optional[float] = None) -> None:
        assert self.inp is not None
        attempt = AttemptRecord(
            attempt_no=self.attempts, started_at=started, finished_at=workflow.now(), outcome=outcome,
            http_status=http_status, error_code=code, error=error, retry_after_seconds=retry_after,
        )
        await record(PostStateRecord(post_id=self.inp.post_id, status="publishing", attempt=attempt,
                                     error_code=code, error=error))

    async def _record(self, status: str) -> None:
        assert self.inp is not None
        workflow.upsert_search_attributes([SA_STATUS.value_set(status)])
        await record(PostStateRecord(post_id=self.inp.post_id, status=status, job_id=self.inp.job_id))  # type: ignore[arg-type]

    async def _finish(self, outcome: PostOutcome, attempt: Optional[AttemptRecord] = None) -> PostOutcome:
        assert self.inp is not None
        outcome.attempts = self.attempts
        self.phase = outcome.status
        workflow.upsert_search_attributes([SA_STATUS.value_set(outcome.status)])
        await record(PostStateRecord(
            post_id=outcome.post_id, status=outcome.status, job_id=self.inp.job_id, attempt=attempt,
            provider_post_id=outcome.provider_post_id, provider_url=outcome.provider_url,
            error_code=outcome.error_code, error=outcome.error,
            mark_account_needs_reauth=outcome.error_code == "account_reauth_required",
        ))
        self.outcome = outcome
        return outcome


def _details(err: ApplicationError) -> tuple[Optional[str], Optional[int], Optional[float]]:
    details = list(err.details) + [None, None, None]
    return details[0], details[1], details[2]


def _code_and_message(err: ActivityError, default_code: str) -> tuple[str, str]:
    cause = err.cause
    if isinstance(cause, ApplicationError):
        code = _details(cause)[0] or default_code
        return code, cause.message
    return default_code, str(cause or err)
