"""media.tools and media.video against real clips made once per module with the resolved ffmpeg
(tiny: 320x240, 2 s), plus pure tests of the rendition plan and of the ffprobe JSON mapping."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from media import video
from media.tools import MediaTools, resolve_tools
from media.types import MediaError, MediaInfo, Sniffed, VideoRules
from media.video import (
    cover_frame,
    info_from_ffprobe,
    mp4_faststart,
    plan_video,
    probe_av,
    render_video,
    video_previews,
)

IMAGEIO_FFMPEG = __import__("imageio_ffmpeg").get_ffmpeg_exe()
SMALL = "testsrc=size=320x240:rate=25:duration=2"


@pytest.fixture(scope="module")
def tools() -> MediaTools:
    return resolve_tools()


def _ff(tools: MediaTools, *args: str) -> None:
    cmd = [tools.ffmpeg, "-hide_banner", "-nostdin", "-y", "-loglevel", "error", *args]
    subprocess.run(cmd, check=True, timeout=60)


@pytest.fixture(scope="module")
def clips(tools: MediaTools, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    d = tmp_path_factory.mktemp("clips")
    p = {name: str(d / name) for name in (
        "plain.mp4", "fast.mp4", "vp9.webm", "rot.mp4", "audio_only.mp4", "audio.m4a", "noaudio.mp4",
        "corrupt.mp4", "big.mp4", "long.mp4", "wide.mp4", "hd.mp4")}
    sine = ["-f", "lavfi", "-i", "sine=frequency=440:duration=2"]
    x264 = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
    # ffmpeg writes moov after mdat unless told otherwise: a typical "not faststart" upload.
    _ff(tools, "-f", "lavfi", "-i", SMALL, *sine, *x264, "-c:a", "aac", "-shortest", p["plain.mp4"])
    _ff(tools, "-i", p["plain.mp4"], "-c", "copy", "-movflags", "+faststart", p["fast.mp4"])
    _ff(tools, "-f", "lavfi", "-i", SMALL, *sine, "-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8",
        "-pix_fmt", "yuv420p", "-c:a", "libopus", "-shortest", p["vp9.webm"])
    # A phone held upright: landscape-coded pixels plus a display matrix (90° counter-clockwise).
    _ff(tools, "-display_rotation", "90", "-i", p["plain.mp4"], "-c", "copy", p["rot.mp4"])
    _ff(tools, *sine, "-c:a", "aac", p["audio_only.mp4"])  # brand isom: claims to be a video
    _ff(tools, *sine, "-c:a", "aac", p["audio.m4a"])  # brand M4A: an audio file
    _ff(tools, "-f", "lavfi", "-i", SMALL, *x264, "-movflags", "+faststart", p["noaudio.mp4"])
    data = Path(p["plain.mp4"]).read_bytes()
    Path(p["corrupt.mp4"]).write_bytes(data[: len(data) // 2])  # cut before the moov at the end
    # Noisy high-quality source, far over a small byte budget.
    _ff(tools, "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=2,noise=alls=20:allf=t", *sine,
        "-c:v", "libx264", "-preset", "ultrafast", "-crf", "12", "-pix_fmt", "yuv420p", "-c:a", "aac",
        "-shortest", p["big.mp4"])
    # Long enough that ffmpeg reports progress (every 0.5 s) well before it finishes.
    _ff(tools, "-f", "lavfi", "-i", "testsrc2=size=640x480:rate=30:duration=40", *x264, "-crf", "30", p["long.mp4"])
    _ff(tools, "-f", "lavfi", "-i", "testsrc=size=8200x16:rate=1:duration=1", *x264, p["wide.mp4"])
    _ff(tools, "-f", "lavfi", "-i", "testsrc=size=1600x900:rate=5:duration=1", *x264, p["hd.mp4"])
    return p


# ----------------------------------------------------------------------------------- tools


@pytest.fixture
def fresh_tools_cache():
    resolve_tools.cache_clear()
    yield
    resolve_tools.cache_clear()


def test_setting_that_does_not_exist_is_a_clear_error(fresh_tools_cache):
    with pytest.raises(MediaError) as err:
        resolve_tools(ffmpeg="/nonexistent/bin/ffmpeg")
    assert err.value.code == "tool_missing"
    assert "HERALD_FFMPEG_PATH" in err.value.message and "/nonexistent/bin/ffmpeg" in err.value.message
    with pytest.raises(MediaError) as err:
        resolve_tools(ffprobe="/nonexistent/bin/ffprobe")
    assert "HERALD_FFPROBE_PATH" in err.value.message


def test_setting_that_is_not_executable_is_refused(fresh_tools_cache, tmp_path: Path):
    plain_file = tmp_path / "ffmpeg"
    plain_file.write_text("not a program")
    plain_file.chmod(0o644)
    with pytest.raises(MediaError, match="not executable"):
        resolve_tools(ffmpeg=str(plain_file))


def test_setting_wins_then_path_then_imageio(fresh_tools_cache, tmp_path: Path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "ffmpeg").symlink_to(IMAGEIO_FFMPEG)
    fake_probe = bin_dir / "ffprobe"
    fake_probe.write_text("#!/bin/sh\nexit 0\n")
    fake_probe.chmod(fake_probe.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", str(bin_dir))

    on_path = resolve_tools()
    assert (on_path.ffmpeg_source, on_path.ffmpeg) == ("path", str(bin_dir / "ffmpeg"))
    assert (on_path.probe_with, on_path.ffprobe) == ("ffprobe", str(fake_probe))
    assert resolve_tools() is on_path  # cached per arguments

    explicit = resolve_tools(ffmpeg=IMAGEIO_FFMPEG)
    assert (explicit.ffmpeg_source, explicit.ffmpeg) == ("setting", IMAGEIO_FFMPEG)

    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    resolve_tools.cache_clear()
    fallback = resolve_tools()
    assert (fallback.ffmpeg_source, fallback.ffmpeg) == ("imageio-ffmpeg", IMAGEIO_FFMPEG)
    assert (fallback.probe_with, fallback.ffprobe) == ("pyav", None)


def test_describe_names_version_source_and_prober(fresh_tools_cache, monkeypatch, tmp_path: Path):
    monkeypatch.setenv("PATH", str(tmp_path))
    line = resolve_tools().describe()
    assert line.startswith("ffmpeg ") and "(imageio-ffmpeg), probe: pyav" in line
    version = line.split()[1]
    assert version[0].isdigit(), line


# ----------------------------------------------------------------------------------- probe


def test_probe_h264_mp4_fields(clips, tools):
    info = probe_av(clips["plain.mp4"], tools)
    assert (info.mime, info.kind, info.ext) == ("video/mp4", "video", "mp4")
    assert (info.video_codec, info.pixel_format, info.width, info.height) == ("h264", "yuv420p", 320, 240)
    assert info.fps == 25.0 and info.duration == pytest.approx(2.0, abs=0.1)
    assert info.has_audio and info.audio_codec == "aac"
    assert info.bitrate and info.bitrate > 10_000
    assert info.size == os.path.getsize(clips["plain.mp4"])
    assert "mp4" in info.container.split(",") and info.rotation == 0
    assert info.faststart is False


def test_faststart_detection(clips, tools):
    assert mp4_faststart(clips["plain.mp4"]) is False
    assert mp4_faststart(clips["fast.mp4"]) is True
    assert probe_av(clips["fast.mp4"], tools).faststart is True
    assert mp4_faststart(clips["vp9.webm"]) is None  # not an MP4 at all
    assert probe_av(clips["vp9.webm"], tools).faststart is None


def test_probe_webm(clips, tools):
    info = probe_av(clips["vp9.webm"], tools)
    assert (info.mime, info.ext, info.video_codec, info.audio_codec) == ("video/webm", "webm", "vp9", "opus")
    assert (info.width, info.height) == (320, 240)


def test_rotation_swaps_displayed_dimensions(clips, tools):
    info = probe_av(clips["rot.mp4"], tools)
    # 90° counter-clockwise display matrix == the player turns it 270° clockwise.
    assert info.rotation == 270
    assert (info.width, info.height) == (240, 320)


def test_audio_files(clips, tools):
    m4a = probe_av(clips["audio.m4a"], tools)
    assert (m4a.kind, m4a.mime, m4a.audio_codec, m4a.width) == ("audio", "audio/mp4", "aac", None)
    assert m4a.duration == pytest.approx(2.0, abs=0.1)
    # The same bytes the caller's sniffer called audio are accepted as audio.
    assert probe_av(clips["audio_only.mp4"], tools, Sniffed("audio/mp4", "audio", "m4a")).kind == "audio"


def test_audio_only_mp4_claimed_as_video_has_no_video_stream(clips, tools):
    with pytest.raises(MediaError) as err:
        probe_av(clips["audio_only.mp4"], tools)
    assert err.value.code == "no_video_stream"
    with pytest.raises(MediaError) as err:
        probe_av(clips["audio.m4a"], tools, Sniffed("video/mp4", "video", "mp4"))
    assert err.value.code == "no_video_stream"


def test_corrupt_and_empty_files(clips, tools, tmp_path: Path):
    with pytest.raises(MediaError) as err:
        probe_av(clips["corrupt.mp4"], tools)
    assert err.value.code == "corrupt_file"
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00\x00\x00\x18ftypisom" + os.urandom(4000))
    with pytest.raises(MediaError) as err:
        probe_av(str(junk), tools)
    assert err.value.code == "corrupt_file"
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(MediaError) as err:
        probe_av(str(empty), tools)
    assert err.value.code == "empty_file"


def test_absurd_dimensions(clips, tools):
    with pytest.raises(MediaError) as err:
        probe_av(clips["wide.mp4"], tools)
    assert err.value.code == "dimensions_too_large" and "8200x16" in err.value.message


# ------------------------------------------------------------------------ ffprobe mapping

# Recorded from `ffprobe -v error -print_format json -show_format -show_streams` on an iPhone
# portrait clip (HEVC, QuickTime, display matrix), trimmed of fields Herald does not read.
IPHONE_FFPROBE = {
    "streams": [
        {
            "index": 0, "codec_name": "hevc", "codec_long_name": "H.265 / HEVC (High Efficiency Video Coding)",
            "profile": "Main 10", "codec_type": "video", "codec_tag_string": "hvc1", "width": 1920, "height": 1080,
            "coded_width": 1920, "coded_height": 1080, "pix_fmt": "yuv420p10le", "color_range": "tv",
            "r_frame_rate": "30/1", "avg_frame_rate": "30000/1001", "time_base": "1/600",
            "duration": "12.345000", "bit_rate": "7712894", "nb_frames": "370",
            "disposition": {"default": 1, "attached_pic": 0},
            "tags": {"creation_time": "2024-05-01T10:00:00.000000Z", "language": "und",
                     "handler_name": "Core Media Video", "encoder": "HEVC"},
            "side_data_list": [{"side_data_type": "Display Matrix",
                                "displaymatrix": "\n00000000:            0       65536           0\n"
                                                 "00000001:       -65536           0           0\n"
                                                 "00000002:            0           0  1073741824\n",
                                "rotation": -90}],
        },
        {
            "index": 1, "codec_name": "aac", "codec_type": "audio", "sample_fmt": "fltp", "sample_rate": "44100",
            "channels": 2, "channel_layout": "stereo", "duration": "12.345000", "bit_rate": "174583",
            "disposition": {"default": 1, "attached_pic": 0},
        },
        {"index": 2, "codec_type": "data", "codec_tag_string": "mebx", "disposition": {"default": 1}},
    ],
    "format": {
        "filename": "IMG_0042.MOV", "nb_streams": 3, "format_name": "mov,mp4,m4a,3gp,3g2,mj2",
        "format_long_name": "QuickTime / MOV", "start_time": "0.000000", "duration": "12.345000",
        "size": "12099543", "bit_rate": "7840992", "probe_score": 100,
        "tags": {"major_brand": "qt  ", "minor_version": "0", "compatible_brands": "qt  ",
                 "com.apple.quicktime.location.ISO6709": "+48.8584+002.2945+035.000/"},
    },
}


def test_ffprobe_json_mapping_iphone_portrait():
    info = info_from_ffprobe(IPHONE_FFPROBE, size=12_099_543, faststart=True)
    assert (info.mime, info.kind, info.ext) == ("video/quicktime", "video", "mov")
    assert (info.width, info.height, info.rotation) == (1080, 1920, 90)  # -90 CCW == 90 clockwise
    assert (info.video_codec, info.pixel_format, info.audio_codec) == ("hevc", "yuv420p10le", "aac")
    assert info.fps == pytest.approx(29.97, abs=0.01)
    assert info.duration == pytest.approx(12.345) and info.bitrate == 7_840_992
    assert info.has_audio and info.faststart is True and info.container.startswith("mov,")


def test_ffprobe_json_legacy_rotate_tag_cover_art_and_audio_only():
    old = {"streams": [dict(IPHONE_FFPROBE["streams"][0], side_data_list=[], tags={"rotate": "90"}),
                       IPHONE_FFPROBE["streams"][1]],
           "format": dict(IPHONE_FFPROBE["format"], tags={"major_brand": "isom"})}
    info = info_from_ffprobe(old, size=1)
    assert (info.mime, info.width, info.height, info.rotation) == ("video/mp4", 1080, 1920, 90)

    mp3 = {"streams": [{"codec_type": "audio", "codec_name": "mp3", "duration": "3.0"},
                       {"codec_type": "video", "codec_name": "mjpeg", "width": 500, "height": 500,
                        "disposition": {"attached_pic": 1}}],
           "format": {"format_name": "mp3", "duration": "3.000000", "bit_rate": "128000"}}
    info = info_from_ffprobe(mp3, size=48_000)
    assert (info.kind, info.mime, info.audio_codec, info.video_codec) == ("audio", "audio/mpeg", "mp3", None)

    audio_mp4 = {"streams": [IPHONE_FFPROBE["streams"][1]],
                 "format": dict(IPHONE_FFPROBE["format"], tags={"major_brand": "isom"})}
    with pytest.raises(MediaError) as err:
        info_from_ffprobe(audio_mp4, size=1)
    assert err.value.code == "no_video_stream"

    huge = {"streams": [dict(IPHONE_FFPROBE["streams"][0], width=16384, height=16384)],
            "format": IPHONE_FFPROBE["format"]}
    with pytest.raises(MediaError) as err:
        info_from_ffprobe(huge, size=1)
    assert err.value.code == "dimensions_too_large"


def test_probe_av_through_ffprobe_code_path(clips, tools, tmp_path: Path):
    """The ffprobe branch end to end: argv, JSON parsing, then a real one-frame decode with ffmpeg.
    This machine has no ffprobe, so a script stands in that prints what ffprobe prints for
    plain.mp4 (and refuses any other argv)."""
    recording = {
        "streams": [{"codec_type": "video", "codec_name": "h264", "width": 320, "height": 240,
                     "pix_fmt": "yuv420p", "avg_frame_rate": "25/1", "disposition": {"attached_pic": 0}},
                    {"codec_type": "audio", "codec_name": "aac"}],
        "format": {"format_name": "mov,mp4,m4a,3gp,3g2,mj2", "duration": "2.000000", "bit_rate": "219256",
                   "tags": {"major_brand": "isom"}},
    }
    json_file = tmp_path / "probe.json"
    json_file.write_text(__import__("json").dumps(recording))
    script = tmp_path / "ffprobe"
    script.write_text(
        "#!/bin/sh\n"
        'case "$*" in *"-print_format json -show_format -show_streams"*) ;; *) exit 2;; esac\n'
        f'cat "{json_file}"\n')
    script.chmod(0o755)
    ffprobe_tools = MediaTools(ffmpeg=tools.ffmpeg, ffprobe=str(script), ffmpeg_source="setting", probe_with="ffprobe")
    info = probe_av(clips["plain.mp4"], ffprobe_tools)
    assert (info.video_codec, info.width, info.height, info.fps, info.faststart) == ("h264", 320, 240, 25.0, False)
    # The decode check is real: the same JSON over bytes that do not decode is refused.
    with pytest.raises(MediaError) as err:
        probe_av(clips["corrupt.mp4"], ffprobe_tools)
    assert err.value.code == "corrupt_file"


# ------------------------------------------------------------------------------------ plan


def _info(**kw) -> MediaInfo:
    base = dict(mime="video/mp4", kind="video", ext="mp4", size=5_000_000, width=1280, height=720, duration=10.0,
                video_codec="h264", audio_codec="aac", pixel_format="yuv420p", fps=30.0, bitrate=4_000_000,
                has_audio=True, container="mov,mp4,m4a,3gp,3g2,mj2", faststart=True, has_metadata=False)
    return MediaInfo(**{**base, **kw})


def test_plan_is_pure_and_passthrough_for_a_conforming_clip():
    info = _info()
    before = dataclasses.asdict(info)
    rules = VideoRules(max_bytes=50_000_000, max_width=1920, max_height=1080, max_fps=60, max_bitrate=25_000_000,
                       min_duration=3, max_duration=60, min_aspect=0.5, max_aspect=2.0)
    plan = plan_video(info, rules, None)
    assert plan.passthrough and plan.actions == []
    assert (plan.target_width, plan.target_height, plan.target_mime) == (1280, 720, "video/mp4")
    assert plan_video(info, rules, None) == plan and dataclasses.asdict(info) == before


def test_plan_remux_only_for_faststart_or_container():
    assert plan_video(_info(faststart=False), VideoRules(), None).actions == ["faststart"]
    assert plan_video(_info(faststart=False), VideoRules(needs_faststart=False), None).passthrough
    plan = plan_video(_info(mime="video/quicktime", ext="mov"), VideoRules(), None)
    assert plan.actions == ["remux video/quicktime->video/mp4"] and plan.target_mime == "video/mp4"
    # Only the audio is wrong: the video stream is copied.
    job = video._plan(_info(audio_codec="opus"), VideoRules(), None)
    assert job.actions == ("transcode audio opus->aac",) and not job.transcode_video and job.audio == "aac"


def test_plan_strips_metadata_before_it_leaves():
    # A conforming clip that carries metadata (or may: unknown) is remuxed without it.
    assert plan_video(_info(has_metadata=True), VideoRules(), None).actions == ["strip_metadata"]
    assert plan_video(_info(has_metadata=None), VideoRules(), None).actions == ["strip_metadata"]
    assert plan_video(_info(has_metadata=False), VideoRules(), None).passthrough


def test_phone_location_never_leaves_in_a_rendition(tools: MediaTools, clips: dict[str, str], tmp_path: Path):
    import av

    tagged = str(tmp_path / "phone.mp4")
    _ff(tools, "-i", clips["fast.mp4"], "-c", "copy", "-metadata", "location=+48.8577+002.2950/",
        "-metadata", "make=HeraldPhone", "-movflags", "+faststart+use_metadata_tags", tagged)
    info = probe_av(tagged, tools)
    assert info.has_metadata is True
    clean = probe_av(clips["fast.mp4"], tools)
    assert clean.has_metadata is False and plan_video(clean, VideoRules(), None).passthrough
    out = str(tmp_path / "out.mp4")
    result = render_video(tagged, info, VideoRules(), None, out, tools)
    assert result.actions == ("strip_metadata",)
    with av.open(out) as c:
        tags = {k.lower() for k in c.metadata} | {k.lower() for st in c.streams for k in st.metadata}
    assert not {"location", "make"} & tags, tags
    assert probe_av(out, tools).video_codec == "h264"


def test_plan_transcode_for_codec_pixel_format_and_container():
    info = _info(mime="video/webm", ext="webm", container="matroska,webm", video_codec="vp9", audio_codec="opus",
                 pixel_format="yuv420p10le", faststart=None)
    plan = plan_video(info, VideoRules(), None)
    assert plan.actions == ["transcode vp9->h264", "pixel format yuv420p10le->yuv420p",
                            "transcode audio opus->aac", "container video/webm->video/mp4"]
    assert plan.target_mime == "video/mp4"


def test_plan_downscale_keeps_aspect_even_sides_and_caps_fps():
    rules = VideoRules(max_width=1280, max_height=720, max_fps=30)
    plan = plan_video(_info(width=1920, height=1080, fps=60.0), rules, None)
    assert plan.actions == ["downscale 1920x1080->1280x720", "cap fps 60->30"]
    assert (plan.target_width, plan.target_height) == (1280, 720)
    # Rotated phone clip: limits apply to the displayed (portrait) size.
    plan = plan_video(_info(width=1080, height=1920, rotation=90), VideoRules(max_width=1080, max_height=1350), None)
    assert (plan.target_width, plan.target_height) == (758, 1350)
    # Odd sides get even ones when re-encoding (4:2:0 needs them).
    plan = plan_video(_info(width=321, height=241, video_codec="mpeg4"), VideoRules(), None)
    assert (plan.target_width, plan.target_height) == (320, 240)


def test_plan_size_budget_and_bitrate_cap():
    info = _info(size=30_000_000, duration=60.0, bitrate=4_000_000)
    job = video._plan(info, VideoRules(max_bytes=15_000_000), None)
    assert job.actions[0].startswith("shrink 30.0 MB->15.0 MB") and job.transcode_video
    expected = (0.92 * 15_000_000 * 8 - 128_000 * 60) / 61
    assert job.video_maxrate == pytest.approx(expected, rel=0.01) and job.audio == "aac"
    # The budget cannot hold watchable video: refused up front.
    with pytest.raises(MediaError) as err:
        plan_video(info, VideoRules(max_bytes=1_000_000), None)
    assert err.value.code == "media_unfit" and "Shorten" in err.value.message
    job = video._plan(info, VideoRules(max_bitrate=2_000_000), None)
    assert job.actions == ("cap bitrate 4000k->2000k",) and job.video_maxrate == 2_000_000 - 128_000


def test_plan_refuses_what_cannot_be_fixed():
    for rules in (VideoRules(max_duration=5), VideoRules(min_duration=15)):
        with pytest.raises(MediaError) as err:
            plan_video(_info(), rules, None)
        assert err.value.code == "media_unfit" and "10.0 s" in err.value.message
    with pytest.raises(MediaError) as err:
        plan_video(_info(width=1080, height=1920), VideoRules(min_aspect=0.8), None)
    assert err.value.code == "media_unfit" and "pad" in err.value.message
    with pytest.raises(MediaError) as err:
        plan_video(_info(mime="video/mp4"), VideoRules(containers=("video/webm",)), None)
    assert err.value.code == "media_unfit"
    with pytest.raises(MediaError) as err:
        plan_video(_info(kind="audio", mime="audio/mp4", width=None, height=None, video_codec=None), VideoRules(), None)
    assert err.value.code == "no_video_stream"


def test_plan_pad_and_crop_to_the_nearest_aspect_bound():
    tall = _info(width=1080, height=1920)  # 9:16 against a 4:5 minimum
    pad = plan_video(tall, VideoRules(min_aspect=0.8), "pad")
    assert (pad.target_width, pad.target_height) == (1536, 1920) and pad.actions == ["pad 1080x1920->1536x1920"]
    crop = plan_video(tall, VideoRules(min_aspect=0.8), "crop")
    assert (crop.target_width, crop.target_height) == (1080, 1350)
    wide = plan_video(_info(width=1280, height=720), VideoRules(max_aspect=1.0, max_width=1080), "pad")
    assert wide.actions == ["pad 1280x720->1280x1280", "downscale 1280x1280->1080x1080"]


# ---------------------------------------------------------------------------------- render


def _assert_conforming(path: str, tools: MediaTools, rules: VideoRules) -> MediaInfo:
    out = probe_av(path, tools)
    assert (out.mime, out.video_codec, out.pixel_format, out.faststart) == ("video/mp4", "h264", "yuv420p", True)
    assert out.width % 2 == 0 and out.height % 2 == 0
    if rules.max_width:
        assert out.width <= rules.max_width
    if rules.max_height:
        assert out.height <= rules.max_height
    if rules.max_fps:
        assert out.fps <= rules.max_fps
    if rules.max_bytes:
        assert out.size <= rules.max_bytes
    assert plan_video(out, rules, None).passthrough  # a rendition never needs a second one
    return out


def test_render_remux_adds_faststart_and_keeps_rotation(clips, tools, tmp_path: Path):
    for name in ("plain.mp4", "rot.mp4"):
        src = probe_av(clips[name], tools)
        result = render_video(clips[name], src, VideoRules(), None, str(tmp_path / f"{name}.out.mp4"), tools)
        assert result.actions == ("faststart",)
        out = _assert_conforming(result.path, tools, VideoRules())
        # Stream copy: the display matrix stays, so the player still turns it upright.
        assert (out.rotation, out.width, out.height) == (src.rotation, src.width, src.height)
        assert abs(out.size - src.size) < 2_000


def test_render_passthrough_copies_the_original(clips, tools, tmp_path: Path):
    src = probe_av(clips["fast.mp4"], tools)
    result = render_video(clips["fast.mp4"], src, VideoRules(), None, str(tmp_path / "same.mp4"), tools)
    assert result.actions == () and Path(result.path).read_bytes() == Path(clips["fast.mp4"]).read_bytes()


def test_render_transcodes_webm_to_h264_aac_mp4(clips, tools, tmp_path: Path):
    src = probe_av(clips["vp9.webm"], tools)
    result = render_video(clips["vp9.webm"], src, VideoRules(), None, str(tmp_path / "webm.mp4"), tools)
    assert "transcode vp9->h264" in result.actions and (result.mime, result.ext) == ("video/mp4", "mp4")
    out = _assert_conforming(result.path, tools, VideoRules())
    assert (out.width, out.height, out.audio_codec) == (320, 240, "aac")
    assert out.duration == pytest.approx(2.0, abs=0.15)


def test_render_downscale_fps_cap_and_cover(clips, tools, tmp_path: Path):
    rules = VideoRules(max_width=200, max_height=200, max_fps=24, needs_cover=True)
    ticks: list[float] = []
    result = render_video(clips["plain.mp4"], probe_av(clips["plain.mp4"], tools), rules, None,
                          str(tmp_path / "small.mp4"), tools, progress=ticks.append)
    out = _assert_conforming(result.path, tools, rules)
    assert (out.width, out.height, out.fps) == (200, 150, 24.0)
    assert ticks and ticks[-1] == pytest.approx(1.0, abs=0.05)
    with Image.open(result.cover_path) as cover:
        assert (cover.format, cover.size) == ("JPEG", (200, 150))


def test_render_rotated_clip_is_upright_once(clips, tools, tmp_path: Path):
    rules = VideoRules(max_height=200)
    result = render_video(clips["rot.mp4"], probe_av(clips["rot.mp4"], tools), rules, None,
                          str(tmp_path / "rot.mp4"), tools)
    out = _assert_conforming(result.path, tools, rules)
    # Pixels now portrait and no display matrix left that would turn them a second time.
    assert (out.width, out.height, out.rotation) == (150, 200, 0)


def test_render_pad_and_crop(clips, tools, tmp_path: Path):
    src = probe_av(clips["noaudio.mp4"], tools)
    for fit, size in (("pad", (320, 320)), ("crop", (240, 240))):
        rules = VideoRules(max_aspect=1.0)
        result = render_video(clips["noaudio.mp4"], src, rules, fit, str(tmp_path / f"{fit}.mp4"), tools)
        out = _assert_conforming(result.path, tools, rules)
        assert (out.width, out.height) == size and not out.has_audio


def test_render_fits_a_byte_budget(clips, tools, tmp_path: Path):
    src = probe_av(clips["big.mp4"], tools)
    rules = VideoRules(max_bytes=80_000)
    assert src.size > 10 * rules.max_bytes
    result = render_video(clips["big.mp4"], src, rules, None, str(tmp_path / "budget.mp4"), tools)
    assert result.actions[0].startswith("shrink") and result.size <= 80_000
    _assert_conforming(result.path, tools, rules)


def test_render_over_budget_retries_once_at_a_lower_rate(clips, tools, tmp_path: Path, monkeypatch):
    # Aim 60% over the budget so the first encode overshoots; the retry must land inside it.
    monkeypatch.setattr(video, "SIZE_BUDGET_SHARE", 1.6)
    runs: list[list[str]] = []
    real_run = video.run_ffmpeg

    def counting_run(tools_, args, **kw):
        runs.append(args)
        return real_run(tools_, args, **kw)

    monkeypatch.setattr(video, "run_ffmpeg", counting_run)
    rules = VideoRules(max_bytes=100_000)
    result = render_video(clips["big.mp4"], probe_av(clips["big.mp4"], tools), rules, None,
                          str(tmp_path / "retry.mp4"), tools)
    assert len(runs) == 2 and result.size <= rules.max_bytes
    first, second = (int(a[a.index("-maxrate") + 1]) for a in runs)
    assert second < first


def test_render_failure_reports_ffmpeg_stderr_and_leaves_nothing(clips, tools, tmp_path: Path):
    src_path = tmp_path / "changed.webm"
    shutil.copy(clips["vp9.webm"], src_path)
    info = probe_av(str(src_path), tools)
    src_path.write_bytes(b"\x1a\x45\xdf\xa3" + b"\x00" * 2000)  # replaced after probing
    out = tmp_path / "failed.mp4"
    with pytest.raises(MediaError) as err:
        render_video(str(src_path), info, VideoRules(), None, str(out), tools)
    assert err.value.code == "transcode_failed" and "ffmpeg failed" in err.value.message
    assert len(err.value.message) < 2000
    assert sorted(os.listdir(tmp_path)) == ["changed.webm"]


def _ffmpeg_children() -> list[int]:
    me, pids = os.getpid(), []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat_line = Path(f"/proc/{entry}/stat").read_text()
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            ppid = int(stat_line.rsplit(")", 1)[1].split()[1])
            if ppid == me and b"ffmpeg" in cmdline:
                pids.append(int(entry))
    return pids


def test_cancellation_kills_ffmpeg_and_removes_the_partial_file(clips, tools, tmp_path: Path):
    seen: dict[str, object] = {}

    def cancel(fraction: float) -> None:
        seen["fraction"], seen["pids"] = fraction, _ffmpeg_children()
        seen["partial_existed"] = os.path.exists(tmp_path / "cancel.mp4.partial")
        raise asyncio.CancelledError()  # what a cancelled activity/task raises (a BaseException)

    src = probe_av(clips["long.mp4"], tools)
    with pytest.raises(asyncio.CancelledError):
        render_video(clips["long.mp4"], src, VideoRules(max_fps=24), None, str(tmp_path / "cancel.mp4"), tools,
                     progress=cancel)
    assert seen["fraction"] < 1.0 and seen["partial_existed"]  # cancelled mid-encode
    assert len(seen["pids"]) == 1
    assert not os.path.exists(f"/proc/{seen['pids'][0]}")  # killed and reaped
    assert os.listdir(tmp_path) == []


# -------------------------------------------------------------------------------- previews


def test_previews_sizes_and_rotation(clips, tools, tmp_path: Path):
    for name, poster_size, thumb_size in (("hd.mp4", (1280, 720), (320, 180)),
                                          ("rot.mp4", (240, 320), (240, 320))):
        out_dir = tmp_path / name
        previews = {p.role: p for p in video_previews(clips[name], probe_av(clips[name], tools), str(out_dir), tools)}
        assert set(previews) == {"poster", "thumbnail"}
        for role, size in (("poster", poster_size), ("thumbnail", thumb_size)):
            with Image.open(previews[role].path) as im:
                assert (im.format, im.size) == ("JPEG", size)
            assert (previews[role].width, previews[role].height, previews[role].mime) == (*size, "image/jpeg")


def test_audio_has_no_previews(clips, tools, tmp_path: Path):
    assert video_previews(clips["audio.m4a"], probe_av(clips["audio.m4a"], tools), str(tmp_path), tools) == []


def test_cover_frame_clamps_to_the_clip(clips, tools, tmp_path: Path):
    info = probe_av(clips["plain.mp4"], tools)
    path = cover_frame(clips["plain.mp4"], info, str(tmp_path / "cover.jpg"), tools, at_seconds=99.0)
    with Image.open(path) as im:
        assert (im.format, im.size) == ("JPEG", (320, 240))
