"""Per-network media profiles: lookup, and that the numbers are the documented ones."""

from __future__ import annotations

import pytest

from media.images import plan_image
from media.types import MediaError, MediaInfo
from providers.media_profiles import DISCORD, PROFILES, TELEGRAM, profile_for


def test_profile_for_known_networks_and_post_types() -> None:
    assert profile_for("telegram") is TELEGRAM
    assert profile_for("telegram", "message") is TELEGRAM
    assert profile_for("discord") is DISCORD
    assert profile_for("discord", "forum") is DISCORD  # a forum post takes the same files


def test_unknown_provider_or_post_type_is_a_clear_key_error() -> None:
    with pytest.raises(KeyError) as err:
        profile_for("myspace")
    assert "myspace" in str(err.value) and "telegram" in str(err.value)
    with pytest.raises(KeyError) as err:
        profile_for("telegram", "reel")
    assert "reel" in str(err.value) and "message" in str(err.value)


def test_profile_keys_are_unique_and_versioned() -> None:
    # A key names one set of rules: networks (or post types) that share a key share the rules
    # (instagram and instagram_business; linkedin and linkedin_page), so renditions are reused.
    by_key: dict = {}
    for by_type in PROFILES.values():
        for p in by_type.values():
            assert by_key.setdefault(p.key, p) == p, f"two different profiles are both {p.key}"
    keys = list(by_key)
    assert len(keys) >= 11
    assert all(k.rsplit(".v", 1)[-1].isdigit() for k in keys)
    assert all(p.source for by_type in PROFILES.values() for p in by_type.values())


def test_telegram_numbers_are_the_bot_api_ones() -> None:
    image, video = TELEGRAM.image, TELEGRAM.video
    assert image is not None and video is not None
    assert image.max_bytes == 10_000_000 and image.max_side_sum == 10_000 and image.max_ratio == 20
    assert "image/gif" not in image.formats and image.convert_to == "image/jpeg"
    assert video.containers == ("video/mp4",) and video.video_codecs == ("h264",) and video.max_bytes == 50_000_000
    assert TELEGRAM.max_other_bytes == 50_000_000


def test_discord_numbers() -> None:
    assert DISCORD.image is not None and DISCORD.video is not None
    assert DISCORD.image.max_bytes == DISCORD.video.max_bytes == DISCORD.max_other_bytes == 10 * 1024 * 1024
    assert DISCORD.image.keep_animation
    # When a transcode is needed the target is the first container/codec: MP4 H.264/AAC.
    assert DISCORD.video.containers[0] == "video/mp4"
    assert DISCORD.video.video_codecs[0] == "h264" and DISCORD.video.audio_codecs[0] == "aac"


def image(width: int, height: int, size: int = 100_000, mime: str = "image/jpeg") -> MediaInfo:
    return MediaInfo(mime=mime, kind="image", ext="jpg", size=size, width=width, height=height, has_metadata=False)


@pytest.mark.parametrize(
    ("width", "height", "expected"),
    [
        (4032, 3024, (4032, 3024)),  # a phone photo fits as it is (sum 7,056)
        (8000, 6000, (5714, 4285)),  # sum 14,000 -> 10,000, aspect kept
        # 20:1 exactly: 12000 x 600 scaled by 10000/12600 floors to 9523 x 476 = 20.006:1, so the
        # width is nudged down until the ratio is within 20 again.
        (12000, 600, (9520, 476)),
    ],
)
def test_telegram_side_sum_plans(width: int, height: int, expected: tuple[int, int]) -> None:
    plan = plan_image(image(width, height), TELEGRAM.image, None)
    assert (plan.target_width, plan.target_height) == expected
    assert plan.target_width + plan.target_height <= 10_000
    assert max(expected) / min(expected) <= 20


def test_telegram_refuses_an_extreme_ratio_without_fit() -> None:
    with pytest.raises(MediaError) as err:
        plan_image(image(4200, 200), TELEGRAM.image, None)
    assert err.value.code == "media_unfit" and "21" in err.value.message


def test_discord_passes_common_formats_and_converts_others() -> None:
    for mime in ("image/jpeg", "image/png", "image/gif", "image/webp"):
        assert plan_image(image(5000, 5000, mime=mime), DISCORD.image, None).passthrough
    plan = plan_image(image(800, 600, mime="image/bmp"), DISCORD.image, None)
    assert plan.target_mime == "image/jpeg" and plan.actions == ["convert image/bmp->image/jpeg"]
    too_big = plan_image(image(800, 600, size=11 * 1024 * 1024), DISCORD.image, None)
    assert too_big.actions == [f"recompress to <= {10 * 1024 * 1024:,} bytes"]
