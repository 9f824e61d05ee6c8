"""Objects as files under one root directory.

Layout under the root::

    <key>                          the object itself (``local_path`` hands this file out)
    <dir>/.<name>.meta.json        its MIME type and ETag, written after the object
    .multipart/<upload id>/        one in-progress upload: upload.json and <nnnnn>-<md5>.part

Every name that starts with a dot is ours: ``check_key`` refuses dot segments, so no key can
reach a metadata file, a temporary file or an upload.

Writes go to a temporary file in the target's directory and are renamed into place, so readers
see the old object or the new one, never half of one; a reader that already opened the old
file keeps reading it whole.
"""

from __future__ import annotations

import hashlib
import json
import mimetypes
import os
import re
import secrets
import shutil
import stat as stat_module
import tempfile
from contextlib import contextmanager, suppress
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Callable, Iterator, TypeVar

from storage.base import (
    DEFAULT_CHUNK_SIZE,
    InvalidRange,
    ObjectMissing,
    ObjectStat,
    Storage,
    StorageError,
    UploadNotFound,
    check_completion,
    check_key,
    check_part_number,
    check_range,
    normalize_etag,
)

T = TypeVar("T")

_COPY_CHUNK = 1024 * 1024
_UPLOADS_DIR = ".multipart"
_UPLOAD_ID = re.compile(r"[0-9a-f]{32}")
_PART_FILE = re.compile(r"(\d{5})-([0-9a-f]{32})\.part")


def _md5():  # noqa: ANN202
    # MD5 only because S3 ETags are MD5s; usedforsecurity=False keeps FIPS-mode Pythons happy.
    return hashlib.md5(usedforsecurity=False)


@contextmanager
def _os_errors() -> Iterator[None]:
    """Disk trouble becomes a StorageError. OSError's str() carries the full path, so only the
    strerror goes into the message; the path stays in the exception chain for the log."""
    try:
        yield
    except (FileNotFoundError, StorageError):
        raise
    except OSError as exc:
        raise StorageError(f"local storage failed: {exc.strerror or type(exc).__name__}") from exc


def _fsync_dir(path: Path) -> None:
    # Without this a crash right after the rename can lose the new directory entry.
    with suppress(OSError):
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _atomic_write(target: Path, fill: Callable[[IO[bytes]], T], *, durable: bool = True) -> T:
    """Write through a temporary file next to ``target`` and rename it into place."""
    for attempt in range(3):
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".part", dir=target.parent)
            break
        except FileNotFoundError:
            # A concurrent delete pruned the (then empty) directory between mkdir and mkstemp.
            if attempt == 2:
                raise
    try:
        with os.fdopen(fd, "wb") as out:
            result = fill(out)
            if durable:
                out.flush()
                os.fsync(out.fileno())
        os.replace(tmp, target)
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    if durable:
        _fsync_dir(target.parent)
    return result


def _meta_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.meta.json")


class LocalStorage(Storage):
    name = "local"

    def __init__(self, root: Path):
        # absolute(), not resolve(): a root reached through a symlink (a mounted volume) is fine.
        self.root = Path(root).absolute()
        self.root.mkdir(parents=True, exist_ok=True)
        self._uploads = self.root / _UPLOADS_DIR

    def __repr__(self) -> str:
        return f"LocalStorage({str(self.root)!r})"

    # --- paths -----------------------------------------------------------------------------

    def _path(self, key: str) -> Path:
        check_key(key)
        path = self.root.joinpath(*key.split("/"))
        # check_key already rules out every escape; this second, purely lexical look guards the
        # rule against a future edit of check_key.
        if os.path.commonpath([self.root, os.path.normpath(path)]) != str(self.root):
            raise StorageError("key escapes the storage root")
        return path

    def _prune(self, directory: Path) -> None:
        """Remove directories left empty, up to (not including) the root: S3 has no folders,
        so a deleted asset should leave nothing behind here either."""
        while directory != self.root and self.root in directory.parents:
            try:
                directory.rmdir()
            except OSError:
                return
            directory = directory.parent

    # --- objects ---------------------------------------------------------------------------

    def _write_meta(self, path: Path, etag: str, mime: str) -> ObjectStat:
        st = path.stat()
        meta = {"etag": etag, "mime": mime, "size": st.st_size, "mtime_ns": st.st_mtime_ns}
        # Not fsynced: a lost or stale metadata file is detected (size and mtime) and replaced by
        # a derived ETag, so it costs a cache miss, never wrong bytes.
        _atomic_write(_meta_path(path), lambda out: out.write(json.dumps(meta).encode()),
                      durable=False)
        return self._stat_of(st, meta)

    @staticmethod
    def _stat_of(st: os.stat_result, meta: dict) -> ObjectStat:
        modified = datetime.fromtimestamp(int(st.st_mtime), timezone.utc)
        return ObjectStat(size=st.st_size, etag=meta["etag"], mime=meta["mime"],
                          last_modified=modified)

    def _stat_path(self, path: Path) -> ObjectStat | None:
        try:
            st = path.stat()
        except (FileNotFoundError, NotADirectoryError):
            return None
        if not stat_module.S_ISREG(st.st_mode):
            return None  # a "folder" of other keys is not an object
        meta = None
        with suppress(OSError, ValueError):
            meta = json.loads(_meta_path(path).read_bytes())
        if not (isinstance(meta, dict) and meta.get("size") == st.st_size
                and meta.get("mtime_ns") == st.st_mtime_ns
                and isinstance(meta.get("etag"), str) and isinstance(meta.get("mime"), str)):
            # Written by something other than us, or the metadata write was lost: derive an ETag
            # that still changes whenever the file does.
            meta = {"etag": f'"{st.st_size:x}-{st.st_mtime_ns:x}"',
                    "mime": mimetypes.guess_type(path.name)[0] or "application/octet-stream"}
        return self._stat_of(st, meta)

    def put_file(self, key: str, path: Path, mime: str) -> ObjectStat:
        target = self._path(key)

        def copy(out: IO[bytes]) -> str:
            digest = _md5()
            with open(path, "rb") as src:
                while chunk := src.read(_COPY_CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
            return digest.hexdigest()

        with _os_errors():
            md5 = _atomic_write(target, copy)
            return self._write_meta(target, f'"{md5}"', mime)

    def put_bytes(self, key: str, data: bytes, mime: str) -> ObjectStat:
        target = self._path(key)
        with _os_errors():
            _atomic_write(target, lambda out: out.write(data))
            return self._write_meta(target, f'"{_md5_hex(data)}"', mime)

    def download_to(self, key: str, path: Path) -> None:
        source = self._path(key)
        with _os_errors():
            try:
                src = open(source, "rb")
            except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
                raise ObjectMissing(key) from None
            with src:
                _atomic_write(Path(path), lambda out: shutil.copyfileobj(src, out, _COPY_CHUNK))

    def local_path(self, key: str) -> Path | None:
        return self._path(key)

    def stat(self, key: str) -> ObjectStat | None:
        return self._stat_path(self._path(key))

    def iter_range(self, key: str, start: int, end_inclusive: int,
                   chunk_size: int = DEFAULT_CHUNK_SIZE) -> Iterator[bytes]:
        check_range(start, end_inclusive)
        if chunk_size < 1:
            raise ValueError("chunk_size must be positive")
        path = self._path(key)
        # Opened now, not on the first next(): a missing object or a bad range fails at the
        # call, before a caller has committed to a response.
        try:
            src = open(path, "rb")
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise ObjectMissing(key) from None
        size = os.fstat(src.fileno()).st_size
        if start >= size:
            src.close()
            raise InvalidRange(f"range start {start} is past the end of the object ({size} bytes)")
        return _read_chunks(src, start, min(end_inclusive, size - 1), chunk_size)

    def delete(self, key: str) -> None:
        path = self._path(key)
        with _os_errors():
            for victim in (path, _meta_path(path)):
                # IsADirectoryError: the key names a "folder" of other keys, not an object.
                with suppress(FileNotFoundError, NotADirectoryError, IsADirectoryError):
                    victim.unlink()
            self._prune(path.parent)

    def delete_prefix(self, prefix: str) -> int:
        check_key(prefix, what="prefix")
        folder, _, name_start = prefix.rpartition("/")
        parent = self.root.joinpath(*folder.split("/")) if folder else self.root
        removed = 0
        with _os_errors():
            self._abort_uploads_under(prefix)
            try:
                entries = list(os.scandir(parent))
            except (FileNotFoundError, NotADirectoryError):
                entries = []
            for entry in entries:
                if entry.name.startswith(".") or not entry.name.startswith(name_start):
                    continue
                # follow_symlinks=False throughout: deleting must never walk out of the root.
                if entry.is_dir(follow_symlinks=False):
                    for _, _, files in os.walk(entry.path):
                        removed += sum(1 for name in files if not name.startswith("."))
                    shutil.rmtree(entry.path)
                else:
                    Path(entry.path).unlink()
                    with suppress(FileNotFoundError):
                        _meta_path(Path(entry.path)).unlink()
                    removed += 1
            self._prune(parent)
        return removed

    # --- multipart -------------------------------------------------------------------------

    def _upload_dir(self, key: str, upload_id: str) -> Path:
        """The upload's directory, or UploadNotFound: for an id that is not ours (which also
        keeps a caller-supplied id from naming any other path) or that belongs to another key
        (S3 answers NoSuchUpload then too)."""
        check_key(key)
        if not isinstance(upload_id, str) or not _UPLOAD_ID.fullmatch(upload_id):
            raise UploadNotFound(str(upload_id))
        directory = self._uploads / upload_id
        try:
            info = json.loads((directory / "upload.json").read_bytes())
        except (OSError, ValueError):
            raise UploadNotFound(upload_id) from None
        if info.get("key") != key:
            raise UploadNotFound(upload_id)
        return directory

    def _abort_uploads_under(self, prefix: str) -> None:
        try:
            uploads = list(os.scandir(self._uploads))
        except FileNotFoundError:
            return
        for entry in uploads:
            try:
                info = json.loads((Path(entry.path) / "upload.json").read_bytes())
            except (OSError, ValueError):
                continue
            if str(info.get("key", "")).startswith(prefix):
                shutil.rmtree(entry.path, ignore_errors=True)

    def multipart_start(self, key: str, mime: str) -> str:
        check_key(key)
        upload_id = secrets.token_hex(16)
        info = {"key": key, "mime": mime, "started": datetime.now(timezone.utc).isoformat()}
        with _os_errors():
            _atomic_write(self._uploads / upload_id / "upload.json",
                          lambda out: out.write(json.dumps(info).encode()))
        return upload_id

    def multipart_part_url(self, key: str, upload_id: str, part_number: int,
                           expires_seconds: int) -> str | None:
        # Checked like S3Storage checks them, so a bad request fails the same way on both.
        check_key(key)
        check_part_number(part_number)
        return None  # nothing to PUT to but the API itself

    def multipart_put_part(self, key: str, upload_id: str, part_number: int, data: bytes) -> str:
        check_part_number(part_number)
        directory = self._upload_dir(key, upload_id)
        md5 = _md5_hex(data)
        name = f"{part_number:05d}-{md5}.part"
        try:
            with _os_errors():
                # The upload may be aborted meanwhile: mkdir in _atomic_write must not recreate it.
                fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=directory)
                try:
                    with os.fdopen(fd, "wb") as out:
                        out.write(data)
                        out.flush()
                        os.fsync(out.fileno())
                    os.replace(tmp, directory / name)
                except BaseException:
                    with suppress(FileNotFoundError):
                        os.unlink(tmp)
                    raise
                # A part number uploaded again replaces the earlier version (as in S3).
                for old in directory.glob(f"{part_number:05d}-*.part"):
                    if old.name != name:
                        with suppress(FileNotFoundError):
                            old.unlink()
        except FileNotFoundError:
            raise UploadNotFound(upload_id) from None
        return f'"{md5}"'

    def _uploaded_parts(self, directory: Path) -> dict[int, dict[str, int]]:
        uploaded: dict[int, dict[str, int]] = {}
        for entry in os.scandir(directory):
            match = _PART_FILE.fullmatch(entry.name)
            if match:
                uploaded.setdefault(int(match[1]), {})[match[2]] = entry.stat().st_size
        return uploaded

    def multipart_complete(self, key: str, upload_id: str,
                           parts: list[tuple[int, str]]) -> ObjectStat:
        directory = self._upload_dir(key, upload_id)
        target = self._path(key)
        try:
            with _os_errors():
                check_completion(parts, self._uploaded_parts(directory))
                mime = self._upload_mime(directory)
                files = [directory / f"{n:05d}-{normalize_etag(etag)}.part" for n, etag in parts]

                def assemble(out: IO[bytes]) -> str:
                    # S3's multipart ETag: the MD5 of the parts' binary MD5s, then -<count>.
                    digests = b""
                    for part in files:
                        with open(part, "rb") as src:
                            shutil.copyfileobj(src, out, _COPY_CHUNK)
                        digests += bytes.fromhex(part.name.split("-", 1)[1][:32])
                    return f'"{_md5_hex(digests)}-{len(files)}"'

                etag = _atomic_write(target, assemble)
                result = self._write_meta(target, etag, mime)
        except FileNotFoundError:
            # Aborted (or completed by a concurrent call) while we were assembling.
            raise UploadNotFound(upload_id) from None
        shutil.rmtree(directory, ignore_errors=True)
        return result

    @staticmethod
    def _upload_mime(directory: Path) -> str:
        info = json.loads((directory / "upload.json").read_bytes())
        return info.get("mime") or "application/octet-stream"

    def multipart_abort(self, key: str, upload_id: str) -> None:
        try:
            directory = self._upload_dir(key, upload_id)
        except UploadNotFound:
            return
        shutil.rmtree(directory, ignore_errors=True)


def _md5_hex(data: bytes) -> str:
    digest = _md5()
    digest.update(data)
    return digest.hexdigest()


def _read_chunks(src: IO[bytes], start: int, end_inclusive: int,
                 chunk_size: int) -> Iterator[bytes]:
    with src:
        src.seek(start)
        remaining = end_inclusive - start + 1
        while remaining > 0:
            chunk = src.read(min(chunk_size, remaining))
            if not chunk:
                # Only a write that bypassed the rename protocol can shrink an open file; a short
                # body under a promised Content-Length must fail loudly, not end quietly.
                raise StorageError("the object shrank while being read")
            remaining -= len(chunk)
            yield chunk
