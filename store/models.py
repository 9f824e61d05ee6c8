"""SQLModel tables: the queryable projection of Herald's state.

Temporal is the truth of *execution*; these rows are what the API lists and filters. Every row
that belongs to a tenant carries ``workspace_id`` and every query filters on it (see
``store/queries.py``). Times are stored as UTC (``UTCDateTime`` keeps SQLite and Postgres alike).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Optional

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator
from sqlmodel import JSON, Column, Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator):
    """Stores naive UTC, returns aware UTC: SQLite has no time zones, Postgres keeps none either."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=timezone.utc)


class Workspace(SQLModel, table=True):
    __tablename__ = "workspaces"
    id: str = Field(primary_key=True, max_length=40)
    name: str = Field(max_length=200, sa_column_kwargs={"unique": True})
    plan: str = Field(default="self_hosted", max_length=40)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ApiKey(SQLModel, table=True):
    __tablename__ = "api_keys"
    id: str = Field(primary_key=True, max_length=40)
    workspace_id: str = Field(foreign_key="workspaces.id", index=True, max_length=40)
    prefix: str = Field(max_length=32, index=True)
    # sha256 of the secret: secrets are long random strings, so a fast hash is enough and
    # lookups by hash stay O(1); comparison uses hmac.compare_digest.
    secret_hash: str = Field(max_length=64, sa_column_kwargs={"unique": True})
    label: Optional[str] = Field(default=None, max_length=200)
    kind: str = Field(default="api", max_length=40)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_used_at: Optional[datetime] = Field(default=None, sa_type=UTCDateTime)
    revoked_at: Optional[datetime] = Field(default=None, sa_type=UTCDateTime)


class Connection(SQLModel, table=True):
    __tablename__ = "connections"
    id: str = Field(primary_key=True, max_length=40)
    workspace_id: str = Field(foreign_key="workspaces.id", index=True, max_length=40)
    provider: str = Field(max_length=40)
    status: str = Field(default="pending", max_length=20)  # pending | connected | failed
    authorize_url: Optional[str] = Field(default=None, max_length=2048)
    error: Optional[str] = Field(default=None, max_length=1000)
    account_id: Optional[str] = Field(default=None, max_length=40)
    # OAuth: every account the consent created or updated (a Facebook login yields one per Page).
    account_ids: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False, server_default="[]"))
    # OAuth: the PKCE verifier and the state's nonce, encrypted; erased when the flow ends.
    oauth_secret_encrypted: Optional[str] = Field(default=None, sa_type=sa.Text)
    expires_at: Optional[datetime] = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Account(SQLModel, table=True):
    __tablename__ = "accounts"
    __table_args__ = (sa.UniqueConstraint("workspace_id", "handle", name="uq_accounts_workspace_handle"),)
    id: str = Field(primary_key=True, max_length=40)
    workspace_id: str = Field(foreign_key="workspaces.id", index=True, max_length=40)
    connection_id: Optional[str] = Field(default=None, max_length=40)
    provider: str = Field(max_length=40, index=True)
    handle: str = Field(max_length=200)
    display_name: Optional[str] = Field(default=None, max_length=300)
    external_id: Optional[str] = Field(default=None, max_length=200)
    account_type: Optional[str] = Field(default=None, max_length=60)
    credentials_encrypted: str = Field(sa_type=sa.Text)
    meta: dict = Field(default_factory=dict, sa_column=Column("metadata", JSON, nullable=False))
    status: str = Field(default="connected", max_length=20)  # connected | needs_reauth | disconnected
    # When the stored access token ends (OAuth accounts whose network says so); the refresher
    # finds accounts by it. The token itself is inside credentials_encrypted.
    token_expires_at: Optional[datetime] = Field(default=None, sa_type=UTCDateTime, index=True)
    # The last refresh or health failure, readable (never a token).
    status_reason: Optional[str] = Field(default=None, max_length=500)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Run(SQLModel, table=True):
    __tablename__ = "runs"
    __table_args__ = (
        sa.UniqueConstraint("workspace_id", "idempotency_key", name="uq_runs_workspace_idempotency"),
    )
    id: str = Field(primary_key=True, max_length=40)
    workspace_id: str = Field(foreign_key="workspaces.id", index=True, max_length=40)
    status: str = Field(default="created", max_length=20)
    mode: str = Field(default="scheduled", max_length=20)
    source: str = Field(default="api", max_length=20)
    source_model: str = Field(default="posts_v1", max_length=20)
    timezone: str = Field(default="UTC", max_length=64)
    idempotency_key: Optional[str] = Field(default=None, max_length=200)
    request_hash: Optional[str] = Field(default=None, max_length=64)
    total_posts: int = 0
    workflow_started: bool = False
    # campaigns_v2 runs: the graph as submitted (campaign -> targets -> steps -> post ids).
    campaign: Optional[dict] = Field(default=None, sa_column=Column(JSON, nullable=True))
    # Run-wide publishing options: {"requireApproval": bool, "approval": {"onLate", "graceSeconds"}}.
    options: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False, server_default="{}"))
    published_at: Optional[datetime] = Field(default=None, sa_type=UTCDateTime)  # a draft turned scheduled
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Post(SQLModel, table=True):
    __tablename__ = "posts"
    __table_args__ = (
        sa.Index("ix_posts_ws_status_publish", "workspace_id", "status", "publish_at"),
        sa.Index("ix_posts_ws_run", "workspace_id", "run_id", "position"),
        sa.Index("ix_posts_ws_publish", "workspace_id", "publish_at", "id"),
        sa.Index("ix_posts_ws_campaign", "workspace_id", "campaign_id"),
    )
    id: str = Field(primary_key=True, max_length=40)
    workspace_id: str = Field(foreign_key="workspaces.id", max_length=40)
    run_id: str = Field(foreign_key="runs.id", max_length=40)
    position: int = 0
    account_id: str = Field(foreign_key="accounts.id", max_length=40)
    account_handle: str = Field(max_length=200)
    provider: str = Field(max_length=40)
    name: Optional[str] = Field(default=None, sa_type=sa.Text)
    description: Optional[str] = Field(default=None, sa_type=sa.Text)
    publish_at: Optional[datetime] = Field(default=None, sa_type=UTCDateTime)
    timezone: str = Field(default="UTC", max_length=64)
    media: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    settings: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    status: str = Field(default="scheduled", max_length=20)
    provider_post_id: Optional[str] = Field(default=None, max_length=200)
    provider_url: Optional[str] = Field(default=None, max_length=2048)
    # When the published post was deleted from the network (status "deleted").
    deleted_at: Optional[datetime] = Field(default=None, sa_type=UTCDateTime)
    provider_thread_id: Optional[str] = Field(default=None, max_length=200)  # replies go here (Discord threads)
    error_code: Optional[str] = Field(default=None, max_length=60)
    error: Optional[str] = Field(default=None, max_length=2000)
    attempts: int = 0
    published_at: Optional[datetime] = Field(default=None, sa_type=UTCDateTime)
    # Campaign graph: which step made this post, and the post it replies to / comments on.
    campaign_id: Optional[str] = Field(default=None, max_length=200)
    step_id: Optional[str] = Field(default=None, max_length=200)
    parent_post_id: Optional[str] = Field(default=None, max_length=40)
    interaction_type: str = Field(default="post", max_length=20, sa_column_kwargs={"server_default": "post"})  # post | reply | comment
    post_type: Optional[str] = Field(default=None, max_length=30)  # feed | story | message | forum | ...
    offset_seconds: Optional[float] = None  # from the campaign target's base time
    # Approval: requires_approval is the request; review_* record the reviewer's decision.
    requires_approval: bool = Field(default=False, sa_column_kwargs={"server_default": sa.false()})
    review_state: Optional[str] = Field(default=None, max_length=20)  # pending | approved | rejected
    reviewed_by: Optional[str] = Field(default=None, max_length=200)
    reviewed_at: Optional[datetime] = Field(default=None, sa_type=UTCDateTime)
    review_note: Optional[str] = Field(default=None, max_length=2000)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class PostAttempt(SQLModel, table=True):
    __tablename__ = "post_attempts"
    __table_args__ = (sa.UniqueConstraint("post_id", "attempt_no", name="uq_attempts_post_no"),)
    id: str = Field(primary_key=True, max_length=40)
    workspace_id: str = Field(foreign_key="workspaces.id", max_length=40)
    post_id: str = Field(foreign_key="posts.id", index=True, max_length=40)
    attempt_no: int
    started_at: datetime = Field(sa_type=UTCDateTime)
    finished_at: Optional[datetime] = Field(default=None, sa_type=UTCDateTime)
    outcome: str = Field(max_length=30)  # published | rate_limited | transient | rejected | auth | unknown | reconciled
    http_status: Optional[int] = None
    error_code: Optional[str] = Field(default=None, max_length=60)
    error: Optional[str] = Field(default=None, max_length=2000)
    provider_post_id: Optional[str] = Field(default=None, max_length=200)
    retry_after_seconds: Optional[float] = None


class Job(SQLModel, table=True):
    """One unit of background work (a post's publish workflow run, a retry, a reconcile)."""

    __tablename__ = "jobs"
    __table_args__ = (sa.Index("ix_jobs_ws_status", "workspace_id", "status", "created_at"),)
    id: str = Field(primary_key=True, max_length=40)
    workspace_id: str = Field(foreign_key="workspaces.id", max_length=40)
    kind: str = Field(max_length=30)  # publish | retry | reconcile
    run_id: Optional[str] = Field(default=None, max_length=40, index=True)
    post_id: Optional[str] = Field(default=None, max_length=40, index=True)
    provider: Optional[str] = Field(default=None, max_length=40)
    account_handle: Optional[str] = Field(default=None, max_length=200)
    status: str = Field(default="queued", max_length=20)  # queued | running | completed | failed | canceled
    workflow_id: Optional[str] = Field(default=None, max_length=200)
    error: Optional[str] = Field(default=None, max_length=2000)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Asset(SQLModel, table=True):
    """A media file Herald holds: uploaded, registered, or fetched from a URL for a post or a
    prepare task. Status: uploading -> processing -> ready | failed; pending_delete -> deleted.
    ``meta`` holds what probing found (codecs, fps, rotation, ...), ``previews`` the generated
    thumbnail/poster objects."""

    __tablename__ = "assets"
    __table_args__ = (
        sa.Index("ix_assets_ws_created", "workspace_id", "created_at", "id"),
        sa.Index("ix_assets_purge", "status", "purge_at"),
        sa.Index("ix_assets_ws_source", "workspace_id", "source_url_hash"),
    )
    id: str = Field(primary_key=True, max_length=40)
    workspace_id: str = Field(foreign_key="workspaces.id", max_length=40)
    storage: str = Field(max_length=20)  # local | s3
    object_key: Optional[str] = Field(default=None, max_length=1024)
    origin: str = Field(default="upload", max_length=20)  # upload | multipart | register | url
    source_url: Optional[str] = Field(default=None, sa_type=sa.Text)
    source_url_hash: Optional[str] = Field(default=None, max_length=64)
    original_filename: str = Field(default="file", max_length=255)
    claimed_mime: Optional[str] = Field(default=None, max_length=255)
    mime: str = Field(default="application/octet-stream", max_length=255)
    kind: str = Field(default="other", max_length=10)  # image | video | audio | other
    size: Optional[int] = Field(default=None, sa_type=sa.BigInteger)
    sha256: Optional[str] = Field(default=None, max_length=64)
    status: str = Field(default="processing", max_length=20)
    error_code: Optional[str] = Field(default=None, max_length=60)
    error: Optional[str] = Field(default=None, max_length=2000)
    # Unguessable part of the delivery URL: /media/{id}/{delivery_token}/{filename}.
    delivery_token: str = Field(max_length=64)
    width: Optional[int] = None
    height: Optional[int] = None
    duration: Optional[float] = None
    meta: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    previews: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    # Multipart uploads in progress: {uploadId, partSize, totalParts, size}.
    upload: Optional[dict] = Field(default=None, sa_column=Column(JSON, nullable=True))
    purge_at: Optional[datetime] = Field(default=None, sa_type=UTCDateTime)
    deleted_at: Optional[datetime] = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class AssetRendition(SQLModel, table=True):
    """An asset as one network's media profile needs it, made once and reused by every post."""

    __tablename__ = "asset_renditions"
    __table_args__ = (sa.UniqueConstraint("asset_id", "profile_key", name="uq_renditions_asset_profile"),)
    id: str = Field(primary_key=True, max_length=40)
    workspace_id: str = Field(foreign_key="workspaces.id", max_length=40)
    asset_id: str = Field(foreign_key="assets.id", index=True, max_length=40)
    profile_key: str = Field(max_length=120)  # MediaProfile.key + fit
    passthrough: bool = False  # the original fits: object_key is the asset's own
    object_key: str = Field(max_length=1024)
    mime: str = Field(max_length=255)
    size: int = Field(sa_type=sa.BigInteger)
    width: Optional[int] = None
    height: Optional[int] = None
    duration: Optional[float] = None
    actions: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    cover_key: Optional[str] = Field(default=None, max_length=1024)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class PostAsset(SQLModel, table=True):
    """Which assets a post uses: an asset is not purged while a post that uses it is not done."""

    __tablename__ = "post_assets"
    post_id: str = Field(foreign_key="posts.id", primary_key=True, max_length=40)
    asset_id: str = Field(foreign_key="assets.id", primary_key=True, max_length=40, index=True)
    workspace_id: str = Field(foreign_key="workspaces.id", max_length=40)


class MediaTask(SQLModel, table=True):
    """POST /v1/media/prepare: URLs fetched and processed into assets (SocialHub shape)."""

    __tablename__ = "media_tasks"
    id: str = Field(primary_key=True, max_length=40)
    workspace_id: str = Field(foreign_key="workspaces.id", index=True, max_length=40)
    # [{url, assetId}] in request order; progress and results are read from the assets.
    items: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class DataDeletionRequest(SQLModel, table=True):
    """A person's request, through a network's callback (Meta's data-deletion webhook), to delete
    what Herald holds about them. The code is what they were given to check the status; only a
    hash of their network user id is kept."""

    __tablename__ = "data_deletion_requests"
    id: str = Field(primary_key=True, max_length=40)  # the confirmation code
    network: str = Field(max_length=20)  # meta
    user_id_hash: str = Field(max_length=64, index=True)
    status: str = Field(default="completed", max_length=20)
    accounts: int = 0
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    completed_at: Optional[datetime] = Field(default=None, sa_type=UTCDateTime)
