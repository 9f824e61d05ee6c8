"""The image half of the media pipeline: sniffing, probing, planning and rendering, checked on
real files made here (tmp_path) and reopened with Pillow."""

from __future__ import annotations

import builtins
import io
import struct
import time
import wave
import zlib
from dataclasses import replace
from pathlib import Path

import pytest
from PIL import Image, ImageChops, ImageStat

from media import pipeline
from media.images import image_previews, plan_image, probe_image, render_image
from media.sniff import sniff
from media.types import ImageRules, MediaError, MediaInfo, MediaProfile
from providers.media_profiles import DISCORD, TELEGRAM

MAX_PIXELS = 50_000_000
GPS_IFD = 0x8825
ORIENTATION = 0x0112


# ------------------------------------------------------------------------------------ fixtures


def photo(width: int, height: int, *, seed: int = 1) -> Image.Image:
    """Photographic-ish content: gradients plus noise, so JPEG sizes are realistic, and a dark
    left edge / light right edge so crops and rotations are visible."""
    gradient = Image.linear_gradient("L").resize((width, height))
    noise = Image.effect_noise((width, height), 40 + seed)
    across = gradient.transpose(Image.Transpose.ROTATE_90).resize((width, height))
    return Image.merge("RGB", (across, noise, gradient))


def gps_exif(orientation: int = 1) -> Image.Exif:
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    exif[0x010F] = "HeraldCam"  # Make
    gps = exif.get_ifd(GPS_IFD)
    gps[1] = "N"
    gps[2] = (48.0, 51.0, 24.0)
    gps[3] = "E"
    gps[4] = (2.0, 21.0, 3.0)
    return exif


def save(im: Image.Image, path: Path, fmt: str, **params) -> Path:
    im.save(path, fmt, **params)
    return path


def assert_no_metadata(path: Path) -> None:
    data = path.read_bytes()
    with Image.open(path) as im:
        exif = im.getexif()
        assert len(exif) == 0, dict(exif)
        assert not exif.get_ifd(GPS_IFD)
        for key in ("exif", "xmp", "XML:com.adobe.xmp", "comment", "photoshop"):
            assert key not in im.info, key
    assert b"Exif\x00\x00" not in data
    assert b"HeraldCam" not in data


def info_for(path: Path) -> MediaInfo:
    return pipeline.inspect(path, claimed_mime=None, max_pixels=MAX_PIXELS)


# ------------------------------------------------------------------------------------- sniffing


def ftyp(major: bytes, *compatible: bytes) -> bytes:
    body = major + b"\x00\x00\x00\x00" + b"".join(compatible)
    return struct.pack(">I", 8 + len(body)) + b"ftyp" + body + b"\x00\x00\x00\x08free"


def ebml(doc_type: bytes) -> bytes:
    elements = (
        b"\x42\x86\x81\x01" + b"\x42\xf7\x81\x01" + b"\x42\xf2\x81\x04" + b"\x42\xf3\x81\x08"
        + b"\x42\x82" + bytes([0x80 | len(doc_type)]) + doc_type + b"\x42\x87\x81\x04" + b"\x42\x85\x81\x02"
    )
    return b"\x1a\x45\xdf\xa3" + bytes([0x80 | len(elements)]) + elements + b"\x18\x53\x80\x67"


def ogg(first_packet: bytes) -> bytes:
    header = b"OggS" + bytes([0, 2]) + b"\x00" * 8 + b"\x01\x00\x00\x00" + b"\x00" * 8
    return header + bytes([1, len(first_packet)]) + first_packet


def riff(form: bytes, rest: bytes = b"") -> bytes:
    return b"RIFF" + struct.pack("<I", 4 + len(rest)) + form + rest


def pillow_bytes(fmt: str, mode: str = "RGB", **params) -> bytes:
    buf = io.BytesIO()
    Image.new(mode, (8, 8), "red" if mode != "1" else 1).save(buf, fmt, **params)
    return buf.getvalue()


def wav_bytes() -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\x00\x00" * 80)
    return buf.getvalue()


TS_PACKET = b"\x47\x40\x00\x10" + b"\xff" * 184
MP3_FRAME = b"\xff\xfb\x90\x64" + b"\x00" * 413
ADTS_FRAME = b"\xff\xf1\x50\x80\x02\x1f\xfc" + b"\x00" * 9
ID3 = b"ID3\x04\x00\x00\x00\x00\x00\x0a" + b"\x00" * 10

SNIFF_TABLE = [
    # (name written to disk: the extension lies on purpose, content, mime, kind, ext)
    ("a.png", pillow_bytes("JPEG"), "image/jpeg", "image", "jpg"),
    ("a.jpg", pillow_bytes("PNG"), "image/png", "image", "png"),
    ("a.webp", pillow_bytes("GIF"), "image/gif", "image", "gif"),
    ("a.gif", pillow_bytes("WEBP"), "image/webp", "image", "webp"),
    ("a.txt", pillow_bytes("BMP"), "image/bmp", "image", "bmp"),
    ("a.bin", pillow_bytes("TIFF"), "image/tiff", "image", "tiff"),
    ("a.jpg", pillow_bytes("AVIF"), "image/avif", "image", "avif"),
    ("a.jpg", ftyp(b"heic", b"mif1", b"heic"), "image/heic", "image", "heic"),
    ("a.jpg", ftyp(b"mif1", b"mif1", b"heic"), "image/heic", "image", "heic"),
    ("a.jpg", ftyp(b"mif1", b"mif1", b"miaf"), "image/heif", "image", "heif"),
    ("a.mp4", ftyp(b"avif", b"mif1", b"miaf"), "image/avif", "image", "avif"),
    ("a.mov", ftyp(b"isom", b"isom", b"iso2", b"avc1", b"mp41"), "video/mp4", "video", "mp4"),
    ("a.mp4", ftyp(b"mp42", b"mp42", b"isom"), "video/mp4", "video", "mp4"),
    ("a.mp4", ftyp(b"M4V ", b"M4V ", b"mp42"), "video/x-m4v", "video", "m4v"),
    ("a.mp4", ftyp(b"qt  ", b"qt  "), "video/quicktime", "video", "mov"),
    ("a.mp4", ftyp(b"3gp4", b"isom", b"3gp4"), "video/3gpp", "video", "3gp"),
    ("a.mp4", ftyp(b"M4A ", b"M4A ", b"mp42", b"isom"), "audio/mp4", "audio", "m4a"),
    ("a.mkv", ebml(b"webm"), "video/webm", "video", "webm"),
    ("a.webm", ebml(b"matroska"), "video/x-matroska", "video", "mkv"),
    ("a.mp4", riff(b"AVI ", b"LIST\x00\x00\x00\x00"), "video/x-msvideo", "video", "avi"),
    ("a.mp4", TS_PACKET * 3, "video/mp2t", "video", "ts"),
    ("a.mp4", b"\x00\x00\x00\x00" + TS_PACKET[:188] + b"\x00\x00\x00\x00" + TS_PACKET + b"\x00\x00\x00\x00" + TS_PACKET,
     "video/mp2t", "video", "ts"),
    ("a.wav", ID3 + MP3_FRAME, "audio/mpeg", "audio", "mp3"),
    ("a.wav", MP3_FRAME * 2, "audio/mpeg", "audio", "mp3"),
    ("a.mp3", ADTS_FRAME * 2, "audio/aac", "audio", "aac"),
    ("a.mp3", ID3 + ADTS_FRAME * 2, "audio/aac", "audio", "aac"),
    ("a.mp3", wav_bytes(), "audio/wav", "audio", "wav"),
    ("a.mp3", ogg(b"OpusHead\x01\x02\x38\x01\x80\xbb\x00\x00\x00\x00\x00"), "audio/ogg", "audio", "opus"),
    ("a.mp3", ogg(b"\x01vorbis\x00\x00\x00\x00\x02\x44\xac\x00\x00"), "audio/ogg", "audio", "ogg"),
    ("a.mp3", ogg(b"\x80theora\x03\x02\x01\x00\x14\x00\x0f"), "video/ogg", "video", "ogv"),
    ("a.ogg", b"fLaC\x00\x00\x00\x22" + b"\x00" * 34, "audio/flac", "audio", "flac"),
    ("a.png", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n", "application/pdf", "other", "pdf"),
]


@pytest.mark.parametrize(("name", "content", "mime", "kind", "ext"), SNIFF_TABLE)
def test_sniff_reads_the_bytes_not_the_name(tmp_path: Path, name: str, content: bytes, mime: str, kind: str, ext: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    found = sniff(path)
    assert found is not None
    assert (found.mime, found.kind, found.ext) == (mime, kind, ext)


@pytest.mark.parametrize(
    "content",
    [b"hello world, this is text", b"BMW is a car brand, not a bitmap", b"\x00" * 64, b"RIFF\x10\x00\x00\x00ABCD",
     b"\x1a\x45\xdf\xa3\x84\x42\x86\x81\x01", b"\x00\x00\x00\x14ftypzzzz\x00\x00\x00\x00zzzz", b"abc"],
)
def test_sniff_unknown_bytes_is_none(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "x.jpg"
    path.write_bytes(content)
    assert sniff(path) is None


# -------------------------------------------------------------------------------------- probing


def test_probe_reports_displayed_size_and_rotation_of_exif_rotated_jpeg(tmp_path: Path) -> None:
    path = save(photo(400, 300), tmp_path / "rotated.jpg", "JPEG", exif=gps_exif(orientation=6))
    info = probe_image(path, max_pixels=MAX_PIXELS)
    assert (info.mime, info.kind, info.ext) == ("image/jpeg", "image", "jpg")
    assert (info.width, info.height, info.rotation) == (300, 400, 90)
    assert info.has_metadata is True
    assert info.size == path.stat().st_size
    assert info.frames is None and info.duration is None


def test_probe_of_a_clean_jpeg_finds_no_metadata(tmp_path: Path) -> None:
    path = save(photo(64, 48), tmp_path / "clean.jpg", "JPEG")
    info = probe_image(path, max_pixels=MAX_PIXELS)
    assert (info.width, info.height, info.rotation, info.has_metadata) == (64, 48, 0, False)


def test_truncated_jpeg_is_corrupt(tmp_path: Path) -> None:
    full = save(photo(640, 480), tmp_path / "full.jpg", "JPEG", quality=90).read_bytes()
    path = tmp_path / "cut.jpg"
    path.write_bytes(full[: len(full) * 6 // 10])
    with pytest.raises(MediaError) as err:
        pipeline.inspect(path, claimed_mime="image/jpeg", max_pixels=MAX_PIXELS)
    assert err.value.code == "corrupt_file"
    assert "truncated" in err.value.message


def test_zero_bytes_is_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    for call in (lambda: pipeline.inspect(path, claimed_mime="image/jpeg", max_pixels=MAX_PIXELS),
                 lambda: probe_image(path, max_pixels=MAX_PIXELS)):
        with pytest.raises(MediaError) as err:
            call()
        assert err.value.code == "empty_file"


def test_png_claimed_as_video_is_a_mime_mismatch(tmp_path: Path) -> None:
    path = save(photo(32, 32), tmp_path / "clip.mp4", "PNG")
    with pytest.raises(MediaError) as err:
        pipeline.inspect(path, claimed_mime="video/mp4; codecs=avc1", max_pixels=MAX_PIXELS)
    assert err.value.code == "mime_mismatch"
    assert "video/mp4" in err.value.message and "image/png" in err.value.message


def test_claims_that_agree_or_say_nothing_are_accepted(tmp_path: Path) -> None:
    path = save(photo(32, 32), tmp_path / "a.png", "PNG")
    for claim in (None, "image/jpeg", "application/octet-stream", ""):
        assert pipeline.inspect(path, claimed_mime=claim, max_pixels=MAX_PIXELS).mime == "image/png"


def test_unknown_bytes(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(b"just some text\n")
    info = pipeline.inspect(path, claimed_mime="text/plain", max_pixels=MAX_PIXELS)
    assert (info.mime, info.kind, info.size) == ("application/octet-stream", "other", 15)
    with pytest.raises(MediaError) as err:
        pipeline.inspect(path, claimed_mime="image/jpeg", max_pixels=MAX_PIXELS)
    assert err.value.code == "corrupt_file"
    with pytest.raises(MediaError) as err:
        pipeline.inspect(path, claimed_mime="image/x-unheard-of", max_pixels=MAX_PIXELS)
    assert err.value.code == "unsupported_type"


def test_heic_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    path = tmp_path / "IMG_0001.HEIC"
    path.write_bytes(ftyp(b"heic", b"mif1", b"heic") + b"\x00" * 100)
    with pytest.raises(MediaError) as err:
        pipeline.inspect(path, claimed_mime="image/heic", max_pixels=MAX_PIXELS)
    assert err.value.code == "unsupported_type"
    assert "HEIC" in err.value.message and "JPEG" in err.value.message


def png_header_only(width: int, height: int, bit_depth: int = 1, colour: int = 0, idat: bytes = b"") -> bytes:
    """A PNG that declares a size; its IDAT is whatever is given (often nothing decodable)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def bomb_png(side: int) -> bytes:
    """A valid 1-bit PNG of side x side zeros: ~110 KB on disk for 30,000 x 30,000 (900 MP,
    ~2.7 GB as RGB once decoded). Built by streaming zlib, never holding the pixels."""
    row = b"\x00" * (1 + (side + 7) // 8)  # filter byte + packed bits
    packer = zlib.compressobj(9)
    parts = [packer.compress(row * 1000) for _ in range(side // 1000)]
    parts.append(packer.compress(row * (side % 1000)))
    parts.append(packer.flush())
    return png_header_only(side, side, idat=b"".join(parts))


def test_decompression_bomb_is_refused_before_decoding(tmp_path: Path) -> None:
    path = tmp_path / "bomb.png"
    path.write_bytes(bomb_png(30_000))
    assert path.stat().st_size < 300_000
    started = time.perf_counter()
    with pytest.raises(MediaError) as err:
        pipeline.inspect(path, claimed_mime="image/png", max_pixels=MAX_PIXELS)
    assert err.value.code == "decompression_bomb"
    # Decoding 900 MP would take many seconds (and gigabytes); refusing from the header is instant.
    assert time.perf_counter() - started < 1.0


def test_our_pixel_limit_applies_below_pillows_global_one(tmp_path: Path) -> None:
    # 9,000 x 9,000 = 81 MP: under Pillow's own guard (~89 MP warning, ~179 MP error), over ours.
    # The IDAT holds no pixel data at all, so a decode attempt would say corrupt_file instead.
    path = tmp_path / "big.png"
    path.write_bytes(png_header_only(9_000, 9_000))
    with pytest.raises(MediaError) as err:
        probe_image(path, max_pixels=20_000_000)
    assert err.value.code == "decompression_bomb"
    assert "81,000,000" in err.value.message and "20,000,000" in err.value.message
    with pytest.raises(MediaError) as err:
        probe_image(path, max_pixels=100_000_000)
    assert err.value.code == "corrupt_file"  # within the limit it is decoded, and it is damaged


def test_absurd_dimensions_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "strip.png"
    path.write_bytes(png_header_only(40_000, 2))
    with pytest.raises(MediaError) as err:
        probe_image(path, max_pixels=MAX_PIXELS)
    assert err.value.code == "dimensions_too_large"
    assert "40000x2" in err.value.message


def test_animated_gif_frames_and_duration(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (40, 30), c) for c in ("red", "green", "blue")]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=[100, 200, 300], loop=0)
    info = probe_image(path, max_pixels=MAX_PIXELS)
    assert (info.width, info.height, info.frames) == (40, 30, 3)
    assert info.duration == pytest.approx(0.6)
    assert info.has_metadata is False


# ---------------------------------------------------------------------------- metadata stripping


@pytest.mark.parametrize("progressive", [False, True])
def test_gps_never_leaves_in_a_lossless_strip(tmp_path: Path, progressive: bool) -> None:
    source = save(photo(640, 480), tmp_path / "gps.jpg", "JPEG", exif=gps_exif(), comment=b"shot at home",
                  progressive=progressive, restart_marker_blocks=4 if progressive else 0)
    with Image.open(source) as im:
        assert im.getexif().get_ifd(GPS_IFD)  # the fixture really carries GPS
    info = info_for(source)
    assert info.has_metadata is True
    out = tmp_path / "out.jpg"
    result = render_image(source, info, DISCORD.image, None, out)
    assert result.actions == ("strip_metadata lossless",)
    assert_no_metadata(out)
    with Image.open(source) as a, Image.open(out) as b:
        # The compressed image data was copied, not re-encoded: identical pixels.
        assert a.size == b.size and ImageChops.difference(a.convert("RGB"), b.convert("RGB")).getbbox() is None
    assert result.size == out.stat().st_size < source.stat().st_size
    assert info_for(out).has_metadata is False


def test_gps_never_leaves_a_rotated_photo(tmp_path: Path) -> None:
    source = save(photo(600, 400), tmp_path / "gps6.jpg", "JPEG", exif=gps_exif(orientation=6))
    info = info_for(source)
    result = render_image(source, info, DISCORD.image, None, tmp_path / "out.jpg")
    assert "exif_transpose" in result.actions and "strip_metadata" in result.actions
    assert_no_metadata(Path(result.path))
    with Image.open(result.path) as im:
        assert im.size == (400, 600) == (result.width, result.height)
        # Orientation 6 turns the stored image 90° clockwise: its dark left edge is now on top.
        top, bottom = im.crop((0, 0, 400, 20)).convert("L"), im.crop((0, 580, 400, 600)).convert("L")
        assert ImageStat.Stat(top).mean[0] < ImageStat.Stat(bottom).mean[0]


def test_png_and_webp_metadata_is_stripped(tmp_path: Path) -> None:
    from PIL.PngImagePlugin import PngInfo

    text = PngInfo()
    text.add_text("Location", "48.85N 2.35E")
    png = save(photo(200, 100), tmp_path / "a.png", "PNG", exif=gps_exif(), pnginfo=text)
    webp = save(photo(200, 100), tmp_path / "a.webp", "WEBP", exif=gps_exif(), xmp=b"<x:xmpmeta>GPS</x:xmpmeta>")
    for source in (png, webp):
        info = info_for(source)
        assert info.has_metadata is True
        result = render_image(source, info, DISCORD.image, None, tmp_path / f"out-{source.name}")
        assert result.mime == info.mime and result.actions == ("strip_metadata lossless",)
        assert_no_metadata(Path(result.path))
        assert b"48.85N" not in Path(result.path).read_bytes() and b"xmpmeta" not in Path(result.path).read_bytes()
        with Image.open(result.path) as im:
            im.load()
            assert im.size == (200, 100)


def test_data_after_the_jpeg_end_is_dropped(tmp_path: Path) -> None:
    # Motion photos and MPF files append more data (a video, a depth map) after the image's EOI.
    source = save(photo(100, 100), tmp_path / "motion.jpg", "JPEG")
    source.write_bytes(source.read_bytes() + b"\x00\x00\x00\x18ftypmp42" + b"secret video" * 10)
    info = info_for(source)
    assert info.has_metadata is True
    result = render_image(source, info, DISCORD.image, None, tmp_path / "out.jpg")
    assert b"secret video" not in Path(result.path).read_bytes()


def test_clean_file_that_fits_passes_through_byte_for_byte(tmp_path: Path) -> None:
    source = save(photo(300, 200), tmp_path / "clean.png", "PNG")
    info = info_for(source)
    assert pipeline.plan(info, DISCORD, None).passthrough
    result = pipeline.render(source, info, DISCORD, None, tmp_path / "out.png")
    assert result.actions == ()
    assert Path(result.path).read_bytes() == source.read_bytes()


# -------------------------------------------------------------------------------- fitting rules


def test_downscale_to_telegram_side_sum(tmp_path: Path) -> None:
    source = save(photo(9000, 1500), tmp_path / "pano.jpg", "JPEG", quality=80)
    info = info_for(source)
    plan = pipeline.plan(info, TELEGRAM, None)
    assert plan.target_width + plan.target_height <= 10_000
    assert plan.target_width / plan.target_height == pytest.approx(6.0, rel=1e-3)
    result = pipeline.render(source, info, TELEGRAM, None, tmp_path / "out.jpg")
    with Image.open(result.path) as im:
        assert im.format == "JPEG"
        assert im.size == (plan.target_width, plan.target_height) == (result.width, result.height)
        assert im.width + im.height <= 10_000
    assert result.size <= TELEGRAM.image.max_bytes


def wide_strip(tmp_path: Path) -> tuple[Path, MediaInfo]:
    # 2100 x 100 = 21:1, over Telegram's 20. Left half black, right half white, so crops show.
    im = Image.new("RGB", (2100, 100), "black")
    im.paste((255, 255, 255), (1050, 0, 2100, 100))
    path = save(im, tmp_path / "strip.png", "PNG")
    return path, info_for(path)


def test_aspect_out_of_bounds_is_refused_without_fit(tmp_path: Path) -> None:
    _, info = wide_strip(tmp_path)
    with pytest.raises(MediaError) as err:
        pipeline.plan(info, TELEGRAM, None)
    assert err.value.code == "media_unfit"
    assert "21" in err.value.message and "20" in err.value.message and "pad" in err.value.message


def test_aspect_pad_reaches_the_nearest_allowed_ratio(tmp_path: Path) -> None:
    path, info = wide_strip(tmp_path)
    result = pipeline.render(path, info, TELEGRAM, "pad", tmp_path / "pad.png")
    with Image.open(result.path) as im:
        assert im.size == (2100, 105)  # ceil(2100 / 20)
        assert im.width / im.height <= 20
        rgb = im.convert("RGB")
        assert rgb.getpixel((10, 0)) == (255, 255, 255)  # the padding band is white
        assert rgb.getpixel((10, 52)) == (0, 0, 0)  # the image itself is in the middle


def test_aspect_crop_keeps_the_centre(tmp_path: Path) -> None:
    path, info = wide_strip(tmp_path)
    result = pipeline.render(path, info, TELEGRAM, "crop", tmp_path / "crop.png")
    with Image.open(result.path) as im:
        assert im.size == (2000, 100)  # floor(100 * 20)
        rgb = im.convert("RGB")
        # 50 px cut from each side: the black/white boundary is still at the centre.
        assert rgb.getpixel((999, 50)) == (0, 0, 0) and rgb.getpixel((1000, 50)) == (255, 255, 255)


def test_jpeg_quality_search_lands_under_max_bytes(tmp_path: Path) -> None:
    source = save(photo(1200, 900), tmp_path / "noisy.jpg", "JPEG", quality=95)
    info = info_for(source)
    limit = source.stat().st_size // 3
    rules = ImageRules(formats=("image/jpeg",), max_bytes=limit)
    plan = plan_image(info, rules, None)
    assert plan.actions == [f"recompress to <= {limit:,} bytes"]
    result = render_image(source, info, rules, None, tmp_path / "small.jpg")
    assert result.size <= limit and Path(result.path).stat().st_size == result.size
    assert any(a.startswith("quality ") for a in result.actions)
    with Image.open(result.path) as im:
        assert im.size == (1200, 900)  # quality alone was enough: no downscale


def test_byte_limit_is_never_exceeded(tmp_path: Path) -> None:
    source = save(photo(800, 600), tmp_path / "noisy.jpg", "JPEG", quality=95)
    info = info_for(source)
    tight = ImageRules(formats=("image/jpeg",), max_bytes=8_000)
    result = render_image(source, info, tight, None, tmp_path / "tiny.jpg")
    assert result.size <= 8_000
    assert any("(size)" in a for a in result.actions)  # it had to downscale too
    with Image.open(result.path) as im:
        assert im.width / im.height == pytest.approx(800 / 600, rel=0.02)
    impossible = ImageRules(formats=("image/jpeg",), max_bytes=200)
    with pytest.raises(MediaError) as err:
        render_image(source, info, impossible, None, tmp_path / "never.jpg")
    assert err.value.code == "media_unfit"
    assert not (tmp_path / "never.jpg").exists()


def test_png_converts_to_jpeg_where_png_is_refused(tmp_path: Path) -> None:
    im = Image.new("RGBA", (120, 80), (200, 0, 0, 255))
    im.paste((0, 0, 0, 0), (0, 0, 60, 80))  # left half transparent
    source = save(im, tmp_path / "logo.png", "PNG")
    info = info_for(source)
    jpeg_only = MediaProfile(key="jpegonly.v1", image=ImageRules(formats=("image/jpeg",)), video=None,
                             max_other_bytes=None, source="test")
    plan = pipeline.plan(info, jpeg_only, None)
    assert plan.target_mime == "image/jpeg" and "convert image/png->image/jpeg" in plan.actions
    result = pipeline.render(source, info, jpeg_only, None, tmp_path / "logo.out")
    assert (result.mime, result.ext) == ("image/jpeg", "jpg")
    with Image.open(result.path) as out:
        assert out.format == "JPEG" and out.mode == "RGB" and out.size == (120, 80)
        r, g, b = out.getpixel((20, 40))
        assert min(r, g, b) > 245  # transparency flattened on white, not black
        r, g, b = out.getpixel((100, 40))
        assert r > 180 and g < 40 and b < 40


def test_animated_gif_kept_for_discord_first_frame_for_telegram(tmp_path: Path) -> None:
    frames = [Image.new("P", (60, 40), i) for i in (10, 20, 30)]
    for f in frames:
        f.putpalette([v for i in range(256) for v in (i, 255 - i, 128)])
    source = tmp_path / "anim.gif"
    frames[0].save(source, save_all=True, append_images=frames[1:], duration=100, loop=0, comment=b"made in Paris")
    info = info_for(source)
    assert info.frames == 3 and info.has_metadata is True  # the comment

    kept = pipeline.render(source, info, DISCORD, None, tmp_path / "kept.gif")
    assert kept.actions == ("strip_metadata lossless",)
    assert b"made in Paris" not in Path(kept.path).read_bytes()
    with Image.open(kept.path) as im:
        assert im.n_frames == 3 and "comment" not in im.info

    still = pipeline.render(source, info, TELEGRAM, None, tmp_path / "still.jpg")
    assert still.mime == "image/jpeg" and "first_frame" in still.actions
    with Image.open(still.path) as im:
        assert im.format == "JPEG" and im.size == (60, 40)

    too_big = replace(DISCORD.image, max_bytes=info.size - 1)
    first = render_image(source, info, too_big, None, tmp_path / "first.gif")
    assert "first_frame" in first.actions
    with Image.open(first.path) as im:
        assert getattr(im, "n_frames", 1) == 1


CASES = [
    # (stored size, orientation, rules, fit)
    ((4000, 3000), 1, TELEGRAM.image, None),
    ((3000, 4000), 6, ImageRules(formats=("image/jpeg",), max_width=1080, max_height=1080), None),
    ((2500, 1000), 8, ImageRules(formats=("image/jpeg",), max_width=1280, min_aspect=0.8, max_aspect=1.91), "crop"),
    ((2500, 1000), 1, ImageRules(formats=("image/jpeg",), max_width=1440, min_aspect=0.8, max_aspect=1.91), "pad"),
    ((500, 2000), 1, ImageRules(formats=("image/png",), convert_to="image/png", max_side_sum=1001, max_ratio=3), "pad"),
    ((1001, 999), 3, ImageRules(formats=("image/webp",), convert_to="image/webp", max_width=333), None),
]


@pytest.mark.parametrize(("size", "orientation", "rules", "fit"), CASES)
def test_plan_is_pure_and_predicts_the_rendition(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, size: tuple[int, int], orientation: int, rules: ImageRules, fit
) -> None:
    source = save(photo(*size), tmp_path / "src.jpg", "JPEG", quality=85, exif=gps_exif(orientation))
    info = info_for(source)

    # Pure: the plan comes from MediaInfo alone, with every way of touching a file removed.
    def no_files(*args, **kwargs):
        raise AssertionError("plan_image touched a file")

    with monkeypatch.context() as m:
        m.setattr(builtins, "open", no_files)
        m.setattr(Image, "open", no_files)
        plan = plan_image(info, rules, fit)
    assert plan_image(info, rules, fit) == plan  # and deterministic

    result = render_image(source, info, rules, fit, tmp_path / "out")
    with Image.open(result.path) as im:
        assert im.size == (plan.target_width, plan.target_height) == (result.width, result.height)
        assert Image.MIME[im.format] == plan.target_mime == result.mime
        assert len(im.getexif()) == 0
        low = max(rules.min_aspect or 0, 1 / rules.max_ratio if rules.max_ratio else 0)
        high = min(rules.max_aspect or float("inf"), rules.max_ratio or float("inf"))
        assert low <= im.width / im.height <= high
        assert not rules.max_width or im.width <= rules.max_width
        assert not rules.max_side_sum or im.width + im.height <= rules.max_side_sum


# ------------------------------------------------------------------------------------- previews


def test_thumbnail_is_upright_small_and_clean(tmp_path: Path) -> None:
    source = save(photo(1600, 1200), tmp_path / "p.jpg", "JPEG", exif=gps_exif(orientation=6))
    info = info_for(source)
    [thumb] = pipeline.previews(source, info, tmp_path / "previews")
    assert thumb.role == "thumbnail" and thumb.mime == "image/jpeg"
    with Image.open(thumb.path) as im:
        assert im.format == "JPEG"
        assert im.size == (thumb.width, thumb.height) == (240, 320)  # portrait: the EXIF turn applied
    assert_no_metadata(Path(thumb.path))


def test_transparent_png_thumbnail_is_flattened_on_white(tmp_path: Path) -> None:
    source = save(Image.new("RGBA", (800, 400), (0, 0, 0, 0)), tmp_path / "clear.png", "PNG")
    [thumb] = image_previews(source, info_for(source), tmp_path)
    with Image.open(thumb.path) as im:
        assert im.size == (320, 160)
        assert im.convert("RGB").getpixel((160, 80)) == (255, 255, 255)


# ------------------------------------------------------------------------------ kinds and files


def test_documents_pass_through_within_the_file_limit(tmp_path: Path) -> None:
    path = tmp_path / "report.pdf"
    path.write_bytes(b"%PDF-1.7\n" + b"0" * 1000)
    info = pipeline.inspect(path, claimed_mime="application/pdf", max_pixels=MAX_PIXELS)
    assert (info.mime, info.kind) == ("application/pdf", "other")
    assert pipeline.plan(info, TELEGRAM, None).passthrough
    result = pipeline.render(path, info, TELEGRAM, None, tmp_path / "out" / "report.pdf")
    assert Path(result.path).read_bytes() == path.read_bytes() and result.actions == ()
    with pytest.raises(MediaError) as err:
        pipeline.plan(replace(info, size=60_000_000), TELEGRAM, None)
    assert err.value.code == "media_unfit" and "telegram" in err.value.message


def test_a_kind_the_network_does_not_take_is_unfit(tmp_path: Path) -> None:
    source = save(photo(100, 100), tmp_path / "a.jpg", "JPEG")
    no_images = replace(TELEGRAM, key="textonly.v1", image=None, video=None, max_other_bytes=None)
    with pytest.raises(MediaError) as err:
        pipeline.plan(info_for(source), no_images, None)
    assert (err.value.code, err.value.message) == ("media_unfit", "textonly does not accept images")
    video_info = MediaInfo(mime="video/mp4", kind="video", ext="mp4", size=1000, width=640, height=360)
    with pytest.raises(MediaError) as err:
        pipeline.plan(video_info, no_images, None)
    assert err.value.message == "textonly does not accept video"
