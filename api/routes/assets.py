"""Assets: base64 upload, multipart upload, registration, list, detail, delete (SocialClaw shapes).

The multipart routes exist under /v1/assets/upload/... for API keys and under the dashboard
paths. With S3 storage a signed part URL goes straight to the bucket; with local storage it
points back at this API (PUT /uploads/{assetId}/parts/{n}, authorised by the URL's HMAC signature instead of
an API key, like a presigned S3 URL).
"""

from __future__ import annotations

import asyncio
import math
from datetime import datetime, timedelta, timezone
from typing import Annotated, Optional

from fastapi import APIRouter, Body, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func
from sqlmodel import select

from api import assets as intake
from api.deps import CallerDep, SessionDep, SettingsDep, get_temporal
from api.errors import ApiError, not_found
from api.rate_limits import limited
from api.serializers import asset_json
from herald import assets as a
from store.models import Asset

router = APIRouter(tags=["assets"])

MAX_PAGE = 200
MAX_OFFSET = 1_000_000_000
MAX_RETENTION_DAYS = 3650


class AssetUploadRequest(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)
    filename: Optional[str] = Field(default=None, max_length=255)
    name: Optional[str] = Field(default=None, max_length=255)
    mime: Optional[str] = Field(default=None, max_length=255)
    contentBase64: Optional[str] = None
    content_base64: Optional[str] = None
    width: Optional[int] = Field(default=None, ge=1, le=100_000)
    height: Optional[int] = Field(default=None, ge=1, le=100_000)
    duration: Optional[float] = Field(default=None, ge=0, le=10_000_000)
    deleteAfter: Optional[str] = Field(default=None, max_length=64)


class AssetRegistrationRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    objectKey: Optional[str] = Field(default=None, max_length=1024)
    publicUrl: Optional[str] = Field(default=None, max_length=4096)
    url: Optional[str] = Field(default=None, max_length=4096)
    originalFilename: Optional[str] = Field(default=None, max_length=255)
    filename: Optional[str] = Field(default=None, max_length=255)
    mime: Optional[str] = Field(default=None, max_length=255)
    kind: Optional[str] = Field(default=None, max_length=10)
    size: Optional[int] = Field(default=None, ge=0)
    status: Optional[str] = Field(default=None, max_length=20)


class DeleteRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    retentionDays: Optional[float] = Field(default=None, ge=0, le=MAX_RETENTION_DAYS)


class InitiateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    filename: Optional[str] = Field(default=None, max_length=255)
    name: Optional[str] = Field(default=None, max_length=255)
    size: int = Field(ge=1, le=2**53)
    mime: Optional[str] = Field(default=None, max_length=255)


class PartRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    uploadId: str = Field(max_length=1024)
    partNumber: int = Field(ge=1, le=intake.MAX_PARTS)


class CompletedPart(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)
    ETag: str = Field(max_length=200, validation_alias="ETag")
    PartNumber: int = Field(ge=1, le=intake.MAX_PARTS)


class CompleteRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    uploadId: str = Field(max_length=1024)
    parts: list[CompletedPart] = Field(max_length=intake.MAX_PARTS)
    duration: Optional[float] = None
    width: Optional[int] = None
    height: Optional[int] = None


class AbortRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    uploadId: str = Field(max_length=1024)


def _created(asset: Asset, settings) -> JSONResponse:  # noqa: ANN001
    return JSONResponse({"ok": True, "asset": asset_json(asset, settings)}, status_code=201)


def _owned(session, caller, asset_id: str) -> Asset:  # noqa: ANN001
    asset = session.get(Asset, asset_id)
    if asset is None or asset.workspace_id != caller.workspace.id:
        raise not_found("asset", asset_id)
    return asset


# --- base64 upload --------------------------------------------------------------------------------


async def _upload(body: AssetUploadRequest, caller: CallerDep, session: SessionDep, settings: SettingsDep,
                  request: Request) -> JSONResponse:
    filename = body.filename or body.name
    content = body.contentBase64 if body.contentBase64 is not None else body.content_base64
    if not filename or content is None:
        missing = "filename" if not filename else "contentBase64"
        raise ApiError(422, "validation_error", f"{missing} is required", {"field": missing})
    # Reject by the encoded length before decoding: base64 is 4/3 of the bytes.
    if len(content) * 3 // 4 > settings.max_asset_bytes + 3:
        raise intake.too_large(settings, len(content) * 3 // 4)
    data = intake.decode_base64(content)
    if len(data) > settings.max_asset_bytes:
        raise intake.too_large(settings, len(data))
    if not data:
        raise ApiError(422, "empty_file", "the file is empty (0 bytes)", {"field": "contentBase64"})
    mime = intake.claimed_mime(body.mime, filename)
    purge_at = intake.purge_time(body.deleteAfter)
    # Bad input is refused above whatever the state of Temporal; from here on it is needed.
    temporal = await get_temporal(request)
    asset = a.new_asset(settings, caller.workspace.id, filename, mime, "upload", size=len(data),
                             purge_at=purge_at)
    asset.object_key = a.original_key(asset.workspace_id, asset.id, a.file_ext(asset.original_filename, mime))
    storage = a.storage_for(settings)
    await asyncio.to_thread(storage.put_bytes, asset.object_key, data, mime or "application/octet-stream")
    session.add(asset)
    session.commit()
    await intake.start_processing(temporal, settings, session, asset)
    session.refresh(asset)
    return _created(asset, settings)


@router.post("/v1/assets/upload", status_code=201, dependencies=[limited("media")])
async def upload_asset(body: AssetUploadRequest, caller: CallerDep, session: SessionDep, settings: SettingsDep,
                       request: Request) -> JSONResponse:
    """Upload a small file as base64; it is sniffed, probed and previewed, then `ready`."""
    return await _upload(body, caller, session, settings, request)


@router.post("/v1/dashboard/assets/upload", status_code=201, dependencies=[limited("media")])
async def dashboard_upload_asset(body: AssetUploadRequest, caller: CallerDep, session: SessionDep,
                                 settings: SettingsDep, request: Request) -> JSONResponse:
    """Dashboard alias of POST /v1/assets/upload."""
    return await _upload(body, caller, session, settings, request)


# --- registration ---------------------------------------------------------------------------------


@router.post("/v1/assets", status_code=201, dependencies=[limited("media")])
async def register_asset(body: AssetRegistrationRequest, caller: CallerDep, session: SessionDep,
                         settings: SettingsDep, request: Request) -> JSONResponse:
    """Register an object already in this deployment's storage (under the workspace's own
    prefix, `<workspaceId>/...`) or a public URL (fetched with the SSRF guard)."""
    url = body.publicUrl or body.url
    if not body.objectKey and not url:
        raise ApiError(422, "validation_error", "give objectKey (an object in storage) or publicUrl",
                       {"field": "objectKey"})
    if body.kind is not None and body.kind not in a.KINDS:
        raise ApiError(422, "validation_error", f"kind must be one of {', '.join(a.KINDS)}", {"field": "kind"})
    filename = body.originalFilename or body.filename
    if body.objectKey:
        key = body.objectKey
        # Another workspace's objects are not the caller's to register.
        if not key.startswith(f"{caller.workspace.id}/") or ".." in key.split("/") or "\\" in key:
            raise ApiError(422, "validation_error",
                           f"objectKey must be an object under this workspace's prefix {caller.workspace.id}/",
                           {"field": "objectKey"})
        stat = await asyncio.to_thread(a.storage_for(settings).stat, key)
        if stat is None:
            raise ApiError(422, "object_not_found", f"no object {key!r} in storage", {"field": "objectKey"})
        if stat.size > settings.max_asset_bytes:
            raise intake.too_large(settings, stat.size)
        filename = filename or key.rsplit("/", 1)[-1]
        asset = a.new_asset(settings, caller.workspace.id, filename, intake.claimed_mime(body.mime, filename),
                                 "register", object_key=key, size=stat.size)
        fetch_url = None
    else:
        assert url is not None
        if not url.lower().startswith(("http://", "https://")):
            raise ApiError(422, "validation_error", "publicUrl must be an http(s) URL", {"field": "publicUrl"})
        filename = filename or a.filename_from_url(url)
        asset = a.new_asset(settings, caller.workspace.id, filename, intake.claimed_mime(body.mime, filename),
                            "url", source_url=url, source_url_hash=a.url_hash(url))
        fetch_url = url
    temporal = await get_temporal(request)
    session.add(asset)
    session.commit()
    await intake.start_processing(temporal, settings, session, asset, fetch_url)
    session.refresh(asset)
    return _created(asset, settings)


# --- list, detail, delete -------------------------------------------------------------------------


def _list(caller, session, settings, limit: int, offset: int, status: Optional[str], kind: Optional[str]) -> dict:  # noqa: ANN001
    q = select(Asset).where(Asset.workspace_id == caller.workspace.id)
    q = q.where(Asset.status == status) if status else q.where(Asset.status != "deleted")
    if kind:
        q = q.where(Asset.kind == kind)
    total = session.exec(select(func.count()).select_from(q.subquery())).one()
    rows = session.exec(q.order_by(Asset.created_at.desc(), Asset.id.desc()).offset(offset).limit(limit)).all()  # type: ignore[attr-defined]
    return {"ok": True, "total": total, "limit": limit, "offset": offset,
            "assets": [asset_json(r, settings) for r in rows]}


@router.get("/v1/assets", dependencies=[limited("reads")])
def list_assets(caller: CallerDep, session: SessionDep, settings: SettingsDep,
                limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 24,
                offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
                status: Annotated[Optional[str], Query(max_length=20)] = None,
                kind: Annotated[Optional[str], Query(max_length=10)] = None) -> dict:
    """Assets of the workspace, newest first (deleted ones only when asked by status)."""
    return _list(caller, session, settings, limit, offset, status, kind)


@router.get("/v1/dashboard/assets", dependencies=[limited("reads")])
def dashboard_list_assets(caller: CallerDep, session: SessionDep, settings: SettingsDep,
                          limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 24,
                          offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0) -> dict:
    """Ready assets for the dashboard media picker."""
    return _list(caller, session, settings, limit, offset, "ready", None)


@router.get("/v1/assets/{asset_id}", dependencies=[limited("reads")])
def get_asset(asset_id: str, caller: CallerDep, session: SessionDep, settings: SettingsDep) -> dict:
    """One asset: status, what probing found, delivery and preview URLs, or why it failed."""
    return {"ok": True, "asset": asset_json(_owned(session, caller, asset_id), settings)}


def _delete(asset_id: str, body: Optional[DeleteRequest], caller, session, settings) -> dict:  # noqa: ANN001
    asset = _owned(session, caller, asset_id)
    if asset.status != "deleted":
        days = body.retentionDays if body and body.retentionDays is not None else 0
        asset.status = "pending_delete"
        asset.purge_at = datetime.now(timezone.utc) + timedelta(days=days)
        asset.updated_at = datetime.now(timezone.utc)
        session.add(asset)
        session.commit()
        session.refresh(asset)
    return {"ok": True, "asset": asset_json(asset, settings)}


@router.delete("/v1/assets/{asset_id}", dependencies=[limited("media")])
def delete_asset(asset_id: str, caller: CallerDep, session: SessionDep, settings: SettingsDep,
                 body: Annotated[Optional[DeleteRequest], Body()] = None) -> dict:
    """Mark for deletion; the bytes are purged `retentionDays` later (default 0: at the next
    sweep), but never while a post that is not done yet uses the asset."""
    return _delete(asset_id, body, caller, session, settings)


@router.delete("/v1/dashboard/assets/{asset_id}", dependencies=[limited("media")])
def dashboard_delete_asset(asset_id: str, caller: CallerDep, session: SessionDep, settings: SettingsDep,
                           body: Annotated[Optional[DeleteRequest], Body()] = None) -> dict:
    """Dashboard alias of DELETE /v1/assets/{assetId}."""
    return _delete(asset_id, body, caller, session, settings)


# --- multipart ------------------------------------------------------------------------------------


def _uploading(session, caller, asset_id: str, upload_id: str) -> Asset:  # noqa: ANN001
    asset = _owned(session, caller, asset_id)
    if asset.status != "uploading" or not asset.upload or asset.upload.get("uploadId") != upload_id:
        raise ApiError(409, "upload_not_active", f"asset {asset_id} has no multipart upload {upload_id[:80]!r} in progress")
    return asset


async def _initiate(body: InitiateRequest, caller, session, settings) -> JSONResponse:  # noqa: ANN001
    filename = body.filename or body.name
    if not filename:
        raise ApiError(422, "validation_error", "filename is required", {"field": "filename"})
    if body.size > settings.max_asset_bytes:
        raise intake.too_large(settings, body.size)
    part_size = max(intake.DEFAULT_PART_BYTES, math.ceil(body.size / intake.MAX_PARTS))
    mime = intake.claimed_mime(body.mime, filename)
    asset = a.new_asset(settings, caller.workspace.id, filename, mime, "multipart", size=body.size,
                             purge_at=datetime.now(timezone.utc) + intake.ABANDONED_UPLOAD)
    asset.status = "uploading"
    asset.object_key = a.original_key(asset.workspace_id, asset.id, a.file_ext(asset.original_filename, mime))
    upload_id = await asyncio.to_thread(a.storage_for(settings).multipart_start, asset.object_key,
                                        mime or "application/octet-stream")
    total = math.ceil(body.size / part_size)
    asset.upload = {"uploadId": upload_id, "partSize": part_size, "totalParts": total, "size": body.size}
    session.add(asset)
    session.commit()
    session.refresh(asset)
    return JSONResponse({
        "ok": True, "mode": "multipart", "maxAssetBytes": settings.max_asset_bytes, "storage": settings.storage,
        "asset": asset_json(asset, settings),
        "upload": {"uploadId": upload_id, "partSize": part_size, "totalParts": total},
    }, status_code=201)


async def _sign_part(asset_id: str, body: PartRequest, caller, session, settings) -> dict:  # noqa: ANN001
    asset = _uploading(session, caller, asset_id, body.uploadId)
    url = await asyncio.to_thread(a.storage_for(settings).multipart_part_url, asset.object_key, body.uploadId,
                                  body.partNumber, intake.PART_URL_SECONDS)
    if url is None:
        url = intake.signed_part_url(settings, asset.id, body.uploadId, body.partNumber)
    return {"ok": True, "assetId": asset.id, "uploadId": body.uploadId, "partNumber": body.partNumber,
            "url": url, "expiresIn": intake.PART_URL_SECONDS}


async def _complete(asset_id: str, body: CompleteRequest, caller, session, settings, request) -> JSONResponse:  # noqa: ANN001
    from storage import StorageError

    asset = _uploading(session, caller, asset_id, body.uploadId)
    # Temporal is needed only after the caller is known to own the upload (an outage then
    # answers 503 before the parts are assembled, and the upload stays resumable).
    temporal = await get_temporal(request)
    if not body.parts:
        raise ApiError(422, "validation_error", "parts must list every uploaded part", {"field": "parts"})
    parts = sorted((p.PartNumber, p.ETag) for p in body.parts)
    try:
        stat = await asyncio.to_thread(a.storage_for(settings).multipart_complete, asset.object_key,
                                       body.uploadId, parts)
    except StorageError as exc:
        raise ApiError(422, "multipart_invalid", str(exc), {"field": "parts"}) from None
    if stat.size > settings.max_asset_bytes:
        await asyncio.to_thread(a.storage_for(settings).delete, asset.object_key)
        raise intake.too_large(settings, stat.size)
    asset.status, asset.upload, asset.size, asset.purge_at = "processing", None, stat.size, None
    asset.updated_at = datetime.now(timezone.utc)
    session.add(asset)
    session.commit()
    await intake.start_processing(temporal, settings, session, asset)
    session.refresh(asset)
    return JSONResponse({"ok": True, "asset": asset_json(asset, settings)})


async def _abort(asset_id: str, body: AbortRequest, caller, session, settings) -> dict:  # noqa: ANN001
    asset = _uploading(session, caller, asset_id, body.uploadId)
    await asyncio.to_thread(a.storage_for(settings).multipart_abort, asset.object_key, body.uploadId)
    asset.status, asset.upload, asset.object_key = "deleted", None, None
    asset.deleted_at = asset.updated_at = datetime.now(timezone.utc)
    session.add(asset)
    session.commit()
    return {"ok": True}


for prefix, label in (("/v1/assets/upload", ""), ("/v1/dashboard/assets/upload", "Dashboard alias: ")):
    # The same four handlers on both paths (API keys and the dashboard).
    def _routes(prefix: str = prefix, label: str = label) -> None:
        @router.post(f"{prefix}/initiate", status_code=201, dependencies=[limited("media")],
                     name=f"{label}initiate multipart upload")
        async def initiate(body: InitiateRequest, caller: CallerDep, session: SessionDep,
                           settings: SettingsDep) -> JSONResponse:
            """Start a multipart upload; then sign each part, PUT it to the signed URL, complete."""
            return await _initiate(body, caller, session, settings)

        @router.post(f"{prefix}/{{asset_id}}/part", dependencies=[limited("media")], name=f"{label}sign part")
        async def sign_part(asset_id: str, body: PartRequest, caller: CallerDep, session: SessionDep,
                            settings: SettingsDep) -> dict:
            """A URL to PUT one part to (S3: presigned; local storage: this API, HMAC-signed)."""
            return await _sign_part(asset_id, body, caller, session, settings)

        @router.post(f"{prefix}/{{asset_id}}/complete", dependencies=[limited("media")], name=f"{label}complete")
        async def complete(asset_id: str, body: CompleteRequest, caller: CallerDep, session: SessionDep,
                           settings: SettingsDep, request: Request) -> JSONResponse:
            """Assemble the parts (ascending, with their ETags); the asset then processes."""
            return await _complete(asset_id, body, caller, session, settings, request)

        @router.post(f"{prefix}/{{asset_id}}/abort", dependencies=[limited("media")], name=f"{label}abort")
        async def abort(asset_id: str, body: AbortRequest, caller: CallerDep, session: SessionDep,
                        settings: SettingsDep) -> dict:
            """Abandon the upload; its parts are discarded."""
            return await _abort(asset_id, body, caller, session, settings)

    _routes()


@router.put("/uploads/{asset_id}/parts/{part_number}", include_in_schema=True)
async def put_part(asset_id: str, part_number: int, request: Request, session: SessionDep, settings: SettingsDep,
                   uploadId: Annotated[str, Query(max_length=1024)],
                   expires: Annotated[int, Query(ge=0, le=2**53)],
                   signature: Annotated[str, Query(max_length=128)]) -> JSONResponse:
    """Receive one part (local storage). Authorised by the signed URL, not an API key."""
    from storage import StorageError

    if not 1 <= part_number <= intake.MAX_PARTS:
        raise ApiError(422, "validation_error", f"part number must be 1..{intake.MAX_PARTS}")
    intake.check_part_signature(settings, asset_id, uploadId, part_number, expires, signature)
    asset = session.get(Asset, asset_id)
    if asset is None or asset.status != "uploading" or not asset.upload or asset.upload.get("uploadId") != uploadId:
        raise ApiError(409, "upload_not_active", "this multipart upload is not in progress")
    data = await request.body()
    if len(data) > max(asset.upload["partSize"], intake.MIN_PART_BYTES) + 1024 * 1024:
        raise ApiError(413, "payload_too_large", "the part is larger than the upload's part size",
                       {"limitBytes": asset.upload["partSize"]})
    try:
        etag = await asyncio.to_thread(a.storage_for(settings).multipart_put_part, asset.object_key, uploadId,
                                       part_number, data)
    except StorageError as exc:
        raise ApiError(409, "upload_not_active", str(exc)) from None
    return JSONResponse({"ok": True, "partNumber": part_number, "etag": etag}, headers={"ETag": etag})
