"""What each network accepts for media, as data: one ``MediaProfile`` per network (and per post
type where a type has rules of its own, e.g. a future Instagram reel vs feed post).

Facts come from /work/shared/reference/providers.md (cited "§n"; tags [C] confirmed in an
official source, [3P] third party, [U] unconfirmed) and the sources named next to each number.
Adding a network: add its profile to ``PROFILES`` under its provider id (post types as extra
keys); ``profile_for`` then serves it.

Profile keys name the rendition cache entry (``herald.assets.rendition_key``): ``<network>.v<n>``.
Bump ``n`` whenever a network's rules change, so renditions made under the old rules are not
reused. ``max_other_bytes`` None means the network takes no audio or document files at all.
"""

from __future__ import annotations

from providers.post_types import POST_TYPES
from media.types import ImageRules, MediaProfile, VideoRules
from providers.facebook import MEDIA_PROFILES as FACEBOOK_PROFILES
from providers.instagram import MEDIA_PROFILES as INSTAGRAM_PROFILES
from providers.linkedin import MEDIA_PROFILES as LINKEDIN_PROFILES
from providers.threads import MEDIA_PROFILES as THREADS_PROFILES
from providers.x import MEDIA_PROFILES as X_PROFILES

MB = 1_000_000
MIB = 1024 * 1024

# --- telegram (§12; Bot API https://core.telegram.org/bots/api) -------------------------------
# sendPhoto: "The photo must be at most 10 MB in size. The photo's width and height must not
# exceed 10000 in total. Width and height ratio must be at most 20." [C Bot API sendPhoto text,
# also ptb FileSizeLimit.PHOTOSIZE_UPLOAD = int(10e6)]. Formats are not listed by the Bot API;
# JPEG, PNG and WebP are what Telegram's photo pipeline takes [3P Ayrshare media guidelines lists
# JPG/PNG/GIF/WEBP]. GIF is not kept: sendPhoto shows a still (animations need sendAnimation,
# which the adapter does not use), so a GIF becomes its first frame as a JPEG.
# sendVideo: "Telegram clients support MPEG4 videos (other formats may be sent as Document)",
# upload <= 50 MB [C Bot API sendVideo; ptb FileSizeLimit.FILESIZE_UPLOAD = int(50e6)].
# Other files (sendDocument/sendAudio) <= 50 MB by multipart upload [C ptb FILESIZE_UPLOAD].
TELEGRAM = MediaProfile(
    key="telegram.v1",
    image=ImageRules(
        formats=("image/jpeg", "image/png", "image/webp"),
        convert_to="image/jpeg",
        max_bytes=10 * MB,
        max_side_sum=10_000,
        max_ratio=20,
        keep_animation=False,
    ),
    video=VideoRules(
        containers=("video/mp4",),
        video_codecs=("h264",),
        audio_codecs=("aac",),
        pixel_formats=("yuv420p",),
        max_bytes=50 * MB,
        # supports_streaming playback starts before the download ends only when moov leads.
        needs_faststart=True,
    ),
    max_other_bytes=50 * MB,
    source=(
        "Bot API sendPhoto (10 MB, width+height <= 10,000, ratio <= 20) and sendVideo (MPEG4, 50 MB); "
        "ptb @1183d401 constants.FileSizeLimit (PHOTOSIZE_UPLOAD 10e6, FILESIZE_UPLOAD 50e6); "
        "providers.md §0/§12"
    ),
)

# --- discord (§11; https://discord.com/developers/docs/reference#uploading-files) -------------
# "any file" up to 10 MiB per file by default [C reference.mdx, Uploading Files]; higher limits
# need Nitro or server boosts, which a webhook cannot count on. Images: the formats the client
# shows inline (JPEG, PNG, GIF incl. animation, WebP) pass as they are [U: the embed formats are
# not documented; these four are what every Discord client renders]; anything else (BMP, TIFF,
# AVIF) becomes a JPEG so it shows as an image rather than a download. Video: Discord's player is
# Chromium's, so MP4/H.264/AAC plays everywhere and is the target when a transcode is needed;
# WebM with VP8/VP9 and Opus/Vorbis also plays inline and is kept [U].
DISCORD = MediaProfile(
    key="discord.v1",
    image=ImageRules(
        formats=("image/jpeg", "image/png", "image/gif", "image/webp"),
        convert_to="image/jpeg",
        max_bytes=10 * MIB,
        keep_animation=True,
    ),
    video=VideoRules(
        containers=("video/mp4", "video/webm"),
        video_codecs=("h264", "vp8", "vp9"),
        audio_codecs=("aac", "opus", "vorbis", "mp3"),
        pixel_formats=("yuv420p",),
        max_bytes=10 * MIB,
        needs_faststart=True,  # inline playback streams from Discord's CDN
    ),
    max_other_bytes=10 * MIB,
    source="discord-api-docs reference.mdx Uploading Files (10 MiB per file, any type); providers.md §0/§11",
)

# provider id -> {post type or None (the default): profile}. A post type without an entry uses
# the provider's default profile.
PROFILES: dict[str, dict[str | None, MediaProfile]] = {
    "telegram": {None: TELEGRAM},
    "discord": {None: DISCORD},
    # The OAuth networks keep their profiles next to their adapters (sources cited there).
    **LINKEDIN_PROFILES,
    **THREADS_PROFILES,
    **FACEBOOK_PROFILES,
    **INSTAGRAM_PROFILES,
    **X_PROFILES,
}


def profile_for(provider: str, post_type: str | None = None) -> MediaProfile:
    """The media rules for ``provider`` (and ``post_type``). KeyError, with a message that lists
    what exists, for a provider without a profile or a post type the provider does not have."""
    profiles = PROFILES.get(provider)
    if profiles is None:
        raise KeyError(f"no media profile for provider {provider!r} (profiles exist for: {', '.join(sorted(PROFILES))})")
    if post_type is not None and post_type not in profiles:
        known_types = POST_TYPES.get(provider, ())
        if post_type not in known_types:
            raise KeyError(f"{provider} has no post type {post_type!r} (it has: {', '.join(known_types) or 'none'})")
    return profiles.get(post_type) or profiles[None]
