"""Every shape each OAuth network supports, published end to end through the API against
`herald dev`: videos (made to fit each network by the media pipeline), multi-image posts,
carousels, reels, stories, quotes, member and page posts. tests/test_e2e_oauth_networks.py covers
connecting, threads, comments, refresh, reconcile and delete; this module covers the shapes."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import pytest

from tests.e2e_stack import Stack, at, deliveries, wait_post
from tests.test_e2e_oauth_networks import connect, upload_png

pytestmark = pytest.mark.e2e

DONE = ("published", "failed")


@pytest.fixture(scope="module")
def vertical_clip(stack: Stack) -> str:
    """A 4 s 720x1280 H.264/AAC MP4 (reels and stories want 9:16 and at least 3 s), served by the
    test media server; each network gets the rendition its rules ask for."""
    from media.tools import resolve_tools

    path = Path(stack.data_dir.parent / "media-src" / "vertical.mp4")
    subprocess.run([resolve_tools().ffmpeg, "-v", "error", "-y", "-f", "lavfi", "-i",
                    "testsrc2=size=720x1280:rate=30:duration=4", "-f", "lavfi", "-i",
                    "sine=frequency=500:duration=4", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt",
                    "yuv420p", "-c:a", "aac", "-shortest", "-movflags", "+faststart", str(path)],
                   check=True, timeout=120)
    return f"{stack.media}/vertical.mp4"


def publish_all(api: httpx.Client, posts: list[dict], timeout: float = 180) -> list[dict]:
    r = api.post("/v1/posts/apply", json={"posts": posts})
    assert r.status_code == 201, r.text
    done = [wait_post(api, p["id"], DONE, timeout=timeout) for p in r.json()["posts"]]
    assert [(p["status"], p["errorCode"]) for p in done] == [("published", None)] * len(done), done
    return done


def _videos(delivery: dict) -> list[dict]:
    return [m["video"] for m in delivery["media"] if m.get("video")]


@pytest.fixture(scope="module")
def burst(stack: Stack, vertical_clip: str) -> dict:
    """Every network's shapes in one run, due at one instant (one wait instead of one per
    network); the tests below read what each network received."""
    httpx.delete(f"{stack.sandbox}/_sandbox").raise_for_status()
    with stack.client() as api:
        x = connect(api, "x")[0]["handle"]
        member = connect(api, "linkedin")[0]["handle"]
        page = connect(api, "linkedin_page")[0]["handle"]
        fb = next(a["handle"] for a in connect(api, "facebook") if a["handle"] == "facebook:200000000000001")
        igb = connect(api, "instagram_business")[0]["handle"]
        igl = connect(api, "instagram")[0]["handle"]
        threads = connect(api, "threads")[0]["handle"]
        wide = [upload_png(api, (1200, 675), c)[0] for c in ("red", "green", "blue", "white")]
        square = [upload_png(api, (1080, 1080), c)[0] for c in ("khaki", "plum", "salmon")]
        portrait, _ = upload_png(api, (1080, 1350), "indigo")
        tall, _ = upload_png(api, (1080, 1920), "pink")
        gif = upload_gif(api)
        t = at(12)
        posts = [
            {"account": x, "text": "four pictures", "publish_at": t, "assets": wide},
            {"account": x, "text": "a video", "publish_at": t, "media_link": vertical_clip},
            {"account": x, "text": "an animated gif", "publish_at": t, "assets": [gif]},
            {"account": member, "text": "member text", "publish_at": t, "settings": {"visibility": "CONNECTIONS"}},
            {"account": member, "text": "member pictures", "publish_at": t, "assets": square},
            {"account": page, "text": "page video", "publish_at": t, "media_link": vertical_clip},
            {"account": page, "text": "page pictures", "publish_at": t, "assets": square[:2]},
            {"account": fb, "text": "fb video", "publish_at": t, "media_link": vertical_clip},
            {"account": fb, "text": "fb reel", "publish_at": t, "media_link": vertical_clip, "post_type": "reel"},
            {"account": fb, "text": "", "publish_at": t, "assets": [tall], "post_type": "story"},
            {"account": fb, "text": "fb link", "publish_at": t, "settings": {"link": "https://example.com/launch"}},
            {"account": threads, "text": "just words on threads", "publish_at": t},
            {"account": threads, "text": "a video on threads", "publish_at": t, "media_link": vertical_clip},
            {"account": threads, "text": "a carousel on threads", "publish_at": t, "assets": square},
        ]
        for provider, handle in (("instagram_business", igb), ("instagram", igl)):
            posts += [{"account": handle, "text": f"one picture on {provider}", "publish_at": t, "assets": [portrait]},
                      {"account": handle, "text": f"a reel on {provider}", "publish_at": t,
                       "media_link": vertical_clip, "post_type": "reel"}]
        done = publish_all(api, posts)
        # A quote needs the quoted post's id: it goes out once the pictures are up.
        quoted = done[0]["providerPostId"]
        publish_all(api, [{"account": x, "text": "quoting the pictures", "publish_at": at(4),
                           "settings": {"quoteTweetId": quoted}}])
    return {"quoted": quoted}


def upload_gif(api: httpx.Client) -> str:
    """A 3-frame animated GIF asset; its delivery URL once ready."""
    import base64
    import time
    from io import BytesIO

    from PIL import Image

    frames = [Image.new("RGB", (320, 240), c) for c in ("red", "lime", "blue")]
    buf = BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    r = api.post("/v1/assets/upload", json={"filename": "spin.gif", "contentBase64": base64.b64encode(buf.getvalue()).decode()})
    assert r.status_code == 201, r.text
    asset_id = r.json()["asset"]["id"]
    deadline = time.monotonic() + 60
    while (asset := api.get(f"/v1/assets/{asset_id}").json()["asset"])["status"] != "ready":
        assert asset["status"] == "processing" and time.monotonic() < deadline, asset
        time.sleep(0.2)
    return asset["publicUrl"]


def received(stack: Stack, provider: str) -> dict[str, dict]:
    return {d["text"]: d for d in deliveries(stack, provider)}


def test_x_images_video_and_quote(stack: Stack, burst: dict) -> None:
    got = received(stack, "x")
    assert len(got["four pictures"]["media"]) == 4
    (video,) = _videos(got["a video"])
    assert video["codec"] == "h264" and max(video["width"], video["height"]) <= 1280
    assert got["quoting the pictures"]["quoteTweetId"] == burst["quoted"]
    (gif,) = got["an animated gif"]["media"]
    assert gif["mime"] == "image/gif" and gif["size"] > 0


def test_linkedin_member_and_page_multi_image_and_video(stack: Stack, burst: dict) -> None:
    member_got, page_got = received(stack, "linkedin"), received(stack, "linkedin_page")
    assert member_got["member text"]["text"] == "member text" and len(member_got["member pictures"]["media"]) == 3
    assert len(page_got["page pictures"]["media"]) == 2
    assert _videos(page_got["page video"])[0]["codec"] == "h264"


def test_facebook_video_reel_and_story(stack: Stack, burst: dict) -> None:
    got = deliveries(stack, "facebook")
    by_text = {d["text"]: d for d in got}
    assert _videos(by_text["fb video"]) and _videos(by_text["fb reel"])
    assert by_text["fb link"]["link"] == "https://example.com/launch"
    stories = [d for d in got if d["media"] and d["media"][0].get("image", {}).get("height") == 1920]
    assert len(stories) == 1


@pytest.mark.parametrize("provider", ["instagram_business", "instagram"])
def test_instagram_single_image_and_reel(stack: Stack, burst: dict, provider: str) -> None:
    got = received(stack, provider)
    assert got[f"one picture on {provider}"]["media"][0]["image"]["height"] == 1350
    (reel,) = _videos(got[f"a reel on {provider}"])
    assert reel["codec"] == "h264" and reel["height"] > reel["width"]


def test_threads_text_video_and_carousel(stack: Stack, burst: dict) -> None:
    got = received(stack, "threads")
    assert got["just words on threads"]["media"] == []
    assert _videos(got["a video on threads"])[0]["codec"] == "h264"
    assert len(got["a carousel on threads"]["media"]) == 3
