"""Download a media URL to disk without letting the URL reach places it must not (SSRF).

Errors: every failure is a ``FetchError`` whose ``code`` is stable and whose ``retryable`` says
whether trying again later can help::

    FetchError
    ├── bad_url             not http(s), user name/password in it, unparseable, a redirect to file:/ftp:
    ├── blocked_address     the host is (or resolves to) loopback/private/reserved/metadata
    ├── dns_failed          no address for the name (retryable when the resolver said "try again")
    ├── too_large           declared or actual body over ``max_bytes``
    ├── too_many_redirects  more than ``max_redirects`` hops
    ├── http_error          4xx (not retryable; 408 and 429 are) / 5xx (retryable); ``status`` set
    ├── timeout             the whole fetch took longer than ``timeout_seconds`` (retryable)
    ├── empty               a 2xx answer with no bytes
    └── connect_failed      TCP/TLS failure or the connection broke mid-body (retryable, except a
                            certificate that does not match: trying again will not fix that)

How the address check cannot be raced (DNS rebinding): the host is resolved exactly once per hop,
*every* address in the answer is checked, and the request is then sent to the checked address
itself: the URL handed to httpx carries the IP literal, the ``Host`` header carries the name, and
for https the ``sni_hostname`` request extension makes httpcore (``_async/connection.py``,
``_connect``: ``server_hostname = sni_hostname or origin host``) send the name as SNI and verify the
certificate against the name, not the IP. httpx never resolves anything, so there is no second
lookup an attacker's DNS server could answer differently. Each hop gets a fresh transport (so a
fresh connection pool): httpcore pools by (scheme, IP, port), and a pooled TLS connection
authenticated for one name must not carry a request for another name that shares the address.
Requests go to the transport directly, not through ``httpx.AsyncClient``: no cookie jar, no auth,
no redirect handling of its own, no environment proxies.

Environment proxies (HTTP_PROXY...) are ignored on purpose: a proxy would do its own resolution
and reach whatever it can reach, undoing the check.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import mimetypes
import os
import re
import socket
import ssl
import time
import unicodedata
from dataclasses import dataclass
from functools import cache
from html.parser import HTMLParser
from http.cookies import CookieError, SimpleCookie
from pathlib import Path, PurePosixPath
from typing import Awaitable, Callable, Union
from urllib.parse import parse_qsl, unquote, urlencode, urljoin, urlsplit, urlunsplit

import httpx

from media.share_links import normalize_share_link

__all__ = [
    "FetchError", "FetchResult", "Resolver", "TransportFactory", "check_address", "fetch_to_file",
    "find_drive_confirm_url", "is_metadata_address", "is_public_address", "parse_ipv4_host",
    "redact_url", "sanitize_filename", "system_resolver",
]

Resolver = Callable[[str, int], Awaitable[list[str]]]
TransportFactory = Callable[[], httpx.AsyncBaseTransport]
IPAddress = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]

DEFAULT_USER_AGENT = "HeraldMediaFetcher/1.0"
MAX_REDIRECTS = 5
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_HEARTBEAT_SECONDS = 1.0
_HEARTBEAT_BYTES = 1 << 20
# A name with many A/AAAA records: try a few (all checked) before giving up, so one dead
# address, or an IPv6 answer on a host without IPv6, does not fail the fetch.
_MAX_ADDRESS_ATTEMPTS = 4
# The Drive "can't scan for viruses" page is ~2 KB; anything much larger is not that page.
_INTERSTITIAL_MAX_BYTES = 1 << 20


class FetchError(Exception):
    """Why a URL could not be fetched. ``message`` is safe to show and to log: URLs in it are
    stripped of user info and secret-looking query values and cut to 200 characters."""

    CODES = frozenset({"bad_url", "blocked_address", "dns_failed", "too_large", "too_many_redirects",
                       "http_error", "timeout", "empty", "connect_failed"})
    _RETRYABLE = frozenset({"timeout", "connect_failed"})

    def __init__(self, code: str, message: str, *, retryable: bool | None = None, status: int | None = None):
        assert code in self.CODES, code
        super().__init__(message)
        self.code = code
        self.message = message
        self.retryable = code in self._RETRYABLE if retryable is None else retryable
        self.status = status  # the HTTP status for http_error

    def __repr__(self) -> str:
        return f"FetchError({self.code!r}, {self.message!r}, retryable={self.retryable})"


@dataclass(frozen=True)
class FetchResult:
    path: Path
    final_url: str  # the last hop, with its host name (never the pinned IP)
    content_type: str | None  # as the server declared it (media type only, lowercased); sniff before trusting
    filename: str  # from Content-Disposition, else the URL path; sanitised
    size: int
    sha256: str


# ---------------------------------------------------------------------------------------------
# Addresses

def _nets(*cidrs: str) -> tuple:
    return tuple(ipaddress.ip_network(c) for c in cidrs)


# Hand-written from the IANA special-purpose registries (RFC 6890 and successors) instead of
# ``ip.is_global``: that property's answer changes between Python patch releases, and on the
# 3.11 in use it calls 64:ff9b::7f00:1 and 2002:7f00:1:: "global" although both lead to 127.0.0.1.
_V4_NOT_PUBLIC = _nets(
    "0.0.0.0/8",        # "this network"; 0.0.0.0 connects to the local host on Linux
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",  # RFC 1918
    "100.64.0.0/10",    # carrier-grade NAT (RFC 6598), also Alibaba's metadata at 100.100.100.200
    "127.0.0.0/8",      # loopback
    "169.254.0.0/16",   # link-local, where cloud metadata services live
    "192.0.0.0/24",     # IETF protocol assignments
    "192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24",  # documentation (TEST-NET-1/2/3)
    "192.88.99.0/24",   # deprecated 6to4 relay anycast
    "198.18.0.0/15",    # benchmarking
    "224.0.0.0/4",      # multicast
    "240.0.0.0/4",      # reserved, including 255.255.255.255
)
# Global unicast IPv6 is 2000::/3; these parts of it are not reachable hosts on the internet.
_V6_GLOBAL_UNICAST = ipaddress.ip_network("2000::/3")
_V6_NOT_PUBLIC = _nets(
    "2001::/23",        # IETF protocol assignments: Teredo, benchmarking, ORCHID
    "2001:db8::/32", "3fff::/20",  # documentation (RFC 3849, RFC 9637)
)
_V6_MAPPED = ipaddress.ip_network("::ffff:0:0/96")
_V6_COMPATIBLE = ipaddress.ip_network("::/96")  # deprecated (RFC 4291 2.5.5.1); also holds :: and ::1
_V6_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052 well-known prefix
_V6_6TO4 = ipaddress.ip_network("2002::/16")  # RFC 3056: the IPv4 address is bits 16-47

# Refused even when private networks are allowed. ``allow_private`` exists so development and
# self-hosted setups can fetch from a NAS or a compose service; nobody needs it to read the cloud
# instance metadata service, and that service hands out the machine's credentials (AWS IMDSv1
# answers a plain GET). So the dev switch must never open it. The whole IPv4 link-local range is
# treated as metadata because providers keep adding credential endpoints there (169.254.169.254,
# ECS 169.254.170.2, EKS pod identity 169.254.170.23) and nothing a media URL legitimately points
# at lives in it.
_METADATA = _nets(
    "169.254.0.0/16",
    "fd00:ec2::/32",        # AWS IMDS over IPv6 (fd00:ec2::254) and EKS pod identity (fd00:ec2::23)
    "100.100.100.200/32",   # Alibaba Cloud
    "168.63.129.16/32",     # Azure WireServer: a public address, so only this list catches it
    "192.0.0.192/32",       # Oracle Cloud
)


def _as_ip(ip: str | IPAddress) -> IPAddress:
    if isinstance(ip, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        return ip
    # Resolvers may answer "fe80::1%eth0"; the zone does not change which address it is.
    return ipaddress.ip_address(str(ip).split("%", 1)[0])


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 form leads to, for the forms a host turns into an IPv4 connection
    (mapped on dual-stack sockets, NAT64/DNS64 gateways, 6to4 relays, and the old compatible form)."""
    if ip.ipv4_mapped:
        return ip.ipv4_mapped
    if ip in _V6_COMPATIBLE or ip in _V6_NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip in _V6_6TO4:
        return ip.sixtofour
    return None


def is_metadata_address(ip: str | IPAddress) -> bool:
    """Whether ``ip`` (in any IPv6 wrapping) is a cloud metadata/credentials service address."""
    ip = _as_ip(ip)
    candidates = [ip]
    if ip.version == 6 and (v4 := _embedded_ipv4(ip)) is not None:
        candidates.append(v4)
    return any(c in net for c in candidates for net in _METADATA if c.version == net.version)


def is_public_address(ip: str | IPAddress) -> bool:
    """Whether ``ip`` is an ordinary internet host address (not loopback, private, CGNAT,
    link-local, multicast, reserved, documentation, benchmark, unique-local or metadata), looking
    through IPv4-mapped, NAT64 and 6to4 wrappings to the IPv4 address they lead to."""
    ip = _as_ip(ip)
    if is_metadata_address(ip):
        return False
    if ip.version == 6:
        if ip in _V6_COMPATIBLE:
            return False  # deprecated; no real DNS answer holds one, and it wraps :: and ::1
        v4 = _embedded_ipv4(ip)
        if v4 is not None:
            # DNS64 networks answer 64:ff9b::<v4> for every IPv4-only site, so the public ones
            # must stay fetchable; the wrapped address is what gets connected to in the end.
            return is_public_address(v4)
        return ip in _V6_GLOBAL_UNICAST and not any(ip in net for net in _V6_NOT_PUBLIC)
    return not any(ip in net for net in _V4_NOT_PUBLIC)


def check_address(ip: str | IPAddress, allow_private: bool) -> None:
    """Raise ``FetchError('blocked_address')`` unless ``ip`` may be connected to."""
    ip = _as_ip(ip)
    if is_metadata_address(ip):
        raise FetchError("blocked_address", f"{ip} is a cloud metadata address; it is never fetched")
    if not allow_private and not is_public_address(ip):
        raise FetchError("blocked_address", f"{ip} is not a public internet address")


# ---------------------------------------------------------------------------------------------
# Hosts and URLs

_NUMERIC_LABEL = re.compile(r"(?:0[xX][0-9A-Fa-f]*|[0-9]+)")
_DECIMAL = re.compile(r"[0-9]+")
_OCTAL = re.compile(r"0[0-7]+")
_HEX = re.compile(r"0[xX][0-9A-Fa-f]+")


def parse_ipv4_host(host: str) -> ipaddress.IPv4Address | None:
    """The IPv4 address a numeric host means, in every spelling ``inet_aton`` accepts (decimal
    ``2130706433``, octal ``0177.0.0.1``, hex ``0x7f.1``, short ``127.1``), or None for a name.

    A host whose last label is a number is an address or nothing (the WHATWG URL rule): such a
    name cannot exist in DNS, and handing it to the resolver would let ``getaddrinfo`` apply its
    own inet_aton reading that we never looked at. Raises ValueError for numeric junk
    (``1.2.3.4.5``, ``256.1.1.1``, ``08.1``).

    Why normalise rather than refuse odd spellings: recognising them needs exactly this parser
    either way (anything it missed would go to the resolver), and once parsed, checking the real
    address gives one rule for every spelling: a public address written in hex still works, a
    private one is refused as ``blocked_address`` like its dotted form.
    """
    name = host[:-1] if host.endswith(".") else host  # a trailing dot means the same host
    labels = name.split(".")
    if not _NUMERIC_LABEL.fullmatch(labels[-1]):
        return None
    if len(labels) > 4:
        raise ValueError(f"{host!r} is not an IPv4 address")
    numbers = []
    for label in labels:
        if _HEX.fullmatch(label):
            numbers.append(int(label[2:], 16))
        elif _OCTAL.fullmatch(label):
            numbers.append(int(label, 8))
        elif _DECIMAL.fullmatch(label) and not (len(label) > 1 and label.startswith("0")):
            numbers.append(int(label))
        else:
            raise ValueError(f"{host!r} is not an IPv4 address")
    *head, last = numbers
    if any(n > 255 for n in head) or last >= 256 ** (4 - len(head)):
        raise ValueError(f"{host!r} is not an IPv4 address")
    value = last
    for i, n in enumerate(head):
        value += n << (8 * (3 - i))
    return ipaddress.IPv4Address(value)


_SECRET_PARAM = re.compile(r"sig|signature|token|key|secret|password|passwd|credential|auth", re.I)


def redact_url(url: str, limit: int = 200) -> str:
    """``url`` as it may appear in messages and logs: no user info, secret-looking query values
    (signed-URL signatures, tokens, keys) replaced by ``***``, at most ``limit`` characters."""
    text = str(url)
    try:
        parts = urlsplit(text)
        netloc = parts.netloc.rpartition("@")[2]
        query = "&".join(
            f"{k}={'***' if _SECRET_PARAM.search(k) else v}" if sep else k
            for k, sep, v in (pair.partition("=") for pair in parts.query.split("&") if pair)
        )
        text = urlunsplit((parts.scheme, netloc, parts.path, query, ""))
    except ValueError:
        # Unparseable (say a broken IPv6 literal): still drop anything that looks like user info.
        text = re.sub(r"//[^/?#]*@", "//", text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True)
class _Target:
    url: httpx.URL  # the logical URL, with the host name
    host: str  # ASCII (IDNA) host without brackets: what is resolved, sent as SNI and in Host
    port: int
    literal: IPAddress | None  # set when the URL names an address rather than a host name
    zoned: bool = False  # an IPv6 literal with a zone id (fe80::1%eth0)

    @property
    def https(self) -> bool:
        return self.url.scheme == "https"


def _parse_target(url: str) -> _Target:
    """Validate one hop's URL and find out whether its host is a name or an address."""
    shown = redact_url(url)
    if not isinstance(url, str) or not url.strip() or len(url) > 8192:
        raise FetchError("bad_url", f"not a usable URL: {shown}")
    try:
        parts = urlsplit(url.strip())
        port = parts.port
        raw_host = parts.hostname
    except ValueError:
        raise FetchError("bad_url", f"not a usable URL: {shown}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise FetchError("bad_url", f"only http and https URLs are fetched, not {scheme or 'no scheme'}: {shown}")
    if "@" in parts.netloc:
        # Refused rather than stripped: media URLs are stored with the post and shown in the UI,
        # so a password in one is already a leak we should not bless; httpx would send it as Basic
        # auth to whatever host the URL (or a redirect) names; and stripping it would only turn the
        # problem into a puzzling 401 later. The message carries the URL without it.
        raise FetchError("bad_url", f"URLs with a user name or password are not fetched: {shown}")
    if not raw_host:
        raise FetchError("bad_url", f"the URL has no host: {shown}")

    literal: IPAddress | None = None
    zoned = False
    if ":" in raw_host:  # urlsplit only yields ':' in a host from inside [brackets]
        address, _, zone = raw_host.partition("%")
        try:
            literal = ipaddress.IPv6Address(address)
        except ValueError:
            raise FetchError("bad_url", f"not a valid IPv6 address in {shown}") from None
        zoned = bool(zone)
    else:
        try:
            literal = parse_ipv4_host(raw_host)
        except ValueError:
            raise FetchError("bad_url", f"the host is neither a name nor an IPv4 address: {shown}") from None

    if literal is not None:
        host_part = f"[{literal}]" if literal.version == 6 else str(literal)
    else:
        host_part = raw_host
    netloc = host_part + (f":{port}" if port is not None else "")
    # The fragment is never sent; the path defaults to "/" like any client would.
    rebuilt = urlunsplit((scheme, netloc, parts.path or "/", parts.query, ""))
    try:
        logical = httpx.URL(rebuilt)
        host = logical.raw_host.decode("ascii")
    except (httpx.InvalidURL, UnicodeError):
        raise FetchError("bad_url", f"not a usable URL: {shown}") from None
    if literal is None:
        # Two parsers looked at this host (urlsplit above, httpx here; httpx applies IDNA). If
        # httpx's reading is an address, the parsers disagree about what the host is: refuse
        # rather than pick one.
        try:
            numeric = ":" in host or parse_ipv4_host(host) is not None
        except ValueError:
            numeric = True
        if numeric:
            raise FetchError("bad_url", f"ambiguous host in {shown}")
    return _Target(url=logical, host=host, port=logical.port or (443 if scheme == "https" else 80),
                   literal=literal, zoned=zoned)


# ---------------------------------------------------------------------------------------------
# Resolution

async def system_resolver(host: str, port: int) -> list[str]:
    """The operating system's answer for ``host`` (getaddrinfo in the loop's thread pool), in its
    preference order, without duplicates."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(info[4][0] for info in infos))


_PERMANENT_DNS_ERRORS = {getattr(socket, n) for n in ("EAI_NONAME", "EAI_NODATA") if hasattr(socket, n)}


async def _checked_addresses(target: _Target, resolver: Resolver, allow_private: bool) -> list[IPAddress]:
    shown = redact_url(str(target.url))
    if target.literal is not None:
        check_address(target.literal, allow_private)
        if target.zoned:
            raise FetchError("bad_url", f"IPv6 zone ids are not supported: {shown}")
        return [target.literal]
    try:
        answer = await resolver(target.host, target.port)
    except OSError as exc:
        retryable = not (isinstance(exc, socket.gaierror) and exc.errno in _PERMANENT_DNS_ERRORS)
        raise FetchError("dns_failed", f"could not resolve {target.host}: {exc.strerror or exc}",
                         retryable=retryable) from None
    try:
        addresses = list(dict.fromkeys(_as_ip(a) for a in answer))
    except ValueError:
        raise FetchError("dns_failed", f"the resolver gave a non-address for {target.host}") from None
    if not addresses:
        raise FetchError("dns_failed", f"{target.host} has no addresses", retryable=True)
    # Every address is checked, and one bad address refuses the whole name, even though only one
    # will be connected to: an answer mixing public and private addresses is a rebinding setup
    # (clients that fall back to the next address end up inside), no legitimate media host
    # publishes one, and refusing is simpler to reason about than filtering. The message leaves
    # the address out: it would tell a tenant what our internal names point at.
    for address in addresses:
        if is_metadata_address(address):
            raise FetchError("blocked_address", f"{target.host} resolves to a cloud metadata address; it is never fetched")
        if not allow_private and not is_public_address(address):
            raise FetchError("blocked_address", f"{target.host} resolves to a private or reserved address")
    return addresses


# ---------------------------------------------------------------------------------------------
# Responses: file names, Google Drive's interstitial

_CD_EXTENDED = re.compile(r"filename\*\s*=\s*([A-Za-z0-9!#$%&+^_`{}~-]*)'[^']*'([^;\s]+)", re.I)
_CD_PLAIN = re.compile(r'filename\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s]+))', re.I)


def _content_disposition_filename(value: str | None) -> str | None:
    """RFC 6266: ``filename*`` (percent-encoded, with a charset) wins over ``filename``."""
    if not value:
        return None
    if m := _CD_EXTENDED.search(value):
        try:
            return unquote(m.group(2), encoding=m.group(1) or "utf-8", errors="replace")
        except LookupError:  # an unknown charset name
            return unquote(m.group(2), errors="replace")
    if m := _CD_PLAIN.search(value):
        return re.sub(r"\\(.)", r"\1", m.group(1)) if m.group(1) is not None else m.group(2)
    return None


def sanitize_filename(name: str, fallback: str = "download") -> str:
    """A name safe to put in a path and pass to tools: no directories, ASCII letters, digits,
    ``._-`` only, no leading dot (hidden, ``..``) or dash (read as an option by ffmpeg), at most
    100 characters keeping the extension."""
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    # "résumé" -> "resume" rather than "r_sum_": decompose, then drop what is not ASCII.
    name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", name).lstrip("._-").rstrip(".")
    if len(name) > 100:
        stem, ext = os.path.splitext(name)
        ext = ext if len(ext) <= 10 else ""
        name = stem[: 100 - len(ext)] + ext
    return name or fallback


def _filename_for(response: httpx.Response, url: httpx.URL, content_type: str | None) -> str:
    given = _content_disposition_filename(response.headers.get("content-disposition"))
    name = sanitize_filename(given or unquote(PurePosixPath(url.path).name))
    if "." not in name and content_type:
        name += mimetypes.guess_extension(content_type) or ""
    return name


_DRIVE_HOSTS = frozenset({"drive.google.com", "docs.google.com", "drive.usercontent.google.com"})


class _DriveInterstitialParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.form_action: str | None = None
        self.form_fields: list[tuple[str, str]] = []
        self.confirm_href: str | None = None
        self._in_download_form = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and a.get("id") == "download-form":
            self._in_download_form = True
            self.form_action = a.get("action")
        elif tag == "input" and self._in_download_form and a.get("type") == "hidden" and a.get("name"):
            self.form_fields.append((a["name"], a.get("value", "")))
        elif tag == "a" and self.confirm_href is None and "confirm=" in a.get("href", ""):
            self.confirm_href = a["href"]

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._in_download_form = False


def find_drive_confirm_url(html: str, page_url: str) -> str | None:
    """The "Download anyway" URL on Google Drive's "can't scan this file for viruses" page.

    Two generations of the page are understood: the current one (drive.usercontent.google.com) is
    a GET form ``id="download-form"`` whose hidden inputs (id, export, confirm, uuid) make the
    download URL; the older one links ``/uc?export=download&confirm=<token>&id=<id>`` and sets a
    ``download_warning`` cookie for the token. Returns None when the page is neither (a quota or
    permission page): the caller then keeps the HTML and reports it as text/html.
    """
    parser = _DriveInterstitialParser()
    try:
        parser.feed(html)
        parser.close()
    except Exception:  # noqa: BLE001  (malformed HTML is simply "not the page")
        return None
    if parser.form_action and any(name == "confirm" for name, _ in parser.form_fields):
        action = urlsplit(urljoin(page_url, parser.form_action))
        query = parse_qsl(action.query, keep_blank_values=True) + parser.form_fields
        candidate = urlunsplit((action.scheme, action.netloc, action.path, urlencode(query), ""))
    elif parser.confirm_href:
        candidate = urljoin(page_url, parser.confirm_href)
    else:
        return None
    # Only ever continue to Google's own download hosts, whatever the page says.
    host = (urlsplit(candidate).hostname or "").rstrip(".")
    return candidate if host in _DRIVE_HOSTS else None


def _cookies_from(response: httpx.Response) -> str | None:
    """``name=value; ...`` for the cookies a response set (the Drive download_warning token)."""
    pairs = []
    for header in response.headers.get_list("set-cookie"):
        try:
            jar = SimpleCookie(header)
        except CookieError:
            continue
        pairs.extend(f"{morsel.key}={morsel.value}" for morsel in jar.values())
    return "; ".join(pairs) or None


# ---------------------------------------------------------------------------------------------
# The fetch

@cache
def _default_ssl_context() -> ssl.SSLContext:
    # Built once per process: each one reads the CA bundle (~50 ms).
    return httpx.create_ssl_context(trust_env=False)


def _media_type(value: str | None) -> str | None:
    return (value or "").split(";", 1)[0].strip().lower() or None


def _cert_rejected(exc: BaseException) -> bool:
    seen = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, ssl.SSLCertVerificationError):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


class _Progress:
    """Calls ``heartbeat(bytes_so_far, total)`` at most once a second or once per MiB, plus at
    the start and the end, so a Temporal activity heartbeats while a large file streams."""

    def __init__(self, callback: Callable[[int, int | None], None] | None, total: int | None):
        self.callback = callback
        self.total = total
        self.sent_at = time.monotonic()
        self.sent_bytes = 0
        if callback:
            callback(0, total)

    def update(self, size: int) -> None:
        if not self.callback:
            return
        now = time.monotonic()
        if now - self.sent_at >= _HEARTBEAT_SECONDS or size - self.sent_bytes >= _HEARTBEAT_BYTES:
            self.callback(size, self.total)
            self.sent_at, self.sent_bytes = now, size

    def finish(self, size: int) -> None:
        if self.callback and size != self.sent_bytes:
            self.callback(size, self.total)


@dataclass
class _Redirect:
    location: str


@dataclass
class _Body:
    target: _Target
    content_type: str | None
    filename: str
    size: int
    sha256: str
    cookies: str | None


class _Fetch:
    def __init__(self, *, part: Path, max_bytes: int, timeout_seconds: float, allow_private: bool,
                 heartbeat: Callable[[int, int | None], None] | None, resolver: Resolver,
                 transport_factory: TransportFactory, user_agent: str):
        self.part = part
        self.max_bytes = max_bytes
        self.timeout_seconds = timeout_seconds
        self.allow_private = allow_private
        self.heartbeat = heartbeat
        self.resolver = resolver
        self.transport_factory = transport_factory
        self.user_agent = user_agent

    async def hop(self, target: _Target, cookies: str | None) -> _Redirect | _Body:
        """One GET of ``target``: resolve once, check, connect to a checked address."""
        addresses = await _checked_addresses(target, self.resolver, self.allow_private)
        shown = redact_url(str(target.url))
        headers = {
            "Host": target.url.netloc.decode("ascii"),  # name[:port]: what the server expects
            "User-Agent": self.user_agent,
            "Accept": "*/*",
            # Media is already compressed; asking for identity keeps Content-Length meaningful
            # for the size check. (If a server compresses anyway, httpx decodes and the cap
            # counts decoded bytes, so a compression bomb still stops at max_bytes.)
            "Accept-Encoding": "identity",
        }
        if cookies:
            headers["Cookie"] = cookies
        extensions: dict = {"timeout": httpx.Timeout(self.timeout_seconds).as_dict()}
        if target.https and target.literal is None:
            extensions["sni_hostname"] = target.host
        last_error: Exception | None = None
        for address in addresses[:_MAX_ADDRESS_ATTEMPTS]:
            pinned = httpx.Request("GET", target.url.copy_with(host=str(address)), headers=headers,
                                   extensions=extensions)
            # Straight to a transport, not through httpx.AsyncClient: the client would build its
            # own redirect request from Location (and raise on odd ones before our checks could
            # report them), keep a cookie jar across hops, and read proxy settings.
            transport = self.transport_factory()
            try:
                try:
                    response = await transport.handle_async_request(pinned)
                except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                    last_error = exc
                    continue  # the next checked address, if the name has more
                except httpx.TimeoutException:
                    raise FetchError("timeout", f"{shown} did not answer in time") from None
                except httpx.TransportError as exc:
                    raise FetchError("connect_failed", f"{shown}: {type(exc).__name__}") from None
                response.request = pinned
                try:
                    return await self.consume(target, response)
                except httpx.TimeoutException:
                    raise FetchError("timeout", f"{shown} stopped sending") from None
                except httpx.TransportError as exc:
                    raise FetchError("connect_failed", f"the connection to {target.host} broke while "
                                     f"reading {shown}: {type(exc).__name__}") from None
                finally:
                    await response.aclose()
            finally:
                await transport.aclose()
        if last_error is not None and _cert_rejected(last_error):
            raise FetchError("connect_failed", f"{target.host}'s TLS certificate was not accepted ({shown})",
                             retryable=False)
        raise FetchError("connect_failed", f"could not connect to {target.host} ({shown})")

    async def consume(self, target: _Target, response: httpx.Response) -> _Redirect | _Body:
        shown = redact_url(str(target.url))
        status = response.status_code
        if status in _REDIRECT_STATUSES:
            location = response.headers.get("location", "").strip()
            if not location:
                raise FetchError("http_error", f"{shown} answered HTTP {status} without a Location", status=status)
            # urljoin, not httpx: httpx refuses some numeric hosts (0177.0.0.1) outright, and those
            # must reach the address check to be reported for what they are.
            return _Redirect(urljoin(str(target.url), location))
        if not 200 <= status < 300:
            retryable = status >= 500 or status in (408, 429)
            raise FetchError("http_error", f"{shown} answered HTTP {status}", retryable=retryable, status=status)

        declared = response.headers.get("content-length", "")
        declared_size = int(declared) if declared.isdigit() else None
        if declared_size is not None and declared_size > self.max_bytes:
            raise FetchError("too_large", f"{shown} is {declared_size:,} bytes; the limit is {self.max_bytes:,}")
        encoded = response.headers.get("content-encoding", "identity").lower() not in ("", "identity")
        content_type = _media_type(response.headers.get("content-type"))

        digest, size = hashlib.sha256(), 0
        self.part.parent.mkdir(parents=True, exist_ok=True)
        progress = _Progress(self.heartbeat, None if encoded else declared_size)
        # Plain blocking writes: chunks are at most 64 KiB and the page cache absorbs them; a
        # thread hop per chunk would cost more than it saves.
        with open(self.part, "wb") as fh:
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > self.max_bytes:
                    raise FetchError("too_large", f"{shown} sent more than the {self.max_bytes:,}-byte limit")
                digest.update(chunk)
                fh.write(chunk)
                progress.update(size)
        progress.finish(size)
        if size == 0:
            raise FetchError("empty", f"{shown} answered with an empty body")
        return _Body(target=target, content_type=content_type, filename=_filename_for(response, target.url, content_type),
                     size=size, sha256=digest.hexdigest(), cookies=_cookies_from(response))


async def fetch_to_file(
    url: str,
    dest: Path,
    *,
    max_bytes: int,
    timeout_seconds: float,
    allow_private: bool,
    max_redirects: int = MAX_REDIRECTS,
    heartbeat: Callable[[int, int | None], None] | None = None,
    resolver: Resolver | None = None,
    transport_factory: TransportFactory | None = None,
    ssl_context: ssl.SSLContext | None = None,
    user_agent: str = DEFAULT_USER_AGENT,
) -> FetchResult:
    """Stream ``url`` into ``dest``, refusing addresses that are not public (unless
    ``allow_private``; cloud metadata always), bodies over ``max_bytes`` and fetches longer than
    ``timeout_seconds`` in total.

    Share links are normalised first (``media.share_links``). Redirects are followed by hand, at
    most ``max_redirects``, each hop checked like the first. The body goes to ``<dest>.part`` and
    is renamed to ``dest`` only when complete; on any failure or cancellation the partial file is
    deleted. ``resolver`` maps (host, port) to addresses (default: getaddrinfo);
    ``transport_factory`` builds the httpx transport for one hop (default: a plain
    ``AsyncHTTPTransport`` with ``ssl_context``, the certifi bundle unless given).

    The body is saved whatever its type, and ``content_type`` says what the server called it: an
    HTML page where a photo was expected is for the pipeline's sniffing to refuse.
    """
    dest = Path(dest)
    part = dest.with_suffix(dest.suffix + ".part")
    _parse_target(url)  # the URL as given: refuse user info before normalising could drop it
    context = ssl_context or _default_ssl_context()
    fetch = _Fetch(
        part=part, max_bytes=max_bytes, timeout_seconds=timeout_seconds, allow_private=allow_private,
        heartbeat=heartbeat, resolver=resolver or system_resolver,
        transport_factory=transport_factory or (lambda: httpx.AsyncHTTPTransport(verify=context, trust_env=False)),
        user_agent=user_agent,
    )
    try:
        async with asyncio.timeout(timeout_seconds):
            return await _follow(fetch, normalize_share_link(url), dest, max_redirects)
    except TimeoutError:
        part.unlink(missing_ok=True)
        raise FetchError("timeout", f"fetching {redact_url(url)} took longer than {timeout_seconds:g} s") from None
    except BaseException:  # FetchError, cancellation, anything: never leave a partial file behind
        part.unlink(missing_ok=True)
        raise


async def _follow(fetch: _Fetch, url: str, dest: Path, max_redirects: int) -> FetchResult:
    current = url
    hops = 0
    cookies_for: tuple[str, str] | None = None  # (host, Cookie header) for the Drive confirm hop only
    confirm_followed = False
    while True:
        target = _parse_target(current)
        cookies = cookies_for[1] if cookies_for and cookies_for[0] == target.host else None
        outcome = await fetch.hop(target, cookies)
        cookies_for = None
        if isinstance(outcome, _Redirect):
            next_url = outcome.location
        else:
            next_url = None
            if (not confirm_followed and outcome.target.host in _DRIVE_HOSTS
                    and outcome.content_type == "text/html" and outcome.size <= _INTERSTITIAL_MAX_BYTES):
                page = fetch.part.read_text(encoding="utf-8", errors="replace")
                next_url = find_drive_confirm_url(page, str(outcome.target.url))
            if next_url is None:
                os.replace(fetch.part, dest)
                return FetchResult(path=dest, final_url=str(outcome.target.url), content_type=outcome.content_type,
                                   filename=outcome.filename, size=outcome.size, sha256=outcome.sha256)
            # Google's large-file warning page: follow its "Download anyway" once, carrying the
            # download_warning cookie back to the same host (the older page checks it). Counted
            # as a hop so the interstitial cannot extend the redirect budget.
            fetch.part.unlink(missing_ok=True)
            confirm_followed = True
            if outcome.cookies:
                cookies_for = (outcome.target.host, outcome.cookies)
        hops += 1
        if hops > max_redirects:
            raise FetchError("too_many_redirects",
                             f"{redact_url(url)} redirected more than {max_redirects} times")
        current = next_url
