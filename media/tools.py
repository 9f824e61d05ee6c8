"""Which ffmpeg (and ffprobe) the media pipeline runs, and how it probes.

Resolution order for each executable: the explicit setting (``HERALD_FFMPEG_PATH`` /
``HERALD_FFPROBE_PATH``, i.e. ``Settings.ffmpeg_path`` / ``ffprobe_path``) -> the executable on
``PATH`` -> for ffmpeg only, the static binary inside the ``imageio-ffmpeg`` wheel. The wheel has no
ffprobe, so without one probing goes through PyAV, whose wheels bundle FFmpeg's libraries.

A setting that points nowhere is an error, not a silent fallback: an operator who configured a
binary wants that binary, and a typo should show up at start-up, not as different output later.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from typing import Literal

from media.types import MediaError

FFMPEG_SETTING = "HERALD_FFMPEG_PATH"
FFPROBE_SETTING = "HERALD_FFPROBE_PATH"


@dataclass(frozen=True)
class MediaTools:
    ffmpeg: str  # absolute path of the ffmpeg executable
    ffprobe: str | None  # absolute path of ffprobe, None when probing uses PyAV
    ffmpeg_source: Literal["setting", "path", "imageio-ffmpeg"]
    probe_with: Literal["ffprobe", "pyav"]

    def describe(self) -> str:
        """One line for logs and the health endpoint, e.g.
        ``ffmpeg 9.0.2 (imageio-ffmpeg), probe: pyav``."""
        probe = f"ffprobe ({self.ffprobe})" if self.probe_with == "ffprobe" else "pyav"
        return f"ffmpeg {ffmpeg_version(self.ffmpeg)} ({self.ffmpeg_source}), probe: {probe}"


def _check_executable(path: str, setting: str) -> str:
    resolved = shutil.which(path) if os.sep not in path else path
    if not resolved or not os.path.isfile(resolved):
        raise MediaError("tool_missing", f"{setting} is set to {path!r}, but no such file exists.")
    if not os.access(resolved, os.X_OK):
        raise MediaError("tool_missing", f"{setting} is set to {path!r}, but that file is not executable.")
    return os.path.abspath(resolved)


@functools.lru_cache(maxsize=16)
def resolve_tools(ffmpeg: str | None = None, ffprobe: str | None = None) -> MediaTools:
    """Find ffmpeg/ffprobe once per (setting, setting) pair; see the module docstring for the order.

    Raises ``MediaError("tool_missing")`` when a setting names a missing or non-executable file
    (the message names the setting), or when no ffmpeg can be found at all.
    """
    if ffmpeg:
        ffmpeg_path, source = _check_executable(ffmpeg, FFMPEG_SETTING), "setting"
    elif found := shutil.which("ffmpeg"):
        ffmpeg_path, source = os.path.abspath(found), "path"
    else:
        try:
            import imageio_ffmpeg

            ffmpeg_path, source = imageio_ffmpeg.get_ffmpeg_exe(), "imageio-ffmpeg"
        except (ImportError, RuntimeError) as exc:
            raise MediaError(
                "tool_missing",
                f"No ffmpeg found: {FFMPEG_SETTING} is unset, there is no ffmpeg on PATH and "
                f"imageio-ffmpeg has no binary ({exc}). Install ffmpeg or set {FFMPEG_SETTING}.",
            ) from exc

    if ffprobe:
        ffprobe_path: str | None = _check_executable(ffprobe, FFPROBE_SETTING)
    else:
        found = shutil.which("ffprobe")
        ffprobe_path = os.path.abspath(found) if found else None

    return MediaTools(
        ffmpeg=ffmpeg_path,
        ffprobe=ffprobe_path,
        ffmpeg_source=source,  # type: ignore[arg-type]
        probe_with="ffprobe" if ffprobe_path else "pyav",
    )


@functools.lru_cache(maxsize=16)
def ffmpeg_version(ffmpeg: str) -> str:
    """``9.0.2`` from ``ffmpeg version n9.0.2-17-g2a571b6068-20260930 ...``; ``unknown`` if the
    binary does not answer (describe() is for logs and must not raise)."""
    try:
        out = subprocess.run([ffmpeg, "-hide_banner", "-version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    m = re.search(r"ffmpeg version n?(\S+)", out)
    if not m:
        return "unknown"
    # Release builds say "7.1.1", git builds "n9.0.2-17-g2a571b6068-20260930": keep the release part.
    return re.match(r"[\d.]+", m.group(1)).group(0) if re.match(r"\d", m.group(1)) else m.group(1)


@functools.lru_cache(maxsize=16)
def ffmpeg_encoders(ffmpeg: str) -> frozenset[str]:
    """Names of the encoders this ffmpeg build has (``libx264``, ``aac``, ...)."""
    try:
        out = subprocess.run([ffmpeg, "-hide_banner", "-encoders"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return frozenset()
    names = set()
    for line in out.splitlines():
        # " V....D libx264  libx264 H.264 / AVC ..." -- flags column, then the name.
        parts = line.split()
        if len(parts) >= 2 and re.fullmatch(r"[VASFXBD.]{6}", parts[0]):
            names.add(parts[1])
    return frozenset(names)
