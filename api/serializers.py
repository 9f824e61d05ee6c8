"""Rows -> SocialClaw-shaped JSON. The one place that decides what callers see (never secrets)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from herald.settings import Settings
from herald.temporal import post_workflow_id, run_workflow_id, ui_url
from herald.timeparse import iso_ms
from store.models import Account, ApiKey, Asset, Connection, Job, Post, PostAttempt, Run


def ts(value: datetime | None) -> str | None:
    return iso_ms(value) if value is not None else None


def _ui(settings: Settings, workflow_id: str) -> str:
    return ui_url(settings.temporal_ui_base, settings.temporal_namespace, workflow_id)


def key_json(key: ApiKey, secret: str | None = None) -> dict[str, Any]:
    out = {
        "id": key.id, "prefix": key.prefix, "label": key.label, "kind": key.kind,
        "createdAt": ts(key.created_at), "lastUsedAt": ts(key.last_used_at), "revokedAt": ts(key.revoked_at),
    }
    if secret is not None:
        out["secret"] = secret
    return out


def account_json(a: Account) -> dict[str, Any]:
    return {
        "id": a.id, "provider": a.provider, "handle": a.handle, "displayName": a.display_name,
        "accountType": a.account_type, "externalId": a.external_id, "status": a.status,
        "statusReason": a.status_reason, "connectionId": a.connection_id, "metadata": a.meta,
        "tokenExpiresAt": ts(a.token_expires_at),
        "createdAt": ts(a.created_at), "updatedAt": ts(a.updated_at),
    }


def connection_json(c: Connection, account: Account | None = None) -> dict[str, Any]:
    return {
        "id": c.id, "provider": c.provider, "status": c.status, "authorizeUrl": c.authorize_url,
        "error": c.error, "account": account_json(account) if account else None,
        "accountIds": list(c.account_ids or []), "expiresAt": ts(c.expires_at),
        "createdAt": ts(c.created_at), "updatedAt": ts(c.updated_at),
    }


def run_json(r: Run, settings: Settings) -> dict[str, Any]:
    return {
        "id": r.id, "status": r.status, "mode": r.mode, "source": r.source, "sourceModel": r.source_model,
        "timezone": r.timezone, "idempotencyKey": r.idempotency_key, "totalPosts": r.total_posts,
        "requireApproval": bool(r.options.get("requireApproval")), "approval": r.options.get("approval"),
        "publishedAt": ts(r.published_at),
        "createdAt": ts(r.created_at), "updatedAt": ts(r.updated_at),
        "temporalUrl": _ui(settings, run_workflow_id(r.id)),
    }


def media_json(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A post's media as given, plus (once prepared) the asset it became and the rendition the
    network receives (what was done to fit it: downscale, convert, transcode, ...)."""
    out = []
    for m in items:
        r = m.get("rendition") or {}
        out.append({
            "url": m.get("url"), "kind": r.get("kind") or m.get("kind"), "mime": m.get("mime"),
            "size": m.get("size"), "originalFilename": m.get("filename"), "altText": m.get("altText"),
            "assetId": m.get("assetId"),
            "rendition": ({k: r.get(k) for k in ("mime", "size", "width", "height", "duration", "actions")}
                          if r else None),
        })
    return out


def post_json(p: Post, settings: Settings) -> dict[str, Any]:
    return {
        "id": p.id, "runId": p.run_id, "provider": p.provider, "account": p.account_handle,
        "accountId": p.account_id, "status": p.status, "name": p.name, "description": p.description,
        "publishAtUtc": ts(p.publish_at), "timezone": p.timezone, "assets": media_json(p.media),
        "settings": p.settings, "providerPostId": p.provider_post_id, "providerUrl": p.provider_url,
        "errorCode": p.error_code, "error": p.error, "attempts": p.attempts,
        "publishedAt": ts(p.published_at), "deletedAt": ts(p.deleted_at),
        "createdAt": ts(p.created_at), "updatedAt": ts(p.updated_at),
        "postType": p.post_type, "campaignId": p.campaign_id, "stepId": p.step_id,
        "interactionType": p.interaction_type, "parentPostId": p.parent_post_id,
        "requiresApproval": p.requires_approval,
        "review": ({"state": p.review_state, "by": p.reviewed_by, "at": ts(p.reviewed_at), "note": p.review_note}
                   if p.requires_approval else None),
        "temporalUrl": _ui(settings, post_workflow_id(p.id)),
    }


def attempt_json(a: PostAttempt) -> dict[str, Any]:
    return {
        "id": a.id, "attempt": a.attempt_no, "startedAt": ts(a.started_at), "finishedAt": ts(a.finished_at),
        "outcome": a.outcome, "httpStatus": a.http_status, "errorCode": a.error_code, "error": a.error,
        "providerPostId": a.provider_post_id, "retryAfterSeconds": a.retry_after_seconds,
    }


def job_json(j: Job, settings: Settings) -> dict[str, Any]:
    return {
        "id": j.id, "kind": j.kind, "status": j.status, "runId": j.run_id, "postId": j.post_id,
        "provider": j.provider, "account": j.account_handle, "error": j.error,
        "createdAt": ts(j.created_at), "updatedAt": ts(j.updated_at),
        "temporalUrl": _ui(settings, j.workflow_id) if j.workflow_id else None,
    }


def asset_json(asset: Asset, settings: Settings) -> dict[str, Any]:
    """An asset as SocialClaw's Asset schema, plus what probing found (width, height, ...)."""
    from herald.assets import delivery_url, preview_url

    servable = asset.status in ("ready", "pending_delete") and asset.object_key is not None
    out: dict[str, Any] = {
        "id": asset.id, "tenantId": asset.workspace_id, "storage": asset.storage, "objectKey": asset.object_key,
        "originalFilename": asset.original_filename, "mime": asset.mime, "kind": asset.kind,
        "size": asset.size, "status": asset.status, "origin": asset.origin,
        "publicUrl": delivery_url(settings, asset.id, asset.delivery_token, asset.original_filename) if servable else None,
        "preview": ({p["role"]: preview_url(settings, asset.id, asset.delivery_token, p["name"]) for p in asset.previews}
                    if servable and asset.previews else None),
        "width": asset.width, "height": asset.height, "duration": asset.duration,
        "sha256": asset.sha256, "media": asset.meta or None,
        "sourceUrl": asset.source_url,
        "error": ({"code": asset.error_code, "message": asset.error} if asset.status == "failed" else None),
        "purgeAt": ts(asset.purge_at), "createdAt": ts(asset.created_at), "updatedAt": ts(asset.updated_at),
    }
    return out
