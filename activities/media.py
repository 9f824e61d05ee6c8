"""Media side effects: fetch a URL into an asset, probe it, make renditions, prepare a post's media,
purge deleted assets.

``fetch_asset_source``, ``process_asset`` and ``make_rendition`` run on the media task queue
(CPU-bound work; the two sync ones run on the worker's thread pool and heartbeat from there).
``prepare_media`` runs on the main queue: it resolves a post's media to assets, then starts (or
joins) their AssetWorkflows and RenditionWorkflows and waits for them, so work one post started
is never done twice for another. Each activity is idempotent: it re-reads the asset row first.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import shutil
import tempfile
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from sqlalchemy.exc import IntegrityError
from sqlmodel import select
from temporalio import activity
from temporalio.client import Client, WorkflowFailureError
from temporalio.common import WorkflowIDConflictPolicy

from herald import assets as a
from herald.contracts import (
    AssetOutcome,
    AssetWorkflowInput,
    PrepareMediaInput,
    PrepareMediaResult,
    PurgeResult,
    RenditionInput,
    RenditionOutcome,
    TERMINAL_POST_STATUSES,
)
from herald.failures import not_publishable
from herald.ids import new_id
from herald.settings import Settings
from media.types import MediaError, MediaInfo
from store.db import Database
from store.models import Asset, AssetRendition, Post, PostAsset

log = logging.getLogger("herald.media")

HEARTBEAT_SECONDS = 5.0


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _outcome(asset: Asset) -> AssetOutcome:
    return AssetOutcome(asset_id=asset.id, status=asset.status, error_code=asset.error_code, error=asset.error)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class MediaActivities:
    def __init__(self, settings: Settings, db: Database, client: Client | None = None):
        self.settings = settings
        self.db = db
        self.client = client
        self._tools = None

    # --- helpers --------------------------------------------------------------------------------

    @property
    def storage(self):  # noqa: ANN201 - storage.Storage
        return a.storage_for(self.settings)

    @property
    def tools(self):  # noqa: ANN201 - media.tools.MediaTools
        if self._tools is None:
            from media.tools import resolve_tools

            self._tools = resolve_tools(self.settings.ffmpeg_path, self.settings.ffprobe_path)
        return self._tools

    @contextmanager
    def _scratch(self) -> Iterator[Path]:
        root = self.settings.data_dir / "work"
        root.mkdir(parents=True, exist_ok=True)
        path = Path(tempfile.mkdtemp(dir=root))
        try:
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)

    def _local_copy(self, key: str, scratch: Path) -> Path:
        """The object as a local file: the stored file itself, or a download into scratch."""
        local = self.storage.local_path(key)
        if local is not None:
            return local
        dest = scratch / ("obj-" + hashlib.sha1(key.encode()).hexdigest()[:12] + Path(key).suffix)
        self.storage.download_to(key, dest)
        return dest

    def _load_asset(self, asset_id: str) -> Asset:
        with self.db.session() as s:
            asset = s.get(Asset, asset_id)
            if asset is None:
                raise not_publishable("media_unavailable", f"asset {asset_id} does not exist")
            s.expunge(asset)
            return asset

    def _update_asset(self, asset_id: str, **fields: Any) -> Asset:
        with self.db.write_session() as s:
            asset = s.get(Asset, asset_id)
            assert asset is not None
            for name, value in fields.items():
                setattr(asset, name, value)
            asset.updated_at = _now()
            s.add(asset)
            s.commit()
            s.refresh(asset)
            s.expunge(asset)
            return asset

    def _fail_asset(self, asset: Asset, code: str, message: str) -> AssetOutcome:
        """A file that can never be used: nothing of it stays stored, the row says why."""
        self.storage.delete_prefix(a.asset_prefix(asset.workspace_id, asset.id))
        done = self._update_asset(asset.id, status="failed", error_code=code, error=message[:2000],
                                  previews=[], object_key=None)
        log.info("asset %s failed: %s (%s)", asset.id, code, message)
        return _outcome(done)

    # --- AssetWorkflow ----------------------------------------------------------------------------

    @activity.defn(name="fetch_asset_source")
    async def fetch_asset_source(self, inp: AssetWorkflowInput) -> AssetOutcome:
        """Download the asset's source URL into storage (SSRF-guarded, size- and time-capped)."""
        from media.fetch import FetchError, fetch_to_file

        asset = await asyncio.to_thread(self._load_asset, inp.asset_id)
        if asset.status in a.TERMINAL_ASSET_STATUSES:
            return _outcome(asset)
        if asset.object_key and await asyncio.to_thread(self.storage.stat, asset.object_key):
            return AssetOutcome(asset_id=asset.id, status="fetched")  # an earlier attempt stored it
        url = inp.fetch_url or asset.source_url or ""
        with self._scratch() as scratch:
            try:
                result = await fetch_to_file(
                    url, scratch / "source", max_bytes=self.settings.max_asset_bytes,
                    timeout_seconds=self.settings.media_fetch_timeout_seconds,
                    allow_private=self.settings.allow_private_networks,
                    heartbeat=lambda done, total: activity.heartbeat(done),
                )
            except FetchError as exc:
                final = activity.info().attempt >= 5
                if exc.retryable and not final:
                    raise  # Temporal retries with backoff (MEDIA_ACTIVITY in workflows/media.py)
                return await asyncio.to_thread(self._fail_asset, asset, f"fetch_{exc.code}", exc.message)
            filename = a.safe_filename(result.filename or asset.original_filename)
            key = a.original_key(asset.workspace_id, asset.id, a.file_ext(filename, result.content_type))
            await asyncio.to_thread(self.storage.put_file, key, Path(result.path),
                                    result.content_type or "application/octet-stream")
        await asyncio.to_thread(
            self._update_asset, asset.id, object_key=key, size=result.size, sha256=result.sha256,
            claimed_mime=result.content_type, original_filename=filename,
        )
        return AssetOutcome(asset_id=asset.id, status="fetched")

    @activity.defn(name="process_asset")
    def process_asset(self, inp: AssetWorkflowInput) -> AssetOutcome:
        """Sniff the real type, probe, make previews; the asset becomes ready or failed."""
        from media import pipeline

        asset = self._load_asset(inp.asset_id)
        if asset.status in a.TERMINAL_ASSET_STATUSES:
            return _outcome(asset)
        if not asset.object_key or self.storage.stat(asset.object_key) is None:
            return self._fail_asset(asset, "empty_file", "the asset has no stored content")
        with self._scratch() as scratch:
            path = self._local_copy(asset.object_key, scratch)
            try:
                info = pipeline.inspect(path, claimed_mime=asset.claimed_mime,
                                        max_pixels=self.settings.max_image_pixels, tools=self.tools)
                activity.heartbeat("probed")
                previews = pipeline.previews(path, info, scratch / "previews", tools=self.tools)
            except MediaError as exc:
                return self._fail_asset(asset, exc.code, exc.message)
            stored = []
            for p in previews:
                name = f"{p.role}{Path(p.path).suffix or '.jpg'}"
                self.storage.put_file(a.preview_key(asset.workspace_id, asset.id, name), Path(p.path), p.mime)
                stored.append({"role": p.role, "name": name, "mime": p.mime, "width": p.width, "height": p.height})
            sha = asset.sha256 or _sha256(path)
        filename = asset.original_filename
        if "." not in filename:
            filename = f"{filename}.{info.ext}"
        done = self._update_asset(
            asset.id, status="ready", mime=info.mime, kind=info.kind, size=info.size, sha256=sha,
            width=info.width, height=info.height, duration=info.duration, meta=info.as_dict(),
            previews=stored, original_filename=filename, error_code=None, error=None,
        )
        return _outcome(done)

    @activity.defn(name="mark_asset_failed")
    def mark_asset_failed(self, outcome: AssetOutcome) -> AssetOutcome:
        asset = self._load_asset(outcome.asset_id)
        if asset.status in a.TERMINAL_ASSET_STATUSES:
            return _outcome(asset)
        return self._fail_asset(asset, outcome.error_code or "processing_failed", outcome.error or "processing failed")

    # --- RenditionWorkflow ------------------------------------------------------------------------

    @activity.defn(name="make_rendition")
    def make_rendition(self, inp: RenditionInput) -> RenditionOutcome:
        """The asset made to fit one network's profile, once: a cached row is returned as is."""
        from media import pipeline
        from providers.media_profiles import profile_for

        profile = profile_for(inp.provider, inp.post_type)
        key = a.rendition_profile_key(profile.key, inp.fit)
        asset = self._load_asset(inp.asset_id)
        if (found := self._find_rendition(asset.id, key)) is not None:
            return RenditionOutcome(rendition_id=found.id)
        if asset.status != "ready" or not asset.object_key:
            return RenditionOutcome(error_code="media_unavailable", error=f"asset {asset.id} is {asset.status}")
        info = MediaInfo(**asset.meta)
        try:
            plan = pipeline.plan(info, profile, inp.fit)
        except MediaError as exc:
            return RenditionOutcome(error_code=exc.code, error=exc.message)
        row = AssetRendition(
            id=new_id("rnd"), workspace_id=asset.workspace_id, asset_id=asset.id, profile_key=key,
            passthrough=plan.passthrough, object_key=asset.object_key, mime=asset.mime, size=asset.size or 0,
            width=asset.width, height=asset.height, duration=asset.duration, actions=[],
        )
        if not plan.passthrough:
            with self._scratch() as scratch:
                src = self._local_copy(asset.object_key, scratch)
                out = scratch / f"rendition.{plan.target_mime.split('/')[-1] if plan.target_mime else info.ext}"

                def progress(fraction: float) -> None:
                    if activity.is_cancelled():
                        raise asyncio.CancelledError("rendition cancelled")
                    activity.heartbeat(round(fraction, 3))

                try:
                    result = pipeline.render(src, info, profile, inp.fit, out, tools=self.tools, progress=progress)
                except MediaError as exc:
                    return RenditionOutcome(error_code=exc.code, error=exc.message)
                row.object_key = a.rendition_key(asset.workspace_id, asset.id, key, result.ext)
                self.storage.put_file(row.object_key, Path(result.path), result.mime)
                if result.cover_path:
                    row.cover_key = a.rendition_key(asset.workspace_id, asset.id, key + "-cover", "jpg")
                    self.storage.put_file(row.cover_key, Path(result.cover_path), "image/jpeg")
                row.mime, row.size, row.width, row.height, row.duration = (
                    result.mime, result.size, result.width, result.height, result.duration)
                row.actions = list(result.actions)
        try:
            with self.db.write_session() as s:
                s.add(row)
                s.commit()
        except IntegrityError:
            # Another worker made the same rendition first (same deterministic key, same bytes).
            found = self._find_rendition(asset.id, key)
            assert found is not None
            return RenditionOutcome(rendition_id=found.id)
        return RenditionOutcome(rendition_id=row.id)

    def _find_rendition(self, asset_id: str, key: str) -> AssetRendition | None:
        with self.db.session() as s:
            row = s.exec(select(AssetRendition).where(AssetRendition.asset_id == asset_id,
                                                      AssetRendition.profile_key == key)).first()
            if row is not None:
                s.expunge(row)
            return row

    # --- a post's media (main queue) --------------------------------------------------------------

    @activity.defn(name="prepare_media")
    async def prepare_media(self, inp: PrepareMediaInput) -> PrepareMediaResult:
        """Resolve every media item of the post to a ready asset and its rendition for the post's
        network; store both on the post so the publish call only reads a file."""
        post = await asyncio.to_thread(self._load_post, inp.post_id)
        if not post.media:
            return PrepareMediaResult(files=0, bytes=0)
        items = [dict(m) for m in post.media]
        asset_ids = await asyncio.to_thread(self._resolve_assets, post, items)
        beat = asyncio.create_task(_heartbeat_forever())
        try:
            outcomes = await asyncio.gather(*(self._ensure_asset(aid, url) for aid, url in asset_ids))
            for index, outcome in enumerate(outcomes):
                if outcome.status != "ready":
                    code = "media_unavailable" if (outcome.error_code or "").startswith("fetch_") else "media_invalid"
                    raise not_publishable(code, f"assets[{index}]: {outcome.error or outcome.status}")
            fit = (post.settings or {}).get("mediaFit")
            renditions = await asyncio.gather(*(
                self._ensure_rendition(RenditionInput(
                    asset_id=aid, provider=post.provider, post_type=post.post_type, fit=fit,
                    media_task_queue=self.settings.media_task_queue))
                for aid, _ in asset_ids))
        finally:
            beat.cancel()
        for index, r in enumerate(renditions):
            if r.rendition_id is None:
                code = r.error_code if r.error_code in ("media_unavailable",) else "media_unfit"
                raise not_publishable(code, f"assets[{index}]: {r.error}")
        total = await asyncio.to_thread(self._store_prepared, post.id, items,
                                        [aid for aid, _ in asset_ids], [r.rendition_id for r in renditions])
        return PrepareMediaResult(files=len(items), bytes=total)

    def _load_post(self, post_id: str) -> Post:
        with self.db.session() as s:
            post = s.get(Post, post_id)
            if post is None:
                raise not_publishable("post_missing", f"post {post_id} does not exist")
            s.expunge(post)
            return post

    def _resolve_assets(self, post: Post, items: list[dict]) -> list[tuple[str, str | None]]:
        """(asset id, URL to fetch or None) per item; creates URL assets and PostAsset links."""
        for _ in range(3):
            try:
                return self._resolve_assets_once(post, items)
            except IntegrityError:
                continue  # a concurrent post created the same URL asset first: use theirs
        return self._resolve_assets_once(post, items)

    def _resolve_assets_once(self, post: Post, items: list[dict]) -> list[tuple[str, str | None]]:
        out: list[tuple[str, str | None]] = []
        with self.db.write_session() as s:
            for index, item in enumerate(items):
                url = item.get("url") or ""
                ours = a.parse_delivery_url(self.settings, url)
                if item.get("assetId") or ours:
                    asset_id = item.get("assetId") or ours[0]  # type: ignore[index]
                    asset = s.get(Asset, asset_id)
                    if (asset is None or asset.workspace_id != post.workspace_id or asset.status == "deleted"
                            or (ours and asset.delivery_token != ours[1])):
                        raise not_publishable("media_unavailable", f"assets[{index}]: asset not found")
                    out.append((asset.id, None))
                else:
                    asset_id = a.url_asset_id(post.workspace_id, url)
                    asset = s.get(Asset, asset_id)
                    if asset is None:
                        asset = a.new_url_asset(self.settings, post.workspace_id, url, item.get("mime"),
                                                asset_id=asset_id)
                        s.add(asset)
                    elif asset.status == "failed":
                        # A new attempt (a retried post, a later post): the source may work now.
                        asset.status, asset.error_code, asset.error = "processing", None, None
                        s.add(asset)
                    out.append((asset_id, url))
                if s.get(PostAsset, (post.id, asset_id)) is None:
                    s.add(PostAsset(post_id=post.id, asset_id=asset_id, workspace_id=post.workspace_id))
                s.flush()
            s.commit()
        return out

    async def _ensure_asset(self, asset_id: str, fetch_url: str | None) -> AssetOutcome:
        asset = await asyncio.to_thread(self._load_asset, asset_id)
        if asset.status in a.TERMINAL_ASSET_STATUSES:
            return _outcome(asset)
        await run_asset_workflow(self.client, self.settings, asset_id,
                                 fetch_url if asset.origin == "url" else None)
        return _outcome(await asyncio.to_thread(self._load_asset, asset_id))

    async def _ensure_rendition(self, inp: RenditionInput) -> RenditionOutcome:
        from providers.media_profiles import profile_for
        from workflows.media import RenditionWorkflow, rendition_workflow_id

        key = a.rendition_profile_key(profile_for(inp.provider, inp.post_type).key, inp.fit)
        found = await asyncio.to_thread(self._find_rendition, inp.asset_id, key)
        if found is not None:
            return RenditionOutcome(rendition_id=found.id)
        assert self.client is not None
        handle = await self.client.start_workflow(
            RenditionWorkflow.run, inp, id=rendition_workflow_id(inp.asset_id, a.safe_filename(key)),
            task_queue=self.settings.task_queue, id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING)
        try:
            return await handle.result()
        except WorkflowFailureError as exc:
            return RenditionOutcome(error_code="media_unavailable", error=f"rendition failed: {exc.cause or exc}")

    def _store_prepared(self, post_id: str, items: list[dict], asset_ids: list[str], rendition_ids: list[str]) -> int:
        total = 0
        with self.db.write_session() as s:
            for item, asset_id, rendition_id in zip(items, asset_ids, rendition_ids):
                asset, rendition = s.get(Asset, asset_id), s.get(AssetRendition, rendition_id)
                assert asset is not None and rendition is not None
                stem = Path(asset.original_filename).stem or "media"
                ext = rendition.object_key.rsplit(".", 1)[-1] if not rendition.passthrough else a.file_ext(asset.original_filename, asset.mime)
                item.pop("local", None)
                item["assetId"] = asset_id
                item["rendition"] = {
                    "id": rendition.id, "objectKey": rendition.object_key, "mime": rendition.mime,
                    "size": rendition.size, "kind": asset.kind, "filename": f"{stem}.{ext}",
                    "width": rendition.width, "height": rendition.height, "duration": rendition.duration,
                    "sha256": asset.sha256 if rendition.passthrough else None, "actions": rendition.actions,
                }
                total += rendition.size
            post = s.get(Post, post_id)
            if post is not None:
                post.media = items
                post.updated_at = _now()
                s.add(post)
            s.commit()
        return total


async def _heartbeat_forever() -> None:
    while True:
        activity.heartbeat()
        await asyncio.sleep(HEARTBEAT_SECONDS)


async def run_asset_workflow(client: Client | None, settings: Settings, asset_id: str,
                             fetch_url: str | None, wait: bool = True) -> None:
    """Start (or join) the asset's AssetWorkflow; with ``wait``, until it has finished."""
    from workflows.media import AssetWorkflow, asset_workflow_id

    assert client is not None, "media activities that start workflows need a Temporal client"
    handle = await client.start_workflow(
        AssetWorkflow.run,
        AssetWorkflowInput(asset_id=asset_id, fetch_url=fetch_url, media_task_queue=settings.media_task_queue),
        id=asset_workflow_id(asset_id), task_queue=settings.task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )
    if wait:
        try:
            await handle.result()
        except WorkflowFailureError:
            pass  # the workflow marked the asset failed; the caller reads the row


# --- purge (called by the safety-net sweep) -------------------------------------------------------


def purge_due_assets(settings: Settings, db: Database, now: datetime) -> PurgeResult:
    """Delete the blobs of assets whose purge time has passed, unless a post that is not done
    yet uses them (kept until that post is published, failed or canceled)."""
    result = PurgeResult()
    storage = a.storage_for(settings)
    with db.session() as s:
        due = s.exec(select(Asset).where(Asset.purge_at <= now, Asset.status != "deleted").limit(500)).all()
        for asset in due:
            in_use = s.exec(
                select(Post.id).join(PostAsset, PostAsset.post_id == Post.id)
                .where(PostAsset.asset_id == asset.id, Post.status.not_in(TERMINAL_POST_STATUSES))  # type: ignore[attr-defined]
                .limit(1)
            ).first()
            if in_use is not None:
                result.kept_in_use += 1
                continue
            if asset.upload and asset.object_key:
                # A multipart upload initiated and never completed: its parts go too.
                storage.multipart_abort(asset.object_key, asset.upload.get("uploadId", ""))
            storage.delete_prefix(a.asset_prefix(asset.workspace_id, asset.id))
            with db.write_session() as w:
                row = w.get(Asset, asset.id)
                if row is not None:
                    row.status, row.deleted_at, row.updated_at = "deleted", now, now
                    row.object_key, row.previews, row.upload = None, [], None
                    w.add(row)
                    for r in w.exec(select(AssetRendition).where(AssetRendition.asset_id == asset.id)).all():
                        w.delete(r)
                    w.commit()
            result.purged += 1
    return result
