"""Storage: one suite, run against local files and against a real S3 server (moto over HTTP).

S3 storage has to pass the same tests as local storage: the API and the media activities treat
both alike, so any difference (an ETag format, an error type, a multipart rule) is a bug.
"""

from __future__ import annotations

import hashlib
import os
import tracemalloc
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest

from storage import (
    MIN_PART_SIZE,
    InvalidKey,
    InvalidPart,
    InvalidPartList,
    InvalidRange,
    LocalStorage,
    ObjectMissing,
    PartTooSmall,
    Storage,
    StorageError,
    StorageUnavailable,
    UploadNotFound,
    make_storage,
)
from storage.s3 import S3Storage
from tests.s3_server import SECRET_ACCESS_KEY, s3_client, s3_endpoint, s3_storage  # noqa: F401

MiB = 1024 * 1024


@pytest.fixture(params=["local", "s3"])
def storage(request, tmp_path: Path) -> Storage:
    if request.param == "local":
        return LocalStorage(tmp_path / "objects")
    return request.getfixturevalue("s3_storage")


@pytest.fixture(scope="module")
def big_part() -> bytes:
    # Exactly S3's minimum part size, so the size rule is tested at its boundary. Random, so a
    # part swapped or dropped during assembly shows in the hash.
    return os.urandom(MIN_PART_SIZE)


def md5_etag(data: bytes) -> str:
    return f'"{hashlib.md5(data).hexdigest()}"'


def multipart_etag(parts: list[bytes]) -> str:
    digests = b"".join(hashlib.md5(p).digest() for p in parts)
    return f'"{hashlib.md5(digests).hexdigest()}-{len(parts)}"'


def read_all(storage: Storage, key: str, start: int = 0, end: int = 2**62, **kw) -> bytes:
    return b"".join(storage.iter_range(key, start, end, **kw))


def upload_part(storage: Storage, key: str, upload_id: str, number: int, data: bytes) -> str:
    """How a client uploads a part: to the presigned URL when there is one (a plain PUT, no AWS
    library), else through the API, which hands the bytes to multipart_put_part."""
    url = storage.multipart_part_url(key, upload_id, number, expires_seconds=600)
    if url is None:
        return storage.multipart_put_part(key, upload_id, number, data)
    answer = httpx.put(url, content=data, timeout=30)
    assert answer.status_code == 200, answer.text
    return answer.headers["etag"]


# --- objects -------------------------------------------------------------------------------


def test_put_bytes_then_stat_and_read(storage: Storage):
    data = b"herald media bytes " * 100
    before = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(seconds=2)

    written = storage.put_bytes("ws_1/asset_1/original.txt", data, "text/plain")

    stat = storage.stat("ws_1/asset_1/original.txt")
    assert stat == written
    assert stat.size == len(data)
    # Both backends give a single-shot object S3's ETag: the quoted MD5 of its bytes.
    assert stat.etag == md5_etag(data)
    assert stat.mime == "text/plain"
    assert stat.last_modified.tzinfo is not None
    assert before <= stat.last_modified <= datetime.now(timezone.utc) + timedelta(seconds=2)
    assert read_all(storage, "ws_1/asset_1/original.txt") == data


def test_missing_object(storage: Storage, tmp_path: Path):
    assert storage.stat("ws_1/nothing/here.jpg") is None
    with pytest.raises(ObjectMissing) as caught:
        storage.iter_range("ws_1/nothing/here.jpg", 0, 10)
    assert caught.value.code == "object_missing"
    with pytest.raises(ObjectMissing):
        storage.download_to("ws_1/nothing/here.jpg", tmp_path / "out" / "here.jpg")


def test_iter_range_slices_and_chunks(storage: Storage):
    data = os.urandom(1000)
    storage.put_bytes("ws/a/blob.bin", data, "application/octet-stream")

    assert read_all(storage, "ws/a/blob.bin", 0, 0) == data[:1]
    assert read_all(storage, "ws/a/blob.bin", 10, 19) == data[10:20]
    assert read_all(storage, "ws/a/blob.bin", 999, 999) == data[999:]
    # An end past the object is clamped to its last byte, as HTTP and S3 do.
    assert read_all(storage, "ws/a/blob.bin", 900, 5000) == data[900:]

    chunks = list(storage.iter_range("ws/a/blob.bin", 3, 702, chunk_size=100))
    assert [len(c) for c in chunks] == [100] * 7
    assert b"".join(chunks) == data[3:703]

    with pytest.raises(InvalidRange):
        storage.iter_range("ws/a/blob.bin", 1000, 1100)
    with pytest.raises(ValueError):
        storage.iter_range("ws/a/blob.bin", 20, 10)


def test_put_file_download_to_and_overwrite(storage: Storage, tmp_path: Path):
    source = tmp_path / "upload.jpg"
    source.write_bytes(b"\xff\xd8 first version")
    storage.put_file("ws/a/original.jpg", source, "image/jpeg")

    out_dir = tmp_path / "work"
    storage.download_to("ws/a/original.jpg", out_dir / "copy.jpg")
    assert (out_dir / "copy.jpg").read_bytes() == b"\xff\xd8 first version"

    # Overwriting replaces the bytes and the ETag.
    source.write_bytes(b"\xff\xd8 second version, longer")
    second = storage.put_file("ws/a/original.jpg", source, "image/jpeg")
    assert second.etag == md5_etag(b"\xff\xd8 second version, longer")
    storage.download_to("ws/a/original.jpg", out_dir / "copy.jpg")
    assert (out_dir / "copy.jpg").read_bytes() == b"\xff\xd8 second version, longer"

    # A failed download leaves the target as it was and no temporary file behind.
    with pytest.raises(ObjectMissing):
        storage.download_to("ws/a/gone.jpg", out_dir / "copy.jpg")
    assert (out_dir / "copy.jpg").read_bytes() == b"\xff\xd8 second version, longer"
    assert sorted(p.name for p in out_dir.iterdir()) == ["copy.jpg"]


def test_local_path(storage: Storage):
    storage.put_bytes("ws/a/original.png", b"png bytes", "image/png")
    path = storage.local_path("ws/a/original.png")
    if storage.name == "local":
        assert path is not None and path.read_bytes() == b"png bytes"
        # Where a missing object would be: callers (the publisher) check and report it.
        assert not storage.local_path("ws/a/missing.png").exists()
    else:
        assert path is None


def test_delete_is_idempotent(storage: Storage):
    storage.put_bytes("ws/a/original.jpg", b"x", "image/jpeg")
    storage.delete("ws/a/original.jpg")
    assert storage.stat("ws/a/original.jpg") is None
    storage.delete("ws/a/original.jpg")  # again: no error
    storage.delete("ws/never/existed.jpg")


def test_delete_prefix_is_a_string_prefix(storage: Storage):
    keys = ["ws1/a1/original.jpg", "ws1/a1/previews/small.jpg", "ws1/a2/original.mp4",
            "ws10/a1/original.jpg", "ws2/asset1/original.jpg", "ws2/other/original.jpg"]
    for key in keys:
        storage.put_bytes(key, key.encode(), "application/octet-stream")

    # "ws1/" is ws1's folder: ws10 is another workspace and must survive.
    assert storage.delete_prefix("ws1/") == 3
    assert storage.delete_prefix("ws1/") == 0
    # Without the slash it is a string prefix, as S3 defines it, on local storage too.
    assert storage.delete_prefix("ws2/as") == 1

    remaining = [k for k in keys if storage.stat(k) is not None]
    assert remaining == ["ws10/a1/original.jpg", "ws2/other/original.jpg"]
    if isinstance(storage, LocalStorage):
        # Emptied folders go too: S3 has no folders to leave behind.
        assert not (storage.root / "ws1").exists()

    with pytest.raises(InvalidKey):
        storage.delete_prefix("")


def test_large_object_streams_in_chunks(storage: Storage, tmp_path: Path):
    size = 12 * MiB
    source = tmp_path / "video.mp4"
    digest = hashlib.sha256()
    with open(source, "wb") as out:
        for _ in range(12):
            block = os.urandom(MiB)
            digest.update(block)
            out.write(block)
    storage.put_file("ws/a/video.mp4", source, "video/mp4")
    assert storage.stat("ws/a/video.mp4").size == size

    # Reading the whole object in 256 KiB chunks must never hold much more than a chunk: the
    # traced peak would be >= 12 MiB if either backend read the object whole.
    got = hashlib.sha256()
    count = 0
    tracemalloc.start()
    try:
        for chunk in storage.iter_range("ws/a/video.mp4", 0, size - 1, chunk_size=256 * 1024):
            assert len(chunk) <= 256 * 1024
            got.update(chunk)
            count += 1
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert got.hexdigest() == digest.hexdigest()
    assert count == size // (256 * 1024)
    assert peak < 3 * MiB, f"peak {peak} bytes while streaming a {size}-byte object"


# --- keys ----------------------------------------------------------------------------------

ESCAPING_KEYS = [
    "../outside.txt", "ws/../../outside.txt", "ws/a/..", "/etc/passwd", "ws\\..\\outside",
    "ws/a\x00.jpg", "", "ws//a.jpg", "./ws/a.jpg", "ws/a/", ".multipart/x", "ws/.a.jpg.meta.json",
    "ws/a\nb.jpg",
]


@pytest.mark.parametrize("bad_key", ESCAPING_KEYS)
def test_keys_that_are_not_plain_relative_paths_are_refused(storage: Storage, tmp_path: Path,
                                                             bad_key: str):
    before = sorted(tmp_path.rglob("*"))
    calls = [
        lambda: storage.put_bytes(bad_key, b"evil", "text/plain"),
        lambda: storage.put_file(bad_key, Path(__file__), "text/plain"),
        lambda: storage.stat(bad_key),
        lambda: storage.iter_range(bad_key, 0, 10),
        lambda: storage.download_to(bad_key, tmp_path / "out.txt"),
        lambda: storage.local_path(bad_key),
        lambda: storage.delete(bad_key),
        lambda: storage.multipart_start(bad_key, "text/plain"),
    ]
    for call in calls:
        with pytest.raises(InvalidKey):
            call()
    # Nothing was written anywhere: not inside the root, not next to it.
    assert sorted(tmp_path.rglob("*")) == before


def test_escaping_prefixes_are_refused(storage: Storage, tmp_path: Path):
    (tmp_path / "keep.txt").write_text("must survive")
    for prefix in ("../", "..", "/", "/tmp", "ws/../..", "ws\\x"):
        with pytest.raises(InvalidKey):
            storage.delete_prefix(prefix)
    assert (tmp_path / "keep.txt").read_text() == "must survive"


def test_local_root_symlinked_folder_is_not_followed_by_delete_prefix(tmp_path: Path):
    # A folder inside the root that links out (an admin's mount, or worse) must not lead a
    # prefix delete into deleting what it points at.
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious.txt").write_text("keep")
    store = LocalStorage(tmp_path / "objects")
    (store.root / "ws9").symlink_to(outside, target_is_directory=True)
    store.delete_prefix("ws9")
    assert (outside / "precious.txt").read_text() == "keep"


# --- multipart -----------------------------------------------------------------------------


def test_multipart_happy_path(storage: Storage, big_part: bytes):
    key = "ws/a/original.mp4"
    upload_id = storage.multipart_start(key, "video/mp4")
    url = storage.multipart_part_url(key, upload_id, 1, expires_seconds=600)
    if storage.name == "s3":
        assert url is not None and "X-Amz-Signature=" in url
        assert SECRET_ACCESS_KEY not in url
    else:
        assert url is None

    tail = os.urandom(1234)
    # Uploaded out of order, as parallel clients do; the part list puts them in order.
    etag2 = upload_part(storage, key, upload_id, 2, tail)
    etag1 = upload_part(storage, key, upload_id, 1, big_part)
    assert etag1 == md5_etag(big_part) and etag2 == md5_etag(tail)

    stat = storage.multipart_complete(key, upload_id, [(1, etag1), (2, etag2)])

    assert stat.size == len(big_part) + len(tail)
    assert stat.mime == "video/mp4"
    # The multipart ETag S3 computes, reproduced by local storage.
    assert stat.etag == multipart_etag([big_part, tail])
    assert storage.stat(key) == stat
    whole = hashlib.sha256()
    for chunk in storage.iter_range(key, 0, stat.size - 1, chunk_size=MiB):
        whole.update(chunk)
    assert whole.hexdigest() == hashlib.sha256(big_part + tail).hexdigest()
    # Completed uploads are gone.
    with pytest.raises(UploadNotFound):
        storage.multipart_complete(key, upload_id, [(1, etag1), (2, etag2)])


def test_multipart_refuses_bad_part_lists_and_stays_usable(storage: Storage, big_part: bytes):
    key = "ws/a/original.mov"
    upload_id = storage.multipart_start(key, "video/quicktime")
    # The server-side path (the API receiving the part itself) for both backends here.
    e1 = storage.multipart_put_part(key, upload_id, 1, big_part)
    e2 = storage.multipart_put_part(key, upload_id, 2, b"small middle part")
    e3 = storage.multipart_put_part(key, upload_id, 3, b"last part")

    refused = [
        ("empty", [], InvalidPartList, "empty"),
        ("descending", [(2, e2), (1, e1)], InvalidPartList, "ascending"),
        ("duplicate", [(1, e1), (1, e1), (2, e2)], InvalidPartList, "ascending"),
        ("gap", [(1, e1), (3, e3)], InvalidPartList, "without gaps"),
        ("part zero", [(0, e1), (1, e1)], InvalidPartList, "run from 1"),
        ("never uploaded", [(1, e1), (2, e2), (3, e3), (4, e3)], InvalidPart, "part 4 was never"),
        ("wrong etag", [(1, e1), (2, e3)], InvalidPart, "part 2 does not match"),
        ("small middle part", [(1, e1), (2, e2), (3, e3)], PartTooSmall, "part 2 is 17 bytes"),
    ]
    for label, parts, error, words in refused:
        with pytest.raises(error, match=words):
            storage.multipart_complete(key, upload_id, parts)
        print(f"refused as expected: {label}")

    # Nothing was assembled by the refusals, and the upload is intact: dropping the bad last
    # part makes a valid list (a small part is fine at the end).
    assert storage.stat(key) is None
    stat = storage.multipart_complete(key, upload_id, [(1, e1), (2, e2)])
    assert stat.size == len(big_part) + len(b"small middle part")
    assert read_all(storage, key, len(big_part), stat.size - 1) == b"small middle part"


def test_uploading_a_part_again_replaces_it(storage: Storage):
    key = "ws/a/doc.bin"
    upload_id = storage.multipart_start(key, "application/octet-stream")
    old = storage.multipart_put_part(key, upload_id, 1, b"first try")
    new = storage.multipart_put_part(key, upload_id, 1, b"second try")
    with pytest.raises(InvalidPart):
        storage.multipart_complete(key, upload_id, [(1, old)])
    assert storage.multipart_complete(key, upload_id, [(1, new)]).size == len(b"second try")
    assert read_all(storage, key) == b"second try"


def test_multipart_abort(storage: Storage, tmp_path: Path):
    key = "ws/a/original.mp4"
    upload_id = storage.multipart_start(key, "video/mp4")
    etag = storage.multipart_put_part(key, upload_id, 1, b"part one")

    storage.multipart_abort(key, upload_id)
    storage.multipart_abort(key, upload_id)  # again: no error

    with pytest.raises(UploadNotFound):
        storage.multipart_complete(key, upload_id, [(1, etag)])
    with pytest.raises(UploadNotFound):
        storage.multipart_put_part(key, upload_id, 2, b"late part")
    assert storage.stat(key) is None
    if isinstance(storage, LocalStorage):
        assert list((storage.root / ".multipart").iterdir()) == []
    else:
        client = s3_client(storage.endpoint_url)
        assert client.list_multipart_uploads(Bucket=storage.bucket).get("Uploads", []) == []


@pytest.mark.parametrize("upload_id", ["not-an-upload", "0" * 32, "../../etc", "", "a" * 2000])
def test_unknown_upload_id(storage: Storage, upload_id: str):
    key = "ws/a/original.mp4"
    with pytest.raises(UploadNotFound) as caught:
        storage.multipart_complete(key, upload_id, [(1, '"0123"')])
    assert caught.value.code == "upload_not_found"
    with pytest.raises(UploadNotFound):
        storage.multipart_put_part(key, upload_id, 1, b"data")
    storage.multipart_abort(key, upload_id)  # unknown: nothing to do, no error


def test_local_upload_id_is_bound_to_its_key(tmp_path: Path):
    # AWS answers NoSuchUpload for an upload id used with another key; local storage does too.
    # (Not run against moto: it finds uploads by id alone and accepts any key.)
    store = LocalStorage(tmp_path / "objects")
    upload_id = store.multipart_start("ws/a/mine.mp4", "video/mp4")
    with pytest.raises(UploadNotFound):
        store.multipart_put_part("ws/b/theirs.mp4", upload_id, 1, b"x")
    store.multipart_abort("ws/b/theirs.mp4", upload_id)  # must not abort someone else's upload
    assert store.multipart_put_part("ws/a/mine.mp4", upload_id, 1, b"x") == md5_etag(b"x")


def test_delete_prefix_aborts_uploads_under_it(storage: Storage):
    upload_id = storage.multipart_start("ws7/a/original.mp4", "video/mp4")
    etag = storage.multipart_put_part("ws7/a/original.mp4", upload_id, 1, b"orphan")
    keep_id = storage.multipart_start("ws8/a/original.mp4", "video/mp4")
    keep_etag = storage.multipart_put_part("ws8/a/original.mp4", keep_id, 1, b"kept")

    assert storage.delete_prefix("ws7/") == 0  # no objects yet, but the upload goes

    with pytest.raises(UploadNotFound):
        storage.multipart_complete("ws7/a/original.mp4", upload_id, [(1, etag)])
    assert storage.multipart_complete("ws8/a/original.mp4", keep_id, [(1, keep_etag)]).size == 4


# --- configuration and failures ------------------------------------------------------------


def test_make_storage(tmp_path: Path):
    local = make_storage("local", data_dir=tmp_path)
    assert isinstance(local, LocalStorage) and local.root == tmp_path / "storage"

    s3 = make_storage("s3", data_dir=tmp_path, s3_bucket="media",
                      s3_endpoint_url="http://127.0.0.1:9", s3_access_key_id="id",
                      s3_secret_access_key="secret", s3_prefix="/herald/")
    assert isinstance(s3, S3Storage) and s3.name == "s3"
    assert "secret" not in repr(s3)

    with pytest.raises(ValueError, match="needs a bucket"):
        make_storage("s3", data_dir=tmp_path)
    with pytest.raises(ValueError, match="unknown storage 'gcs'"):
        make_storage("gcs", data_dir=tmp_path)
    with pytest.raises(ValueError, match="both"):
        make_storage("s3", data_dir=tmp_path, s3_bucket="media", s3_access_key_id="id")


def test_s3_prefix_keeps_keys_apart(s3_storage: S3Storage):
    prefixed = S3Storage(s3_storage.bucket, endpoint_url=s3_storage.endpoint_url,
                         access_key_id="k", secret_access_key="s", prefix="herald/")
    prefixed.put_bytes("ws/a/x.txt", b"prefixed", "text/plain")
    s3_storage.put_bytes("ws/a/x.txt", b"plain", "text/plain")
    assert read_all(prefixed, "ws/a/x.txt") == b"prefixed"
    assert read_all(s3_storage, "herald/ws/a/x.txt") == b"prefixed"
    assert prefixed.delete_prefix("ws/") == 1
    assert read_all(s3_storage, "ws/a/x.txt") == b"plain"


def test_s3_presign_endpoint(s3_storage: S3Storage):
    # The API reaches the bucket at one address, browsers at another (a MinIO container's
    # internal name vs its public one): part URLs carry the public one, signed for it.
    public = s3_storage.endpoint_url.replace("127.0.0.1", "localhost")
    storage = S3Storage(s3_storage.bucket, endpoint_url=s3_storage.endpoint_url,
                        presign_endpoint_url=public, access_key_id="k", secret_access_key="s")
    upload_id = storage.multipart_start("ws/a/clip.mp4", "video/mp4")
    url = storage.multipart_part_url("ws/a/clip.mp4", upload_id, 1, expires_seconds=60)
    assert url.startswith(f"{public}/{storage.bucket}/ws/a/clip.mp4?")
    etag = upload_part(storage, "ws/a/clip.mp4", upload_id, 1, b"through the public address")
    storage.multipart_complete("ws/a/clip.mp4", upload_id, [(1, etag)])
    assert read_all(storage, "ws/a/clip.mp4") == b"through the public address"


def test_local_stale_or_lost_metadata_falls_back_to_a_derived_etag(tmp_path: Path):
    store = LocalStorage(tmp_path / "objects")
    first = store.put_bytes("ws/a/original.png", b"first", "image/x-custom")

    # Rewritten behind our back: the stored ETag no longer describes the file and must not be
    # served (a client would keep its cached copy of the old bytes).
    path = store.local_path("ws/a/original.png")
    path.write_bytes(b"second, longer")
    rewritten = store.stat("ws/a/original.png")
    assert rewritten.etag != first.etag and rewritten.size == len(b"second, longer")
    assert rewritten.mime == "image/png"  # guessed from the name now

    (store.root / "ws" / "a" / ".original.png.meta.json").unlink()
    assert store.stat("ws/a/original.png") == rewritten


def test_s3_unreachable_is_reported_without_secrets():
    from herald.dev import free_port

    dead = S3Storage("media", endpoint_url=f"http://127.0.0.1:{free_port()}",
                     access_key_id="AKIDEXAMPLE", secret_access_key="wJalrXUtnFEMI/K7MDENG",
                     max_attempts=1, connect_timeout=1)
    for call in (lambda: dead.put_bytes("ws/a/x", b"x", "text/plain"),
                 lambda: dead.stat("ws/a/x"),
                 lambda: dead.multipart_start("ws/a/x", "text/plain")):
        with pytest.raises(StorageUnavailable) as caught:
            call()
        message = str(caught.value)
        assert "wJalrXUtnFEMI" not in message and "AKIDEXAMPLE" not in message
        assert "127.0.0.1" not in message  # nor where the bucket lives


def test_s3_missing_bucket_is_a_storage_error(s3_endpoint: str):
    ghost = S3Storage("no-such-bucket-herald", endpoint_url=s3_endpoint,
                      access_key_id="k", secret_access_key="s")
    with pytest.raises(StorageError, match="bucket does not exist") as caught:
        ghost.put_bytes("ws/a/x", b"x", "text/plain")
    assert "no-such-bucket-herald" not in str(caught.value)
