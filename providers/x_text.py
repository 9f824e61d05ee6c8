"""X's weighted character count (twitter-text v3), without a dependency.

X counts a post's length the way its twitter-text library does (x-docs
fundamentals/counting-characters.mdx [C]; providers.md §1 "Text counting"):

* the text is NFC-normalised first;
* each code point weighs 200 ("defaultWeight"), except those in four ranges that weigh 100:
  U+0000-U+10FF, U+2000-U+200D, U+2010-U+201F, U+2032-U+2037 (Latin, Cyrillic, Greek, Arabic,
  Hebrew, Devanagari ... and common punctuation);
* every URL twitter-text recognises weighs 23 characters ("transformedURLLength"), whatever
  its length;
* every emoji, including ZWJ sequences, skin tones, keycaps and flags, weighs 200 (v3
  "emojiParsingEnabled");
* the sum is divided by the scale (100) and compared with maxWeightedTweetLength (280).

The numbers are twitter/twitter-text ``config/v3.json`` (providers.md §1 [C]). The URL rules
follow twitter-text's extractor (``extractUrlsWithIndices``): a URL needs a known top-level
domain (the list below), may lack the protocol, has each domain label at most 63 characters
after punycode, and ``https://t.co/<slug>`` stops at the slug. Emoji are recognised by the
UTS #51 sequence grammar over the pictographic blocks rather than by twemoji's generated list
(see ``_emoji_end``); the two agree on every emoji of Unicode's emoji-test.txt 12.0 (a lone
(c) or (R) sign counts as an emoji, 2, as in the PyPI port twitter-text-parser 3.0.0 [3P]; JS
twemoji may count it 1 [U]), and this module also treats newer emoji in those blocks as emoji.

Checked against twitter-text's conformance cases (conformance/tests/validate.yml,
WeightedTweetsWithDiscountedEmojiCounterTest) in tests/test_x_text.py, and against
twitter-text-parser on random texts when it is importable (it is not a dependency). The scan is
linear in the text's length (see ``_candidates``), and bounded for huge texts (``SCAN_LIMIT``).
"""

from __future__ import annotations

import bisect
import functools
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass

# --- config/v3.json ----------------------------------------------------------------------------
MAX_WEIGHTED_LENGTH = 280
SCALE = 100
DEFAULT_WEIGHT = 200
TRANSFORMED_URL_LENGTH = 23
WEIGHT_RANGES = ((0x0000, 0x10FF, 100), (0x2000, 0x200D, 100), (0x2010, 0x201F, 100), (0x2032, 0x2037, 100))

# twitter-text refuses text holding these (hasInvalidCharacters).
INVALID_CHARACTERS = frozenset("\ufffe\ufeff\uffff")

# --- top-level domains twitter-text knows (its conformance/tld_lib.yml, from the IANA root zone) --
GENERIC_TLDS = frozenset("""
aaa aarp abarth abb abbott abbvie abc able abogado abudhabi academy accenture accountant
accountants aco active actor adac ads adult aeg aero aetna afamilycompany afl africa agakhan
agency aig aigo airbus airforce airtel akdn alfaromeo alibaba alipay allfinanz allstate ally
alsace alstom americanexpress americanfamily amex amfam amica amsterdam analytics android anquan
anz aol apartments app apple aquarelle arab aramco archi army arpa art arte asda asia associates
athleta attorney auction audi audible audio auspost author auto autos avianca aws axa azure baby
baidu banamex bananarepublic band bank bar barcelona barclaycard barclays barefoot bargains
baseball basketball bauhaus bayern bbc bbt bbva bcg bcn beats beauty beer bentley berlin best
bestbuy bet bharti bible bid bike bing bingo bio biz black blackfriday blanco blockbuster blog
bloomberg blue bms bmw bnl bnpparibas boats boehringer bofa bom bond boo book booking boots
bosch bostik boston bot boutique box bradesco bridgestone broadway broker brother brussels
budapest bugatti build builders business buy buzz bzh cab cafe cal call calvinklein cam camera
camp cancerresearch canon capetown capital capitalone car caravan cards care career careers cars
cartier casa case caseih cash casino cat catering catholic cba cbn cbre cbs ceb center ceo cern
cfa cfd chanel channel charity chase chat cheap chintai chloe christmas chrome chrysler church
cipriani circle cisco citadel citi citic city cityeats claims cleaning click clinic clinique
clothing cloud club clubmed coach codes coffee college cologne com comcast commbank community
company compare computer comsec condos construction consulting contact contractors cooking
cookingchannel cool coop corsica country coupon coupons courses cpa credit creditcard
creditunion cricket crown crs cruise cruises csc cuisinella cymru cyou dabur dad dance data date
dating datsun day dclk dds deal dealer deals degree delivery dell deloitte delta democrat dental
dentist desi design dev dhl diamonds diet digital direct directory discount discover dish diy
dnp docs doctor dodge dog doha domains doosan dot download drive dtv dubai duck dunlop duns
dupont durban dvag dvr earth eat eco edeka edu education email emerck energy engineer
engineering enterprises epost epson equipment ericsson erni esq estate esurance etisalat
eurovision eus events everbank exchange expert exposed express extraspace fage fail fairwinds
faith family fan fans farm farmers fashion fast fedex feedback ferrari ferrero fiat fidelity
fido film final finance financial fire firestone firmdale fish fishing fit fitness flickr
flights flir florist flowers flsmidth fly foo food foodnetwork football ford forex forsale forum
foundation fox free fresenius frl frogans frontdoor frontier ftr fujitsu fujixerox fun fund
furniture futbol fyi gal gallery gallo gallup game games gap garden gay gbiz gdn gea gent
genting george ggee gift gifts gives giving glade glass gle global globo gmail gmbh gmo gmx
godaddy gold goldpoint golf goo goodhands goodyear goog google gop got gov grainger graphics
gratis green gripe grocery group guardian gucci guge guide guitars guru hair hamburg hangout
haus hbo hdfc hdfcbank health healthcare help helsinki here hermes hgtv hiphop hisamitsu hitachi
hiv hkt hockey holdings holiday homedepot homegoods homes homesense honda honeywell horse
hospital host hosting hot hoteles hotels hotmail house how hsbc htc hughes hyatt hyundai ibm
icbc ice icu ieee ifm iinet ikano imamat imdb immo immobilien inc industries infiniti info ing
ink institute insurance insure int intel international intuit investments ipiranga irish iselect
ismaili ist istanbul itau itv iveco iwc jaguar java jcb jcp jeep jetzt jewelry jio jlc jll jmp
jnj jobs joburg jot joy jpmorgan jprs juegos juniper kaufen kddi kerryhotels kerrylogistics
kerryproperties kfh kia kim kinder kindle kitchen kiwi koeln komatsu kosher kpmg kpn krd kred
kuokgroup kyoto lacaixa ladbrokes lamborghini lamer lancaster lancia lancome land landrover
lanxess lasalle lat latino latrobe law lawyer lds lease leclerc lefrak legal lego lexus lgbt
liaison lidl life lifeinsurance lifestyle lighting like lilly limited limo lincoln linde link
lipsy live living lixil llc llp loan loans locker locus loft lol london lotte lotto love lpl
lplfinancial ltd ltda lundbeck lupin luxe luxury macys madrid maif maison makeup man management
mango map market marketing markets marriott marshalls maserati mattel mba mcd mcdonalds mckinsey
med media meet melbourne meme memorial men menu meo merckmsd metlife miami microsoft mil mini
mint mit mitsubishi mlb mls mma mobi mobile mobily moda moe moi mom monash money monster
montblanc mopar mormon mortgage moscow moto motorcycles mov movie movistar msd mtn mtpc mtr
museum mutual mutuelle nab nadex nagoya name nationwide natura navy nba nec net netbank netflix
network neustar new newholland news next nextdirect nexus nfl ngo nhk nico nike nikon ninja
nissan nissay nokia northwesternmutual norton now nowruz nowtv nra nrw ntt nyc obi observer off
office okinawa olayan olayangroup oldnavy ollo omega one ong onion onl online onyourside ooo
open oracle orange org organic orientexpress origins osaka otsuka ott ovh page pamperedchef
panasonic panerai paris pars partners parts party passagens pay pccw pet pfizer pharmacy phd
philips phone photo photography photos physio piaget pics pictet pictures pid pin ping pink
pioneer pizza place play playstation plumbing plus pnc pohl poker politie porn post pramerica
praxi press prime pro prod productions prof progressive promo properties property protection pru
prudential pub pwc qpon quebec quest qvc racing radio raid read realestate realtor realty
recipes red redstone redumbrella rehab reise reisen reit reliance ren rent rentals repair report
republican rest restaurant review reviews rexroth rich richardli ricoh rightathome ril rio rip
rmit rocher rocks rodeo rogers room rsvp rugby ruhr run rwe ryukyu saarland safe safety sakura
sale salon samsclub samsung sandvik sandvikcoromant sanofi sap sapo sarl sas save saxo sbi sbs
sca scb schaeffler schmidt scholarships school schule schwarz science scjohnson scor scot search
seat secure security seek select sener services ses seven sew sex sexy sfr shangrila sharp shaw
shell shia shiksha shoes shop shopping shouji show showtime shriram silk sina singles site ski
skin sky skype sling smart smile sncf soccer social softbank software sohu solar solutions song
sony soy space spiegel sport spot spreadbetting srl srt stada staples star starhub statebank
statefarm statoil stc stcgroup stockholm storage store stream studio study style sucks supplies
supply support surf surgery suzuki swatch swiftcover swiss sydney symantec systems tab taipei
talk taobao target tatamotors tatar tattoo tax taxi tci tdk team tech technology tel telecity
telefonica temasek tennis teva thd theater theatre tiaa tickets tienda tiffany tips tires tirol
tjmaxx tjx tkmaxx tmall today tokyo tools top toray toshiba total tours town toyota toys trade
trading training travel travelchannel travelers travelersinsurance trust trv tube tui tunes
tushu tvs ubank ubs uconnect unicom university uno uol ups vacations vana vanguard vegas
ventures verisign vermögensberater vermögensberatung versicherung vet viajes video vig viking
villas vin vip virgin visa vision vista vistaprint viva vivo vlaanderen vodka volkswagen volvo
vote voting voto voyage vuelos wales walmart walter wang wanggou warman watch watches weather
weatherchannel webcam weber website wed wedding weibo weir whoswho wien wiki williamhill win
windows wine winners wme wolterskluwer woodside work works world wow wtc wtf xbox xerox xfinity
xihuan xin xperia xxx xyz yachts yahoo yamaxun yandex yodobashi yoga yokohama you youtube yun
zappos zara zero zip zippo zone zuerich дети католик ком москва онлайн орг рус сайт קום ابوظبي
اتصالات ارامكو العليان بازار بيتك شبكة عرب كاثوليك كوم موبايلي موقع همراه कॉम नेट संगठन คอม みんな
クラウド グーグル コム ストア セール ファッション ポイント 世界 中信 中文网 企业 佛山 信息 健康 八卦 公司 公益 商城 商店 商标 嘉里 嘉里大酒店 在线 大众汽车 大拿 天主教
娱乐 家電 工行 广东 微博 慈善 我爱你 手机 手表 招聘 政务 政府 新闻 时尚 書籍 机构 淡马锡 游戏 点看 珠宝 移动 组织机构 网址 网店 网站 网络 联通 诺基亚 谷歌 购物
通販 集团 電訊盈科 飞利浦 食品 餐厅 香格里拉 닷넷 닷컴 삼성
""".split())

COUNTRY_TLDS = frozenset("""
ac ad ae af ag ai al am an ao aq ar as at au aw ax az ba bb bd be bf bg bh bi bj bl bm bn bo bq
br bs bt bv bw by bz ca cc cd cf cg ch ci ck cl cm cn co cr cu cv cw cx cy cz de dj dk dm do dz
ec ee eg eh er es et eu fi fj fk fm fo fr ga gb gd ge gf gg gh gi gl gm gn gp gq gr gs gt gu gw
gy hk hm hn hr ht hu id ie il im in io iq ir is it je jm jo jp ke kg kh ki km kn kp kr kw ky kz
la lb lc li lk lr ls lt lu lv ly ma mc md me mf mg mh mk ml mm mn mo mp mq mr ms mt mu mv mw mx
my mz na nc ne nf ng ni nl no np nr nu nz om pa pe pf pg ph pk pl pm pn pr ps pt pw py qa re ro
rs ru rw sa sb sc sd se sg sh si sj sk sl sm sn so sr ss st su sv sx sy sz tc td tf tg th tj tk
tl tm tn to tp tr tt tv tw tz ua ug uk um us uy uz va vc ve vg vi vn vu wf ws ye yt za zm zw ελ
ευ бг бел ею мкд мон рф срб укр қаз հայ الاردن البحرين الجزائر السعودية المغرب امارات ایران بارت
بھارت تونس سودان سورية عراق عمان فلسطين قطر مصر مليسيا موريتانيا پاکستان ڀارت भारत भारतम् भारोत
বাংলা ভারত ভাৰত ਭਾਰਤ ભારત ଭାରତ இந்தியா இலங்கை சிங்கப்பூர் భారత్ ಭಾರತ ഭാരതം ලංකා ไทย ລາວ გე 中国 中國
台湾 台灣 新加坡 澳門 香港 한국
""".split())

# --- URL recognition (twitter-text's extractor, rebuilt from its character classes) -------------
_INVALID = "\ufffe\ufeff\uffff"
_DIRECTIONAL = "\u202a-\u202e\u061c\u200e\u200f\u2066-\u2069"
_PUNCT = r"!'#%&()*+,\\\-./:;<=>?@\[\]^_{|}~$"
_SPACES = "\x09-\x0d\x20\x85\xa0\u1680\u180e\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
_LATIN_ACCENTS = ("\xc0-\xd6\xd8-\xf6\xf8-\xff\u0100-\u024f\u0253\u0254\u0256\u0257\u0259\u025b"
                  "\u0263\u0268\u026f\u0272\u0289\u028b\u02bb\u0300-\u036f\u1e00-\u1eff")
_CYRILLIC = "\u0400-\u04ff"

_DOMAIN_CHAR = f"[^{_PUNCT}{_SPACES}{_INVALID}{_DIRECTIONAL}]"
# twitter-text's labels: (D([_-]|D)*)?D then "." (subdomains may hold "_", the last name only "-").
# Written possessively: a label is always followed by ".", which no label character is, so its
# longest run is the only one that can match -- the same matches without the backtracking that
# made a text like "a.a.a.…" take minutes.
_SUBDOMAIN = f"(?:{_DOMAIN_CHAR}++(?:[_-]++{_DOMAIN_CHAR}++)*+\\.)"
_DOMAIN_NAME = f"(?:{_DOMAIN_CHAR}++(?:-++{_DOMAIN_CHAR}++)*+\\.)"


def _trie(names: frozenset[str]) -> str:
    """An alternation of ``names`` as a prefix tree: each attempt costs the length of one TLD
    instead of trying 1,500 of them. Longer names are tried before their prefixes ("community"
    before "com"), as in twitter-text's reverse-sorted list."""
    root: dict[str, dict] = {}
    for name in names:
        node = root
        for ch in name:
            node = node.setdefault(ch, {})
        node[""] = {}

    def build(node: dict[str, dict]) -> str:
        branches = [re.escape(ch) + build(child) for ch, child in sorted(node.items()) if ch]
        if not branches:
            return ""
        if "" in node:
            branches.append("")
        return branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"

    return build(root)


_TLD = (f"(?:{_trie(GENERIC_TLDS | COUNTRY_TLDS)}(?=[^0-9a-zA-Z@+-]|$)"
        r"|xn--[\-0-9a-z]+)")
_DOMAIN = f"(?:{_SUBDOMAIN}*{_DOMAIN_NAME}{_TLD})"
_PATH_CHAR = f"[a-z{_CYRILLIC}0-9!*';:=+,.$/%#\\[\\]\\-\u2013_~@|&{_LATIN_ACCENTS}]"
_BALANCED_PARENS = f"\\((?:{_PATH_CHAR}+|(?:{_PATH_CHAR}*\\({_PATH_CHAR}+\\){_PATH_CHAR}*))\\)"
# Not wrapped in a group on purpose: twitter-text splices this alternation into the path pattern
# as is, so "|(balanced parens)" becomes an alternative of the whole path segment. Reproduced,
# because X counts what twitter-text counts.
_PATH_END = f"[+\\-a-z{_CYRILLIC}0-9=_#/{_LATIN_ACCENTS}]|(?:{_BALANCED_PARENS})"
_PATH = f"(?:(?:{_PATH_CHAR}*(?:{_BALANCED_PARENS}{_PATH_CHAR}*)*{_PATH_END})|(?:@{_PATH_CHAR}+/))"
_QUERY_CHAR = r"[a-z0-9!?*'@();:&=+$/%#\[\]\-_.,~|]"
_QUERY_END = r"[a-z0-9\-_&=#/]"
# A URL starts after one of these characters (or at the very start): twitter-text's
# validUrlPrecedingChars. Here as a lookbehind in front of the URL's first character.
_PRECEDING = f"(?:^|(?<=[^A-Za-z0-9@\uff20$#\uff03{_INVALID}])|(?<=[{_DIRECTIONAL}]))"


@functools.cache
def _patterns() -> tuple[re.Pattern[str], re.Pattern[str], re.Pattern[str]]:
    """(where a URL may start, the URL at such a place, an ASCII domain), compiled on first use:
    an import should not pay for the TLD tree."""
    start = re.compile(f"{_PRECEDING}{_DOMAIN_CHAR}", re.IGNORECASE)
    url = re.compile(
        f"(?P<url>(?P<protocol>https?://)?(?P<domain>{_DOMAIN})(?::[0-9]+)?"
        f"(?P<path>/{_PATH}*)?(?:\\?{_QUERY_CHAR}*{_QUERY_END})?)",
        re.IGNORECASE,
    )
    ascii_domain = re.compile(f"(?:[\\-a-z0-9{_LATIN_ACCENTS}]++\\.)+{_TLD}", re.IGNORECASE)
    return start, url, ascii_domain


# After a failed attempt at s, an attempt at a later s' (in the same run of labels) fails too
# when text[s:s'] is whole subdomain labels and then the front of a label -- whatever s' could
# match, s could match with those in front -- unless s' starts a protocol, or the front holds a
# "_" and the rest of its label none (that label, cut there, may end a domain; whole it may not).
# Skipping those keeps the scan linear (a text like "a.a.a.…" took minutes).
_DEAD_GAP = re.compile(f"(?:{_DOMAIN_CHAR}++(?:[_-]++{_DOMAIN_CHAR}++)*+\\.)*+"
                       f"(?:{_DOMAIN_CHAR}(?:{_DOMAIN_CHAR}|[_-])*+)?", re.IGNORECASE)
_LABEL_RUN = re.compile(f"(?:{_DOMAIN_CHAR}|[_-])*+", re.IGNORECASE)
_PROTOCOL = re.compile(r"https?://", re.IGNORECASE)
_TCO = re.compile(f"^https?://t\\.co/([a-z0-9]+)(?:\\?{_QUERY_CHAR}*{_QUERY_END})?", re.IGNORECASE)
_NO_PROTOCOL_AFTER = re.compile(r"[-_./]$")
MAX_URL_LENGTH = 4096
MAX_TCO_SLUG = 40
MAX_LABEL = 63


def _punycode_domain(domain: str) -> str | None:
    """The domain with each label in its ASCII (punycode) form, or None when a label is empty or
    longer than 63 characters (twitter-text's idna.toAscii)."""
    if domain[:4].lower() == "xn--" and not _patterns()[2].search(domain):
        return None
    labels = []
    for label in domain.split("."):
        if not label.isascii():
            try:
                label = "xn--" + label.encode("punycode").decode("ascii")
            except UnicodeError:
                return None
        if not 1 <= len(label) <= MAX_LABEL:
            return None
        labels.append(label)
    return ".".join(labels)


def _candidates(text: str) -> Iterator[re.Match[str]]:
    """twitter-text's URL matches, left to right, as ``re.finditer`` over its extractUrl pattern
    would give them (each consumes its text; the next needs a preceding character after it)."""
    start_pattern, url_pattern, _ = _patterns()
    pos, dead = 0, -1
    # At the very start twitter-text's pattern first takes text[0] as the preceding character
    # (the URL then starts at 1) and only then tries "^" (the URL starts at 0).
    if len(text) > 1 and start_pattern.match(text, 1) and (m := url_pattern.match(text, 1)) is not None:
        yield m
        pos = m.end() + 1
    run_end = -1  # the end of the label run holding the last candidate, and its last "_"
    last_underscore = -1
    while (start := start_pattern.search(text, pos)) is not None:
        at = start.start()
        if at >= run_end:
            run_end = _LABEL_RUN.match(text, at).end()
            last_underscore = text.rfind("_", at, run_end)
        if dead >= 0 and not _PROTOCOL.match(text, at) and _DEAD_GAP.fullmatch(text, dead, at):
            front = text.rfind(".", dead, at) + 1 or dead
            if "_" not in text[front:at] or last_underscore >= at:
                dead, pos = at, at + 1
                continue
        m = url_pattern.match(text, at)
        if m is None:
            dead, pos = at, at + 1
            continue
        dead = -1
        yield m
        pos = m.end() + 1  # the preceding character of the next one is at m.end() or later


def url_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of every URL twitter-text would shorten to 23 characters, in order."""
    if "." not in text:
        return []
    spans: list[tuple[int, int]] = []
    ascii_pattern = _patterns()[2]
    for m in _candidates(text):
        url, protocol, domain = m.group("url"), m.group("protocol"), m.group("domain")
        start, end = m.start("url"), m.end("url")
        ascii_domain = _punycode_domain(domain)
        if ascii_domain is None:
            continue
        if len(protocol or "https://") + len(url) + len(ascii_domain) - len(domain) > MAX_URL_LENGTH:
            continue
        if protocol:
            tco = _TCO.match(url)
            if tco:
                if len(tco.group(1)) > MAX_TCO_SLUG:
                    continue
                end = start + tco.end()
            spans.append((start, end))
            continue
        # Without a protocol only the ASCII domains inside count, and never after - _ . or /.
        if start > 0 and _NO_PROTOCOL_AFTER.search(text[start - 1]):
            continue
        found = [(start + a.start(), start + a.end()) for a in ascii_pattern.finditer(domain)]
        if not found:
            continue
        if m.group("path"):
            # twitter-text keeps the last domain plus the path as the URL's text and skips that
            # many characters when counting (not up to the match's end: they differ when the
            # domain had non-ASCII labels). Counted its way, as X does.
            last = text[found[-1][0]:found[-1][1]]
            found[-1] = (found[-1][0], found[-1][0] + len(url.replace(domain, last, 1)))
        spans += found
    return spans


# --- emoji (UTS #51 sequences) --------------------------------------------------------------------
# Code points that start an emoji: the pictographic blocks, plus the few emoji below them. A
# broad superset is harmless: a lone code point above U+10FF weighs 2 whether or not it is an
# emoji; only the sequences (modifiers, VS16, ZWJ) it heads change the count.
_PICTOGRAPHIC = (
    (0x00A9, 0x00A9), (0x00AE, 0x00AE), (0x203C, 0x203C), (0x2049, 0x2049), (0x2122, 0x2122),
    (0x2139, 0x2139), (0x2194, 0x2199), (0x21A9, 0x21AA), (0x231A, 0x231B), (0x2328, 0x2328),
    (0x23CF, 0x23CF), (0x23E9, 0x23F3), (0x23F8, 0x23FA), (0x24C2, 0x24C2), (0x25AA, 0x25AB),
    (0x25B6, 0x25B6), (0x25C0, 0x25C0), (0x25FB, 0x25FE), (0x2600, 0x27BF), (0x2934, 0x2935),
    (0x2B05, 0x2B07), (0x2B1B, 0x2B1C), (0x2B50, 0x2B50), (0x2B55, 0x2B55), (0x3030, 0x3030),
    (0x303D, 0x303D), (0x3297, 0x3297), (0x3299, 0x3299), (0x1F000, 0x1F1E5), (0x1F200, 0x1F3FA),
    (0x1F400, 0x1FAFF),
)
_PICTO_STARTS = [a for a, _ in _PICTOGRAPHIC]
_VS16, _ZWJ, _KEYCAP, _TAG_END = 0xFE0F, 0x200D, 0x20E3, 0xE007F


def _pictographic(cp: int) -> bool:
    i = bisect.bisect_right(_PICTO_STARTS, cp) - 1
    return i >= 0 and cp <= _PICTOGRAPHIC[i][1]


def _regional(cp: int) -> bool:
    return 0x1F1E6 <= cp <= 0x1F1FF


def _modifier(cp: int) -> bool:
    return 0x1F3FB <= cp <= 0x1F3FF


def _emoji_end(cps: list[int], i: int) -> int:
    """The end of the emoji starting at ``i``, or ``i`` when none starts there."""
    n = len(cps)
    cp = cps[i]
    if _regional(cp):  # a flag is a pair of regional indicators; a lone one is still an emoji
        return i + 2 if i + 1 < n and _regional(cps[i + 1]) else i + 1
    if cp in (0x23, 0x2A) or 0x30 <= cp <= 0x39:  # keycap: [#*0-9] VS16? U+20E3
        j = i + 1 + (i + 1 < n and cps[i + 1] == _VS16)
        return j + 1 if j < n and cps[j] == _KEYCAP else i
    if not (_pictographic(cp) or _modifier(cp)):
        return i
    j = i
    while True:
        element = cps[j]
        j += 1
        if element == 0x1F3F4:  # a tag sequence: the flags of England, Scotland, Wales
            k = j
            while k < n and 0xE0020 <= cps[k] <= 0xE007E:
                k += 1
            if k > j and k < n and cps[k] == _TAG_END:
                j = k + 1
        if j < n and (cps[j] == _VS16 or (_modifier(cps[j]) and not _modifier(element))):
            j += 1
        if j + 1 < n and cps[j] == _ZWJ and (_pictographic(cps[j + 1]) or _modifier(cps[j + 1])):
            j += 1  # join the next element
            continue
        return j


def emoji_spans(text: str) -> list[tuple[int, int]]:
    cps = [ord(c) for c in text]
    spans = []
    i = 0
    while i < len(cps):
        end = _emoji_end(cps, i)
        if end > i:
            spans.append((i, end))
            i = end
        else:
            i += 1
    return spans


# --- counting -------------------------------------------------------------------------------------


def _weight(ch: str) -> int:
    cp = ord(ch)
    for start, end, weight in WEIGHT_RANGES:
        if start <= cp <= end:
            return weight
    return DEFAULT_WEIGHT


@dataclass(frozen=True)
class TextCount:
    weighted_length: int  # in characters (already divided by the scale)
    invalid_characters: tuple[str, ...]  # e.g. ("U+FEFF",)

    @property
    def valid(self) -> bool:
        return 0 < self.weighted_length <= MAX_WEIGHTED_LENGTH and not self.invalid_characters


# A text longer than this is over 280 for certain: at most 12 URLs (12 x 23 <= 280) of at most
# 4,096 characters each, plus 280 more characters, fit under the limit. Past it the rest is
# weighed character by character, without looking for URLs or emoji: the count stays a bound
# far above 280, and a 10 MB body costs no more than this much scanning.
SCAN_LIMIT = 50_000
_LIGHT = re.compile("[" + "".join(f"\\U{a:08x}-\\U{b:08x}" for a, b, _ in WEIGHT_RANGES) + "]+")


def count(text: str) -> TextCount:
    """The weighted length of ``text`` as X counts it (twitter-text ``parseTweet``)."""
    normalized = unicodedata.normalize("NFC", text or "")
    tail = normalized[SCAN_LIMIT:]
    normalized = normalized[:SCAN_LIMIT]
    urls = dict(url_spans(normalized))
    emoji = dict(emoji_spans(normalized))
    light = len(tail) - len(_LIGHT.sub("", tail))
    total = light * WEIGHT_RANGES[0][2] + (len(tail) - light) * DEFAULT_WEIGHT  # the ranges all weigh 100
    i = 0
    while i < len(normalized):
        if i in urls:
            total += TRANSFORMED_URL_LENGTH * SCALE
            i = urls[i]
        elif i in emoji:
            total += DEFAULT_WEIGHT
            i = emoji[i]
        else:
            total += _weight(normalized[i])
            i += 1
    invalid = tuple(sorted(f"U+{ord(c):04X}" for c in INVALID_CHARACTERS if c in normalized or c in tail))
    return TextCount(weighted_length=total // SCALE, invalid_characters=invalid)


def weighted_length(text: str) -> int:
    return count(text).weighted_length
