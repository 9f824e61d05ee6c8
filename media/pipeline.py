"""One entry point per step, dispatching on what the file really is.

``inspect`` decides the kind from the bytes (``media.sniff``), never from the claimed type; a
claim is only used to refuse a file that says it is one kind of media and is another (a PNG sent
as ``video/mp4`` is a client bug or an attack, and the message should say which two disagree).
Images go to ``media.images`` (Pillow); video and audio to ``media.video`` (ffmpeg/PyAV), imported
lazily so image-only callers (the API's validation) never load the video stack.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from media import images
from media.sniff import sniff
from media.types import Fit, MediaError, MediaInfo, MediaProfile, Preview, RenditionPlan, RenditionResult

if TYPE_CHECKING:
    from media.tools import MediaTools

MEDIA_KINDS = ("image", "video", "audio")

# Containers that hold audio-only or video files alike: the sniffed kind is a guess (video), so an
# ``audio/*`` claim for them is not a mismatch; probing decides.
AV_CONTAINERS = frozenset(
    {"video/mp4", "video/x-m4v", "video/quicktime", "video/3gpp", "video/3gpp2", "video/webm",
     "video/x-matroska", "video/ogg", "audio/mp4", "audio/ogg"}
)

# Mimes this pipeline can decode, by kind: a claim for one of them on unrecognised bytes means a
# damaged file; a claim for anything else of that kind means a format Herald does not handle.
KNOWN_MIMES = frozenset(
    {"image/jpeg", "image/jpg", "image/pjpeg", "image/png", "image/gif", "image/webp", "image/bmp",
     "image/tiff", "image/avif", "image/heic", "image/heif", "video/mp4", "video/quicktime",
     "video/webm", "video/x-matroska", "video/x-msvideo", "video/mp2t", "video/3gpp", "video/ogg",
     "audio/mpeg", "audio/mp3", "audio/aac", "audio/mp4", "audio/x-m4a", "audio/wav", "audio/x-wav",
     "audio/ogg", "audio/opus", "audio/flac", "audio/aiff"}
)

OCTET_STREAM = "application/octet-stream"


def _claimed_kind(claimed_mime: str | None) -> tuple[str | None, str | None]:
    if not claimed_mime:
        return None, None
    mime = claimed_mime.split(";", 1)[0].strip().lower()
    top = mime.split("/", 1)[0]
    return mime, top if top in MEDIA_KINDS else None


def _tools(tools: MediaTools | None) -> MediaTools:
    if tools is not None:
        return tools
    from media.tools import resolve_tools

    return resolve_tools()


def inspect(
    path: str | os.PathLike[str], *, claimed_mime: str | None, max_pixels: int, tools: MediaTools | None = None
) -> MediaInfo:
    """What the file is and its properties. Raises MediaError: ``empty_file``, ``mime_mismatch``
    (the claim names another kind of media than the bytes), ``unsupported_type`` /
    ``corrupt_file`` (unrecognised bytes claimed as media), and whatever probing finds."""
    path = os.fspath(path)
    size = os.path.getsize(path)
    if size == 0:
        raise MediaError("empty_file", "the file is empty (0 bytes)")
    claimed, claimed_kind = _claimed_kind(claimed_mime)
    found = sniff(path)

    if found is None:
        if claimed_kind is None:
            # An opaque document: it can still be sent as a file where a network allows files.
            return MediaInfo(mime=OCTET_STREAM, kind="other", ext="bin", size=size)
        if claimed in KNOWN_MIMES:
            raise MediaError("corrupt_file", f"the file is declared as {claimed} but its bytes are not a valid {claimed} file")
        raise MediaError("unsupported_type", f"the file is declared as {claimed}, a format Herald cannot process")

    if claimed_kind is not None and claimed_kind != found.kind:
        both_av = {claimed_kind, found.kind} == {"audio", "video"} and found.mime in AV_CONTAINERS
        if not both_av:
            raise MediaError(
                "mime_mismatch",
                f"the file is declared as {claimed} but its content is {found.mime} ({found.kind}, not {claimed_kind})",
            )

    if found.kind == "image":
        return images.probe_image(path, max_pixels=max_pixels)
    if found.kind in ("video", "audio"):
        from media.video import probe_av

        return probe_av(path, _tools(tools), sniffed=found)
    return MediaInfo(mime=found.mime, kind="other", ext=found.ext, size=size)


def previews(
    path: str | os.PathLike[str], info: MediaInfo, out_dir: str | os.PathLike[str], tools: MediaTools | None = None
) -> list[Preview]:
    """Thumbnail (and poster, for video) JPEGs in ``out_dir``; none for audio and documents."""
    if info.kind == "image":
        return images.image_previews(path, info, out_dir)
    if info.kind == "video":
        from media.video import video_previews

        return video_previews(os.fspath(path), info, os.fspath(out_dir), _tools(tools))
    return []


def _no_rules(profile: MediaProfile, what: str) -> MediaError:
    network = profile.key.split(".", 1)[0]
    return MediaError("media_unfit", f"{network} does not accept {what}")


def plan(info: MediaInfo, profile: MediaProfile, fit: Fit | None) -> RenditionPlan:
    """What must happen for ``info`` to fit ``profile``; pure. Raises ``media_unfit`` for media the
    network can never take (a kind it has no rules for, a document over its file limit, an image
    with an aspect ratio out of bounds and no ``fit``, ...)."""
    if info.kind == "image":
        if profile.image is None:
            raise _no_rules(profile, "images")
        return images.plan_image(info, profile.image, fit)
    if info.kind == "video":
        if profile.video is None:
            raise _no_rules(profile, "video")
        from media.video import plan_video

        return plan_video(info, profile.video, fit)
    # Audio and documents pass through as files, unchanged, when the network takes files that big.
    what = "audio files" if info.kind == "audio" else "files of this type"
    if profile.max_other_bytes is None:
        raise _no_rules(profile, what)
    if info.size > profile.max_other_bytes:
        network = profile.key.split(".", 1)[0]
        raise MediaError(
            "media_unfit",
            f"the file is {info.size:,} bytes; {network} accepts {what} up to {profile.max_other_bytes:,} bytes",
        )
    return RenditionPlan(kind=info.kind, actions=[], target_mime=info.mime)


def render(
    path: str | os.PathLike[str],
    info: MediaInfo,
    profile: MediaProfile,
    fit: Fit | None,
    out_path: str | os.PathLike[str],
    tools: MediaTools | None = None,
    progress: Callable[[float], None] | None = None,
) -> RenditionResult:
    """Write the rendition for ``profile`` to ``out_path``. ``progress(fraction)`` is called while
    long work runs (video) and may raise to cancel."""
    if info.kind == "image":
        if profile.image is None:
            raise _no_rules(profile, "images")
        result = images.render_image(path, info, profile.image, fit, out_path)
        if progress is not None:
            progress(1.0)
        return result
    if info.kind == "video":
        if profile.video is None:
            raise _no_rules(profile, "video")
        from media.video import render_video

        return render_video(os.fspath(path), info, profile.video, fit, os.fspath(out_path), _tools(tools), progress)
    plan(info, profile, fit)  # raises when the file cannot be sent at all
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.{os.getpid()}.part")
    shutil.copyfile(path, partial)
    os.replace(partial, out)
    return RenditionResult(
        path=str(out), mime=info.mime, ext=info.ext, size=out.stat().st_size, width=None, height=None,
        duration=info.duration, actions=(),
    )
