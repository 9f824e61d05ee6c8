"""Media delivery URLs and media preparation tasks.

``GET|HEAD /media/{assetId}/{deliveryToken}/{filename}`` (and ``.../previews/{name}``) serve an
asset to anyone holding the URL -- networks such as Instagram and Threads fetch media this way --
with the sniffed Content-Type, Content-Length, ETag and byte ranges. A wrong token, an unknown
asset and an asset not (or no longer) servable get the same 404.

``POST /v1/media/prepare`` and ``GET /v1/media/status/{taskId}`` follow SocialHub: up to 10 URLs,
each fetched (SSRF-guarded) and processed into an asset by its own AssetWorkflow; progress and
results are read from those assets.
"""

from __future__ import annotations

import asyncio
import hmac
from typing import Annotated, Any, Optional

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import select

from api.assets import start_processing
from api.deps import CallerDep, SessionDep, SettingsDep, get_temporal
from api.errors import ApiError, error_body, not_found
from api.rate_limits import limited
from herald import assets as a
from herald.ids import new_id
from store.models import Asset, AssetRendition, MediaTask

router = APIRouter(tags=["media"])

# SocialHub's published limits for /media/prepare: 10 URLs, 500 MB per file, 10 minutes.
MAX_PREPARE_URLS = 10
MAX_URL_LENGTH = 4096


def _not_found() -> JSONResponse:
    # No hint whether the asset exists, the token is wrong or the file is gone.
    return JSONResponse(error_body("not_found", "not found"), status_code=404)


def _servable(session, asset_id: str, token: str) -> Asset | None:  # noqa: ANN001
    asset = session.get(Asset, asset_id) if asset_id.startswith("asset_") and len(asset_id) <= 40 else None
    if asset is None or not hmac.compare_digest(asset.delivery_token.encode(), token.encode()):
        return None
    if asset.status not in ("ready", "pending_delete") or not asset.object_key:
        return None
    return asset


async def _serve(request: Request, settings, key: str, mime: str, filename: str,  # noqa: ANN001
                 range_header: Optional[str], if_none_match: Optional[str]) -> Response:
    from api.ranges import stored_object_response
    from storage import ObjectMissing

    try:
        response = await asyncio.to_thread(
            stored_object_response, a.storage_for(settings), key, mime=mime, filename=filename,
            method=request.method, range_header=range_header, if_none_match=if_none_match)
    except ObjectMissing:
        return _not_found()
    # Never let a browser reinterpret an uploaded file (an HTML or SVG payload on our origin).
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "default-src 'none'; img-src 'self'; media-src 'self'; sandbox"
    return response


@router.get("/media/{asset_id}/{token}/{filename}", operation_id="deliver_asset")
@router.head("/media/{asset_id}/{token}/{filename}", operation_id="deliver_asset_head")
async def deliver_asset(asset_id: str, token: str, filename: str, request: Request, session: SessionDep,
                        settings: SettingsDep, range: Annotated[Optional[str], Header()] = None,
                        if_none_match: Annotated[Optional[str], Header()] = None) -> Response:
    """Stream an asset by its delivery URL (HEAD and byte ranges supported)."""
    asset = await asyncio.to_thread(_servable, session, asset_id, token)
    if asset is None:
        return _not_found()
    # asset.mime is the sniffed type, never the caller's claim.
    return await _serve(request, settings, asset.object_key, asset.mime, asset.original_filename, range,
                        if_none_match)


@router.get("/media/{asset_id}/{token}/previews/{name}", operation_id="deliver_preview")
@router.head("/media/{asset_id}/{token}/previews/{name}", operation_id="deliver_preview_head")
async def deliver_preview(asset_id: str, token: str, name: str, request: Request, session: SessionDep,
                          settings: SettingsDep, range: Annotated[Optional[str], Header()] = None,
                          if_none_match: Annotated[Optional[str], Header()] = None) -> Response:
    """Stream a generated thumbnail or poster frame."""
    asset = await asyncio.to_thread(_servable, session, asset_id, token)
    preview = next((p for p in (asset.previews if asset else []) if p["name"] == name), None)
    if asset is None or preview is None:
        return _not_found()
    return await _serve(request, settings, a.preview_key(asset.workspace_id, asset.id, name), preview["mime"],
                        name, range, if_none_match)


@router.get("/media/{asset_id}/{token}/renditions/{rendition_id}/{filename}", operation_id="deliver_rendition")
@router.head("/media/{asset_id}/{token}/renditions/{rendition_id}/{filename}", operation_id="deliver_rendition_head")
async def deliver_rendition(asset_id: str, token: str, rendition_id: str, filename: str, request: Request,
                            session: SessionDep, settings: SettingsDep,
                            range: Annotated[Optional[str], Header()] = None,
                            if_none_match: Annotated[Optional[str], Header()] = None) -> Response:
    """Stream a rendition made for a network (the file Instagram or Threads fetch by URL)."""
    asset = await asyncio.to_thread(_servable, session, asset_id, token)
    rendition = session.get(AssetRendition, rendition_id) if asset is not None and len(rendition_id) <= 40 else None
    if asset is None or rendition is None or rendition.asset_id != asset.id:
        return _not_found()
    return await _serve(request, settings, rendition.object_key, rendition.mime, filename, range, if_none_match)


# --- prepare tasks ----------------------------------------------------------------------------------


class PrepareRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    urls: list[Any] = Field(max_length=1000)


def _url_problem(url: Any) -> str | None:
    if not isinstance(url, str) or not url.strip():
        return "must be a non-empty string"
    if len(url) > MAX_URL_LENGTH:
        return f"is longer than {MAX_URL_LENGTH} characters"
    if not url.lower().startswith(("http://", "https://")):
        return "must be an http(s) URL"
    return None


@router.post("/v1/media/prepare", status_code=202, dependencies=[limited("media")])
async def prepare_media(body: PrepareRequest, caller: CallerDep, session: SessionDep, settings: SettingsDep,
                        request: Request) -> JSONResponse:
    """Fetch and process up to 10 media URLs (Google Drive and Dropbox share links work);
    poll GET /v1/media/status/{taskId}."""
    if not body.urls:
        raise ApiError(422, "validation_error", "urls must list at least one URL", {"field": "urls"})
    if len(body.urls) > MAX_PREPARE_URLS:
        raise ApiError(422, "too_many_urls", f"{len(body.urls)} URLs; at most {MAX_PREPARE_URLS} per task",
                       {"field": "urls", "limit": MAX_PREPARE_URLS})
    problems = [{"field": f"urls[{i}]", "message": f"urls[{i}] {p}"} for i, u in enumerate(body.urls)
                if (p := _url_problem(u))]
    if problems:
        raise ApiError(422, "validation_error", problems[0]["message"], {"problems": problems})
    temporal = await get_temporal(request)  # after validation: bad input is a 4xx even in an outage
    items, started = [], []
    for url in body.urls:
        asset = a.new_url_asset(settings, caller.workspace.id, url)
        session.add(asset)
        items.append({"url": url, "assetId": asset.id})
        started.append(asset)
    task = MediaTask(id=new_id("task"), workspace_id=caller.workspace.id, items=items)
    session.add(task)
    session.commit()
    for asset in started:
        await start_processing(temporal, settings, session, asset, asset.source_url)
    return JSONResponse({"ok": True, "success": True, "task_id": task.id, "taskId": task.id,
                         "message": "Media preparation started"}, status_code=202)


@router.get("/v1/media/status/{task_id}", dependencies=[limited("reads")])
def media_status(task_id: str, caller: CallerDep, session: SessionDep, settings: SettingsDep) -> dict:
    """`processing` with progress {total, completed, failed}, or `completed` (or `failed` when
    every URL failed) with files [{original_url, prepared_url, type, size}] and failures."""
    from api.serializers import asset_json

    task = session.get(MediaTask, task_id)
    if task is None or task.workspace_id != caller.workspace.id:
        raise not_found("media task", task_id)
    ids = [item["assetId"] for item in task.items]
    assets = {x.id: x for x in session.exec(select(Asset).where(Asset.id.in_(ids))).all()}  # type: ignore[attr-defined]
    files, failures = [], []
    for item in task.items:
        asset = assets.get(item["assetId"])
        if asset is None or asset.status in ("failed", "deleted"):
            failures.append({"original_url": item["url"], "asset_id": item["assetId"],
                             "code": asset.error_code if asset else "deleted",
                             "error": asset.error if asset and asset.error else "the asset was deleted"})
        elif asset.status in ("ready", "pending_delete"):
            out = asset_json(asset, settings)
            files.append({"original_url": item["url"], "prepared_url": out["publicUrl"], "type": asset.kind,
                          "size": asset.size, "mime": asset.mime, "asset_id": asset.id,
                          "width": asset.width, "height": asset.height, "duration": asset.duration})
    total, done = len(task.items), len(files) + len(failures)
    progress = {"total": total, "completed": len(files), "failed": len(failures)}
    if done < total:
        return {"ok": True, "success": True, "task_id": task.id, "status": "processing", "progress": progress}
    status = "failed" if not files else "completed"
    return {"ok": True, "success": True, "task_id": task.id, "status": status, "progress": progress,
            "files": files, "failures": failures}
