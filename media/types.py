"""The shared vocabulary of the media pipeline.

Module map (each function documented where it lives):

* ``media.sniff``      ``sniff(path) -> Sniffed | None``: the real type from the first bytes.
* ``media.images``     ``probe_image``, ``image_previews``, ``plan_image``, ``render_image`` (Pillow).
* ``media.video``      ``probe_av``, ``video_previews``, ``plan_video``, ``render_video``,
                       ``cover_frame`` (ffmpeg / ffprobe / PyAV).
* ``media.tools``      ``resolve_tools(ffmpeg=None, ffprobe=None) -> MediaTools``: setting -> PATH ->
                       imageio-ffmpeg, and whether probing uses ffprobe or PyAV.
* ``media.pipeline``   ``inspect`` / ``previews`` / ``plan`` / ``render``: dispatch on the kind.
* ``media.fetch``      SSRF-guarded streaming download (``media.share_links`` normalises links).
* ``providers.media_profiles``  ``MediaProfile`` per network, as data with sources.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

MediaKind = Literal["image", "video", "audio", "other"]
Fit = Literal["pad", "crop"]


class MediaError(Exception):
    """A file that cannot be used as given. ``code`` is stable (API ``details.code``), ``message``
    is for people. Codes: empty_file, unsupported_type, mime_mismatch, corrupt_file,
    decompression_bomb, dimensions_too_large, no_video_stream, media_unfit, too_large,
    transcode_failed."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Sniffed:
    mime: str  # e.g. image/jpeg, video/mp4, video/quicktime, audio/mpeg
    kind: MediaKind
    ext: str  # canonical extension without the dot: jpg, png, gif, webp, mp4, mov, webm, mp3, ...


@dataclass
class MediaInfo:
    """What probing found. Dimensions are as displayed (after EXIF orientation / rotation)."""

    mime: str
    kind: MediaKind
    ext: str
    size: int
    width: int | None = None
    height: int | None = None
    duration: float | None = None  # seconds (video, audio, animated images)
    video_codec: str | None = None  # ffmpeg codec names: h264, hevc, vp9, ...
    audio_codec: str | None = None  # aac, mp3, opus, ...
    pixel_format: str | None = None  # yuv420p, ...
    fps: float | None = None
    bitrate: int | None = None  # bits per second, container level
    rotation: int = 0  # degrees clockwise the player must rotate (video) / EXIF-implied (images)
    has_audio: bool = False
    frames: int | None = None  # animated images
    container: str | None = None  # ffmpeg format name: mov,mp4,m4a,... / matroska,webm
    faststart: bool | None = None  # MP4: moov atom before mdat
    # Images: EXIF/XMP/IPTC/comments/trailers present. None = unknown, which plans treat as
    # present, so a file that may carry GPS never passes through byte for byte.
    has_metadata: bool | None = None

    def as_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass(frozen=True)
class Preview:
    role: Literal["thumbnail", "poster"]
    path: str
    mime: str
    width: int
    height: int


@dataclass(frozen=True)
class ImageRules:
    """What a network accepts for one image."""

    formats: tuple[str, ...]  # accepted mimes; anything else converts to ``convert_to``
    convert_to: str = "image/jpeg"
    max_bytes: int | None = None
    max_width: int | None = None
    max_height: int | None = None
    max_side_sum: int | None = None  # Telegram photos: width + height <= 10,000
    min_aspect: float | None = None  # width / height
    max_aspect: float | None = None
    # Aspect bound on max(w,h)/min(w,h), for networks that state it symmetrically (Telegram: 20)
    max_ratio: float | None = None
    keep_animation: bool = False  # animated GIF passes through when it fits


@dataclass(frozen=True)
class VideoRules:
    containers: tuple[str, ...] = ("video/mp4",)
    video_codecs: tuple[str, ...] = ("h264",)
    audio_codecs: tuple[str, ...] = ("aac",)
    pixel_formats: tuple[str, ...] = ("yuv420p",)
    max_bytes: int | None = None
    max_width: int | None = None
    max_height: int | None = None
    max_fps: float | None = None
    max_bitrate: int | None = None  # bits per second
    min_duration: float | None = None
    max_duration: float | None = None
    min_aspect: float | None = None
    max_aspect: float | None = None
    needs_faststart: bool = True
    needs_cover: bool = False  # the network wants a cover/thumbnail image sent with the video


@dataclass(frozen=True)
class MediaProfile:
    """One network's (or one post type's) media rules. ``key`` names the rendition cache entry,
    so two profiles with equal rules may share a key. ``other`` kinds (audio, documents) pass
    through unchanged when ``max_other_bytes`` allows."""

    key: str
    image: ImageRules | None
    video: VideoRules | None
    max_other_bytes: int | None
    source: str


@dataclass
class RenditionPlan:
    """What must happen to fit a profile; ``actions`` empty means pass the original through."""

    kind: MediaKind
    actions: list[str] = field(default_factory=list)  # e.g. ["exif_transpose", "strip_metadata", "downscale 4032x3024->2560x1920", "convert image/heic->image/jpeg", "transcode h264", "faststart"]
    target_width: int | None = None
    target_height: int | None = None
    target_mime: str | None = None

    @property
    def passthrough(self) -> bool:
        return not self.actions


@dataclass(frozen=True)
class RenditionResult:
    path: str
    mime: str
    ext: str
    size: int
    width: int | None
    height: int | None
    duration: float | None
    actions: tuple[str, ...]
    cover_path: str | None = None  # when the profile needs_cover
