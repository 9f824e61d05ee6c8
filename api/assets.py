"""Taking assets in: rows, stored bytes and the AssetWorkflow that processes them.

Every intake path (base64 upload, multipart, registration, a prepare task's URL) ends in
``start_processing``: the AssetWorkflow sniffs, probes and makes previews, then marks the asset
ready or failed. If the workflow cannot be started (Temporal down), what was stored is removed
again and the caller gets a 503: never a half-taken asset.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import mimetypes
import time
from datetime import datetime, timedelta, timezone

from sqlmodel import Session
from temporalio.client import Client

from activities.media import run_asset_workflow
from api.errors import ApiError
from herald import assets as a
from herald.settings import Settings
from store.models import Asset

# Parts of a multipart upload: S3's rules (5 MiB minimum except the last, 10,000 parts at most),
# applied to local storage too so a client written against one works against the other.
MIN_PART_BYTES = 5 * 1024 * 1024
DEFAULT_PART_BYTES = 8 * 1024 * 1024
MAX_PARTS = 10_000
PART_URL_SECONDS = 900
# An upload initiated and never completed is purged after this long.
ABANDONED_UPLOAD = timedelta(hours=24)


def too_large(settings: Settings, size: int) -> ApiError:
    return ApiError(413, "payload_too_large",
                    f"the asset is {size:,} bytes; the limit is {settings.max_asset_bytes:,}",
                    {"limitBytes": settings.max_asset_bytes, "sizeBytes": size})


def decode_base64(content: str) -> bytes:
    """Standard or URL-safe base64, with or without a ``data:<mime>;base64,`` prefix."""
    if content.startswith("data:") and "," in content:
        content = content.split(",", 1)[1]
    content = "".join(content.split())
    try:
        if "-" in content or "_" in content:
            return base64.urlsafe_b64decode(content + "=" * (-len(content) % 4))
        return base64.b64decode(content + "=" * (-len(content) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(422, "validation_error", "contentBase64 is not valid base64",
                       {"field": "contentBase64"}) from None


def claimed_mime(mime: str | None, filename: str) -> str | None:
    if mime:
        mime = mime.split(";")[0].strip().lower()
        if "/" not in mime or len(mime) > 255:
            raise ApiError(422, "validation_error", f"mime {mime[:60]!r} is not a MIME type", {"field": "mime"})
        return mime
    return mimetypes.guess_type(filename)[0]


async def start_processing(client: Client, settings: Settings, session: Session, asset: Asset,
                           fetch_url: str | None = None) -> None:
    """Start the AssetWorkflow; on failure remove the asset's bytes and row, then re-raise."""
    try:
        await run_asset_workflow(client, settings, asset.id, fetch_url, wait=False)
    except BaseException:
        storage = a.storage_for(settings)
        await asyncio.to_thread(storage.delete_prefix, a.asset_prefix(asset.workspace_id, asset.id))
        session.delete(asset)
        session.commit()
        raise


def purge_time(delete_after: str | None) -> datetime | None:
    from herald.timeparse import parse_iso_datetime

    if not delete_after:
        return None
    try:
        when = parse_iso_datetime(delete_after)
    except ValueError as exc:
        raise ApiError(422, "validation_error", f"deleteAfter: {exc}", {"field": "deleteAfter"}) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when


# --- signed part URLs (local storage: the API accepts the parts itself) --------------------------


def _part_signature(settings: Settings, asset_id: str, upload_id: str, part: int, expires: int) -> str:
    message = f"{asset_id}\n{upload_id}\n{part}\n{expires}".encode()
    return hmac.new(settings.secret_key.encode(), message, hashlib.sha256).hexdigest()


def signed_part_url(settings: Settings, asset_id: str, upload_id: str, part: int) -> str:
    expires = int(time.time()) + PART_URL_SECONDS
    sig = _part_signature(settings, asset_id, upload_id, part, expires)
    return (f"{settings.api_base}/uploads/{asset_id}/parts/{part}"
            f"?uploadId={upload_id}&expires={expires}&signature={sig}")


def check_part_signature(settings: Settings, asset_id: str, upload_id: str, part: int, expires: int,
                         signature: str) -> None:
    expected = _part_signature(settings, asset_id, upload_id, part, expires)
    # compare_digest on bytes: a str with non-ASCII characters would raise instead of failing.
    if not hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace")) or expires < time.time():
        raise ApiError(403, "invalid_signature", "the part URL is invalid or expired; sign the part again")
