"""Assets: where their bytes live, their delivery URLs, and how posts and prepare tasks find them.

Shared by the API (uploads, delivery, validation) and the media activities. Object keys are laid
out per workspace and asset so a whole asset can be removed with one prefix delete:

    <workspace>/<asset>/original.<ext>
    <workspace>/<asset>/previews/<name>
    <workspace>/<asset>/renditions/<profile key>.<ext>

A delivery URL is ``<public base>/media/<asset id>/<delivery token>/<filename>``; the token is
random (144 bits), so knowing an asset id alone reveals nothing.
"""

from __future__ import annotations

import hashlib
import mimetypes
import re
import secrets
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import PurePosixPath
from urllib.parse import quote, unquote, urlsplit

from herald.ids import new_id
from herald.settings import Settings
from storage import Storage, make_storage
from store.models import Asset

# Statuses in which an asset's bytes are final (ready) or will never be (failed, deleted).
TERMINAL_ASSET_STATUSES = ("ready", "failed", "deleted")
KINDS = ("image", "video", "audio", "other")

# A URL fetched for a post is shared by every post of the workspace that names it within this
# window (one download, one transcode per network); after it, the URL is fetched afresh, since
# the content behind a URL may change.
URL_ASSET_WINDOW_SECONDS = 24 * 3600


def new_delivery_token() -> str:
    return "dlv_" + secrets.token_urlsafe(18)


def safe_filename(name: str | None, default: str = "file") -> str:
    """A filename that is safe in a URL path segment and a Content-Disposition header."""
    base = PurePosixPath((name or "").replace("\\", "/")).name
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", base).strip("._")[:120]
    return base or default


def file_ext(filename: str | None, mime: str | None) -> str:
    """The file's own extension when it looks like one, else one for its MIME type, else bin."""
    if filename and "." in filename:
        ext = filename.rsplit(".", 1)[1].lower()
        if ext.isalnum() and len(ext) <= 5:
            return ext
    return (mimetypes.guess_extension(mime or "") or ".bin").lstrip(".")


def filename_from_url(url: str) -> str:
    return safe_filename(url.split("?")[0].rstrip("/").rsplit("/", 1)[-1], "media")


def new_asset(settings: Settings, workspace_id: str, filename: str, mime: str | None, origin: str, *,
              asset_id: str | None = None, **fields: object) -> Asset:
    """A new asset row, `processing`, with a fresh delivery token; kind and MIME type are the
    claimed ones until processing sniffs the real ones."""
    major = (mime or "").split("/")[0]
    return Asset(
        id=asset_id or new_id("asset"), workspace_id=workspace_id, storage=settings.storage, origin=origin,
        original_filename=safe_filename(filename), claimed_mime=mime, mime=mime or "application/octet-stream",
        kind=major if major in KINDS else "other", delivery_token=new_delivery_token(), status="processing",
        **fields,
    )


def new_url_asset(settings: Settings, workspace_id: str, url: str, mime: str | None = None, *,
                  asset_id: str | None = None) -> Asset:
    """An asset whose bytes come from ``url`` (fetched by its AssetWorkflow)."""
    return new_asset(settings, workspace_id, filename_from_url(url), mime, "url", asset_id=asset_id,
                     source_url=url, source_url_hash=url_hash(url))


def original_key(workspace_id: str, asset_id: str, ext: str) -> str:
    return f"{workspace_id}/{asset_id}/original.{ext or 'bin'}"


def preview_key(workspace_id: str, asset_id: str, name: str) -> str:
    return f"{workspace_id}/{asset_id}/previews/{name}"


def rendition_key(workspace_id: str, asset_id: str, profile_key: str, ext: str) -> str:
    return f"{workspace_id}/{asset_id}/renditions/{safe_filename(profile_key)}.{ext}"


def asset_prefix(workspace_id: str, asset_id: str) -> str:
    return f"{workspace_id}/{asset_id}/"


def delivery_url(settings: Settings, asset_id: str, token: str, filename: str) -> str:
    return f"{settings.api_base}/media/{asset_id}/{token}/{quote(safe_filename(filename))}"


def rendition_url(settings: Settings, asset_id: str, token: str, rendition_id: str, filename: str) -> str:
    """The public URL of a rendition: what networks that fetch media themselves are given."""
    return f"{settings.api_base}/media/{asset_id}/{token}/renditions/{rendition_id}/{quote(safe_filename(filename))}"


def preview_url(settings: Settings, asset_id: str, token: str, name: str) -> str:
    return f"{settings.api_base}/media/{asset_id}/{token}/previews/{quote(name)}"


_DELIVERY_PATH = re.compile(r"^/media/(asset_[a-z0-9]+)/(dlv_[A-Za-z0-9_-]+)/[^/]+$")


def parse_delivery_url(settings: Settings, url: str) -> tuple[str, str] | None:
    """(asset id, token) when ``url`` is one of this deployment's delivery URLs, else None.
    Posts that name an uploaded asset by its publicUrl use the stored asset directly instead of
    downloading it from ourselves."""
    try:
        parts, base = urlsplit(url), urlsplit(settings.api_base)
    except ValueError:
        return None
    if (parts.scheme, parts.netloc.lower()) != (base.scheme, base.netloc.lower()):
        return None
    path = unquote(parts.path)
    prefix = base.path.rstrip("/")
    if prefix:
        if not path.startswith(prefix + "/"):
            return None
        path = path[len(prefix):]
    m = _DELIVERY_PATH.match(path)
    return (m.group(1), m.group(2)) if m else None


def url_asset_id(workspace_id: str, url: str, now: datetime | None = None) -> str:
    """The asset id a URL gets in a workspace: the same for every post naming that URL within
    one window, so concurrent posts share one download (and one AssetWorkflow)."""
    now = now or datetime.now(timezone.utc)
    window = int(now.timestamp() // URL_ASSET_WINDOW_SECONDS)
    digest = hashlib.sha256(f"{workspace_id}\n{window}\n{url}".encode()).hexdigest()
    return "asset_u" + digest[:19]


def url_hash(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()


def rendition_profile_key(profile_key: str, fit: str | None) -> str:
    return f"{profile_key}+{fit}" if fit else profile_key


@lru_cache(maxsize=8)
def _storage(kind: str, data_dir: str, bucket: str | None, endpoint: str | None, region: str | None,
             key_id: str | None, secret: str | None, prefix: str) -> Storage:
    from pathlib import Path

    return make_storage(kind, data_dir=Path(data_dir), s3_bucket=bucket, s3_endpoint_url=endpoint,
                        s3_region=region, s3_access_key_id=key_id, s3_secret_access_key=secret,
                        s3_prefix=prefix)


def storage_for(settings: Settings) -> Storage:
    """The configured storage (one instance per configuration; boto3 clients are thread-safe)."""
    return _storage(settings.storage, str(settings.data_dir.resolve()), settings.s3_bucket,
                    settings.s3_endpoint_url, settings.s3_region, settings.s3_access_key_id,
                    settings.s3_secret_access_key, settings.s3_prefix)
