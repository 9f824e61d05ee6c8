"""Images with Pillow: probe, thumbnail, plan and render a rendition that fits a network.

Privacy rule: GPS (and the rest of EXIF/XMP/IPTC, comments, camera maker notes, embedded
thumbnails, C2PA blocks, data trailing the image) never leaves Herald. A file passes through byte
for byte only when it carries none of it; anything else is either stripped losslessly (JPEG, PNG,
WebP and GIF are rewritten container-block by block, the compressed pixels untouched) or decoded
and re-encoded with no metadata at all. ICC colour profiles are kept: they only describe colour,
and dropping one shifts the colours of wide-gamut phone photos.

Speed: a 12-megapixel JPEG rendered to 1080 px is decoded with ``Image.draft`` at 1/2, 1/4 or
1/8 scale (libjpeg's DCT scaling), so most of the pixels are never produced; ``resize`` then
uses ``reducing_gap`` (a box ``reduce`` before Lanczos). ``bench/media.py`` measures the gain.

Limits that are ours rather than a network's:

* ``MAX_SIDE`` 30,000 px: beyond any camera or screenshot (a 200-MP sensor is ~16,000 px wide);
  a larger side is a crafted file or a panorama no network accepts.
* ``max_pixels`` (the caller's setting) bounds decoded memory: checked from the header before a
  single pixel is decoded.
"""

from __future__ import annotations

import io
import math
import mmap
import os
import re
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageCms, UnidentifiedImageError, features

from media.sniff import sniff
from media.types import Fit, ImageRules, MediaError, MediaInfo, Preview, RenditionPlan, RenditionResult

MAX_SIDE = 30_000
THUMBNAIL_SIDE = 320
THUMBNAIL_QUALITY = 85
QUALITY = 90  # first JPEG/WebP attempt: visually lossless for photos at a moderate size
MIN_QUALITY = 40  # below this JPEG artefacts are obvious; downscale instead
MAX_SIZE_ROUNDS = 8  # downscale rounds when even MIN_QUALITY is over max_bytes
MIN_RENDITION_SIDE = 16  # refuse rather than send a postage stamp to meet a byte limit
PAD_COLOR = (255, 255, 255)
ORIENTATION_TAG = 0x0112

# The Pillow plugin for each sniffed mime. Opening with ``formats=[...]`` stops Pillow from
# guessing among its ~40 plugins (EPS would even start Ghostscript) for bytes we already typed.
PIL_FORMATS = {
    "image/jpeg": "JPEG",
    "image/png": "PNG",
    "image/gif": "GIF",
    "image/webp": "WEBP",
    "image/bmp": "BMP",
    "image/tiff": "TIFF",
    "image/avif": "AVIF",
}
EXTENSIONS = {
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/gif": "gif",
    "image/webp": "webp",
    "image/bmp": "bmp",
    "image/tiff": "tiff",
    "image/avif": "avif",
}
LOSSY = frozenset({"image/jpeg", "image/webp", "image/avif"})

# EXIF Orientation -> the transpose that shows the image upright (the mapping of
# ImageOps.exif_transpose), and the clockwise rotation it implies (exiftool's names for the
# values: 6 "Rotate 90 CW", 8 "Rotate 270 CW", 5/7 mirrored 270/90, 3/4 180).
TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
ROTATION = {3: 180, 4: 180, 5: 270, 6: 90, 7: 90, 8: 270}
SWAPS_SIDES = frozenset({5, 6, 7, 8})


# --------------------------------------------------------------------------------------------
# probe


def probe_image(path: str | os.PathLike[str], *, max_pixels: int) -> MediaInfo:
    """Dimensions as displayed, EXIF rotation, animation and whether metadata is present.

    Refuses, before decoding, images over ``max_pixels`` (``decompression_bomb``) or with a side
    of 0 or over ``MAX_SIDE`` (``dimensions_too_large``); then decodes (at 1/8 scale for JPEG,
    which still reads every byte of the compressed data) so a truncated or damaged file is
    ``corrupt_file`` now rather than at publish time.
    """
    size = os.path.getsize(path)
    if size == 0:
        raise MediaError("empty_file", "the file is empty (0 bytes)")
    found = sniff(path)
    if found is None or found.kind != "image":
        what = found.mime if found else "no known image signature"
        raise MediaError("unsupported_type", f"not an image Herald can read ({what})")
    mime = found.mime
    _require_decoder(mime)

    with open_image(path, mime) as im:
        width, height = im.size
        check_dimensions(width, height, max_pixels)
        try:
            if im.format == "JPEG":
                # Decode at 1/8: every entropy-coded byte is still read, so truncation and
                # corrupt scans are found, at a fraction of the cost of a full decode.
                im.draft(None, (max(1, width // 8), max(1, height // 8)))
            im.load()
            orientation = _orientation(im)
            pillow_frames = getattr(im, "n_frames", 1) if im.format not in ("JPEG", "MPO", "TIFF") else 1
            pillow_metadata = _pillow_has_metadata(im)
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            raise MediaError("corrupt_file", f"the {found.ext.upper()} image cannot be decoded: {exc}") from None

    walked = _walk_file(path, mime)
    if walked is not None:
        has_metadata, frames, duration = walked.has_metadata, walked.frames, walked.duration
    else:
        # No container walker for this format (BMP, TIFF, AVIF) or the walk failed: trust
        # Pillow for the frame count and assume metadata unless the format cannot carry any.
        has_metadata = mime != "image/bmp" or pillow_metadata
        frames, duration = (pillow_frames if pillow_frames > 1 else None), None
    if orientation in SWAPS_SIDES:
        width, height = height, width
    return MediaInfo(
        mime=mime,
        kind="image",
        ext=found.ext,
        size=size,
        width=width,
        height=height,
        duration=duration,
        rotation=ROTATION.get(orientation, 0),
        frames=frames,
        has_metadata=has_metadata,
    )


def check_dimensions(width: int, height: int, max_pixels: int) -> None:
    if width <= 0 or height <= 0 or width > MAX_SIDE or height > MAX_SIDE:
        raise MediaError(
            "dimensions_too_large",
            f"the image declares {width}x{height} pixels; each side must be 1 to {MAX_SIDE:,}",
        )
    if width * height > max_pixels:
        raise MediaError(
            "decompression_bomb",
            f"the image declares {width}x{height} = {width * height:,} pixels, over the "
            f"{max_pixels:,}-pixel limit; it was not decoded",
        )


@contextmanager
def open_image(path: str | os.PathLike[str], mime: str) -> Iterator[Image.Image]:
    """Pillow's lazy open (header only), restricted to the sniffed format, with errors mapped.

    Pillow has its own, process-wide bomb guard (``Image.MAX_IMAGE_PIXELS``: a warning above
    it, ``DecompressionBombError`` above twice it). We leave that global alone: changing it per
    call would race with other threads decoding at the same time. Our per-call ``max_pixels``
    check runs right after the header is read and is the one that normally fires; Pillow's
    error only fires first for absurd sizes (over ~179 MP by default) and is mapped to the same
    code.
    """
    try:
        im = Image.open(path, formats=[PIL_FORMATS[mime]])
    except Image.DecompressionBombError as exc:
        raise MediaError("decompression_bomb", f"the image is too large to decode safely: {exc}") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        kind = EXTENSIONS.get(mime, mime).upper()
        raise MediaError("corrupt_file", f"the file starts like a {kind} image but cannot be read: {exc}") from None
    try:
        yield im
    finally:
        im.close()


def _require_decoder(mime: str) -> None:
    if mime in ("image/heic", "image/heif"):
        raise MediaError(
            "unsupported_type",
            "HEIC/HEIF images cannot be decoded on this server (Pillow has no HEIF decoder "
            "installed); export the photo as JPEG (on iPhone: Settings > Camera > Formats > "
            "Most Compatible) and upload it again",
        )
    if mime not in PIL_FORMATS:
        raise MediaError("unsupported_type", f"{mime} images are not supported")
    if mime == "image/avif" and not features.check("avif"):
        raise MediaError(
            "unsupported_type", "AVIF images cannot be decoded on this server (Pillow was built without AVIF)"
        )


def _orientation(im: Image.Image) -> int:
    # getexif() also reads an XMP tiff:Orientation when there is no EXIF one.
    value = im.getexif().get(ORIENTATION_TAG, 1)
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _pillow_has_metadata(im: Image.Image) -> bool:
    return any(key in im.info for key in ("exif", "xmp", "XML:com.adobe.xmp", "comment", "photoshop"))


# --------------------------------------------------------------------------------------------
# previews


def image_previews(path: str | os.PathLike[str], info: MediaInfo, out_dir: str | os.PathLike[str]) -> list[Preview]:
    """One upright JPEG ``thumbnail`` (longest side 320 px) with no metadata.

    Transparent images are flattened on white rather than kept as PNG: every preview is then
    a small JPEG the UI shows the same way, and the tool's light background is white anyway.
    """
    out = Path(out_dir) / "thumbnail.jpg"
    out.parent.mkdir(parents=True, exist_ok=True)
    width, height = info.width or 1, info.height or 1
    scale = min(1.0, THUMBNAIL_SIDE / max(width, height))
    target = (max(1, round(width * scale)), max(1, round(height * scale)))
    with open_image(path, info.mime) as src:
        try:
            # Twice the target for the draft, as Image.thumbnail does (reducing_gap=2): the
            # DCT-scaled decode is then never the final resampling step.
            im, _ = _decode(src, (target[0] * 2, target[1] * 2))
            if im.size != target:
                im = im.resize(target, Image.Resampling.LANCZOS, reducing_gap=3.0)
            im = _to_mode(im, "image/jpeg")
            data = _encode(im, "image/jpeg", THUMBNAIL_QUALITY, im.info.get("icc_profile"))
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            raise MediaError("corrupt_file", f"the image cannot be decoded: {exc}") from None
    _write_atomic(out, data)
    return [Preview(role="thumbnail", path=str(out), mime="image/jpeg", width=target[0], height=target[1])]


# --------------------------------------------------------------------------------------------
# plan


def plan_image(info: MediaInfo, rules: ImageRules, fit: Fit | None) -> RenditionPlan:
    """What must happen for the image to fit ``rules``; pure (MediaInfo in, plan out).

    Raises ``media_unfit`` when the aspect ratio is out of bounds and ``fit`` is None. With
    ``pad`` or ``crop`` the image is brought to the nearest allowed ratio. ``target_width`` /
    ``target_height`` are exactly the rendition's dimensions, except when ``rules.max_bytes``
    forces a further downscale that only encoding can reveal (render then says so).
    """
    if not info.width or not info.height:
        raise MediaError("corrupt_file", "the image has no known dimensions")
    width, height = info.width, info.height
    actions: list[str] = []

    # Region of the upright image that fills the output (a crop) or the canvas the image is
    # centred on (a pad), at the original scale.
    low, high = aspect_bounds(rules)
    ratio = width / height
    region_w, region_h = width, height
    geometry: str | None = None
    if ratio > high or ratio < low:
        if fit is None:
            raise MediaError(
                "media_unfit",
                f"the image is {width}x{height} (width/height {ratio:.3g}); this network accepts "
                f"width/height from {_bound(low)} to {_bound(high)}; set fit to 'pad' or 'crop' "
                "to adapt it",
            )
        if ratio > high:  # too wide: a taller canvas, or a narrower centre
            if fit == "pad":
                region_h = math.ceil(width / high)
            else:
                region_w = math.floor(height * high)
        elif fit == "pad":  # too tall: a wider canvas, or a shorter centre
            region_w = math.ceil(height * low)
        else:
            region_h = math.floor(width / low)
        region_w, region_h = max(1, region_w), max(1, region_h)
        geometry = fit

    scale = _limit_scale(region_w, region_h, rules)
    target_w, target_h = _scaled(region_w, region_h, scale, rules, low, high)

    animated = (info.frames or 1) > 1
    size_ok = rules.max_bytes is None or info.size <= rules.max_bytes
    keep_animation = (
        animated
        and rules.keep_animation
        and info.mime in rules.formats
        and geometry is None
        and (target_w, target_h) == (width, height)
        and size_ok
    )
    target_mime = info.mime if info.mime in rules.formats else rules.convert_to
    if (
        rules.max_bytes is not None
        and target_mime not in LOSSY
        and rules.convert_to in LOSSY
        and not keep_animation
        and info.size * (target_w * target_h) / (width * height) > rules.max_bytes
    ):
        # A lossless format already over the byte limit at the target size will not get under
        # it by re-encoding; the network's own fallback format (JPEG) will.
        target_mime = rules.convert_to

    if animated and not keep_animation:
        actions.append("first_frame")
    if info.rotation:
        actions.append("exif_transpose")
    if info.has_metadata is not False:  # unknown counts as present: GPS must never leave
        actions.append("strip_metadata")
    if target_mime != info.mime:
        actions.append(f"convert {info.mime}->{target_mime}")
    if geometry is not None:
        actions.append(f"{geometry} {width}x{height}->{region_w}x{region_h}")
    if (target_w, target_h) != (region_w, region_h):
        actions.append(f"downscale {region_w}x{region_h}->{target_w}x{target_h}")
    if not size_ok and not actions:
        actions.append(f"recompress to <= {rules.max_bytes:,} bytes")
    return RenditionPlan(
        kind="image", actions=actions, target_width=target_w, target_height=target_h, target_mime=target_mime
    )


def aspect_bounds(rules: ImageRules) -> tuple[float, float]:
    """The allowed width/height range from ``min_aspect``/``max_aspect`` and ``max_ratio``."""
    low, high = 0.0, math.inf
    if rules.min_aspect is not None:
        low = max(low, rules.min_aspect)
    if rules.max_aspect is not None:
        high = min(high, rules.max_aspect)
    if rules.max_ratio is not None:
        low, high = max(low, 1 / rules.max_ratio), min(high, rules.max_ratio)
    return low, high


def _bound(value: float) -> str:
    if value == 0:
        return "any"
    if math.isinf(value):
        return "any"
    if value < 1:
        return f"{value:.3g} (1:{1 / value:.3g})"
    return f"{value:.3g} ({value:.3g}:1)"


def _limit_scale(width: int, height: int, rules: ImageRules) -> float:
    scale = 1.0
    if rules.max_width:
        scale = min(scale, rules.max_width / width)
    if rules.max_height:
        scale = min(scale, rules.max_height / height)
    if rules.max_side_sum:
        scale = min(scale, rules.max_side_sum / (width + height))
    return scale


def _scaled(width: int, height: int, scale: float, rules: ImageRules, low: float, high: float) -> tuple[int, int]:
    """``width``x``height`` times ``scale``, rounded down, then nudged by a pixel where rounding
    broke a limit or the aspect bounds (shrinking a side never breaks a size limit)."""
    if scale >= 1:
        w, h = width, height
    else:
        # The epsilon keeps 4000 * (1280 / 4000) = 1279.9999... from flooring to 1279.
        w = max(1, math.floor(width * scale + 1e-6))
        h = max(1, math.floor(height * scale + 1e-6))
    while rules.max_width and w > rules.max_width:
        w -= 1
    while rules.max_height and h > rules.max_height:
        h -= 1
    while rules.max_side_sum and w + h > rules.max_side_sum:
        if w >= h:
            w -= 1
        else:
            h -= 1
    while w > 1 and w / h > high:
        w -= 1
    while h > 1 and w / h < low:
        h -= 1
    return w, h


# --------------------------------------------------------------------------------------------
# render


def render_image(
    path: str | os.PathLike[str],
    info: MediaInfo,
    rules: ImageRules,
    fit: Fit | None,
    out_path: str | os.PathLike[str],
) -> RenditionResult:
    """Write the rendition ``plan_image`` describes to ``out_path`` (exactly that path, whatever
    the format; the result's ``mime``/``ext`` say what it is). Never above ``rules.max_bytes``:
    JPEG/WebP quality is searched down to ``MIN_QUALITY``, then the image is downscaled; when
    even that fails, ``media_unfit``. The file appears atomically (written aside, renamed)."""
    plan = plan_image(info, rules, fit)
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    target_mime = plan.target_mime or info.mime

    if plan.passthrough:
        tmp = _tmp_path(out)
        shutil.copyfile(path, tmp)
        os.replace(tmp, out)
        return _result(out, info.mime, info.width, info.height, info.duration if info.frames else None, [])

    if set(plan.actions) <= {"strip_metadata"} and target_mime == info.mime:
        stripped = _strip_losslessly(path, info.mime)
        if stripped is not None and (rules.max_bytes is None or len(stripped) <= rules.max_bytes):
            _write_atomic(out, stripped)
            duration = info.duration if info.frames else None
            return _result(out, info.mime, info.width, info.height, duration, ["strip_metadata lossless"])

    actions = list(plan.actions)
    with open_image(path, info.mime) as src:
        try:
            im, actions = _render_pixels(src, info, plan, fit, actions)
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            raise MediaError("corrupt_file", f"the image cannot be decoded: {exc}") from None
        # Still inside ``with``: when nothing changed the pixels, ``im`` is the open source image.
        data, target_mime, im, actions = _fit_bytes(im, target_mime, rules, actions)
    _write_atomic(out, data)
    return _result(out, target_mime, im.width, im.height, None, actions)


def _render_pixels(
    src: Image.Image, info: MediaInfo, plan: RenditionPlan, fit: Fit | None, actions: list[str]
) -> tuple[Image.Image, list[str]]:
    target = (plan.target_width or info.width or 1, plan.target_height or info.height or 1)
    upright_w, upright_h = info.width or 1, info.height or 1
    # The part of the upright image that ends up in the output: all of it, or the centred
    # crop. Its size at full scale decides how small the JPEG can be decoded.
    if fit == "crop" and any(a.startswith("crop ") for a in plan.actions):
        region = _centre_crop((upright_w, upright_h), target)
    else:
        region = (0, 0, upright_w, upright_h)
    if any(a.startswith("pad ") for a in plan.actions):
        content = _fit_inside((upright_w, upright_h), target)
    else:
        content = target
    region_w, region_h = region[2] - region[0], region[3] - region[1]
    need = (
        math.ceil(upright_w * content[0] / region_w),
        math.ceil(upright_h * content[1] / region_h),
    )
    im, orientation = _decode(src, need)
    if "exif_transpose" not in actions and orientation != 1:
        actions.insert(0, "exif_transpose")  # a mirror-only orientation (2) has rotation 0
    if (info.frames or 1) > 1 and "first_frame" not in actions:
        actions.insert(0, "first_frame")  # the lossless path for the animation was not possible

    # The decode may be smaller than the upright original (draft): scale the crop box with it.
    fx, fy = im.width / upright_w, im.height / upright_h
    box = (region[0] * fx, region[1] * fy, region[2] * fx, region[3] * fy)
    if im.size != content or box != (0, 0, im.width, im.height):
        im = im.resize(content, Image.Resampling.LANCZOS, box=box, reducing_gap=3.0)
    target_mime = plan.target_mime or info.mime
    im = _to_mode(im, target_mime)
    if content != target:
        if im.mode == "P":
            im = _keep_icc(im.convert("RGB"), im)  # a palette may have no white for the padding
        canvas = Image.new(im.mode, target, _pad_color(im.mode))
        canvas.paste(im, ((target[0] - content[0]) // 2, (target[1] - content[1]) // 2))
        canvas.info["icc_profile"] = im.info.get("icc_profile")
        im = canvas
    return im, actions


def _keep_icc(converted: Image.Image, original: Image.Image) -> Image.Image:
    converted.info = {"icc_profile": original.info["icc_profile"]} if original.info.get("icc_profile") else {}
    return converted


def _decode(src: Image.Image, need: tuple[int, int]) -> tuple[Image.Image, int]:
    """The first frame, upright and loaded, with the EXIF orientation that was applied. A JPEG
    is decoded at the smallest DCT scale that still yields at least ``need`` upright pixels."""
    orientation = _orientation(src)
    src.seek(0)
    if src.format in ("JPEG", "MPO"):
        stored_need = (need[1], need[0]) if orientation in SWAPS_SIDES else need
        src.draft(src.mode if src.mode in ("RGB", "L") else None, stored_need)
    src.load()
    # Only what the pixels need travels on; EXIF, XMP and comments stay behind here.
    kept = {k: src.info[k] for k in ("icc_profile", "transparency") if src.info.get(k) is not None}
    im: Image.Image = src.transpose(TRANSPOSE[orientation]) if orientation in TRANSPOSE else src
    im.info = kept
    return im, orientation


def _centre_crop(size: tuple[int, int], target: tuple[int, int]) -> tuple[int, int, int, int]:
    width, height = size
    want = target[0] / target[1]
    if width / height > want:
        keep = max(1, round(height * want))
        left = (width - keep) // 2
        return (left, 0, left + keep, height)
    keep = max(1, round(width / want))
    top = (height - keep) // 2
    return (0, top, width, top + keep)


def _fit_inside(size: tuple[int, int], box: tuple[int, int]) -> tuple[int, int]:
    width, height = size
    if width / height > box[0] / box[1]:
        return box[0], max(1, min(box[1], round(box[0] * height / width)))
    return max(1, min(box[0], round(box[1] * width / height))), box[1]


def _pad_color(mode: str) -> tuple[int, ...] | int:
    if mode in ("L", "P", "1"):
        return 255
    if mode == "LA":
        return (255, 255)
    if mode == "RGBA":
        return (*PAD_COLOR, 255)
    return PAD_COLOR


def _to_mode(im: Image.Image, mime: str) -> Image.Image:
    """A mode the target encoder takes. Transparency is flattened on white for JPEG (it has no
    alpha); CMYK goes to RGB through its ICC profile when there is one."""
    icc = im.info.get("icc_profile")
    source_model = _colour_model(im.mode)
    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        # 16-bit greyscale (PNG) and 32-bit modes: scale to 8 bits rather than clip.
        factor = 1 / 256 if im.mode.startswith("I;16") else 1
        im = im.convert("I").point(lambda v: v * factor).convert("L")
    if im.mode == "CMYK":
        im, icc = _cmyk_to_rgb(im, icc), None
    has_alpha = im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info
    if has_alpha and im.mode != "RGBA":
        # Palette/grey/RGB transparency (tRNS, a GIF's transparent index) as a real alpha
        # channel: the encoders are given no info keys, so a transparency key would be lost.
        im = im.convert("RGBA")
    if mime == "image/jpeg":
        if has_alpha:
            flat = Image.new("RGB", im.size, PAD_COLOR)
            flat.paste(im, mask=im.getchannel("A"))
            im = flat
        elif im.mode not in ("RGB", "L"):
            im = im.convert("RGB")
    elif mime in ("image/webp", "image/avif"):
        if im.mode not in ("RGB", "RGBA"):
            im = im.convert("RGB")
    elif mime in ("image/png", "image/gif"):
        if im.mode not in ("1", "L", "P", "RGB", "RGBA"):
            im = im.convert("RGB")
    # An ICC profile describes the channels it came with; keep it only while the colour model
    # (grey vs RGB) is unchanged.
    if icc and _colour_model(im.mode) != source_model:
        icc = None
    im.info = {"icc_profile": icc} if icc else {}
    return im


def _colour_model(mode: str) -> str:
    if mode in ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"):
        return "grey"
    return "cmyk" if mode == "CMYK" else "rgb"


def _cmyk_to_rgb(im: Image.Image, icc: bytes | None) -> Image.Image:
    if icc:
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            converted = ImageCms.profileToProfile(im, source, ImageCms.createProfile("sRGB"), outputMode="RGB")
            if converted is not None:
                return converted
        except (ImageCms.PyCMSError, OSError, ValueError):
            pass  # a broken profile: fall back to Pillow's plain conversion
    return im.convert("RGB")


def _encode(im: Image.Image, mime: str, quality: int, icc: bytes | None) -> bytes:
    """Encode with no metadata: only the ICC profile is ever written."""
    buf = io.BytesIO()
    extra = {"icc_profile": icc} if icc else {}
    saved, im.info = im.info, {}  # Pillow copies some info keys (JPEG/GIF comments) by itself
    try:
        _save(im, buf, mime, quality, extra)
    finally:
        im.info = saved
    return buf.getvalue()


def _save(im: Image.Image, buf: io.BytesIO, mime: str, quality: int, extra: dict) -> None:
    if mime == "image/jpeg":
        im.save(buf, "JPEG", quality=quality, optimize=True, **extra)
    elif mime == "image/webp":
        im.save(buf, "WEBP", quality=quality, method=4, **extra)
    elif mime == "image/avif":
        im.save(buf, "AVIF", quality=quality, **extra)
    elif mime == "image/png":
        im.save(buf, "PNG", compress_level=6, **extra)
    elif mime in PIL_FORMATS:
        im.save(buf, PIL_FORMATS[mime])
    else:
        raise MediaError("unsupported_type", f"cannot write {mime} images")


def _fit_bytes(
    im: Image.Image, mime: str, rules: ImageRules, actions: list[str]
) -> tuple[bytes, str, Image.Image, list[str]]:
    """Encode ``im``; when over ``rules.max_bytes``, search quality, then downscale."""
    icc = im.info.get("icc_profile")
    data = _encode(im, mime, QUALITY, icc)
    limit = rules.max_bytes
    if limit is None or len(data) <= limit:
        return data, mime, im, actions
    if mime not in LOSSY and rules.convert_to in LOSSY:
        actions.append(f"convert {mime}->{rules.convert_to} (size)")
        mime = rules.convert_to
        im = _to_mode(im, mime)
        icc = im.info.get("icc_profile")
        data = _encode(im, mime, QUALITY, icc)
        if len(data) <= limit:
            return data, mime, im, actions
    low_bound, high_bound = aspect_bounds(rules)
    for _ in range(MAX_SIZE_ROUNDS):
        if mime in LOSSY:
            best = _quality_search(im, mime, limit, icc)
            if best is not None:
                quality, data = best
                actions.append(f"quality {quality}")
                return data, mime, im, actions
            smallest = len(_encode(im, mime, MIN_QUALITY, icc))
        else:
            smallest = len(data)
        # Bytes grow roughly with the pixel count, so scale the sides by the square root of
        # the excess, with 10% to spare so one more round usually suffices.
        factor = min(0.9, math.sqrt(limit / smallest) * 0.9)
        w, h = _scaled(im.width, im.height, factor, rules, low_bound, high_bound)
        if min(w, h) < MIN_RENDITION_SIDE:
            break
        actions.append(f"downscale {im.width}x{im.height}->{w}x{h} (size)")
        im = im.resize((w, h), Image.Resampling.LANCZOS, reducing_gap=3.0)
        data = _encode(im, mime, QUALITY, icc)
        if len(data) <= limit:
            return data, mime, im, actions
    raise MediaError(
        "media_unfit",
        f"the image cannot be brought under this network's {limit:,}-byte limit "
        f"(still {len(data):,} bytes at {im.width}x{im.height})",
    )


def _quality_search(im: Image.Image, mime: str, limit: int, icc: bytes | None) -> tuple[int, bytes] | None:
    """The highest quality in [MIN_QUALITY, QUALITY) whose encoding fits ``limit`` (binary search:
    size grows with quality), or None."""
    low, high = MIN_QUALITY, QUALITY - 1
    best: tuple[int, bytes] | None = None
    while low <= high:
        mid = (low + high) // 2
        data = _encode(im, mime, mid, icc)
        if len(data) <= limit:
            best, low = (mid, data), mid + 1
        else:
            high = mid - 1
    return best


def _result(
    out: Path, mime: str, width: int | None, height: int | None, duration: float | None, actions: list[str]
) -> RenditionResult:
    return RenditionResult(
        path=str(out),
        mime=mime,
        ext=EXTENSIONS.get(mime, "bin"),
        size=out.stat().st_size,
        width=width,
        height=height,
        duration=duration,
        actions=tuple(actions),
    )


def _tmp_path(out: Path) -> Path:
    return out.with_name(f".{out.name}.{os.getpid()}.part")


def _write_atomic(out: Path, data: bytes) -> None:
    tmp = _tmp_path(out)
    tmp.write_bytes(data)
    os.replace(tmp, out)


# --------------------------------------------------------------------------------------------
# Container walkers: find and drop metadata blocks without touching the compressed pixels.
# Each takes the whole file and returns the stripped file, the frame count and the animation
# duration; ValueError when the structure is not what the format's specification says (the
# caller then falls back to a decode and re-encode).


@dataclass(frozen=True)
class Walked:
    stripped: bytes
    frames: int | None
    duration: float | None  # seconds
    has_metadata: bool


def _walk_file(path: str | os.PathLike[str], mime: str) -> Walked | None:
    walker = WALKERS.get(mime)
    if walker is None:
        return None
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
        try:
            stripped, frames, duration = walker(data)
        except (ValueError, IndexError):
            return None
        changed = len(stripped) != len(data) or stripped != data[:]
    return Walked(stripped, frames if frames and frames > 1 else None, duration if frames and frames > 1 else None, changed)


def _strip_losslessly(path: str | os.PathLike[str], mime: str) -> bytes | None:
    """The file without its metadata blocks, or None when that cannot be done without a
    re-encode (no walker, a malformed container, or a JPEG whose EXIF orientation would be lost
    with the EXIF)."""
    if mime == "image/jpeg":
        with open_image(path, mime) as im:
            if _orientation(im) != 1:
                return None
    walked = _walk_file(path, mime)
    return walked.stripped if walked is not None else None


# JPEG (ITU T.81 Annex B): segments until SOS, entropy-coded data until the next marker that is
# not a stuffed 0xFF00 or a restart marker, repeated for progressive scans, up to EOI. Kept: the
# coding segments, JFIF APP0, ICC_PROFILE APP2 and Adobe APP14 (it says how to read the colour
# channels). Dropped: Exif/XMP APP1, MPF APP2 (and the extra images after EOI it points to:
# depth maps, gain maps, motion-photo video), JFXX thumbnails, APP3-13/15 (IPTC, C2PA, ...),
# comments.
_JPEG_KEEP_APP = {0xE0: (b"JFIF\x00",), 0xE2: (b"ICC_PROFILE\x00",), 0xEE: (b"Adobe",)}
# "FF then not 00" is a fast regex; restart markers and fill bytes are then skipped in Python
# (a richer character class made the scan of an 8 MB photo 20x slower).
_JPEG_MARKER = re.compile(rb"\xff[^\x00]")


def _jpeg_scan_end(data: bytes | mmap.mmap, i: int) -> int:
    """Offset of the first marker after entropy-coded data starting at ``i``, or -1."""
    while True:
        found = _JPEG_MARKER.search(data, i)
        if found is None:
            return -1
        following = data[found.start() + 1]
        if 0xD0 <= following <= 0xD7:  # RSTn: part of the scan
            i = found.end()
        elif following == 0xFF:  # fill byte before a marker
            i = found.start() + 1
        else:
            return found.start()


def _strip_jpeg(data: bytes | mmap.mmap) -> tuple[bytes, int | None, float | None]:
    if data[:2] != b"\xff\xd8":
        raise ValueError("no SOI")
    out = [b"\xff\xd8"]
    i, n = 2, len(data)
    while True:
        if i >= n or data[i] != 0xFF:
            raise ValueError("expected a marker")
        while i < n and data[i] == 0xFF:
            i += 1
        if i >= n:
            raise ValueError("truncated")
        marker = data[i]
        i += 1
        if marker == 0xD9:
            out.append(b"\xff\xd9")
            return b"".join(out), None, None
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:
            out.append(bytes((0xFF, marker)))
            continue
        length = int.from_bytes(data[i : i + 2], "big")
        end = i + length
        if length < 2 or end > n:
            raise ValueError("segment overruns the file")
        keep = True
        if 0xE0 <= marker <= 0xEF:
            payload = data[i + 2 : min(end, i + 16)]
            keep = any(payload.startswith(p) for p in _JPEG_KEEP_APP.get(marker, ()))
        elif marker == 0xFE:
            keep = False
        if keep:
            out.append(bytes((0xFF, marker)) + data[i:end])
        i = end
        if marker == 0xDA:
            scan_end = _jpeg_scan_end(data, i)
            if scan_end < 0:
                raise ValueError("scan without an end")
            out.append(data[i:scan_end])
            i = scan_end


# PNG (ISO/IEC 15948, PNG 3rd edition, and APNG): keep the chunks that define pixels, colour and
# animation; drop the rest (tEXt/zTXt/iTXt incl. XMP, eXIf, tIME, caBX/C2PA, private chunks).
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_KEEP = frozenset(
    {b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"cHRM", b"gAMA", b"iCCP", b"sBIT", b"sRGB", b"cICP",
     b"mDCV", b"cLLI", b"bKGD", b"hIST", b"pHYs", b"sPLT", b"acTL", b"fcTL", b"fdAT"}
)


def _strip_png(data: bytes | mmap.mmap) -> tuple[bytes, int | None, float | None]:
    if data[:8] != _PNG_SIGNATURE:
        raise ValueError("no PNG signature")
    out = [_PNG_SIGNATURE]
    i, n = 8, len(data)
    frames: int | None = None
    duration = 0.0
    while i + 8 <= n:
        length = int.from_bytes(data[i : i + 4], "big")
        kind = data[i + 4 : i + 8]
        end = i + 12 + length
        if end > n:
            raise ValueError("chunk overruns the file")
        if kind in _PNG_KEEP:
            out.append(data[i:end])
        elif not kind[0] & 0x20:
            raise ValueError("unknown critical chunk")  # uppercase first letter: cannot be dropped
        if kind == b"acTL":
            frames = int.from_bytes(data[i + 8 : i + 12], "big")
        elif kind == b"fcTL" and length >= 26:
            num = int.from_bytes(data[i + 28 : i + 30], "big")
            den = int.from_bytes(data[i + 30 : i + 32], "big") or 100  # 0 means 1/100 s
            duration += num / den
        if kind == b"IEND":
            return b"".join(out), frames, duration
        i = end
    raise ValueError("no IEND")


# WebP (RFC 9649): RIFF chunks; drop EXIF and XMP (and unknown chunks), clear their VP8X flags.
_WEBP_KEEP = frozenset({b"VP8 ", b"VP8L", b"VP8X", b"ALPH", b"ANIM", b"ANMF", b"ICCP"})


def _strip_webp(data: bytes | mmap.mmap) -> tuple[bytes, int | None, float | None]:
    if data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        raise ValueError("not RIFF WEBP")
    body = []
    i = 12
    n = min(len(data), 8 + int.from_bytes(data[4:8], "little"))
    frames = 0
    duration_ms = 0
    while i + 8 <= n:
        kind = data[i : i + 4]
        length = int.from_bytes(data[i + 4 : i + 8], "little")
        end = i + 8 + length + (length & 1)
        if i + 8 + length > n:
            raise ValueError("chunk overruns the file")
        chunk = data[i:min(end, n)]
        if kind == b"VP8X":
            flags = chunk[8] & ~(0x08 | 0x04)  # EXIF and XMP present bits (RFC 9649 §2.7)
            chunk = chunk[:8] + bytes((flags,)) + chunk[9:]
        elif kind == b"ANMF":
            frames += 1
            duration_ms += int.from_bytes(data[i + 8 + 12 : i + 8 + 15], "little")
        if kind in _WEBP_KEEP:
            body.append(chunk)
        i = end
    payload = b"".join(body)
    stripped = b"RIFF" + (len(payload) + 4).to_bytes(4, "little") + b"WEBP" + payload
    return stripped, frames or None, duration_ms / 1000 if frames else None


# GIF (GIF89a specification): drop comment extensions and application extensions other than the
# looping ones (XMP lives in an "XMP DataXMP" application extension).
_GIF_KEEP_APPS = (b"NETSCAPE2.0", b"ANIMEXTS1.0")


def _gif_sub_blocks_end(data: bytes | mmap.mmap, i: int) -> int:
    n = len(data)
    while True:
        if i >= n:
            raise ValueError("truncated data sub-blocks")
        size = data[i]
        i += 1 + size
        if size == 0:
            return i


def _strip_gif(data: bytes | mmap.mmap) -> tuple[bytes, int | None, float | None]:
    if data[:6] not in (b"GIF87a", b"GIF89a") or len(data) < 13:
        raise ValueError("not a GIF")
    flags = data[10]
    i = 13 + (3 * 2 ** ((flags & 0x07) + 1) if flags & 0x80 else 0)
    out = [data[:i]]
    n = len(data)
    frames = 0
    delay_cs = 0
    while i < n:
        block = data[i]
        if block == 0x3B:
            break
        if block == 0x2C:  # image descriptor, optional local colour table, LZW code size, data
            frames += 1
            local = data[i + 9]
            start = i
            i += 10 + (3 * 2 ** ((local & 0x07) + 1) if local & 0x80 else 0) + 1
            i = _gif_sub_blocks_end(data, i)
            out.append(data[start:i])
        elif block == 0x21:
            label = data[i + 1]
            start = i
            i = _gif_sub_blocks_end(data, i + 2)
            if label == 0xF9:  # graphic control: delay in 1/100 s
                delay_cs += int.from_bytes(data[start + 4 : start + 6], "little")
                out.append(data[start:i])
            elif label == 0xFF:
                if data[start + 3 : start + 14] in _GIF_KEEP_APPS:
                    out.append(data[start:i])
            elif label == 0x01:  # plain text: drawn content, not metadata
                out.append(data[start:i])
        else:
            raise ValueError("unknown GIF block")
    out.append(b";")  # a missing trailer is common and harmless; the stripped file has one
    return b"".join(out), frames, delay_cs / 100 if frames > 1 else None


WALKERS: dict[str, Callable[[bytes | mmap.mmap], tuple[bytes, int | None, float | None]]] = {
    "image/jpeg": _strip_jpeg,
    "image/png": _strip_png,
    "image/webp": _strip_webp,
    "image/gif": _strip_gif,
}
