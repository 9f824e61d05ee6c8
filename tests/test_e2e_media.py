"""The media pipeline end to end, over HTTP against `herald dev` and the sandbox: uploads,
delivery URLs (HEAD, ranges, previews), URL media and prepare tasks, renditions that fit each
network (what the sandbox received is decoded and checked), the rendition cache, bad files, and
multipart uploads with local storage."""

from __future__ import annotations

import base64
import hashlib
import io
import subprocess
from pathlib import Path

import httpx
import pytest
from PIL import Image

from tests.e2e_stack import Stack, assert_error, at, deliveries, wait_post
from tests.support import wait_for

pytestmark = pytest.mark.e2e


def _jpeg_with_gps(width: int, height: int, quality: int = 92) -> bytes:
    """A photo-like JPEG (noise, so it compresses like a photo) with camera EXIF and a GPS fix."""
    import random

    rnd = random.Random(width * 7 + height)
    small = Image.frombytes("RGB", (width // 8, height // 8), bytes(rnd.getrandbits(8) for _ in range(width // 8 * height // 8 * 3)))
    im = small.resize((width, height), Image.BILINEAR)
    exif = Image.Exif()
    exif[0x010F] = "HeraldCam"  # Make
    exif[0x0112] = 1  # Orientation
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2] = "N", (48.0, 51.0, 29.0)  # GPSLatitudeRef, GPSLatitude
    gps[3], gps[4] = "E", (2.0, 17.0, 40.0)
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=quality, exif=exif)
    return buf.getvalue()


def _png(width: int, height: int, colour: str = "orange") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buf, "PNG")
    return buf.getvalue()


def _ffmpeg() -> str:
    from media.tools import resolve_tools

    return resolve_tools().ffmpeg


def _clip(path: Path, *args: str) -> Path:
    subprocess.run([_ffmpeg(), "-v", "error", "-y", *args, str(path)], check=True, timeout=120)
    return path


@pytest.fixture(scope="module")
def media_src(stack: Stack) -> Path:
    src = stack.data_dir.parent / "media-src"
    (src / "photo.jpg").write_bytes(_jpeg_with_gps(1600, 1200))
    (src / "panorama.png").write_bytes(_png(4200, 200))
    (src / "corrupt.jpg").write_bytes(_jpeg_with_gps(400, 300)[:900])
    (src / "lies.png").write_bytes(b"this is plain text, not a picture\n" * 20)
    # A VP9 WebM with Opus audio: Telegram's sendVideo wants MP4 (H.264/AAC), so it is transcoded.
    _clip(src / "clip.webm", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25:duration=2",
          "-f", "lavfi", "-i", "sine=frequency=440:duration=2", "-c:v", "libvpx-vp9", "-b:v", "200k",
          "-deadline", "realtime", "-cpu-used", "8", "-c:a", "libopus", "-shortest")
    # Lossless noise: about 20 MB for 2 s, over Discord's 10 MiB, so it must be re-encoded to fit.
    _clip(src / "big.mp4", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25:duration=2,noise=alls=40:allf=t",
          "-f", "lavfi", "-i", "sine=frequency=300:duration=2", "-c:v", "libx264", "-preset", "ultrafast",
          "-qp", "0", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest")
    assert (src / "big.mp4").stat().st_size > 10 * 1024 * 1024
    return src


def upload(api: httpx.Client, name: str, data: bytes, mime: str | None = None, **extra) -> dict:  # noqa: ANN003
    body = {"filename": name, "contentBase64": base64.b64encode(data).decode(), **extra}
    if mime:
        body["mime"] = mime
    r = api.post("/v1/assets/upload", json=body)
    assert r.status_code == 201, r.text
    return r.json()["asset"]


def wait_asset(api: httpx.Client, asset_id: str, timeout: float = 60) -> dict:
    def done():  # noqa: ANN202
        asset = api.get(f"/v1/assets/{asset_id}").json()["asset"]
        return asset if asset["status"] in ("ready", "failed") else None
    return wait_for(done, timeout=timeout, interval=0.2, what=f"asset {asset_id} processed")


# --- upload, probe, delivery ---------------------------------------------------------------------


def test_upload_probe_and_delivery_with_head_ranges_and_previews(api: httpx.Client) -> None:
    data = _jpeg_with_gps(1600, 1200)
    created = upload(api, "launch photo.jpg", data, "image/jpeg")
    assert created["status"] == "processing" and created["id"].startswith("asset_")
    asset = wait_asset(api, created["id"])
    assert asset["status"] == "ready", asset
    assert (asset["mime"], asset["kind"], asset["width"], asset["height"], asset["size"]) == (
        "image/jpeg", "image", 1600, 1200, len(data))
    assert asset["sha256"] == hashlib.sha256(data).hexdigest()
    url = asset["publicUrl"]
    assert url.startswith(str(api.base_url).rstrip("/") + f"/media/{asset['id']}/dlv_")

    full = httpx.get(url)
    assert full.status_code == 200 and full.content == data
    assert full.headers["content-type"] == "image/jpeg"
    assert full.headers["content-length"] == str(len(data)) and full.headers["accept-ranges"] == "bytes"
    etag = full.headers["etag"]
    head = httpx.head(url)
    assert head.status_code == 200 and head.content == b"" and head.headers["content-length"] == str(len(data))
    part = httpx.get(url, headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == data[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{len(data)}"
    tail = httpx.get(url, headers={"Range": "bytes=-50"})
    assert tail.status_code == 206 and tail.content == data[-50:]
    assert httpx.get(url, headers={"Range": f"bytes={len(data)}-"}).status_code == 416
    assert httpx.get(url, headers={"If-None-Match": etag}).status_code == 304

    # A wrong token, an unknown asset: the same bare 404, nothing revealed.
    token = url.split("/")[-2]
    wrong = httpx.get(url.replace(token, "dlv_" + "A" * 24))
    unknown = httpx.get(url.replace(asset["id"], "asset_" + "0" * 20))
    assert wrong.status_code == unknown.status_code == 404
    assert wrong.json() == unknown.json() == {"ok": False, "code": "not_found", "message": "not found", "details": None}

    thumb = httpx.get(asset["preview"]["thumbnail"])
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    with Image.open(io.BytesIO(thumb.content)) as im:
        assert max(im.size) == 320 and not im.getexif().get_ifd(0x8825)

    listed = api.get("/v1/assets", params={"limit": 200}).json()
    assert listed["ok"] is True and asset["id"] in [x["id"] for x in listed["assets"]]


def test_bad_uploads_fail_clearly_and_store_nothing(stack: Stack, api: httpx.Client) -> None:
    assert_error(api.post("/v1/assets/upload", json={"filename": "x.png", "contentBase64": ""}), 422, "empty_file")
    assert_error(api.post("/v1/assets/upload", json={"filename": "x.png", "contentBase64": "***"}), 422)
    assert_error(api.post("/v1/assets/upload", json={"contentBase64": "AAAA"}), 422)
    cases = {
        "truncated": ("broken.jpg", _jpeg_with_gps(400, 300)[:900], "image/jpeg"),
        "mime_mismatch": ("fake.mp4", _png(10, 10), "video/mp4"),
        # Text claimed to be a PNG: the bytes are not an image at all.
        "text": ("notes.png", b"just some text\n" * 10, "image/png"),
    }
    for label, (name, data, mime) in cases.items():
        code = "corrupt_file" if label in ("truncated", "text") else label
        asset = wait_asset(api, upload(api, name, data, mime)["id"])
        assert asset["status"] == "failed" and asset["error"]["code"] == code, (code, asset)
        assert asset["error"]["message"] and asset["publicUrl"] is None
        # Nothing half-stored: no original, no preview left in storage.
        stored = list((stack.data_dir / "storage").rglob(f"*{asset['id']}*"))
        assert stored == [], stored


# --- URL media, prepare tasks ------------------------------------------------------------------------


def test_prepare_task_fetches_urls_and_reports_failures(stack: Stack, api: httpx.Client, media_src: Path) -> None:
    too_many = api.post("/v1/media/prepare", json={"urls": [f"{stack.media}/photo.jpg"] * 11})
    assert_error(too_many, 422, "too_many_urls")
    assert_error(api.post("/v1/media/prepare", json={"urls": ["ftp://example.com/a.png"]}), 422)
    urls = [f"{stack.media}/photo.jpg", f"{stack.media}/clip.webm", f"{stack.media}/missing.png",
            f"{stack.media}/lies.png"]
    r = api.post("/v1/media/prepare", json={"urls": urls})
    assert r.status_code == 202, r.text
    task_id = r.json()["task_id"]
    first = api.get(f"/v1/media/status/{task_id}").json()
    assert first["status"] in ("processing", "completed") and first["progress"]["total"] == 4
    done = wait_for(lambda: (s := api.get(f"/v1/media/status/{task_id}").json())["status"] != "processing" and s,
                    timeout=90, interval=0.3, what="prepare task")
    assert done["status"] == "completed" and done["progress"] == {"total": 4, "completed": 2, "failed": 2}
    files = {f["original_url"]: f for f in done["files"]}
    assert files[urls[0]]["type"] == "image" and files[urls[0]]["size"] == (media_src / "photo.jpg").stat().st_size
    assert files[urls[1]]["type"] == "video" and files[urls[1]]["duration"] == pytest.approx(2.0, abs=0.2)
    clip = api.get(f"/v1/assets/{files[urls[1]]['asset_id']}").json()["asset"]
    assert (clip["width"], clip["height"], clip["media"]["video_codec"]) == (320, 240, "vp9")
    poster = httpx.get(clip["preview"]["poster"])
    assert poster.status_code == 200 and poster.headers["content-type"] == "image/jpeg"
    prepared = httpx.get(files[urls[0]]["prepared_url"])
    assert prepared.status_code == 200 and prepared.content == (media_src / "photo.jpg").read_bytes()
    failures = {f["original_url"]: f for f in done["failures"]}
    assert failures[urls[2]]["code"] == "fetch_http_error" and "404" in failures[urls[2]]["error"]
    assert failures[urls[3]]["code"] == "corrupt_file" and failures[urls[3]]["error"]
    assert_error(api.get("/v1/media/status/task_nope"), 404)


# --- renditions reach the networks within their limits ----------------------------------------------


def test_renditions_fit_telegram_and_discord(stack: Stack, api: httpx.Client, media_src: Path,
                                             telegram: dict, discord: dict) -> None:
    # A 24-megapixel photo with GPS, uploaded; a WebM clip by URL; a panorama beyond Telegram's
    # 20:1 ratio, which validation refuses unless mediaFit asks for padding.
    big = upload(api, "big.jpg", _jpeg_with_gps(6000, 4000))
    big = wait_asset(api, big["id"], timeout=90)
    assert big["status"] == "ready", big
    pano = wait_asset(api, upload(api, "pano.png", (media_src / "panorama.png").read_bytes())["id"])
    refused = api.post("/v1/posts/validate", json={"posts": [
        {"account": telegram["handle"], "text": "wide", "publish_at": at(60), "assets": [pano["publicUrl"]]}]})
    body = assert_error(refused, 422)
    [problem] = body["details"]["problems"]
    assert problem["path"] == "posts[0].assets[0]" and "20:1" in problem["message"] and "pad" in problem["message"]

    t1 = at(8)
    posts = [
        {"account": telegram["handle"], "text": "tg photo", "publish_at": t1, "assets": [big["publicUrl"]]},
        {"account": discord["handle"], "text": "dc photo", "publish_at": t1, "assets": [big["publicUrl"]]},
        {"account": telegram["handle"], "text": "tg video", "publish_at": t1, "media_link": f"{stack.media}/clip.webm"},
        {"account": telegram["handle"], "text": "tg pano", "publish_at": t1, "assets": [pano["publicUrl"]],
         "settings": {"mediaFit": "pad"}},
        {"account": discord["handle"], "text": "dc video", "publish_at": t1, "media_link": f"{stack.media}/big.mp4"},
    ]
    r = api.post("/v1/posts/apply", json={"posts": posts})
    assert r.status_code == 201, r.text
    ids = [p["id"] for p in r.json()["posts"]]
    done = [wait_post(api, pid, ("published", "failed"), timeout=120) for pid in ids]
    assert [p["status"] for p in done] == ["published"] * 5, done

    got = {d["text"]: d for d in deliveries(stack)}
    tg_photo = got["tg photo"]["media"][0]
    assert got["tg photo"]["method"] == "sendPhoto"
    w, h = tg_photo["image"]["width"], tg_photo["image"]["height"]
    assert w + h <= 10_000 and tg_photo["size"] <= 10_000_000 and w / h == pytest.approx(1.5, abs=0.01)
    assert tg_photo["image"]["gps"] is False
    dc_photo = got["dc photo"]["media"][0]
    assert dc_photo["size"] <= 10 * 1024 * 1024 and dc_photo["image"]["gps"] is False
    video = got["tg video"]
    assert video["method"] == "sendVideo"
    assert video["media"][0]["video"]["codec"] == "h264" and video["media"][0]["video"]["pixelFormat"] == "yuv420p"
    assert video["media"][0]["mime"] == "video/mp4" and video["media"][0]["video"]["audioCodec"] == "aac"
    pad = got["tg pano"]["media"][0]["image"]
    assert max(pad["width"], pad["height"]) <= 20 * min(pad["width"], pad["height"])
    dc_video = got["dc video"]["media"][0]
    assert dc_video["size"] <= 10 * 1024 * 1024 and dc_video["video"]["codec"] == "h264"
    assert dc_video["video"]["duration"] == pytest.approx(2.0, abs=0.2)
    # The post says what was done to fit each network.
    actions = done[4]["assets"][0]["rendition"]["actions"]
    assert any(a.startswith("shrink") for a in actions), actions


def test_five_posts_of_one_video_transcode_it_once(stack: Stack, api: httpx.Client, media_src: Path,
                                                   telegram: dict) -> None:
    from temporalio.client import Client

    clip = wait_asset(api, upload(api, "once.webm", (media_src / "clip.webm").read_bytes())["id"])
    assert clip["status"] == "ready", clip
    t1 = at(8)
    r = api.post("/v1/posts/apply", json={"posts": [
        {"account": telegram["handle"], "text": f"same clip {i}", "publish_at": t1, "assets": [clip["publicUrl"]]}
        for i in range(5)]})
    assert r.status_code == 201, r.text
    done = [wait_post(api, p["id"], ("published", "failed"), timeout=120) for p in r.json()["posts"]]
    assert {p["status"] for p in done} == {"published"}, done
    sent = [d["media"][0] for d in deliveries(stack) if d["text"].startswith("same clip")]
    assert len(sent) == 5 and len({m["sha256"] for m in sent}) == 1 and sent[0]["video"]["codec"] == "h264"

    async def renditions() -> list[str]:
        client = await Client.connect(f"127.0.0.1:{stack.env['HERALD_TEMPORAL_PORT']}")
        return [w.id async for w in client.list_workflows("WorkflowType = 'RenditionWorkflow'")
                if w.id.startswith(f"rendition-{clip['id']}-")]

    import asyncio

    assert len(asyncio.run(renditions())) == 1


def test_post_with_unusable_media_fails_with_reason(stack: Stack, api: httpx.Client, media_src: Path,
                                                    telegram: dict) -> None:
    r = api.post("/v1/posts/apply", json={"posts": [
        {"account": telegram["handle"], "text": "broken", "publish_at": at(30), "media_link": f"{stack.media}/corrupt.jpg"},
        {"account": telegram["handle"], "text": "gone", "publish_at": at(30), "media_link": f"{stack.media}/nope.jpg"},
    ]})
    assert r.status_code == 201, r.text
    broken, gone = (wait_post(api, p["id"], ("failed", "published"), timeout=60) for p in r.json()["posts"])
    assert (broken["status"], broken["errorCode"]) == ("failed", "media_invalid"), broken
    assert (gone["status"], gone["errorCode"]) == ("failed", "media_unavailable"), gone
    assert "404" in gone["error"] and broken["error"].startswith("assets[0]: ")
    assert not [d for d in deliveries(stack) if d["text"] in ("broken", "gone")]


# --- multipart (local storage: the API takes the parts itself) ---------------------------------------


def test_multipart_upload_with_signed_part_urls(stack: Stack, api: httpx.Client) -> None:
    data = _jpeg_with_gps(3000, 2000, quality=100) * 1
    size = len(data)
    init = api.post("/v1/assets/upload/initiate", json={"filename": "multi.jpg", "size": size, "mime": "image/jpeg"})
    assert init.status_code == 201, init.text
    upload_info, asset_id = init.json()["upload"], init.json()["asset"]["id"]
    assert init.json()["mode"] == "multipart" and init.json()["asset"]["status"] == "uploading"
    part_size = upload_info["partSize"]
    parts = []
    for n in range(1, upload_info["totalParts"] + 1):
        signed = api.post(f"/v1/assets/upload/{asset_id}/part", json={"uploadId": upload_info["uploadId"], "partNumber": n})
        assert signed.status_code == 200, signed.text
        put = httpx.put(signed.json()["url"], content=data[(n - 1) * part_size:n * part_size])
        assert put.status_code == 200, put.text
        parts.append({"ETag": put.headers["etag"], "PartNumber": n})
    # A tampered signature is refused.
    bad = signed.json()["url"].replace("signature=", "signature=0")
    assert_error(httpx.put(bad, content=b"x"), 403)
    done = api.post(f"/v1/assets/upload/{asset_id}/complete", json={"uploadId": upload_info["uploadId"], "parts": parts})
    assert done.status_code == 200, done.text
    asset = wait_asset(api, asset_id)
    assert asset["status"] == "ready" and asset["size"] == size
    assert httpx.get(asset["publicUrl"]).content == data
    big = api.post("/v1/assets/upload/initiate", json={"filename": "huge.mp4", "size": 10**12})
    assert assert_error(big, 413, "payload_too_large")["details"]["limitBytes"] > 0


def test_delete_marks_pending_and_keeps_delivering_during_retention(stack: Stack, api: httpx.Client) -> None:
    asset = wait_asset(api, upload(api, "del.png", _png(20, 20))["id"])
    r = api.request("DELETE", f"/v1/assets/{asset['id']}", json={"retentionDays": 7})
    assert r.status_code == 200 and r.json()["asset"]["status"] == "pending_delete"
    assert r.json()["asset"]["purgeAt"] is not None
    # Still delivered during the retention window (a scheduled post may need it).
    assert httpx.get(asset["publicUrl"]).status_code == 200
