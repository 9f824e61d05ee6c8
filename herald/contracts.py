"""Inputs and results of every workflow, activity and update: one model each, slim, ids not rows.

Shared by api/, workflows/ and activities/. Pure pydantic (no ORM, no I/O) so workflows can
import it through the sandbox pass-through.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal, Optional

from pydantic import BaseModel, Field

PostStatus = Literal[
    "draft", "pending_approval", "scheduled", "publishing", "published", "retry_pending", "failed", "canceled",
    "deleted",
]
# "deleted": published, then removed from the network (POST /v1/posts/{id}/delete).
TERMINAL_POST_STATUSES = ("published", "failed", "canceled", "deleted")
# A post waiting to publish: its workflow still decides, and its content may still change.
WAITING_POST_STATUSES = ("scheduled", "pending_approval")
RunStatus = Literal["draft", "created", "processing", "completed", "partial_failed"]


class PostWorkflowInput(BaseModel):
    post_id: str
    workspace_id: str
    run_id: str
    provider: str
    account_handle: str
    publish_at: datetime
    lead_seconds: float = 60.0  # the API passes HERALD_PUBLISH_LEAD_SECONDS
    deadline_seconds: float = 3600.0
    job_id: Optional[str] = None
    # Task queue of the publish activity (HERALD_PUBLISH_TASK_QUEUE).
    publish_task_queue: str = "herald-publish-calls"
    # Posts without media skip the media activity entirely.
    has_media: bool = False
    # Set by POST /v1/posts/{id}/retry: publish now, the operator asked for it.
    is_retry: bool = False
    # Campaign replies/comments: the parent's post id (its RunWorkflow signals `parent_finished`
    # with the parent's outcome), or, on a retry, the parent's provider id already known.
    parent_post_id: Optional[str] = None
    reply_to: Optional[str] = None
    # Approval: the post waits in pending_approval until a reviewer approves it. After its time
    # it publishes at once, unless approval_expires_after_seconds is set: then it fails with
    # approval_expired that long after publish_at.
    requires_approval: bool = False
    approval_expires_after_seconds: Optional[float] = None


class PostOutcome(BaseModel):
    post_id: str
    status: PostStatus
    provider_post_id: Optional[str] = None
    provider_url: Optional[str] = None
    # Where replies to this post go when that is not the post itself (a Discord thread).
    provider_thread_id: Optional[str] = None
    error_code: Optional[str] = None
    error: Optional[str] = None
    attempts: int = 0


class PostState(BaseModel):
    """What the `state` query (and the edit/approve updates) return."""

    post_id: str
    phase: str
    publish_at: datetime
    attempts: int
    approval: Optional[str] = None  # pending | approved | rejected; None when not required


class ReviewRequest(BaseModel):
    """approve / reject updates: who decided (the API key's label or id, or a named reviewer)."""

    reviewer: str
    note: Optional[str] = None


class ReviewRecord(BaseModel):
    state: Literal["pending", "approved", "rejected"]
    by: Optional[str] = None
    at: Optional[datetime] = None
    note: Optional[str] = None


class PostEdit(BaseModel):
    """The `edit` update: the post's complete new content, merged and validated by the API.
    The workflow writes it to the store itself, so an edit and the publish can never interleave."""

    post_id: str
    description: Optional[str] = None
    name: Optional[str] = None
    media: list[dict] = Field(default_factory=list)
    settings: dict = Field(default_factory=dict)
    account_id: str
    account_handle: str
    provider: str
    publish_at: datetime
    timezone: str = "UTC"
    post_type: Optional[str] = None
    # Media or account changed: preparation runs again before publishing.
    reprepare: bool = False
    # Text, media, settings or account changed: an approved post needs approval again.
    content_changed: bool = False
    reset_approval: bool = False  # set by the workflow, read by the apply_post_edit activity


class CancelRequest(BaseModel):
    reason: Optional[str] = None


class RescheduleRequest(BaseModel):
    publish_at: datetime


class RunWorkflowInput(BaseModel):
    run_id: str
    workspace_id: str
    posts: list[PostWorkflowInput]


class RunOutcome(BaseModel):
    run_id: str
    status: RunStatus
    counts: dict[str, int] = Field(default_factory=dict)


class ReconcileWorkflowInput(BaseModel):
    post_id: str
    workspace_id: str


# --- activities -------------------------------------------------------------------------------


class AttemptRecord(BaseModel):
    attempt_no: int
    started_at: datetime
    finished_at: datetime
    outcome: str  # published | rate_limited | transient | rejected | auth | unknown | reconciled | crashed
    http_status: Optional[int] = None
    error_code: Optional[str] = None
    error: Optional[str] = None
    provider_post_id: Optional[str] = None
    retry_after_seconds: Optional[float] = None


class PostStateRecord(BaseModel):
    """One projection write: a post's new status, and optionally an attempt, result or review."""

    post_id: str
    status: PostStatus
    job_id: Optional[str] = None
    attempt: Optional[AttemptRecord] = None
    provider_post_id: Optional[str] = None
    provider_url: Optional[str] = None
    error_code: Optional[str] = None
    error: Optional[str] = None
    provider_thread_id: Optional[str] = None
    publish_at: Optional[datetime] = None
    mark_account_needs_reauth: bool = False
    review: Optional[ReviewRecord] = None


class RunStateRecord(BaseModel):
    run_id: str
    status: RunStatus


class PrepareMediaInput(BaseModel):
    post_id: str


class PrepareMediaResult(BaseModel):
    files: int
    bytes: int


class PublishInput(BaseModel):
    post_id: str
    publish_at: datetime
    attempt_no: int
    # The workflow starts the activity `lead` seconds early; an activity whose own clock says it
    # must wait longer than this is on a skewed (or time-skipping test) clock and waits this long.
    max_hold_seconds: float = 60.0
    # Provider id of the post this one replies to (campaign replies and comments).
    reply_to: Optional[str] = None


class PublishOutput(BaseModel):
    provider_post_id: str
    provider_url: Optional[str] = None
    provider_thread_id: Optional[str] = None
    http_status: Optional[int] = None
    sent_at: datetime


class ReconcileInput(BaseModel):
    post_id: str


class DeleteRemoteInput(BaseModel):
    post_id: str
    workspace_id: str


class DeleteRemoteOutput(BaseModel):
    # "deleted": the network removed it now; "already_gone": the network no longer had it.
    state: Literal["deleted", "already_gone"]
    detail: str = ""


class ReconcileOutput(BaseModel):
    state: Literal["found", "absent", "unknowable"]
    provider_post_id: Optional[str] = None
    provider_url: Optional[str] = None
    provider_thread_id: Optional[str] = None
    detail: str = ""


class SweepReport(BaseModel):
    """One safety-net pass: what it started, and what is overdue although its workflow runs."""

    checked_at: datetime
    runs_started: list[str] = Field(default_factory=list)
    posts_started: list[str] = Field(default_factory=list)
    overdue: list[str] = Field(default_factory=list)
    # Deleted assets whose retention ended: blobs removed, or kept because a post still uses them.
    assets_purged: int = 0
    assets_kept_in_use: int = 0
    # OAuth access tokens renewed ahead of expiry, and renewals the network refused (those
    # accounts are now needs_reauth) or could not answer.
    tokens_refreshed: int = 0
    token_refresh_failures: int = 0


# --- media ---------------------------------------------------------------------------------------


class AssetWorkflowInput(BaseModel):
    """AssetWorkflow (id ``asset-<assetId>``): fetch the source URL when there is one, then
    sniff, probe and make previews. The asset row says where the bytes are."""

    asset_id: str
    fetch_url: Optional[str] = None
    media_task_queue: Optional[str] = None  # where the media activities run (None: this queue)


class AssetOutcome(BaseModel):
    asset_id: str
    status: str  # ready | failed
    error_code: Optional[str] = None
    error: Optional[str] = None


class RenditionInput(BaseModel):
    """RenditionWorkflow (id ``rendition-<assetId>-<profile key>``): one asset made to fit one
    network's media profile, once, for every post that needs it."""

    asset_id: str
    provider: str
    post_type: Optional[str] = None
    fit: Optional[str] = None  # pad | crop (the post's mediaFit setting)
    media_task_queue: Optional[str] = None


class RenditionOutcome(BaseModel):
    rendition_id: Optional[str] = None
    error_code: Optional[str] = None
    error: Optional[str] = None


class PurgeResult(BaseModel):
    purged: int = 0
    kept_in_use: int = 0
