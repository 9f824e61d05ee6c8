"""Where Herald keeps asset bytes: local files or an S3 bucket, behind one interface.

    from storage import make_storage
    store = make_storage("local", data_dir=Path(".herald"))
    await asyncio.to_thread(store.put_file, "ws_1/asset_1/original.jpg", path, "image/jpeg")

``storage.base`` holds the interface, the error tree and the rules both backends share;
``storage.local`` and ``storage.s3`` the two backends. ``api/ranges.py`` serves stored objects
over HTTP with byte ranges.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from storage.base import (
    MIN_PART_SIZE,
    InvalidKey,
    InvalidPart,
    InvalidPartList,
    InvalidRange,
    MultipartError,
    ObjectMissing,
    ObjectStat,
    PartTooSmall,
    Storage,
    StorageError,
    StorageUnavailable,
    UploadNotFound,
    check_key,
)
from storage.local import LocalStorage

if TYPE_CHECKING:
    from storage.s3 import S3Storage

__all__ = [
    "MIN_PART_SIZE", "InvalidKey", "InvalidPart", "InvalidPartList", "InvalidRange",
    "LocalStorage", "MultipartError", "ObjectMissing", "ObjectStat", "PartTooSmall",
    "S3Storage", "Storage", "StorageError", "StorageUnavailable", "UploadNotFound", "check_key",
    "make_storage",
]

KINDS = ("local", "s3")


def __getattr__(name: str) -> Any:
    # boto3 takes a noticeable part of a second to import; a local-storage deployment (and every
    # process that only needs the errors) should not pay for it.
    if name == "S3Storage":
        from storage.s3 import S3Storage

        return S3Storage
    raise AttributeError(f"module 'storage' has no attribute {name!r}")


def make_storage(kind: str, *, data_dir: Path, s3_bucket: str | None = None,
                 s3_endpoint_url: str | None = None, s3_region: str | None = None,
                 s3_access_key_id: str | None = None, s3_secret_access_key: str | None = None,
                 s3_prefix: str = "") -> Storage:
    """The storage named by ``kind``: ``local`` keeps files under ``<data_dir>/storage``."""
    if kind == "local":
        return LocalStorage(Path(data_dir) / "storage")
    if kind == "s3":
        if not s3_bucket:
            raise ValueError("storage 's3' needs a bucket (HERALD_S3_BUCKET)")
        from storage.s3 import S3Storage

        return S3Storage(s3_bucket, endpoint_url=s3_endpoint_url or None, region=s3_region or None,
                         access_key_id=s3_access_key_id or None,
                         secret_access_key=s3_secret_access_key or None, prefix=s3_prefix or "")
    raise ValueError(f"unknown storage {kind!r}; expected one of: {', '.join(KINDS)}")
