"""Video and audio: probe, previews, the rendition plan for a network, and the ffmpeg run.

* ``probe_av`` reads a file with ffprobe when one exists, else with PyAV, and always decodes one
  frame: a header that parses is not yet a stream that plays.
* ``plan_video`` is pure (MediaInfo + rules -> actions), so validation can refuse media that can
  never fit before any work is queued, and ``render_video`` runs the very same plan.
* ``render_video`` runs ffmpeg as a child process it can kill: the ``progress`` callback is where a
  Temporal activity heartbeats, and whatever it raises (a cancellation) kills ffmpeg and removes
  the partial file before the exception propagates.

We only ever *produce* H.264 + AAC in MP4 (or MOV when a network only names QuickTime): it is what
every network accepts, and what every ffmpeg build can write.
"""

from __future__ import annotations

import collections
import math
import os
import shutil
import struct
import subprocess
import threading
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Literal

from media.tools import MediaTools, ffmpeg_encoders
from media.types import (
    Fit,
    MediaError,
    MediaInfo,
    Preview,
    RenditionPlan,
    RenditionResult,
    Sniffed,
    VideoRules,
)

MAX_SIDE = 8192  # larger than any network accepts; beyond it decoding alone is a memory hazard
POSTER_MAX_SIDE = 1280
THUMBNAIL_MAX_SIDE = 320
# Aspect bounds are compared with 1% slack: our own pad/crop rounds to even pixel counts, and a
# 1080x1350 rendition must re-plan as a passthrough against a 4:5 bound.
ASPECT_TOLERANCE = 0.01
# Share of a byte budget the encoder may aim for; the rest absorbs container overhead and
# one-pass rate-control error (x264's capped CRF lands within a few percent on real footage).
SIZE_BUDGET_SHARE = 0.92
# Below this much video bitrate the picture is mush at any size worth posting.
MIN_VIDEO_BITRATE = 150_000
AUDIO_BITRATE = 128_000
AUDIO_BITRATE_TIGHT = 64_000  # used when the whole budget is under 1 Mbit/s
# x264 preset "veryfast": slower presets buy compression efficiency, not visible quality at a
# given CRF, and every network re-encodes what we upload anyway, while a post may be waiting on
# this rendition. Measured on the 2-core dev box, 10 s of 1080p30 -> 720p: medium 5.6-6.4 s,
# veryfast 3.8-4.9 s (render_video end to end, with decode and audio: ~4x real time).
X264_PRESET = "veryfast"
X264_CRF = "23"
STDERR_TAIL_LINES = 20
STDERR_TAIL_CHARS = 1500

_MOV_FAMILY = {"mov", "mp4", "m4a", "3gp", "3g2", "mj2"}
_WEBM_CODECS = {"vp8", "vp9", "av1", "opus", "vorbis"}
# Output containers we can write, by mime: (ffmpeg muxer, extension).
_PRODUCIBLE = {"video/mp4": ("mp4", "mp4"), "video/quicktime": ("mov", "mov")}


# --------------------------------------------------------------------------------------- probe


@dataclass
class _RawProbe:
    """What either prober found, before classification; the shared half of both code paths."""

    format_name: str
    brand: str | None  # MP4/MOV major brand ("isom", "qt  ", "M4A ")
    duration: float | None
    bitrate: int | None
    video_codec: str | None = None
    coded_width: int | None = None
    coded_height: int | None = None
    fps: float | None = None
    pixel_format: str | None = None
    rotation: int = 0  # clockwise degrees, multiple of 90
    audio_codec: str | None = None
    codecs: list[str] = field(default_factory=list)
    tag_names: set[str] = field(default_factory=set)  # container and stream metadata keys


# Metadata keys that say nothing about the person or place: container plumbing. Anything else
# (phones write `location`, `com.apple.quicktime.location.ISO6709`, make, model, software...)
# means the file is remuxed with its metadata dropped before it leaves (GPS never leaves).
_PLUMBING_TAGS = {"major_brand", "minor_version", "compatible_brands", "encoder", "handler_name",
                  "vendor_id", "language", "duration", "creation_time", "rotate", "encoder-eng"}


def _has_personal_metadata(raw: "_RawProbe") -> bool:
    return any(name.lower() not in _PLUMBING_TAGS for name in raw.tag_names)


def probe_av(path: str, tools: MediaTools, sniffed: Sniffed | None = None) -> MediaInfo:
    """Probe a video or audio file. ``sniffed`` (from ``media.sniff``) sets mime/kind/ext when the
    caller has it; without it they are derived from the container (an MP4 whose brand is not
    M4A counts as a video). Raises MediaError: empty_file, corrupt_file, no_video_stream,
    dimensions_too_large, unsupported_type."""
    if sniffed is not None and sniffed.kind not in ("video", "audio"):
        raise MediaError("unsupported_type", f"probe_av handles video and audio, not {sniffed.mime}.")
    try:
        size = os.path.getsize(path)
    except OSError as exc:
        raise MediaError("corrupt_file", f"The file cannot be read: {exc.strerror}.") from exc
    if size == 0:
        raise MediaError("empty_file", "The file is empty.")

    if tools.probe_with == "ffprobe" and tools.ffprobe:
        raw = _raw_from_ffprobe(_run_ffprobe(path, tools))
        info = _to_media_info(raw, size=size, faststart=_faststart_for(raw, path), sniffed=sniffed)
        _check_decodes_with_ffmpeg(path, info, tools)
        return info
    raw = _probe_pyav(path, sniffed)
    return _to_media_info(raw, size=size, faststart=_faststart_for(raw, path), sniffed=sniffed)


def info_from_ffprobe(data: dict[str, Any], *, size: int, faststart: bool | None = None,
                      sniffed: Sniffed | None = None) -> MediaInfo:
    """The MediaInfo for ffprobe's ``-show_format -show_streams`` JSON. Pure, so the mapping is
    tested with recorded JSON on machines without ffprobe."""
    return _to_media_info(_raw_from_ffprobe(data), size=size, faststart=faststart, sniffed=sniffed)


def _run_ffprobe(path: str, tools: MediaTools) -> dict[str, Any]:
    import json

    cmd = [tools.ffprobe, "-v", "error", "-print_format", "json", "-show_format", "-show_streams", path]
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=60)
    except subprocess.TimeoutExpired as exc:
        raise MediaError("corrupt_file", "ffprobe did not finish reading the file within 60 s.") from exc
    if proc.returncode != 0:
        raise MediaError("corrupt_file", f"The file cannot be read as video or audio: {_tail(proc.stderr)}")
    try:
        return json.loads(proc.stdout)
    except ValueError as exc:
        raise MediaError("corrupt_file", "ffprobe returned unreadable output for this file.") from exc


def _number(value: Any) -> float | None:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) and x > 0 else None


def _rate(value: str | None) -> float | None:
    """ffprobe's "30000/1001" (and "0/0" for unknown)."""
    if not value:
        return None
    num, _, den = str(value).partition("/")
    n, d = _number(num), _number(den or 1)
    return round(n / d, 3) if n and d else None


def _clockwise(ccw_degrees: float) -> int:
    """Display-matrix rotation (counter-clockwise, FFmpeg's convention) -> MediaInfo.rotation
    (clockwise, like the legacy ``rotate`` tag), snapped to a multiple of 90."""
    return int(round(-ccw_degrees / 90.0)) * 90 % 360


def _is_cover_art(disposition: Any) -> bool:
    # An MP3/M4A's album art is a "video" stream of one picture; it does not make the file a video.
    if isinstance(disposition, dict):
        return bool(disposition.get("attached_pic"))
    return False


def _raw_from_ffprobe(data: dict[str, Any]) -> _RawProbe:
    fmt = data.get("format") or {}
    streams = data.get("streams") or []
    if not streams:
        raise MediaError("corrupt_file", "The file has no audio or video streams.")
    raw = _RawProbe(
        format_name=fmt.get("format_name") or "",
        brand=(fmt.get("tags") or {}).get("major_brand"),
        duration=_number(fmt.get("duration")),
        bitrate=int(b) if (b := _number(fmt.get("bit_rate"))) else None,
        codecs=[s.get("codec_name") or "" for s in streams],
        tag_names={*(fmt.get("tags") or {}), *(k for st in streams for k in (st.get("tags") or {}))},
    )
    video = next((s for s in streams if s.get("codec_type") == "video"
                  and not _is_cover_art(s.get("disposition"))), None)
    audio = next((s for s in streams if s.get("codec_type") == "audio"), None)
    if video is not None:
        raw.video_codec = video.get("codec_name")
        raw.coded_width, raw.coded_height = video.get("width"), video.get("height")
        raw.fps = _rate(video.get("avg_frame_rate")) or _rate(video.get("r_frame_rate"))
        raw.pixel_format = video.get("pix_fmt")
        # Newer ffprobe reports the display matrix as side data (counter-clockwise degrees);
        # older ones (and some phones' files) carry a clockwise "rotate" tag.
        matrix = next((sd for sd in video.get("side_data_list") or []
                       if sd.get("side_data_type") == "Display Matrix" and "rotation" in sd), None)
        if matrix is not None:
            raw.rotation = _clockwise(float(matrix["rotation"]))
        elif (tag := (video.get("tags") or {}).get("rotate")) is not None:
            raw.rotation = _clockwise(-float(tag))
        if raw.duration is None:
            raw.duration = _number(video.get("duration"))
    if audio is not None:
        raw.audio_codec = audio.get("codec_name")
        if raw.duration is None:
            raw.duration = _number(audio.get("duration"))
    return raw


def _probe_pyav(path: str, sniffed: Sniffed | None) -> _RawProbe:
    import av

    try:
        container = av.open(path, metadata_errors="ignore")
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise MediaError("corrupt_file", f"The file cannot be read as video or audio ({_av_reason(exc)}).") from exc
    with container:
        streams = list(container.streams)
        if not streams:
            raise MediaError("corrupt_file", "The file has no audio or video streams.")
        attached = av.stream.Disposition.attached_pic
        video = next((s for s in container.streams.video if not (s.disposition & attached)), None)
        audio = next(iter(container.streams.audio), None)
        duration = container.duration / 1_000_000 if container.duration else None  # AV_TIME_BASE
        if duration is None:
            s = video or audio
            if s is not None and s.duration and s.time_base:
                duration = float(s.duration * s.time_base)
        raw = _RawProbe(
            format_name=container.format.name or "",
            brand=(container.metadata or {}).get("major_brand"),
            duration=_number(duration),
            bitrate=container.bit_rate or None,
            codecs=[s.codec_context.name if s.codec_context else "" for s in streams],
            tag_names={*(container.metadata or {}), *(k for st in streams for k in (st.metadata or {}))},
        )
        if audio is not None:
            raw.audio_codec = audio.codec_context.name
        if video is not None:
            cc = video.codec_context
            raw.video_codec = cc.name
            raw.coded_width, raw.coded_height = cc.width, cc.height
            raw.pixel_format = cc.pix_fmt
            rate = video.average_rate or video.guessed_rate
            raw.fps = round(float(rate), 3) if rate else None
            if (tag := (video.metadata or {}).get("rotate")) is not None:
                raw.rotation = _clockwise(-float(tag))
            # Refuse absurd sizes before decoding anything at that size.
            _check_dimensions(raw.coded_width, raw.coded_height)
            frame = _first_frame(container, video)
            if frame is None:
                raise MediaError("corrupt_file", "The video stream has no decodable frame.")
            # The decoder attaches the container's display matrix to each frame (counter-clockwise).
            if getattr(frame, "rotation", 0):
                raw.rotation = _clockwise(frame.rotation)
        elif audio is not None and (sniffed is None or sniffed.kind == "audio"):
            if _first_frame(container, audio) is None:
                raise MediaError("corrupt_file", "The audio stream has no decodable frame.")
        return raw


def _first_frame(container: Any, stream: Any, max_packets: int = 300) -> Any | None:
    """Decode until one frame comes out; give up after ``max_packets`` so a file of garbage
    packets costs a bounded amount of work."""
    import av

    try:
        for n, packet in enumerate(container.demux(stream)):
            for frame in packet.decode():
                return frame
            if n >= max_packets:
                return None
        # (demux ends with an empty packet whose decode() flushes frames the decoder held back)
    except av.error.FFmpegError as exc:
        raise MediaError("corrupt_file", f"The stream cannot be decoded ({_av_reason(exc)}).") from exc
    return None


def _av_reason(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc)[:200]


def _check_dimensions(width: int | None, height: int | None) -> None:
    if not width or not height or width <= 0 or height <= 0:
        raise MediaError("dimensions_too_large", "The video stream reports no usable picture size (0 pixels).")
    if max(width, height) > MAX_SIDE:
        raise MediaError("dimensions_too_large",
                         f"The video is {width}x{height}; sides over {MAX_SIDE} pixels are refused.")


def _check_decodes_with_ffmpeg(path: str, info: MediaInfo, tools: MediaTools) -> None:
    """ffprobe only reads headers; decode one tiny frame (or 0.1 s of audio) to prove the stream."""
    if info.kind == "video":
        spec = ["-map", "0:V:0", "-frames:v", "1", "-vf", "scale=16:16", "-pix_fmt", "gray", "-f", "rawvideo"]
    else:
        spec = ["-map", "0:a:0", "-t", "0.1", "-ac", "1", "-ar", "8000", "-f", "s16le"]
    cmd = [tools.ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-i", path, *spec, "-"]
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=60)
    except subprocess.TimeoutExpired as exc:
        raise MediaError("corrupt_file", "Decoding the first frame took over 60 s.") from exc
    if proc.returncode != 0 or not proc.stdout:
        raise MediaError("corrupt_file", f"The stream cannot be decoded: {_tail(proc.stderr) or 'no frame'}")


def _classify(raw: _RawProbe, has_video: bool) -> tuple[str, str]:
    """(mime, ext) from the container; the kind follows from the mime."""
    names = set(raw.format_name.split(","))
    if names & _MOV_FAMILY:
        brand = (raw.brand or "").strip().lower()
        if brand == "qt":
            return "video/quicktime", "mov"
        if brand in ("m4a", "m4b", "m4p"):
            return "audio/mp4", "m4a"
        if brand.startswith("3g"):
            return "video/3gpp", "3gp"
        return "video/mp4", "mp4"
    if names & {"matroska", "webm"}:
        webm = all(c in _WEBM_CODECS for c in raw.codecs if c)
        if has_video:
            return ("video/webm", "webm") if webm else ("video/x-matroska", "mkv")
        return ("audio/webm", "weba") if webm else ("audio/x-matroska", "mka")
    simple = {
        "avi": ("video/x-msvideo", "avi"), "mp3": ("audio/mpeg", "mp3"), "wav": ("audio/wav", "wav"),
        "flac": ("audio/flac", "flac"), "aac": ("audio/aac", "aac"), "mpegts": ("video/mp2t", "ts"),
        "flv": ("video/x-flv", "flv"), "asf": ("video/x-ms-asf", "wmv"),
    }
    for name in raw.format_name.split(","):
        if name in simple:
            return simple[name]
    if names & {"ogg"}:
        return ("video/ogg", "ogv") if has_video else ("audio/ogg", "ogg")
    first = raw.format_name.split(",")[0] or "bin"
    return (f"video/x-{first}", first) if has_video else (f"audio/x-{first}", first)


def _to_media_info(raw: _RawProbe, *, size: int, faststart: bool | None, sniffed: Sniffed | None) -> MediaInfo:
    has_video = raw.video_codec is not None
    if sniffed is not None:
        mime, kind, ext = sniffed.mime, sniffed.kind, sniffed.ext
    else:
        mime, ext = _classify(raw, has_video)
        kind = "video" if mime.startswith("video/") else "audio"
    if kind == "video" and not has_video:
        raise MediaError("no_video_stream",
                         f"The file is a {mime} container but holds no video stream"
                         f"{' (audio only)' if raw.audio_codec else ''}.")
    if kind == "audio" and raw.audio_codec is None:
        raise MediaError("corrupt_file", "The file holds no audio stream.")
    bitrate = raw.bitrate or (int(size * 8 / raw.duration) if raw.duration else None)
    info = MediaInfo(mime=mime, kind=kind, ext=ext, size=size, duration=raw.duration,
                     audio_codec=raw.audio_codec, has_audio=raw.audio_codec is not None,
                     bitrate=bitrate, container=raw.format_name or None, faststart=faststart,
                     has_metadata=_has_personal_metadata(raw))
    if kind == "video":
        _check_dimensions(raw.coded_width, raw.coded_height)
        w, h = raw.coded_width, raw.coded_height
        if raw.rotation in (90, 270):
            w, h = h, w
        info.width, info.height = w, h
        info.video_codec, info.pixel_format = raw.video_codec, raw.pixel_format
        info.fps, info.rotation = raw.fps, raw.rotation
    return info


def _faststart_for(raw: _RawProbe, path: str) -> bool | None:
    return mp4_faststart(path) if set(raw.format_name.split(",")) & _MOV_FAMILY else None


def mp4_faststart(path: str) -> bool | None:
    """True when the top-level ``moov`` atom comes before ``mdat`` (players can start before the
    whole file arrives; several networks' upload processing needs it). Reads atom headers only.
    None when neither atom is found (not an MP4, or cut short)."""
    try:
        with open(path, "rb") as f:
            end = os.fstat(f.fileno()).st_size
            pos = 0
            for _ in range(10_000):  # a real file has a handful of top-level atoms
                if pos + 8 > end:
                    return None
                f.seek(pos)
                length, kind = struct.unpack(">I4s", f.read(8))
                if length == 1:  # 64-bit size follows the type
                    length = struct.unpack(">Q", f.read(8))[0]
                elif length == 0:  # atom runs to the end of the file
                    length = end - pos
                if kind == b"moov":
                    return True
                if kind == b"mdat":
                    return False
                if length < 8:
                    return None
                pos += length
    except (OSError, struct.error):
        return None
    return None


# ---------------------------------------------------------------------------------------- plan


@dataclass(frozen=True)
class _VideoJob:
    """The full plan render_video executes; plan_video exposes its public half."""

    actions: tuple[str, ...]
    out_mime: str
    width: int
    height: int
    transcode_video: bool = False
    filters: tuple[str, ...] = ()  # crop/pad, scale, fps -- in that order
    audio: Literal["none", "copy", "aac"] = "copy"
    audio_bitrate: int = AUDIO_BITRATE
    video_maxrate: int | None = None  # bits/s cap on the video stream
    vbv_seconds: float = 1.0  # rate-control buffer, in seconds of maxrate

    @property
    def passthrough(self) -> bool:
        return not self.actions


def _even_down(x: float) -> int:
    return max(2, int(x) // 2 * 2)


def _even_up(x: float) -> int:
    return max(2, math.ceil(x - 1e-9) + math.ceil(x - 1e-9) % 2)


def _kbit(bps: float) -> str:
    return f"{round(bps / 1000)}k"


def _mb(n: float) -> str:
    return f"{n / 1_000_000:.1f} MB" if n >= 1_000_000 else f"{n / 1000:.0f} KB"


def _unfit(message: str) -> MediaError:
    return MediaError("media_unfit", message)


def _plan(info: MediaInfo, rules: VideoRules, fit: Fit | None) -> _VideoJob:
    if info.kind != "video" or not info.video_codec or not info.width or not info.height:
        raise MediaError("no_video_stream", f"The file ({info.mime}) has no video stream to publish as a video.")
    d = info.duration
    if d is not None and rules.min_duration is not None and d < rules.min_duration:
        raise _unfit(f"The video is {d:.1f} s long; this network needs at least {rules.min_duration:g} s.")
    if d is not None and rules.max_duration is not None and d > rules.max_duration:
        raise _unfit(f"The video is {d:.1f} s long; this network accepts at most {rules.max_duration:g} s. "
                     "Trim it before posting.")

    actions: list[str] = []
    filters: list[str] = []
    reencode: list[str] = []  # reasons the video stream must be re-encoded

    # Aspect: pad or crop to the nearest bound, or refuse.
    w, h = info.width, info.height
    aspect = w / h
    target_aspect = None
    if rules.min_aspect is not None and aspect < rules.min_aspect * (1 - ASPECT_TOLERANCE):
        target_aspect = rules.min_aspect
    elif rules.max_aspect is not None and aspect > rules.max_aspect * (1 + ASPECT_TOLERANCE):
        target_aspect = rules.max_aspect
    if target_aspect is not None:
        if fit is None:
            lo, hi = rules.min_aspect, rules.max_aspect
            bounds = (f"from {lo:.2f} to {hi:.2f}" if lo and hi else f"of at least {lo:.2f}" if lo
                      else f"of at most {hi:.2f}")
            raise _unfit(f"The video is {w}x{h} (aspect {aspect:.2f}); this network accepts aspect ratios "
                         f"{bounds} (width/height). Choose fit 'pad' or 'crop' to adapt it.")
        if fit == "pad":
            if aspect < target_aspect:
                w2, h2 = _even_up(h * target_aspect), _even_up(h)
            else:
                w2, h2 = _even_up(w), _even_up(w / target_aspect)
            filters.append(f"pad={w2}:{h2}:(ow-iw)/2:(oh-ih)/2:black")
        else:
            if aspect < target_aspect:
                w2, h2 = _even_down(w), _even_down(w / target_aspect)
            else:
                w2, h2 = _even_down(h * target_aspect), _even_down(h)
            filters.append(f"crop={w2}:{h2}")
        actions.append(f"{fit} {w}x{h}->{w2}x{h2}")
        reencode.append("fit")
        w, h = w2, h2

    # Downscale into the box, keeping the aspect; H.264 in 4:2:0 needs even sides.
    scale = min([1.0, *(m / s for m, s in ((rules.max_width, w), (rules.max_height, h)) if m)])
    tw, th = (_even_down(w * scale), _even_down(h * scale)) if scale < 1.0 else (w, h)
    if scale < 1.0:
        actions.append(f"downscale {w}x{h}->{tw}x{th}")
        reencode.append("downscale")

    fps = None
    if rules.max_fps and info.fps and info.fps > rules.max_fps + 0.01:
        fps = rules.max_fps
        actions.append(f"cap fps {info.fps:g}->{rules.max_fps:g}")
        reencode.append("fps")

    if info.video_codec not in rules.video_codecs:
        actions.insert(0, f"transcode {info.video_codec}->h264")
        reencode.append("codec")
    if info.pixel_format not in rules.pixel_formats:
        actions.append(f"pixel format {info.pixel_format}->yuv420p")
        reencode.append("pixfmt")

    budget_video_rate = None
    audio_rate = AUDIO_BITRATE if info.has_audio else 0
    vbv_seconds = 1.0
    if rules.max_bytes and d:
        bits = SIZE_BUDGET_SHARE * rules.max_bytes * 8
        if info.has_audio and bits / d < 1_000_000:
            audio_rate = AUDIO_BITRATE_TIGHT
        # x264 starts with its rate buffer 90% full, so a capped encode may spend up to one
        # buffer more than maxrate x duration: count the buffer in the budget, and keep it short
        # for short clips, where it would otherwise be a large share of the whole file.
        vbv_seconds = min(1.0, d / 4)
        budget_video_rate = int((bits - audio_rate * d) / (d + vbv_seconds))
    if rules.max_bytes and info.size > rules.max_bytes:
        if not d:
            raise _unfit(f"The video is {_mb(info.size)}, over this network's {_mb(rules.max_bytes)}, and its "
                         "duration is unknown, so no bitrate can be chosen to fit.")
        if budget_video_rate < MIN_VIDEO_BITRATE:
            raise _unfit(f"The video is {_mb(info.size)} for {d:.0f} s; fitting this network's {_mb(rules.max_bytes)} "
                         f"would leave {_kbit(max(budget_video_rate, 0))}bit/s for the picture (under "
                         f"{_kbit(MIN_VIDEO_BITRATE)}bit/s is unwatchable). Shorten it.")
        actions.append(f"shrink {_mb(info.size)}->{_mb(rules.max_bytes)} (video {_kbit(budget_video_rate)}bit/s)")
        reencode.append("size")

    bitrate_cap = None
    if rules.max_bitrate and info.bitrate and info.bitrate > rules.max_bitrate:
        bitrate_cap = max(MIN_VIDEO_BITRATE, rules.max_bitrate - audio_rate)
        actions.append(f"cap bitrate {_kbit(info.bitrate)}->{_kbit(rules.max_bitrate)}")
        reencode.append("bitrate")

    transcode_video = bool(reencode)
    if transcode_video and (tw % 2 or th % 2):
        tw, th = _even_down(tw), _even_down(th)
    if transcode_video and (tw, th) != (w, h):
        filters.append(f"scale={tw}:{th}")
    if fps:
        filters.append(f"fps={fps:g}")

    # Rates the encoder must respect. A byte budget also caps a transcode done for other reasons:
    # H.264 from an HEVC phone clip can come out larger than the original.
    maxrate = None
    if transcode_video:
        caps = [c for c in (bitrate_cap, rules.max_bitrate and rules.max_bitrate - audio_rate, budget_video_rate) if c]
        maxrate = max(MIN_VIDEO_BITRATE, int(min(caps))) if caps else None

    audio: Literal["none", "copy", "aac"] = "none"
    if info.has_audio:
        if info.audio_codec not in rules.audio_codecs:
            if "aac" not in rules.audio_codecs:
                raise _unfit(f"The audio is {info.audio_codec}; this network accepts {', '.join(rules.audio_codecs)}, "
                             "none of which Herald can produce (AAC).")
            actions.append(f"transcode audio {info.audio_codec}->aac")
            audio = "aac"
        # Under a rate cap the audio must have a known bitrate for the arithmetic to hold.
        elif maxrate is not None:
            audio = "aac"
        else:
            audio = "copy"

    container_ok = info.mime in rules.containers
    if not container_ok:
        verb = "container" if transcode_video else "remux"
        actions.append(f"{verb} {info.mime}->{_output_mime(rules, info)}")
    is_mov = bool(info.container and set(info.container.split(",")) & _MOV_FAMILY)
    if rules.needs_faststart and container_ok and is_mov and info.faststart is not True and not transcode_video:
        actions.append("faststart")
    # Every rendition is written without metadata; a file that would pass through unchanged is
    # remuxed when it carries any (or when it is unknown whether it does).
    if not actions and info.has_metadata is not False:
        actions.append("strip_metadata")

    if transcode_video and ("h264" not in rules.video_codecs or "yuv420p" not in rules.pixel_formats):
        raise _unfit(f"This video needs re-encoding ({', '.join(reencode)}), but the network accepts only "
                     f"{', '.join(rules.video_codecs)} / {', '.join(rules.pixel_formats)}; "
                     "Herald produces H.264 yuv420p.")
    out_mime = info.mime if not actions else _output_mime(rules, info)
    return _VideoJob(
        actions=tuple(actions), out_mime=out_mime, width=tw, height=th, transcode_video=transcode_video,
        filters=tuple(filters), audio=audio, audio_bitrate=audio_rate or AUDIO_BITRATE,
        video_maxrate=maxrate, vbv_seconds=vbv_seconds if maxrate == budget_video_rate else 1.0,
    )


def _output_mime(rules: VideoRules, info: MediaInfo) -> str:
    if info.mime in rules.containers and info.mime in _PRODUCIBLE:
        return info.mime
    for mime in rules.containers:
        if mime in _PRODUCIBLE:
            return mime
    raise _unfit(f"This network accepts only {', '.join(rules.containers)}; Herald writes MP4 or QuickTime, "
                 f"so this {info.mime} file cannot be adapted.")


def plan_video(info: MediaInfo, rules: VideoRules, fit: Fit | None) -> RenditionPlan:
    """What must happen for ``info`` to fit ``rules`` (no file access). Empty ``actions`` means the
    original passes through. Raises ``MediaError("media_unfit")`` for what no rendition can fix
    (duration, aspect without a fit, a size budget too small for watchable video) and
    ``no_video_stream`` for audio."""
    job = _plan(info, rules, fit)
    return RenditionPlan(kind="video", actions=list(job.actions), target_width=job.width,
                         target_height=job.height, target_mime=job.out_mime)


# ------------------------------------------------------------------------------------- ffmpeg


def h264_encoder(tools: MediaTools) -> str:
    """libx264 when the build has it (quality per bit, CRF); else Cisco's OpenH264 (bitrate only).
    Hardware encoders are skipped: they need devices a container rarely has."""
    encoders = ffmpeg_encoders(tools.ffmpeg)
    for name in ("libx264", "libopenh264"):
        if name in encoders:
            return name
    raise MediaError("transcode_failed", f"The ffmpeg at {tools.ffmpeg} has no H.264 encoder (libx264 or libopenh264).")


def _tail(stderr: bytes | str | collections.deque) -> str:
    if isinstance(stderr, (bytes, bytearray)):
        stderr = stderr.decode("utf-8", "replace")
    lines = list(stderr) if isinstance(stderr, collections.deque) else str(stderr).splitlines()
    text = " | ".join(line.strip() for line in lines[-STDERR_TAIL_LINES:] if line.strip())
    return text if len(text) <= STDERR_TAIL_CHARS else "…" + text[-STDERR_TAIL_CHARS:]


def _remove(*paths: str) -> None:
    for p in paths:
        try:
            os.remove(p)
        except FileNotFoundError:
            pass


def run_ffmpeg(tools: MediaTools, args: list[str], *, duration: float | None,
               progress: Callable[[float], None] | None, cleanup: tuple[str, ...] = ()) -> None:
    """Run ffmpeg with ``args``; call ``progress(fraction)`` on each of ffmpeg's progress reports
    (about twice a second). If ``progress`` or anything else interrupts this thread, ffmpeg is
    killed and ``cleanup`` files removed before the exception propagates. A non-zero exit raises
    ``transcode_failed`` with the tail of ffmpeg's stderr."""
    cmd = [tools.ffmpeg, "-hide_banner", "-nostdin", "-y", "-loglevel", "error",
           "-progress", "pipe:1", "-nostats", *args]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    tail: collections.deque[str] = collections.deque(maxlen=STDERR_TAIL_LINES)

    def drain_stderr() -> None:  # a full stderr pipe would block ffmpeg
        for line in proc.stderr:
            tail.append(line.decode("utf-8", "replace"))

    reader = threading.Thread(target=drain_stderr, name="ffmpeg-stderr", daemon=True)
    reader.start()
    try:
        for line in proc.stdout:
            key, _, value = line.decode("ascii", "replace").strip().partition("=")
            # out_time_us is the position reached in the output; "N/A" before the first frame.
            if key == "out_time_us" and progress is not None:
                us = _number(value) or 0.0
                progress(min(1.0, us / 1e6 / duration) if duration else 0.0)
        returncode = proc.wait()
    except BaseException:
        proc.kill()
        proc.wait()
        _remove(*cleanup)
        raise
    finally:
        reader.join(timeout=5)
        proc.stdout.close()
        proc.stderr.close()
    if returncode != 0:
        _remove(*cleanup)
        raise MediaError("transcode_failed", f"ffmpeg failed (exit {returncode}): {_tail(tail) or 'no message'}")


def _encode_args(job: _VideoJob, encoder: str, maxrate: int | None, out_format: str) -> list[str]:
    args = ["-map", "0:V:0"]  # V: the first real video stream, never cover art
    if job.audio != "none":
        args += ["-map", "0:a:0?"]
    # Drop metadata (phones record GPS position in it), chapters, subtitles and data tracks:
    # networks ignore them at best and reject unknown tracks at worst.
    args += ["-map_metadata", "-1", "-map_chapters", "-1", "-sn", "-dn"]
    if job.transcode_video:
        # ffmpeg applies the display matrix before these filters (autorotate) and writes none to
        # the output, so the picture is upright once and players do not rotate it again.
        args += ["-vf", ",".join([*job.filters, "format=yuv420p", "setsar=1"]), "-c:v", encoder]
        if encoder == "libx264":
            args += ["-preset", X264_PRESET, "-crf", X264_CRF, "-profile:v", "high"]
            if maxrate:
                # Capped CRF: quality-driven, never above maxrate over the rate buffer.
                args += ["-maxrate", str(maxrate), "-bufsize", str(int(maxrate * job.vbv_seconds))]
        else:  # OpenH264 has no CRF: give it a bitrate (the cap, or ~0.1 bit per pixel per frame)
            rate = maxrate or int(job.width * job.height * 30 * 0.1)
            args += ["-b:v", str(rate), "-maxrate", str(rate), "-bufsize", str(int(rate * job.vbv_seconds))]
        args += ["-threads", "0"]
    else:
        args += ["-c:v", "copy"]
    if job.audio == "aac":
        args += ["-c:a", "aac", "-b:a", str(job.audio_bitrate)]
    elif job.audio == "copy":
        args += ["-c:a", "copy"]
    args += ["-movflags", "+faststart", "-f", out_format]
    return args


def render_video(path: str, info: MediaInfo, rules: VideoRules, fit: Fit | None, out_path: str,
                 tools: MediaTools, progress: Callable[[float], None] | None = None) -> RenditionResult:
    """Write the rendition of ``path`` that fits ``rules`` to ``out_path`` (H.264/AAC, yuv420p,
    faststart). ``progress(fraction)`` is called about twice a second while ffmpeg runs; raising
    from it cancels: ffmpeg is killed and no partial file remains (so does an exception raised
    into this thread, as Temporal does for a cancelled threaded activity; an asyncio caller using
    ``to_thread`` must raise from ``progress``, since a task's cancellation cannot reach a thread).
    A result over ``max_bytes`` is re-encoded once at a lower rate, then refused (``media_unfit``).
    Raises ``transcode_failed`` (with ffmpeg's last stderr lines) when ffmpeg fails."""
    job = _plan(info, rules, fit)
    os.makedirs(os.path.dirname(os.path.abspath(out_path)) or ".", exist_ok=True)
    partial = f"{out_path}.partial"
    if job.passthrough:
        shutil.copyfile(path, partial)
        return _finish(partial, out_path, info, job, tools, rules)

    out_format, _ = _PRODUCIBLE[job.out_mime]
    encoder = h264_encoder(tools) if job.transcode_video else ""
    maxrate = job.video_maxrate
    for attempt in (1, 2):
        run_ffmpeg(tools, ["-i", path, *_encode_args(job, encoder, maxrate, out_format), partial],
                   duration=info.duration, progress=progress, cleanup=(partial,))
        size = os.path.getsize(partial)
        if not rules.max_bytes or size <= rules.max_bytes:
            break
        if attempt == 2 or not info.duration:
            _remove(partial)
            raise _unfit(f"The rendition came out at {_mb(size)}"
                         f"{' even at a reduced bitrate' if attempt == 2 else ''}; this network accepts "
                         f"{_mb(rules.max_bytes)}. Shorten the video.")
        # Over budget: re-encode at a rate scaled down by the overshoot, with 10% more room. The
        # audio and the container do not shrink with the video rate, so the excess is also taken
        # off the video rate whole (what a tight budget needs); the lower of the two wins.
        current = maxrate or int(size * 8 / info.duration)
        scaled = current * rules.max_bytes / size * 0.9
        excess_bits_per_second = (size - 0.9 * rules.max_bytes) * 8 / info.duration
        maxrate = int(min(scaled, current - excess_bits_per_second))
        if maxrate < MIN_VIDEO_BITRATE:
            _remove(partial)
            raise _unfit(f"The rendition came out at {_mb(size)}; fitting {_mb(rules.max_bytes)} would need under "
                         f"{_kbit(MIN_VIDEO_BITRATE)}bit/s. Shorten the video.")
        if not job.transcode_video:
            # A stream copy that grew past the limit (container overhead on a file just under
            # it) is re-encoded under the budget instead.
            odd = job.width % 2 or job.height % 2
            job = replace(job, transcode_video=True, actions=(*job.actions, "shrink"),
                          filters=(f"scale={_even_down(job.width)}:{_even_down(job.height)}",) if odd else (),
                          audio="aac" if job.audio != "none" else "none", audio_bitrate=AUDIO_BITRATE_TIGHT,
                          vbv_seconds=min(1.0, info.duration / 4))
            encoder = h264_encoder(tools)
    return _finish(partial, out_path, info, job, tools, rules)


def _finish(partial: str, out_path: str, source: MediaInfo, job: _VideoJob, tools: MediaTools,
            rules: VideoRules) -> RenditionResult:
    """Probe what ffmpeg wrote, write the cover, and only then move the file into place: a
    rendition at ``out_path`` is always complete and readable."""
    cover = None
    try:
        if job.passthrough:
            out = source
        else:
            try:
                out = probe_av(partial, tools)
            except MediaError as exc:
                raise MediaError("transcode_failed", f"ffmpeg wrote an unreadable rendition: {exc.message}") from exc
        if rules.needs_cover:
            cover = cover_frame(partial, out, os.path.splitext(out_path)[0] + ".cover.jpg", tools)
        os.replace(partial, out_path)
    except BaseException:
        _remove(partial, *([cover] if cover else []))
        raise
    mime = job.out_mime
    ext = _PRODUCIBLE[mime][1] if mime in _PRODUCIBLE else source.ext
    return RenditionResult(path=out_path, mime=mime, ext=ext, size=os.path.getsize(out_path), width=out.width,
                           height=out.height, duration=out.duration, actions=job.actions, cover_path=cover)


# ------------------------------------------------------------------------------------ previews


def _fit_box(width: int, height: int, max_side: int) -> tuple[int, int]:
    scale = min(1.0, max_side / max(width, height))
    return max(2, round(width * scale)), max(2, round(height * scale))


def _default_frame_time(info: MediaInfo) -> float:
    # ~1 s in (past fade-ins and black first frames), but within the first 10% of short clips.
    return min(1.0, 0.1 * info.duration) if info.duration else 0.0


def _grab_frame(path: str, info: MediaInfo, tools: MediaTools, at: float, width: int, height: int):
    """One RGB frame at ``at`` seconds, upright (ffmpeg applies rotation), scaled to width x height."""
    from PIL import Image

    expected = width * height * 3
    for seek in (at, 0.0) if at > 0 else (0.0,):
        cmd = [tools.ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-ss", f"{seek:.3f}", "-i", path,
               "-map", "0:V:0", "-frames:v", "1", "-vf", f"scale={width}:{height}:flags=bicubic",
               "-pix_fmt", "rgb24", "-f", "rawvideo", "-"]
        try:
            proc = subprocess.run(cmd, capture_output=True, timeout=120)
        except subprocess.TimeoutExpired as exc:
            raise MediaError("corrupt_file", "Extracting a frame took over 120 s.") from exc
        if proc.returncode == 0 and len(proc.stdout) >= expected:
            return Image.frombytes("RGB", (width, height), proc.stdout[:expected])
        # A seek past the last frame (duration metadata longer than the stream) yields nothing.
    raise MediaError("corrupt_file", f"No frame could be extracted from the video: {_tail(proc.stderr) or 'no frame'}")


def video_previews(path: str, info: MediaInfo, out_dir: str, tools: MediaTools) -> list[Preview]:
    """A ``poster`` (JPEG, display size capped to 1280 on the long side, ~1 s in) and a
    ``thumbnail`` (JPEG, long side 320). Audio files have no previews."""
    from PIL import Image

    if info.kind != "video" or not info.width or not info.height:
        return []
    os.makedirs(out_dir, exist_ok=True)
    pw, ph = _fit_box(info.width, info.height, POSTER_MAX_SIDE)
    poster = _grab_frame(path, info, tools, _default_frame_time(info), pw, ph)
    poster_path = os.path.join(out_dir, "poster.jpg")
    poster.save(poster_path, "JPEG", quality=85, optimize=True, progressive=True)
    thumb = poster.copy()
    thumb.thumbnail((THUMBNAIL_MAX_SIDE, THUMBNAIL_MAX_SIDE), Image.Resampling.LANCZOS)
    thumb_path = os.path.join(out_dir, "thumbnail.jpg")
    thumb.save(thumb_path, "JPEG", quality=80, optimize=True)
    return [
        Preview(role="poster", path=poster_path, mime="image/jpeg", width=pw, height=ph),
        Preview(role="thumbnail", path=thumb_path, mime="image/jpeg", width=thumb.width, height=thumb.height),
    ]


def cover_frame(path: str, info: MediaInfo, out_path: str, tools: MediaTools, at_seconds: float | None = None) -> str:
    """Write a JPEG cover (display size capped to 1280 on the long side) taken at ``at_seconds``
    (default: as the poster, ~1 s in) and return its path."""
    if info.kind != "video" or not info.width or not info.height:
        raise MediaError("no_video_stream", "A cover frame needs a video stream.")
    at = _default_frame_time(info) if at_seconds is None else max(0.0, at_seconds)
    if info.duration:
        at = min(at, max(0.0, info.duration - 0.1))
    w, h = _fit_box(info.width, info.height, POSTER_MAX_SIDE)
    image = _grab_frame(path, info, tools, at, w, h)
    partial = f"{out_path}.partial"
    image.save(partial, "JPEG", quality=88, optimize=True, progressive=True)
    os.replace(partial, out_path)
    return out_path
