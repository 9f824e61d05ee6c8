"""providers/x_text.py: X's weighted length against twitter-text's conformance cases.

The cases are twitter/twitter-text ``conformance/tests/validate.yml`` (sections
WeightedTweetsWithDiscountedEmojiCounterTest -- config v3, the one X uses -- and ``lengths``),
rewritten as data here: each is (description, text, expected weighted length). Long texts are
built the way the YAML spells them out (repeated runs), with the same lengths.
"""

from __future__ import annotations

import pytest

from providers import x_text
from providers.x_text import MAX_WEIGHTED_LENGTH, count, emoji_spans, url_spans, weighted_length

RUN = "-".join(["xxxxxxxxxx"] * 24) + "-"  # 24 runs of ten x: 264 characters
CHINESE_160 = (
    "故人西辞黄鹤楼，烟花三月下扬州。孤帆远影碧空尽，唯见长江天际流。朱雀桥边野草花，乌衣巷口夕阳斜。"
    "旧时王谢堂前燕，飞入寻常百姓家。朝辞白帝彩云间，千里江陵一日还。两岸猿声啼不住，轻舟已过万重山。"
    "泪湿罗巾梦不成，夜深前殿按歌声。红颜未老恩先断，斜倚薰笼坐到明。独在异乡为异客，每逢佳节倍思亲。"
    "遥知兄弟登高处，遍插茱萸少一人。"
)
KANA_120 = "あいうえおかきくけこ" * 12
LONG_LABEL_URL = "https://" + "somesuperlongurl" * 249 + ".com/foo"

# (description, text, weightedLength) -- conformance/tests/validate.yml, config v3.
CONFORMANCE_V3 = [
    ("Regular Tweet with url", "Hi http://test.co", 26),
    ("Just url", "http://test.co", 23),
    ("Long tweet, overflow at char index 280", "285 chars-" + RUN + "xxxxxxxxxx-", 285),
    ("Long tweet with url in the middle", "285 chars- http://www.twitter.com/jack " + RUN, 299),
    ("Long tweet with url at the end", RUN + " http://www.twitter.com/jack ", 289),
    ("10 url string, no overflow", "https://www.twitter.com/aloha " * 10, 240),
    ("160 CJK char, overflow at char index 140", CHINESE_160, 320),
    ("160 emoji char, overflow at char index 140", "😷" * 160, 320),
    ("3 latin char + 160 CJK char", "the" + CHINESE_160, 323),
    ("'Á' is normalized into 1 char", "A\u0301B", 2),
    ("שּׁ is normalized into 3 chars", "A\ufb2c", 4),
    ("282 chars with a normalized character", "282 chars-" + RUN + "xxxxxA\u0301x", 281),
    ("Count a mix of single byte single word, and double word unicode characters",
     "H🐱☺👨\u200d👩\u200d👧\u200d👦", 7),
    ("Count unicode emoji chars inside the basic multilingual plane", "😷👾😡🔥💩", 10),
    ("Count unicode emoji chars outside the BMP with skin tone modifiers", "🙋🏽👨\u200d🎤", 4),
    ("Handle General Punctuation Characters with visible spaces(u2000-200A), no ZWJ/ZWNJ",
     "This is a tweet with general punctuation characters: "
     "\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u200b "
     "‐ ‑ ‒ – — ― ‖  ‗ ‘ ’ ‚ ‛ “ ” „ ‟ ′ ″ ‴ ‵ ‶ ‷", 110),
    ("Handle long url with invalid domain labels and short url",
     "Long url with invalid domain labels and a short url: "
     + " ".join([LONG_LABEL_URL] * 3) + " https://validurl.com", 12079),
    ("Handle a 64 character domain without protocol",
     "randomurlrandomurlrandomurlrandomurlrandomurlrandomurlrandomurls.com", 68),
    ("Do not allow > 140 CJK characters by virtue of CJK chars greater than 63 punycode "
     "encoded chars in the host", KANA_120 + " http://" + "あいうえおかきくけこ" * 5 + "あいう.com", 358),
    ("Allow > 140 CJK characters by virtue of CJK chars less than 63 punycode encoded chars "
     "in the host", KANA_120 + " http://" + "あいうえおかきくけこ" * 5 + "あい.com", 264),
    # section "lengths" (written for config v1, where every character weighed 1; the last two
    # expect 2 and 4 there, and weigh double under v3)
    ("Count the number of characters", "This is a test.", 15),
    ("Count a URL starting with http:// as 23 characters", "http://test.com", 23),
    ("Count a URL starting with https:// as 23 characters", "https://test.com", 23),
    ("Count a URL without protocol as 23 characters", "test.com", 23),
    ("Count multiple URLs correctly", "Test https://test.com test https://test.com test.com test", 86),
    ("Count unicode chars outside the basic multilingual plane (v3: 2 each)", "\U00010000\U0010ffff", 4),
    ("Count unicode chars inside the basic multilingual plane (v3: 2 each)", "저찀쯿쿿", 8),
]


@pytest.mark.parametrize("description,text,expected", CONFORMANCE_V3, ids=[c[0][:50] for c in CONFORMANCE_V3])
def test_conformance_weighted_length(description, text, expected):
    assert weighted_length(text) == expected


def test_built_texts_have_the_yaml_lengths():
    # The YAML's displayRangeEnd is (UTF-16 length - 1): our reconstructions match it.
    def utf16(s: str) -> int:
        return len(s.encode("utf-16-le")) // 2

    assert utf16("285 chars-" + RUN + "xxxxxxxxxx-") == 285
    assert utf16(RUN + " http://www.twitter.com/jack ") == 293
    assert utf16(CHINESE_160) == 160
    assert utf16(CONFORMANCE_V3[16][1]) == 12076


def test_valid_boundary():
    assert count("a" * 280).valid and not count("a" * 281).valid
    assert count("の" * 140).valid and not count("の" * 141).valid
    assert weighted_length("の" * 140) == MAX_WEIGHTED_LENGTH
    assert not count("").valid  # an empty text is not a valid post text
    bad = count("zero\ufeffwidth")
    assert bad.invalid_characters == ("U+FEFF",) and not bad.valid


def test_urls_count_23_whatever_their_length():
    short, long = "see https://a.co", "see https://example.com/" + "p" * 200
    assert weighted_length(short) == weighted_length(long) == 4 + 23
    assert url_spans("go to example.com/x now") == [(6, 19)]
    # An unknown TLD is no URL: counted character by character.
    assert weighted_length("https://example.notatld") == len("https://example.notatld")
    # t.co stops at the slug; a slug over 40 characters is no URL at all.
    assert url_spans("https://t.co/abc/def") == [(0, 16)]
    assert url_spans("https://t.co/" + "a" * 41) == []
    # Without a protocol, never right after - _ . or /
    assert url_spans("x/example.com") == [] and url_spans("x example.com") == [(2, 13)]
    # Only the ASCII domain inside a run of other letters counts.
    assert url_spans("これはexample.comです") == [(3, 14)]


def test_emoji_sequences_count_two():
    for emoji in ("😷", "👍🏽", "👨\u200d👩\u200d👧\u200d👦", "🇺🇸", "1\ufe0f\u20e3", "#\u20e3",
                  "🏴\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f", "❤\ufe0f", "🏳\ufe0f\u200d🌈",
                  "©"):
        assert weighted_length(emoji) == 2, emoji
        assert emoji_spans("a" + emoji + "b") == [(1, 1 + len(emoji))]
    assert weighted_length("🇺🇸🇫🇷") == 4  # two flags
    assert weighted_length("🏻🏻") == 4  # two lone skin tones are two emoji
    assert weighted_length("12") == 2  # digits without U+20E3 are no keycaps


def test_start_of_text_is_a_preceding_character_first():
    # twitter-text tries text[0] as the URL's preceding character before "^": in "ét.co/abc" the
    # URL is "t.co/abc" and "é" counts on its own.
    assert url_spans("ét.co/abc") == [(1, 9)] and weighted_length("ét.co/abc") == 24
    assert url_spans("example.com") == [(0, 11)]


@pytest.mark.parametrize("text", ["a." * 5000, "a_" * 5000 + ".x", "日" * 49_000 + ".com", ("ab-" * 10 + "c.") * 1500,
                                  "http." * 5000, ("日本語" * 50 + ".") * 300])
def test_pathological_texts_stay_fast(text):
    import time

    started = time.monotonic()
    weighted_length(text)
    assert time.monotonic() - started < 1.0  # backtracking made the first one take minutes


def test_huge_texts_are_bounded():
    import time

    started = time.monotonic()
    assert weighted_length("の" * 3_000_000) == 6_000_000
    assert weighted_length("x.com " * 500_000) > x_text.MAX_WEIGHTED_LENGTH
    assert count("a" * 2_000_000 + "\ufeff").invalid_characters == ("U+FEFF",)
    assert time.monotonic() - started < 3.0


def test_weight_ranges_are_data():
    assert x_text.WEIGHT_RANGES[0] == (0, 0x10FF, 100)
    assert (x_text.SCALE, x_text.DEFAULT_WEIGHT, x_text.TRANSFORMED_URL_LENGTH) == (100, 200, 23)
    assert weighted_length("\u2010\u2032\u2038") == 1 + 1 + 2


def test_against_twitter_text_parser():
    """A differential check against the PyPI port of twitter-text (twitter-text-parser, a dev
    dependency only: Herald's own count is what runs)."""
    import random

    import twitter_text

    rng = random.Random(7)
    pieces = ["http://", "https://", "www.", "example", ".com", ".co", ".jp", ".community", "/path", "?q=1",
              "(x)", "#tag", "@user", " ", "\n", "a", "é", "の", "😷", "👨\u200d👩\u200d👧", "🇺🇸", "1\ufe0f\u20e3",
              "-", "_", ".", "/", "t.co/abc", "пример", ".рф", ":8080", ",", "!", "$", "＠", "x" * 70]
    for _ in range(3000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 12)))
        assert weighted_length(text) == twitter_text.parse_tweet(text).weightedLength, text
