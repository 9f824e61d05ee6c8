"""The storage interface every backend implements, its errors, and the rules both backends share.

Errors (all carry a stable ``code`` and a ``message`` safe to show an API caller: it may name the
caller's own key or part numbers, never a bucket, endpoint or credential)::

    StorageError            storage_error
    ├── InvalidKey          invalid_key          not a plain relative key or prefix
    ├── ObjectMissing       object_missing
    ├── InvalidRange        invalid_range        a byte range starting past the end
    ├── StorageUnavailable  storage_unavailable  backend unreachable, or it refused us
    └── MultipartError      multipart_error
        ├── UploadNotFound  upload_not_found     unknown, completed or aborted upload id
        ├── InvalidPartList invalid_part_list    empty, out of order, gaps, bad numbers
        ├── InvalidPart     invalid_part         a part never uploaded, or its ETag differs
        └── PartTooSmall    part_too_small       a part before the last under 5 MiB

The interface is synchronous on purpose: boto3 is, and so is file I/O. Async callers wrap each
call in ``asyncio.to_thread`` (api/ranges.py streams through a thread the same way).
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Iterator, Literal

# S3's own multipart limits (https://docs.aws.amazon.com/AmazonS3/latest/userguide/qfacts.html):
# part numbers 1..10,000 and every part but the last at least 5 MiB. Local storage enforces the
# same numbers so an upload that works against one backend works against the other.
MIN_PART_SIZE = 5 * 1024 * 1024
MAX_PART_NUMBER = 10_000
# S3 keys are at most 1,024 bytes of UTF-8. A segment becomes a file name in local storage,
# whose file systems stop at 255 bytes; local storage adds a few bytes for its metadata file.
MAX_KEY_BYTES = 1024
MAX_SEGMENT_BYTES = 200
# SigV4 presigned URLs live at most seven days.
MAX_PRESIGN_SECONDS = 7 * 24 * 3600

DEFAULT_CHUNK_SIZE = 65536


class StorageError(Exception):
    code = "storage_error"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class InvalidKey(StorageError):
    code = "invalid_key"


class ObjectMissing(StorageError):
    code = "object_missing"

    def __init__(self, key: str):
        super().__init__(f"no stored object {_show(key)}")
        self.key = key


class InvalidRange(StorageError):
    code = "invalid_range"


class StorageUnavailable(StorageError):
    code = "storage_unavailable"


class MultipartError(StorageError):
    code = "multipart_error"


class UploadNotFound(MultipartError):
    code = "upload_not_found"

    def __init__(self, upload_id: str):
        super().__init__(f"no multipart upload {_show(upload_id)} in progress for this key "
                         "(unknown, already completed or aborted)")
        self.upload_id = upload_id


class InvalidPartList(MultipartError):
    code = "invalid_part_list"


class InvalidPart(MultipartError):
    code = "invalid_part"


class PartTooSmall(MultipartError):
    code = "part_too_small"


def _show(text: str, limit: int = 120) -> str:
    """A caller-supplied string as it may appear in a message: repr'd (no raw control
    characters reach a log line or a JSON body) and cut short."""
    return repr(text if len(text) <= limit else text[:limit] + "…")


@dataclass(frozen=True)
class ObjectStat:
    size: int
    etag: str  # quoted, as S3 sends it: "<md5 hex>" or "<md5 of part md5s>-<parts>"
    mime: str
    last_modified: datetime  # timezone-aware UTC, whole seconds (HTTP dates have no finer unit)


# One key segment: no leading dot (rules out "." and "..", and keeps local storage's own
# bookkeeping files, which all start with a dot, out of every key's reach).
_BAD_CHARS = re.compile(r"[\x00-\x1f\x7f\\]")


def check_key(key: str, *, what: str = "key") -> str:
    """Refuse anything but a plain relative path: ``ws/asset/original.jpg``.

    Both backends apply the same rule so a key accepted by one is accepted by the other; for
    local storage it is also what keeps a key inside the root (no ``..``, no absolute path, no
    backslash that some tool later reads as a separator, no NUL that truncates a C path)."""
    if not isinstance(key, str) or not key:
        raise InvalidKey(f"{what} must be a non-empty string")
    try:
        encoded = key.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates, e.g. from a mis-decoded file name
        raise InvalidKey(f"{what} {_show(key)} is not valid UTF-8") from None
    if len(encoded) > MAX_KEY_BYTES:
        raise InvalidKey(f"{what} is longer than {MAX_KEY_BYTES} bytes")
    if _BAD_CHARS.search(key):
        raise InvalidKey(f"{what} {_show(key)} contains a backslash or a control character")
    if key.startswith("/"):
        raise InvalidKey(f"{what} {_show(key)} must be relative (no leading '/')")
    segments = key.split("/")
    if what == "prefix" and segments[-1] == "":
        segments = segments[:-1]  # "ws/asset/" names everything under a folder
    for segment in segments:
        if segment == "":
            raise InvalidKey(f"{what} {_show(key)} has an empty path segment")
        if segment.startswith("."):
            raise InvalidKey(f"{what} {_show(key)} has a segment starting with '.'")
        if len(segment.encode("utf-8")) > MAX_SEGMENT_BYTES:
            raise InvalidKey(f"{what} {_show(key)} has a segment longer than "
                             f"{MAX_SEGMENT_BYTES} bytes")
    return key


def check_part_number(part_number: int) -> int:
    if isinstance(part_number, bool) or not isinstance(part_number, int) \
            or not 1 <= part_number <= MAX_PART_NUMBER:
        raise InvalidPartList(f"part numbers run from 1 to {MAX_PART_NUMBER}, got {part_number!r}")
    return part_number


def check_range(start: int, end_inclusive: int) -> None:
    if start < 0 or end_inclusive < start:
        raise ValueError(f"bad byte range {start}-{end_inclusive}")


def normalize_etag(etag: str) -> str:
    """ETags compare without their quotes and case (S3 accepts them either way)."""
    return etag.strip().strip('"').lower()


def check_completion(parts: list[tuple[int, str]],
                     uploaded: dict[int, dict[str, int]]) -> None:
    """The rules of CompleteMultipartUpload, checked the same way for both backends.

    ``uploaded`` maps part number → {normalized etag: size} for what the backend holds (local
    storage may briefly hold two versions of a part uploaded twice at once; the caller's ETag
    picks one, as S3's last-writer-wins does).

    One rule is stricter than S3: parts must be numbered 1..N with no gap. S3 would assemble
    parts 1 and 3 into an object silently missing part 2; Herald always numbers parts from 1,
    so a gap can only mean a lost part."""
    if not parts:
        raise InvalidPartList("the part list is empty")
    for index, item in enumerate(parts):
        if not (isinstance(item, (tuple, list)) and len(item) == 2 and isinstance(item[1], str)):
            raise InvalidPartList(f"part list entry {index + 1} is not a (part number, etag) pair")
        number = check_part_number(item[0])
        if number != index + 1:
            previous = f"after part {parts[index - 1][0]}" if index else "first"
            raise InvalidPartList(f"parts must be listed as 1..N in ascending order without gaps; "
                                  f"got part {number} {previous}")
    sizes = []
    for number, etag in parts:
        versions = uploaded.get(number)
        if not versions:
            raise InvalidPart(f"part {number} was never uploaded")
        size = versions.get(normalize_etag(etag))
        if size is None:
            raise InvalidPart(f"the ETag given for part {number} does not match the uploaded part")
        sizes.append(size)
    # Sizes last: a missing or wrong part is the more useful thing to hear about first.
    for number, size in enumerate(sizes[:-1], start=1):
        if size < MIN_PART_SIZE:
            raise PartTooSmall(f"part {number} is {size} bytes; every part but the last must be "
                               f"at least {MIN_PART_SIZE} bytes (5 MiB)")


class Storage(ABC):
    """Objects under relative keys. Every method may raise StorageError subclasses; keys that
    are not plain relative paths raise InvalidKey (see ``check_key``)."""

    name: Literal["local", "s3"]

    @abstractmethod
    def put_file(self, key: str, path: Path, mime: str) -> ObjectStat:
        """Store the file at ``path`` (streamed, never read whole) under ``key``."""

    @abstractmethod
    def put_bytes(self, key: str, data: bytes, mime: str) -> ObjectStat: ...

    @abstractmethod
    def download_to(self, key: str, path: Path) -> None:
        """Write the object to ``path`` through a temporary file renamed into place, so ``path``
        is never seen half-written (and is left as it was when the download fails)."""

    @abstractmethod
    def local_path(self, key: str) -> Path | None:
        """Where the object's own file is when objects live on this machine's disk (whether or
        not it exists: check, or open and handle FileNotFoundError), or None when they do not
        (then use ``download_to``). Never write to it: writes go through put_*."""

    @abstractmethod
    def stat(self, key: str) -> ObjectStat | None: ...

    @abstractmethod
    def iter_range(self, key: str, start: int, end_inclusive: int,
                   chunk_size: int = DEFAULT_CHUNK_SIZE) -> Iterator[bytes]:
        """Bytes ``start..end_inclusive`` in chunks of at most ``chunk_size``. An end past the
        object is clamped to its last byte (as HTTP and S3 do); a start past it raises
        InvalidRange. Close the iterator when stopping early: it holds a file or connection."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove the object; removing a missing object is not an error."""

    @abstractmethod
    def delete_prefix(self, prefix: str) -> int:
        """Remove every object whose key starts with ``prefix`` (a string prefix, as in S3:
        ``ws1/a`` covers ``ws1/a1/x`` and ``ws1/ab``) and abort the multipart uploads in progress
        under it, so deleting an asset leaves no orphaned parts. Returns the objects removed."""

    @abstractmethod
    def multipart_start(self, key: str, mime: str) -> str: ...

    @abstractmethod
    def multipart_part_url(self, key: str, upload_id: str, part_number: int,
                           expires_seconds: int) -> str | None:
        """A URL the client PUTs one part to directly, or None when the API must receive the
        part itself (``multipart_put_part``)."""

    @abstractmethod
    def multipart_put_part(self, key: str, upload_id: str, part_number: int, data: bytes) -> str:
        """Store one part; returns its quoted ETag (the MD5 of the part, as S3 computes it).
        Uploading a part number again replaces it."""

    @abstractmethod
    def multipart_complete(self, key: str, upload_id: str,
                           parts: list[tuple[int, str]]) -> ObjectStat:
        """Assemble the listed parts into the object (see ``check_completion`` for the rules).
        A refused part list leaves the upload in progress, so the client can fix and retry."""

    @abstractmethod
    def multipart_abort(self, key: str, upload_id: str) -> None:
        """Drop an upload and its parts; aborting an unknown upload is not an error."""
