"""The media pipeline with S3 storage (a moto S3 server over HTTP): the API, the media workflows
and the publish call all read and write the bucket. Uploads, delivery with ranges, multipart
uploads through presigned S3 part URLs, and a post whose rendition is fetched from the bucket
by the publisher. (tests/test_storage.py runs every storage test on both backends; this module
runs the pipeline on S3 as tests/test_e2e_media.py runs it on local files.)"""

from __future__ import annotations

import asyncio
import base64
import io
import socket
import uuid
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from PIL import Image

from api.app import create_app
from tests.s3_server import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY, empty_and_delete_bucket, s3_client, s3_endpoint  # noqa: F401
from tests.support import serve_in_thread
from tests.workflow_harness import Harness

KEY = "hk_s3_media_test_key_0123456789abcdef"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _photo(width: int, height: int, trailing: int = 0) -> bytes:
    im = Image.radial_gradient("L").resize((width, height)).convert("RGB")
    exif = Image.Exif()
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2] = "N", (48.0, 51.0, 29.0)
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=90, exif=exif)
    # Bytes after the end of the image (as in a phone's motion photo): still a valid JPEG.
    return buf.getvalue() + bytes(trailing)


@pytest.fixture
async def s3_stack(temporal_local, tmp_path, clean_sandbox, s3_endpoint):  # noqa: ANN001, ANN201, F811
    bucket = f"herald-media-{uuid.uuid4().hex[:10]}"
    client = s3_client(s3_endpoint)
    client.create_bucket(Bucket=bucket)
    port = _free_port()
    try:
        async with Harness(
            temporal_local, tmp_path, clean_sandbox, storage="s3", s3_bucket=bucket, s3_endpoint_url=s3_endpoint,
            s3_region=REGION, s3_access_key_id=ACCESS_KEY_ID, s3_secret_access_key=SECRET_ACCESS_KEY,
            public_base_url=f"http://127.0.0.1:{port}", rate_limits_enabled=False,
            temporal_address=temporal_local.client.service_client.config.target_host,
        ) as h:
            from store import keys as key_store

            with h.db.session() as s:  # a key of the harness's workspace, which owns the posts
                key_store.create_key(s, h.workspace.id, "s3 test", secret=KEY)
                s.commit()
            with serve_in_thread(create_app(h.settings), port) as url:
                async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {KEY}"},
                                             timeout=60) as api:
                    yield h, api, client, bucket
    finally:
        empty_and_delete_bucket(client, bucket)


async def _ready(api: httpx.AsyncClient, asset_id: str, timeout: float = 60) -> dict:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        asset = (await api.get(f"/v1/assets/{asset_id}")).json()["asset"]
        if asset["status"] in ("ready", "failed"):
            return asset
        assert asyncio.get_running_loop().time() < deadline, asset
        await asyncio.sleep(0.2)


def _objects(client, bucket: str) -> list[str]:  # noqa: ANN001
    return [o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", [])]


async def test_upload_delivery_multipart_and_publish_from_s3(s3_stack) -> None:  # noqa: ANN001
    harness, api, client, bucket = s3_stack
    data = _photo(1200, 800)
    r = await api.post("/v1/assets/upload", json={"filename": "s3.jpg", "contentBase64": base64.b64encode(data).decode()})
    assert r.status_code == 201, r.text
    asset = await _ready(api, r.json()["asset"]["id"])
    assert asset["status"] == "ready" and asset["storage"] == "s3" and (asset["width"], asset["height"]) == (1200, 800)
    keys = _objects(client, bucket)
    assert asset["objectKey"] in keys and any("/previews/" in k for k in keys)
    async with httpx.AsyncClient() as anon:
        full = await anon.get(asset["publicUrl"])
        assert full.status_code == 200 and full.content == data and full.headers["content-type"] == "image/jpeg"
        part = await anon.get(asset["publicUrl"], headers={"Range": "bytes=10-19"})
        assert part.status_code == 206 and part.content == data[10:20]
        assert (await anon.get(asset["preview"]["thumbnail"])).status_code == 200

    # Multipart: two parts PUT straight to presigned S3 URLs, never through the API.
    big = _photo(800, 600, trailing=9 * 1024 * 1024)
    init = (await api.post("/v1/assets/upload/initiate", json={"filename": "big.jpg", "size": len(big)})).json()
    upload_id, part_size, asset_id = init["upload"]["uploadId"], init["upload"]["partSize"], init["asset"]["id"]
    assert init["upload"]["totalParts"] == 2
    parts = []
    async with httpx.AsyncClient() as anon:
        for n in (1, 2):
            signed = (await api.post(f"/v1/assets/upload/{asset_id}/part", json={"uploadId": upload_id, "partNumber": n})).json()
            assert signed["url"].startswith(harness.settings.s3_endpoint_url)
            put = await anon.put(signed["url"], content=big[(n - 1) * part_size:n * part_size])
            assert put.status_code == 200, put.text
            parts.append({"ETag": put.headers["etag"], "PartNumber": n})
    wrong = await api.post(f"/v1/assets/upload/{asset_id}/complete",
                           json={"uploadId": upload_id, "parts": [parts[0], {**parts[1], "ETag": '"0"'}]})
    assert wrong.status_code == 422 and wrong.json()["code"] == "multipart_invalid"
    done = await api.post(f"/v1/assets/upload/{asset_id}/complete", json={"uploadId": upload_id, "parts": parts})
    assert done.status_code == 200, done.text
    multi = await _ready(api, asset_id)
    assert multi["status"] == "ready" and multi["size"] == len(big)

    # Publish: the rendition (GPS and trailing bytes stripped) is read back from the bucket.
    account = await harness.connect("telegram")
    run, inputs = harness.make_run(account, ["from s3"], datetime.now(timezone.utc) + timedelta(seconds=3),
                                   media=[{"url": asset["publicUrl"]}, {"url": multi["publicUrl"]}])
    await harness.start_run(run, inputs)
    status = await harness.store_status(inputs[0].post_id, "published", timeout=60)
    assert status == "published", (harness.post(inputs[0].post_id).error_code, harness.post(inputs[0].post_id).error)
    [delivery] = harness.deliveries()
    assert delivery["method"] == "sendMediaGroup" and len(delivery["media"]) == 2
    for got in delivery["media"]:
        assert got["image"]["gps"] is False and got["size"] < len(big)
    assert any("/renditions/" in k for k in _objects(client, bucket))
