"""Media benchmark: how fast Herald makes renditions, measured against a plain baseline.

    python bench/media.py                  # 3 photos x 5 repeats, and a 60 s 1080p clip
    python bench/media.py --quick          # 1 photo x 2 repeats, a 10 s clip
    python bench/media.py --skip-video     # images only
    python bench/media.py --images 5 --repeats 10 --photo-size 6000x4000 --video-seconds 30

(a) Photos. Generates seeded, deterministic 12-megapixel JPEGs (4000x3000, quality 92, ~4.5 MB:
gradients, a mid-scale texture and fine grain from ``random.Random(seed)``, so the JPEG size is
that of a phone photo rather than of a flat test card; ``--grain`` sets the noise), then times
1080-px renditions (longest side 1080, JPEG quality 90) two ways in the same run, alternating so
both see the same machine state:

* ``render_image``: Herald's path (``Image.draft`` DCT-scaled decode, ``reduce`` + Lanczos);
* baseline: ``Image.open(p).resize(size, LANCZOS)`` after a full decode, same JPEG settings.

It prints renditions per second for each and the ratio (target: >= 3x).

(b) Video. Generates a 1080p30 H.264/AAC clip (ffmpeg's ``testsrc2`` pattern plus a sine tone,
x264 veryfast; synthetic content is easier to encode than camera footage, so treat the figure as
an upper bound) with the ffmpeg ``media.tools.resolve_tools()`` finds, then times
``media.video.render_video`` to a 1280x720 rendition and prints the speed as a multiple of real
time (clip seconds per wall-clock second).

Everything is written to a temporary directory that is removed at the end (``--keep`` keeps it).
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from PIL import Image  # noqa: E402

from media.images import probe_image, render_image  # noqa: E402
from media.types import ImageRules, VideoRules  # noqa: E402

MAX_PIXELS = 200_000_000


def make_photo(seed: int, width: int, height: int, grain: float = 0.06) -> Image.Image:
    rng = random.Random(seed)
    across = Image.linear_gradient("L").resize((width, height))
    down = across.transpose(Image.Transpose.ROTATE_90).resize((width, height))
    radial = Image.radial_gradient("L").resize((width, height))
    base = Image.merge("RGB", (across, down, radial))
    tw, th = max(1, width // 8), max(1, height // 8)
    texture = Image.frombytes("RGB", (tw, th), rng.randbytes(tw * th * 3)).resize((width, height), Image.Resampling.BICUBIC)
    noise = Image.frombytes("L", (width, height), rng.randbytes(width * height)).convert("RGB")
    return Image.blend(Image.blend(base, texture, 0.45), noise, grain)


def baseline_rendition(path: Path, side: int, out: Path) -> None:
    with Image.open(path) as im:
        scale = side / max(im.size)
        size = (round(im.width * scale), round(im.height * scale))
        small = im.resize(size, Image.Resampling.LANCZOS)
    small.save(out, "JPEG", quality=90, optimize=True)


def _decode_ms(photos: list[Path], draft: tuple[int, int] | None, rounds: int = 3) -> float:
    started = time.perf_counter()
    for _ in range(rounds):
        for path in photos:
            with Image.open(path) as im:
                if draft:
                    im.draft("RGB", draft)
                im.load()
    return (time.perf_counter() - started) / (rounds * len(photos)) * 1000


def bench_images(
    work: Path, count: int, repeats: int, width: int, height: int, side: int, grain: float
) -> dict[str, float]:
    print(f"(a) photos: {count} x {width}x{height} JPEG (grain {grain:g}), {repeats} repeats each, "
          f"renditions with longest side {side}")
    rules = ImageRules(formats=("image/jpeg",), max_width=side, max_height=side)
    photos = []
    for seed in range(count):
        path = work / f"photo-{seed}.jpg"
        make_photo(seed, width, height, grain).save(path, "JPEG", quality=92)
        photos.append(path)
    sizes = [p.stat().st_size for p in photos]
    print(f"    generated: {statistics.mean(sizes) / 1e6:.2f} MB average")
    infos = [probe_image(p, max_pixels=MAX_PIXELS) for p in photos]

    # Warm-up (imports, first-call allocations) outside the timings.
    render_image(photos[0], infos[0], rules, None, work / "warm.jpg")
    baseline_rendition(photos[0], side, work / "warm-base.jpg")

    herald_times: list[float] = []
    base_times: list[float] = []
    for _ in range(repeats):
        for path, info in zip(photos, infos):
            started = time.perf_counter()
            result = render_image(path, info, rules, None, work / "herald.jpg")
            herald_times.append(time.perf_counter() - started)
            started = time.perf_counter()
            baseline_rendition(path, side, work / "base.jpg")
            base_times.append(time.perf_counter() - started)
    with Image.open(work / "base.jpg") as base:
        assert (result.width, result.height) == base.size, "both paths must produce the same size"

    herald_rate = len(herald_times) / sum(herald_times)
    base_rate = len(base_times) / sum(base_times)
    probe_started = time.perf_counter()
    for path in photos:
        probe_image(path, max_pixels=MAX_PIXELS)
    probe_ms = (time.perf_counter() - probe_started) / len(photos) * 1000
    print(f"    render_image : {herald_rate:6.2f} renditions/s  (median {statistics.median(herald_times) * 1000:.0f} ms, "
          f"{result.width}x{result.height}, {result.size / 1000:.0f} KB)")
    print(f"    baseline     : {base_rate:6.2f} renditions/s  (median {statistics.median(base_times) * 1000:.0f} ms)")
    print(f"    speed-up     : {herald_rate / base_rate:.2f}x   (target >= 3x)")
    print(f"    probe_image  : {probe_ms:.0f} ms per photo (header, 1/8-scale decode check, metadata walk)")
    # Where the time goes: DCT scaling skips most of the inverse DCT and colour conversion, but
    # every compressed bit must still be Huffman-decoded; the 1/8-scale decode approximates
    # that floor, which bounds the speed-up any draft-based path can reach on a given file.
    full_ms = _decode_ms(photos, None)
    half_ms = _decode_ms(photos, (side, side * height // width))
    eighth_ms = _decode_ms(photos, (max(1, width // 8), max(1, height // 8)))
    print(f"    decode only  : full {full_ms:.0f} ms, draft for {side} px {half_ms:.0f} ms, "
          f"1/8 scale {eighth_ms:.0f} ms (the entropy-decoding floor)")
    return {"herald_rate": herald_rate, "base_rate": base_rate, "ratio": herald_rate / base_rate}


def bench_video(work: Path, seconds: float) -> dict[str, float] | None:
    try:
        from media.tools import resolve_tools
        from media.video import probe_av, render_video
    except ImportError as exc:
        print(f"(b) video: skipped, the video pipeline is not importable ({exc})")
        return None
    tools = resolve_tools()
    source = work / "clip-1080p.mp4"
    print(f"(b) video: {seconds:g} s 1080p30 H.264/AAC clip -> 1280x720 with {tools.describe()}")
    started = time.perf_counter()
    subprocess.run(
        [tools.ffmpeg, "-hide_banner", "-loglevel", "error", "-y",
         "-f", "lavfi", "-i", f"testsrc2=size=1920x1080:rate=30:duration={seconds}",
         "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}",
         "-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-pix_fmt", "yuv420p",
         "-c:a", "aac", "-b:a", "128k", "-shortest", str(source)],
        check=True,
    )
    print(f"    generated in {time.perf_counter() - started:.1f} s: {source.stat().st_size / 1e6:.1f} MB")
    info = probe_av(str(source), tools)
    rules = VideoRules(max_width=1280, max_height=720)
    started = time.perf_counter()
    result = render_video(str(source), info, rules, None, str(work / "clip-720p.mp4"), tools)
    elapsed = time.perf_counter() - started
    duration = info.duration or seconds
    print(f"    render_video : {elapsed:.1f} s for {duration:.1f} s of video = {duration / elapsed:.2f}x real time "
          f"({result.width}x{result.height}, {result.size / 1e6:.1f} MB, actions: {', '.join(result.actions)})")
    return {"elapsed": elapsed, "realtime": duration / elapsed}


def parse_size(text: str) -> tuple[int, int]:
    width, _, height = text.lower().partition("x")
    return int(width), int(height)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=3, help="how many photos to generate (default 3)")
    parser.add_argument("--repeats", type=int, default=5, help="renditions per photo and path (default 5)")
    parser.add_argument("--photo-size", type=parse_size, default=(4000, 3000), help="WxH (default 4000x3000)")
    parser.add_argument("--side", type=int, default=1080, help="longest side of the rendition (default 1080)")
    parser.add_argument("--grain", type=float, default=0.06,
                        help="weight of per-pixel noise in the photos (default 0.06, ~4.5 MB per 12 MP; "
                             "0.02 gives ~2.8 MB): more grain, more bits to Huffman-decode")
    parser.add_argument("--video-seconds", type=float, default=60, help="clip length (default 60)")
    parser.add_argument("--skip-video", action="store_true")
    parser.add_argument("--quick", action="store_true", help="1 photo x 2 repeats and a 10 s clip")
    parser.add_argument("--keep", action="store_true", help="keep the generated files and print where")
    args = parser.parse_args()
    if args.quick:
        args.images, args.repeats, args.video_seconds = 1, 2, 10

    print(f"machine: {os.cpu_count()} cores, Python {platform.python_version()}, Pillow {Image.__version__}")
    work = Path(tempfile.mkdtemp(prefix="herald-bench-media-"))
    try:
        width, height = args.photo_size
        bench_images(work, args.images, args.repeats, width, height, args.side, args.grain)
        if not args.skip_video:
            bench_video(work, args.video_seconds)
    finally:
        if args.keep:
            print(f"(files kept in {work})")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
