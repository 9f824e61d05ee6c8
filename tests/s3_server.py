"""A real S3 endpoint for tests: moto's server in a child process on a loopback port.

A subprocess rather than moto's ThreadedMotoServer, because:

* it is what S3 is to Herald, another process at the end of a socket: every byte crosses real
  HTTP, and nothing of moto (its in-process ``mock_aws`` patches of botocore, its global backend
  state) shares an interpreter with the code under test;
* the 2-core test machine runs moto's request handling on another core instead of under the
  test process's GIL, which matters for the multi-MiB uploads the storage tests make.

The server is started once per test process, whichever module asks first. Fixtures imported
into several test modules are registered once per module, so a plain session fixture would start
one server per module; the module-level singleton below makes them share one.

Use from a test module::

    from tests.s3_server import s3_endpoint, s3_storage  # noqa: F401  (fixtures)
"""

from __future__ import annotations

import atexit
import functools
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from contextlib import suppress
from typing import TYPE_CHECKING, Iterator

import httpx
import pytest

from herald.dev import free_port

if TYPE_CHECKING:
    from storage.s3 import S3Storage

ACCESS_KEY_ID = "herald-test-key"
SECRET_ACCESS_KEY = "herald-test-secret-never-in-messages"
REGION = "us-east-1"

# The child watches its stdin, a pipe only this process holds: when the test process dies
# however it dies (even SIGKILL, where atexit never runs), the pipe closes and the child exits
# instead of lingering on the shared machine. Then it runs moto's own server entry point.
_LAUNCHER = """
import os, sys, threading
def _exit_with_parent():
    sys.stdin.buffer.read()
    os._exit(0)
threading.Thread(target=_exit_with_parent, daemon=True).start()
from moto.server import main
main(sys.argv[1:])
"""


class MotoServer:
    def __init__(self) -> None:
        self.url: str | None = None
        self._proc: subprocess.Popen | None = None
        self._log = tempfile.NamedTemporaryFile(prefix="herald-moto-", suffix=".log", delete=False)

    def start(self, timeout: float = 30.0) -> str:
        env = dict(os.environ)
        # The real S3 minimum part size, whatever the environment says, so moto enforces the
        # same rule AWS does.
        env["S3_UPLOAD_PART_MIN_SIZE"] = str(5 * 1024 * 1024)
        for var in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE"):
            env.pop(var, None)
        last_error = "no attempt made"
        # free_port() can race with another process taking the port before moto binds it; a
        # child that exits at once is retried on a fresh port.
        for _ in range(3):
            port = free_port()
            self._proc = subprocess.Popen(
                [sys.executable, "-c", _LAUNCHER, "-H", "127.0.0.1", "-p", str(port)],
                stdin=subprocess.PIPE, stdout=self._log, stderr=subprocess.STDOUT, env=env)
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self._proc.poll() is None:
                try:
                    # Any HTTP answer means the server is serving; ListBuckets is a cheap one.
                    httpx.get(url, timeout=1.0)
                except httpx.TransportError as exc:
                    last_error = repr(exc)
                    time.sleep(0.1)
                    continue
                self.url = url
                return url
            last_error = f"exit code {self._proc.poll()}" if self._proc.poll() is not None \
                else f"not serving after {timeout} s ({last_error})"
            self.stop()
        self._log.flush()
        with open(self._log.name, errors="replace") as fh:
            tail = fh.read()[-2000:]
        raise RuntimeError(f"moto server did not start: {last_error}\n{tail}")

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        with suppress(OSError):
            proc.stdin.close()  # type: ignore[union-attr]
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)

    def close(self) -> None:
        self.stop()
        self._log.close()
        with suppress(OSError):
            os.unlink(self._log.name)


_server: MotoServer | None = None
_lock = threading.Lock()


def moto_endpoint() -> str:
    """The shared server's URL, starting it on first use (stopped when the process exits)."""
    global _server
    with _lock:
        if _server is None or _server.url is None:
            server = MotoServer()
            server.start()
            atexit.register(server.close)
            _server = server
        return _server.url  # type: ignore[return-value]


@functools.lru_cache(maxsize=4)
def s3_client(endpoint: str):  # noqa: ANN201
    """A plain boto3 client for test setup and for checking what the bucket really holds."""
    import boto3
    from botocore.config import Config

    return boto3.session.Session().client(
        "s3", endpoint_url=endpoint, region_name=REGION, aws_access_key_id=ACCESS_KEY_ID,
        aws_secret_access_key=SECRET_ACCESS_KEY,
        config=Config(s3={"addressing_style": "path"}, retries={"mode": "standard"}))


@pytest.fixture(scope="session")
def s3_endpoint() -> str:
    """URL of a moto S3 server on loopback, shared by the whole test process."""
    return moto_endpoint()


@pytest.fixture
def s3_storage(s3_endpoint: str) -> Iterator[S3Storage]:
    """An S3Storage on a fresh, empty bucket; the bucket and everything in it go afterwards
    (moto keeps objects in memory, so tests must not leave their megabytes behind)."""
    from storage.s3 import S3Storage

    bucket = f"herald-test-{uuid.uuid4().hex[:12]}"
    client = s3_client(s3_endpoint)
    client.create_bucket(Bucket=bucket)
    try:
        yield S3Storage(bucket, endpoint_url=s3_endpoint, region=REGION,
                        access_key_id=ACCESS_KEY_ID, secret_access_key=SECRET_ACCESS_KEY)
    finally:
        empty_and_delete_bucket(client, bucket)


def empty_and_delete_bucket(client, bucket: str) -> None:  # noqa: ANN001
    for page in client.get_paginator("list_multipart_uploads").paginate(Bucket=bucket):
        for upload in page.get("Uploads", []):
            client.abort_multipart_upload(Bucket=bucket, Key=upload["Key"],
                                          UploadId=upload["UploadId"])
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
        if keys:
            client.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
    client.delete_bucket(Bucket=bucket)
