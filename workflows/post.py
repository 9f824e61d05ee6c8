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
        WAITING_POST_STATUSES,
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
        PostEdit,
        RescheduleRequest,
        ReviewRecord,
        ReviewRequest,
    )
    from herald.temporal import SA_ACCOUNT, SA_PROVIDER, SA_STATUS

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
# A dead publisher is noticed this long after its last heartbeat. A call lost before its
# publish time provably sent nothing and is retried; one lost after it must be reconciled (and
# fails as outcome_unknown where the network cannot be asked). So shorter is better, as long as
# a live publisher always heartbeats in time: the activity heartbeats every 2 s from a task of
# its own (measured: chaos/worker_kill.py, docs/reliability.md).
PUBLISH_HEARTBEAT = timedelta(seconds=10)
# A publish activity the server has given up on is not always dead: a publisher that lost the
# server (a Temporal restart) keeps holding its call, and sends at publish_at unless it learns
# first that its activity is gone -- on its next heartbeat, at most 0.8 x PUBLISH_HEARTBEAT later.
# So only a loss noticed more than this before publish_at proves nothing was (or will be) sent;
# a later one is reconciled. (Measured: chaos/temporal_restart.py --signal kill sent such a post
# twice with no grace; docs/reliability.md.)
LOST_CALL_GRACE = PUBLISH_HEARTBEAT * 1.5
BACKOFF_INITIAL = 2.0
BACKOFF_MAX = 300.0

# Phases in which the post may still be edited, approved, rejected or canceled. Once the phase
# is `publishing` every such request is refused: the publish call may already be on the wire.
EDITABLE_PHASES = ("scheduled", "pending_approval", "preparing", "waiting_for_parent")


def lost_call_provably_unsent(noticed_at: datetime, publish_at: datetime, grace: timedelta) -> bool:
    """A lost publish activity noticed at ``noticed_at`` cannot have sent (and cannot still send)
    its call if even a live holder would learn of the loss before ``publish_at``."""
    return noticed_at + grace < publish_at


def _not_editable(phase: str, action: str) -> ApplicationError:
    return ApplicationError(f"post is {phase}; it can no longer be {action}", type="PostNotEditable")


@workflow.defn(name="PostWorkflow")
class PostWorkflow:
    # workflow.init: an update can arrive in the very first workflow task, before `run` starts
    # (an edit right after apply); its handler and validator must already see the input.
    @workflow.init
    def __init__(self, inp: PostWorkflowInput) -> None:
        self.inp: Optional[PostWorkflowInput] = inp
        self.publish_at: Optional[datetime] = inp.publish_at
        self.cancel_requested = False
        self.attempts = 0
        self.outcome: Optional[PostOutcome] = None
        self.has_media = self.needs_prepare = inp.has_media
        # None when no approval is required; else pending -> approved | rejected.
        self.approval: Optional[str] = "pending" if inp.requires_approval else None
        self.phase = "pending_approval" if inp.requires_approval else "scheduled"
        self.rejection: Optional[ReviewRecord] = None
        self.parent_outcome: Optional[PostOutcome] = None
        self.reply_to: Optional[str] = inp.reply_to
        # Update handlers that are writing to the store: publishing waits until they are done,
        # so a late projection write can never land after (and overwrite) `publishing`.
        self.pending_writes = 0

    # --- messages -----------------------------------------------------------------------------

    @workflow.query
    def state(self) -> PostState:
        assert self.inp is not None and self.publish_at is not None
        return PostState(
            post_id=self.inp.post_id, phase=self.phase, publish_at=self.publish_at, attempts=self.attempts,
            approval=self.approval,
        )

    def _check_editable(self, action: str) -> None:
        if self.outcome is not None or self.cancel_requested or self.phase not in EDITABLE_PHASES:
            raise _not_editable("canceled" if self.cancel_requested and self.outcome is None else self.phase, action)

    @workflow.update
    async def cancel(self, request: CancelRequest) -> PostOutcome:
        self.cancel_requested = True
        await workflow.wait_condition(lambda: self.outcome is not None)
        assert self.outcome is not None
        return self.outcome

    @cancel.validator
    def _validate_cancel(self, request: CancelRequest) -> None:
        if self.phase not in EDITABLE_PHASES:
            raise _not_editable(self.phase, "canceled")

    @workflow.update
    async def reschedule(self, request: RescheduleRequest) -> PostState:
        assert self.inp is not None
        self.publish_at = request.publish_at
        await self._write(PostStateRecord(post_id=self.inp.post_id, status=self._waiting_status(),
                                          publish_at=request.publish_at))
        return self.state()

    @reschedule.validator
    def _validate_reschedule(self, request: RescheduleRequest) -> None:
        self._check_editable("moved")
        if request.publish_at.tzinfo is None:
            raise ApplicationError("publish_at must carry a time zone", type="InvalidRequest")

    @workflow.update
    async def edit(self, request: PostEdit) -> PostState:
        """New content (validated by the API): written to the store by this workflow, so it is
        either fully in place before publishing starts or refused."""
        assert self.inp is not None
        # Changed content needs a fresh approval: the reviewer approved what they saw.
        reset = self.approval == "approved" and request.content_changed
        request = request.model_copy(update={"reset_approval": reset})
        self.pending_writes += 1
        try:
            stored = await workflow.execute_activity("apply_post_edit", request, result_type=str, **PROJECTION)
            if stored not in WAITING_POST_STATUSES:
                raise ApplicationError(f"post is {stored}; it can no longer be edited", type="PostNotEditable")
            if reset:
                self.approval = "pending"
                self.phase = "pending_approval" if self.phase == "scheduled" else self.phase
            self.publish_at = request.publish_at
            if request.reprepare:
                self.has_media = bool(request.media)
                self.needs_prepare = self.has_media
            if request.account_handle != self.inp.account_handle or request.provider != self.inp.provider:
                self.inp.account_handle = request.account_handle
                self.inp.provider = request.provider
                workflow.upsert_search_attributes([SA_PROVIDER.value_set(request.provider),
                                                   SA_ACCOUNT.value_set(request.account_handle)])
        finally:
            self.pending_writes -= 1
        return self.state()

    @edit.validator
    def _validate_edit(self, request: PostEdit) -> None:
        self._check_editable("edited")
        if request.publish_at.tzinfo is None:
            raise ApplicationError("publish_at must carry a time zone", type="InvalidRequest")

    @workflow.update
    async def approve(self, request: ReviewRequest) -> PostState:
        assert self.inp is not None
        if self.approval == "approved":
            return self.state()  # approving twice is harmless
        self.approval = "approved"
        if self.phase == "pending_approval":
            self.phase = "scheduled"
        review = ReviewRecord(state="approved", by=request.reviewer, at=workflow.now(), note=request.note)
        await self._write(PostStateRecord(post_id=self.inp.post_id, status="scheduled", review=review))
        return self.state()

    @approve.validator
    def _validate_approve(self, request: ReviewRequest) -> None:
        self._check_editable("approved")
        if self.approval is None:
            raise ApplicationError("post does not require approval", type="ApprovalNotRequired")

    @workflow.update
    async def reject(self, request: ReviewRequest) -> PostOutcome:
        self.rejection = ReviewRecord(state="rejected", by=request.reviewer, at=workflow.now(), note=request.note)
        self.approval = "rejected"
        await workflow.wait_condition(lambda: self.outcome is not None)
        assert self.outcome is not None
        return self.outcome

    @reject.validator
    def _validate_reject(self, request: ReviewRequest) -> None:
        self._check_editable("rejected")
        if self.approval is None:
            raise ApplicationError("post does not require approval", type="ApprovalNotRequired")

    @workflow.signal
    def parent_finished(self, outcome: PostOutcome) -> None:
        """From the RunWorkflow: the post this one replies to has finished."""
        self.parent_outcome = outcome
        if outcome.status == "published":
            self.reply_to = outcome.provider_thread_id or outcome.provider_post_id

    # --- the run ------------------------------------------------------------------------------

    @workflow.run
    async def run(self, inp: PostWorkflowInput) -> PostOutcome:
        if self.approval == "pending":
            workflow.upsert_search_attributes([SA_STATUS.value_set("pending_approval")])
        stored = await record(PostStateRecord(post_id=inp.post_id, status=self._waiting_status(), job_id=inp.job_id))
        if stored == "canceled":  # canceled through the API before this workflow existed
            self.cancel_requested = True

        while True:
            if self.needs_prepare and not self.cancel_requested:
                self.needs_prepare = False
                waiting_phase, self.phase = self.phase, "preparing"
                failed = await self._prepare_media()
                if failed is not None:
                    return failed
                self.phase = waiting_phase if self.phase == "preparing" else self.phase
            finished = await self._wait_until_due()
            if finished is not None:
                return finished
            if not self.needs_prepare:
                break

        # The publish activity itself writes `publishing` to the store, in the same database
        # round trip as its load: at a burst's wake-up every saved round trip counts.
        self.phase = "publishing"
        workflow.upsert_search_attributes([SA_STATUS.value_set("publishing")])
        return await self._publish_until_done()

    def _waiting_status(self) -> str:
        return "pending_approval" if self.approval == "pending" else "scheduled"

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

    async def _wait_until_due(self) -> Optional[PostOutcome]:
        """Wait until the post may publish: approved (or not needing approval), publish_at - lead
        reached, the parent published, no store write in flight. Moves with edits. Returns a final
        outcome (canceled, rejected, approval expired, parent not published), or None when due
        (or when an edit asks for media preparation again: `needs_prepare`)."""
        assert self.inp is not None
        inp = self.inp
        while True:
            assert self.publish_at is not None
            if self.cancel_requested:
                return await self._finish(PostOutcome(post_id=inp.post_id, status="canceled"))
            if self.rejection is not None:
                r = self.rejection
                return await self._finish(PostOutcome(
                    post_id=inp.post_id, status="canceled", error_code="approval_rejected",
                    error=f"rejected by {r.by}" + (f": {r.note}" if r.note else "")), review=r)
            if self.needs_prepare:
                return None
            now = workflow.now()
            seen = (self.publish_at, self.approval, self.parent_outcome is None, self.pending_writes)
            changed = lambda: (self.cancel_requested or self.rejection is not None or self.needs_prepare  # noqa: E731
                               or (self.publish_at, self.approval, self.parent_outcome is None,
                                   self.pending_writes) != seen)
            timeout: Optional[float] = None
            if self.approval == "pending":
                if inp.approval_expires_after_seconds is not None:
                    expires = self.publish_at + timedelta(seconds=inp.approval_expires_after_seconds)
                    if now >= expires:
                        return await self._finish(PostOutcome(
                            post_id=inp.post_id, status="failed", error_code="approval_expired",
                            error=f"not approved within {inp.approval_expires_after_seconds:.0f} s "
                                  "after its publish time"))
                    timeout = (expires - now).total_seconds()
            elif (wake_at := self.publish_at - timedelta(seconds=inp.lead_seconds)) > now:
                timeout = (wake_at - now).total_seconds()
            elif inp.parent_post_id and self.reply_to is None:
                parent = self.parent_outcome
                if parent is not None:
                    return await self._finish(PostOutcome(
                        post_id=inp.post_id, status="failed", error_code="parent_not_published",
                        error=f"not published: the post it replies to ({inp.parent_post_id}) was {parent.status}"
                              + (f" ({parent.error_code})" if parent.error_code else "")))
                self.phase = "waiting_for_parent"
            elif self.pending_writes == 0:
                return None
            try:
                await workflow.wait_condition(changed, timeout=timedelta(seconds=timeout) if timeout else None)
            except asyncio.TimeoutError:
                pass

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
                                 max_hold_seconds=inp.lead_seconds + 2.0, reply_to=self.reply_to),
                    result_type=PublishOutput,
                    task_queue=inp.publish_task_queue,
                    start_to_close_timeout=timedelta(seconds=max(60.0, inp.lead_seconds * 2 + 120)),
                    heartbeat_timeout=PUBLISH_HEARTBEAT,
                    retry_policy=PUBLISH_RETRY,
                )
                return await self._published(out.provider_post_id, out.provider_url, out.http_status, started, "published",
                                             out.provider_thread_id)
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
            # The activity was lost (worker crash, lost heartbeat). The call is only ever made at
            # or after publish_at, so a loss noticed well before then provably sent nothing.
            grace = LOST_CALL_GRACE if workflow.patched("lost-call-grace") else timedelta(0)
            if lost_call_provably_unsent(workflow.now(), self.publish_at, grace):
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
            outcome = await self._published(res.provider_post_id, res.provider_url, http_status, started, "reconciled",
                                            res.provider_thread_id)
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
                         started: datetime, outcome: str, thread_id: Optional[str] = None) -> PostOutcome:
        assert self.inp is not None
        attempt = AttemptRecord(
            attempt_no=self.attempts, started_at=started, finished_at=workflow.now(), outcome=outcome,
            http_status=http_status, provider_post_id=provider_post_id,
        )
        result = PostOutcome(post_id=self.inp.post_id, status="published", provider_post_id=provider_post_id,
                             provider_url=provider_url, provider_thread_id=thread_id, attempts=self.attempts)
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

    async def _write(self, rec: PostStateRecord) -> None:
        """A projection write from an update handler; publishing waits for it (see pending_writes)."""
        self.pending_writes += 1
        try:
            await record(rec)
        finally:
            self.pending_writes -= 1

    async def _finish(self, outcome: PostOutcome, attempt: Optional[AttemptRecord] = None,
                      review: Optional[ReviewRecord] = None) -> PostOutcome:
        assert self.inp is not None
        outcome.attempts = self.attempts
        self.phase = outcome.status
        workflow.upsert_search_attributes([SA_STATUS.value_set(outcome.status)])
        await record(PostStateRecord(
            post_id=outcome.post_id, status=outcome.status, job_id=self.inp.job_id, attempt=attempt,
            provider_post_id=outcome.provider_post_id, provider_url=outcome.provider_url,
            provider_thread_id=outcome.provider_thread_id,
            error_code=outcome.error_code, error=outcome.error,
            mark_account_needs_reauth=outcome.error_code == "account_reauth_required", review=review,
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
