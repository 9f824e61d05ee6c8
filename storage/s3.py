"""Objects in an S3 bucket: AWS itself or any S3-compatible server (MinIO, Ceph, R2, moto).

With ``endpoint_url`` set the client uses path-style addressing (``<endpoint>/<bucket>/<key>``),
which every S3-compatible server understands without wildcard DNS; against AWS it lets botocore
choose (virtual-hosted style). ``presign_endpoint_url`` is for deployments where the API reaches
the bucket at one address (``http://minio:9000``) and browsers at another: a SigV4 signature
covers the host, so part URLs must be signed for the address the client will use.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from contextlib import contextmanager, suppress
from datetime import timezone
from pathlib import Path
from typing import Any, Iterator

import boto3
import botocore.loaders
import botocore.session
from boto3.exceptions import Boto3Error
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    PartialCredentialsError,
)

from storage.base import (
    DEFAULT_CHUNK_SIZE,
    MAX_PRESIGN_SECONDS,
    InvalidPart,
    InvalidPartList,
    InvalidRange,
    ObjectMissing,
    ObjectStat,
    PartTooSmall,
    Storage,
    StorageError,
    StorageUnavailable,
    UploadNotFound,
    check_completion,
    check_key,
    check_part_number,
    check_range,
    normalize_etag,
)

log = logging.getLogger("herald.storage")

# One loader for every session: it caches the parsed service models, which each new session
# would otherwise parse again (~50 ms for S3's, per client).
_LOADER = botocore.loaders.create_loader()

_TRANSFER_CHUNK = 16 * 1024 * 1024
_DELETE_BATCH = 1000  # DeleteObjects takes at most 1,000 keys per call

_MISSING_CODES = {"404", "NoSuchKey", "NotFound"}
_REFUSED_CODES = {"403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch",
                  "ExpiredToken", "InvalidToken", "AllAccessDisabled", "AccountProblem"}


class S3Storage(Storage):
    name = "s3"

    def __init__(self, bucket: str, *, endpoint_url: str | None = None, region: str | None = None,
                 access_key_id: str | None = None, secret_access_key: str | None = None,
                 prefix: str = "", presign_endpoint_url: str | None = None,
                 connect_timeout: float = 5.0, read_timeout: float = 60.0,
                 max_attempts: int = 5):
        if not bucket:
            raise ValueError("S3 storage needs a bucket name")
        if bool(access_key_id) != bool(secret_access_key):
            raise ValueError("set both the S3 access key id and the secret access key, or neither "
                             "(to use the default AWS credential chain)")
        prefix = prefix.strip("/")
        if prefix:
            check_key(prefix, what="S3 prefix")
        self.bucket = bucket
        self.endpoint_url = endpoint_url
        self._prefix = f"{prefix}/" if prefix else ""
        # S3-compatible servers ignore the region but SigV4 still signs one; us-east-1 is what
        # MinIO and moto expect when nobody says otherwise. Against AWS, None lets botocore use
        # the environment's region (set it: presigned URLs for another region's bucket fail).
        region = region or ("us-east-1" if endpoint_url else None)
        # A session of our own: boto3's default session is shared module state and not
        # thread-safe to create clients from; clients themselves are thread-safe.
        core = botocore.session.get_session()
        core.register_component("data_loader", _LOADER)
        session = boto3.session.Session(aws_access_key_id=access_key_id or None,
                                        aws_secret_access_key=secret_access_key or None,
                                        region_name=region, botocore_session=core)
        self._client = session.client("s3", endpoint_url=endpoint_url,
                                      config=_client_config(bool(endpoint_url), connect_timeout,
                                                            read_timeout, max_attempts))
        self._presigner = self._client
        if presign_endpoint_url:
            self._presigner = session.client("s3", endpoint_url=presign_endpoint_url,
                                             config=_client_config(True, connect_timeout,
                                                                   read_timeout, max_attempts))
        # "classic": the pure-Python transfer manager, the same on every machine (the CRT one
        # is picked up silently when awscrt happens to be installed). Four threads with 16 MiB
        # chunks bound a transfer's memory to about 64 MiB.
        self._transfer = TransferConfig(multipart_threshold=_TRANSFER_CHUNK,
                                        multipart_chunksize=_TRANSFER_CHUNK, max_concurrency=4,
                                        preferred_transfer_client="classic")

    def __repr__(self) -> str:  # never the credentials
        return f"S3Storage(bucket={self.bucket!r}, endpoint_url={self.endpoint_url!r})"

    def _key(self, key: str) -> str:
        return self._prefix + check_key(key)

    # --- error translation -----------------------------------------------------------------

    @contextmanager
    def _errors(self, key: str | None = None, upload_id: str | None = None) -> Iterator[None]:
        """botocore's errors become ours. Their text (which names the bucket and endpoint) goes
        to the log only; the raised messages name nothing but the caller's own key."""
        try:
            yield
        except StorageError:
            raise
        except ClientError as exc:
            raise self._translate(exc, key, upload_id) from exc
        except (NoCredentialsError, PartialCredentialsError) as exc:
            log.error("S3 credentials missing: %s", type(exc).__name__)
            raise StorageUnavailable("no credentials for object storage are configured") from exc
        except (BotoCoreError, Boto3Error) as exc:
            cause = exc.__cause__ or exc.__context__
            if isinstance(cause, ClientError):  # S3UploadFailedError wraps the real answer
                raise self._translate(cause, key, upload_id) from exc
            log.warning("S3 request failed: %s", exc)
            raise StorageUnavailable("object storage is unreachable; try again shortly") from exc

    @staticmethod
    def _translate(exc: ClientError, key: str | None, upload_id: str | None) -> StorageError:
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if code in _MISSING_CODES and key is not None:
            return ObjectMissing(key)
        if code == "NoSuchUpload":
            return UploadNotFound(upload_id or "")
        if code == "InvalidPart":
            return InvalidPart("a listed part was never uploaded or its ETag does not match")
        if code == "InvalidPartOrder":
            return InvalidPartList("parts must be listed in ascending order")
        if code == "EntityTooSmall":
            return PartTooSmall("every part but the last must be at least 5 MiB")
        if code == "InvalidRange":
            return InvalidRange("the range starts past the end of the object")
        log.warning("S3 %s failed: %s", exc.operation_name, exc)
        if code == "NoSuchBucket":
            return StorageUnavailable("the object storage bucket does not exist")
        if code in _REFUSED_CODES:
            return StorageUnavailable("object storage refused our credentials or permissions")
        if status >= 500 or code in ("SlowDown", "ServiceUnavailable", "InternalError"):
            return StorageUnavailable("object storage is unavailable; try again shortly")
        # The code is AWS's short error name (e.g. InvalidArgument): safe and useful to show.
        return StorageError(f"object storage refused the request ({code[:64] or status})")

    # --- objects ---------------------------------------------------------------------------

    def put_file(self, key: str, path: Path, mime: str) -> ObjectStat:
        name = self._key(key)
        with self._errors(key):
            self._client.upload_file(str(path), self.bucket, name,
                                     ExtraArgs={"ContentType": mime}, Config=self._transfer)
        return self._stat_written(key)

    def put_bytes(self, key: str, data: bytes, mime: str) -> ObjectStat:
        name = self._key(key)
        with self._errors(key):
            self._client.put_object(Bucket=self.bucket, Key=name, Body=data, ContentType=mime)
        return self._stat_written(key)

    def _stat_written(self, key: str) -> ObjectStat:
        # PutObject answers no Last-Modified or type, so one HEAD completes the picture.
        stat = self.stat(key)
        if stat is None:
            raise StorageError("object storage lost an object right after writing it")
        return stat

    def download_to(self, key: str, path: Path) -> None:
        name = self._key(key)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name[:100]}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        try:
            with self._errors(key):
                self._client.download_file(self.bucket, name, tmp, Config=self._transfer)
            os.replace(tmp, path)
        except BaseException:
            with suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    def local_path(self, key: str) -> Path | None:
        check_key(key)
        return None

    def stat(self, key: str) -> ObjectStat | None:
        name = self._key(key)
        try:
            with self._errors(key):
                head = self._client.head_object(Bucket=self.bucket, Key=name)
        except ObjectMissing:
            return None
        return _stat_of(head)

    def iter_range(self, key: str, start: int, end_inclusive: int,
                   chunk_size: int = DEFAULT_CHUNK_SIZE) -> Iterator[bytes]:
        check_range(start, end_inclusive)
        if chunk_size < 1:
            raise ValueError("chunk_size must be positive")
        name = self._key(key)
        # Requested now, not on the first next(): a missing object or a bad range fails at the
        # call, before a caller has committed to a response.
        with self._errors(key):
            answer = self._client.get_object(Bucket=self.bucket, Key=name,
                                              Range=f"bytes={start}-{end_inclusive}")
        return self._stream(answer["Body"], key, chunk_size)

    def _stream(self, body: Any, key: str, chunk_size: int) -> Iterator[bytes]:
        try:
            with self._errors(key):
                # botocore checks the bytes received against Content-Length and raises when a
                # connection drops early, so a short read cannot pass for the whole range.
                yield from body.iter_chunks(chunk_size)
        finally:
            body.close()  # an abandoned stream must not pin a pooled connection

    def delete(self, key: str) -> None:
        name = self._key(key)
        with self._errors(key):
            self._client.delete_object(Bucket=self.bucket, Key=name)

    def delete_prefix(self, prefix: str) -> int:
        check_key(prefix, what="prefix")
        full = self._prefix + prefix
        removed = 0
        with self._errors():
            for page in self._client.get_paginator("list_multipart_uploads").paginate(
                    Bucket=self.bucket, Prefix=full):
                for upload in page.get("Uploads", []):
                    with suppress(UploadNotFound), self._errors(upload_id=upload["UploadId"]):
                        self._client.abort_multipart_upload(
                            Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"])
            for page in self._client.get_paginator("list_objects_v2").paginate(
                    Bucket=self.bucket, Prefix=full):
                names = [item["Key"] for item in page.get("Contents", [])]
                for i in range(0, len(names), _DELETE_BATCH):
                    batch = names[i:i + _DELETE_BATCH]
                    answer = self._client.delete_objects(
                        Bucket=self.bucket,
                        Delete={"Objects": [{"Key": n} for n in batch], "Quiet": True})
                    failed = answer.get("Errors", [])
                    if failed:
                        log.warning("S3 DeleteObjects left %d keys: %s", len(failed), failed[:3])
                        raise StorageError(f"could not delete {len(failed)} objects under "
                                           f"prefix {prefix!r}")
                    removed += len(batch)
        return removed

    # --- multipart -------------------------------------------------------------------------

    @staticmethod
    def _check_upload_id(upload_id: str) -> str:
        # Anything else would fail botocore's parameter validation with a less useful error.
        if not isinstance(upload_id, str) or not upload_id or len(upload_id) > 1024 \
                or not upload_id.isprintable():
            raise UploadNotFound(str(upload_id))
        return upload_id

    def multipart_start(self, key: str, mime: str) -> str:
        name = self._key(key)
        with self._errors(key):
            answer = self._client.create_multipart_upload(Bucket=self.bucket, Key=name,
                                                          ContentType=mime)
        return answer["UploadId"]

    def multipart_part_url(self, key: str, upload_id: str, part_number: int,
                           expires_seconds: int) -> str | None:
        """A presigned UploadPart URL. Signing is local arithmetic, so an unknown upload id is
        only noticed by S3 when the client PUTs (404 NoSuchUpload)."""
        name = self._key(key)
        check_part_number(part_number)
        self._check_upload_id(upload_id)
        if not 1 <= expires_seconds <= MAX_PRESIGN_SECONDS:
            raise ValueError(f"expires_seconds must be within 1..{MAX_PRESIGN_SECONDS}")
        with self._errors(key, upload_id):
            return self._presigner.generate_presigned_url(
                "upload_part", ExpiresIn=int(expires_seconds), HttpMethod="PUT",
                Params={"Bucket": self.bucket, "Key": name, "UploadId": upload_id,
                        "PartNumber": part_number})

    def multipart_put_part(self, key: str, upload_id: str, part_number: int, data: bytes) -> str:
        name = self._key(key)
        check_part_number(part_number)
        self._check_upload_id(upload_id)
        with self._errors(key, upload_id):
            # Ask before sending megabytes into an upload that is gone (aborted, completed,
            # expired): one small request, and a clean NoSuchUpload from every server (moto
            # answers UploadPart to an unknown id with a 500, which botocore retries).
            self._client.list_parts(Bucket=self.bucket, Key=name, UploadId=upload_id, MaxParts=1)
            answer = self._client.upload_part(Bucket=self.bucket, Key=name, UploadId=upload_id,
                                              PartNumber=part_number, Body=data)
        return answer["ETag"]

    def multipart_complete(self, key: str, upload_id: str,
                           parts: list[tuple[int, str]]) -> ObjectStat:
        name = self._key(key)
        self._check_upload_id(upload_id)
        # ListParts first, so the part list is judged by check_completion exactly as local
        # storage judges it (same rules, same messages) and so servers that skip some of S3's
        # checks (moto does not check the order) cannot assemble a broken object.
        uploaded: dict[int, dict[str, int]] = {}
        server_etag: dict[int, str] = {}
        with self._errors(key, upload_id):
            for page in self._client.get_paginator("list_parts").paginate(
                    Bucket=self.bucket, Key=name, UploadId=upload_id):
                for part in page.get("Parts", []):
                    uploaded[part["PartNumber"]] = {normalize_etag(part["ETag"]): part["Size"]}
                    server_etag[part["PartNumber"]] = part["ETag"]
        check_completion(parts, uploaded)
        try:
            with self._errors(key, upload_id):
                self._client.complete_multipart_upload(
                    Bucket=self.bucket, Key=name, UploadId=upload_id,
                    MultipartUpload={"Parts": [{"PartNumber": n, "ETag": server_etag[n]}
                                               for n, _ in parts]})
        except UploadNotFound:
            # botocore retries a call whose answer was lost; if the first attempt completed,
            # the retry finds no upload. The object's ETag tells whether it is ours.
            done = self.stat(key)
            expected = _multipart_etag([server_etag[n] for n, _ in parts])
            if done is None or expected is None or normalize_etag(done.etag) != expected:
                raise
            return done
        return self._stat_written(key)

    def multipart_abort(self, key: str, upload_id: str) -> None:
        name = self._key(key)
        try:
            self._check_upload_id(upload_id)
            with self._errors(key, upload_id):
                self._client.abort_multipart_upload(Bucket=self.bucket, Key=name,
                                                    UploadId=upload_id)
        except UploadNotFound:
            pass


def _client_config(path_style: bool, connect_timeout: float, read_timeout: float,
                   max_attempts: int) -> Config:
    return Config(
        signature_version="s3v4",
        # "standard" retries throttling, 5xx and connection errors with jittered backoff. Every
        # call here may be repeated safely (a part or object written twice is the same part or
        # object) except CompleteMultipartUpload, whose retry multipart_complete recognises.
        retries={"mode": "standard", "max_attempts": max_attempts},
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        max_pool_connections=32,
        s3={"addressing_style": "path" if path_style else "auto"},
        # botocore >= 1.36 adds CRC checksums (and aws-chunked bodies) to every upload by
        # default; several S3-compatible servers reject those. Only where S3 requires them.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )


def _stat_of(head: dict[str, Any]) -> ObjectStat:
    modified = head["LastModified"].astimezone(timezone.utc).replace(microsecond=0)
    return ObjectStat(size=int(head["ContentLength"]), etag=head["ETag"],
                      mime=head.get("ContentType") or "application/octet-stream",
                      last_modified=modified)


def _multipart_etag(part_etags: list[str]) -> str | None:
    """S3's ETag for an object assembled from these parts, when the parts' ETags are their MD5s
    (not with SSE-KMS or SSE-C, where ETags are opaque)."""
    digests = b""
    for etag in part_etags:
        bare = normalize_etag(etag)
        if len(bare) != 32:
            return None
        try:
            digests += bytes.fromhex(bare)
        except ValueError:
            return None
    return f"{hashlib.md5(digests, usedforsecurity=False).hexdigest()}-{len(part_etags)}"
