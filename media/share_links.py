"""Turn "share" links from file-hosting services into links that answer with the file itself.

People paste the link their storage app gave them. Those links open a viewer page (HTML), so a
fetcher that used them as given would download a web page instead of the photo. Only the two
services our users actually paste are rewritten; everything else passes through unchanged, because
guessing at other hosts' URL schemes would break links that already work.

* Google Drive: ``/file/d/<id>/view``, ``/open?id=<id>``, ``/uc?id=<id>`` (drive.google.com or
  docs.google.com) become ``drive.google.com/uc?export=download&id=<id>``. A ``resourcekey``
  parameter is kept: files shared by link since Google's 2021 security update need it.
  Large files still answer with a "can't scan for viruses" page; ``media.fetch`` deals with that.
* Dropbox: ``/s/...`` and ``/scl/fi/...`` links get ``dl=1`` (the file) instead of ``dl=0`` (the
  preview page); ``rlkey`` and every other parameter are kept, since new-style links need rlkey.

The scheme and an explicit port are kept as given (Google and Dropbox redirect http to https
themselves), which also lets tests point these host names at a loopback server.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

_DRIVE_HOSTS = {"drive.google.com", "docs.google.com"}
_DROPBOX_HOSTS = {"www.dropbox.com", "dropbox.com"}
# Drive file ids are URL-safe base64-ish; refusing anything else keeps a crafted "id" from
# smuggling extra parameters into the rewritten URL.
_DRIVE_ID = re.compile(r"[A-Za-z0-9_-]{10,}")
# /file/d/<id>/..., also the multi-account form /file/u/<n>/d/<id>/...
_DRIVE_FILE_PATH = re.compile(r"^/file/(?:u/\d+/)?d/([^/]+)(?:/.*)?$")


def normalize_share_link(url: str) -> str:
    """The direct-download form of a Google Drive or Dropbox share link; any other URL unchanged."""
    try:
        parts = urlsplit(url.strip())
        host = (parts.hostname or "").lower().rstrip(".")
        port = parts.port
    except ValueError:  # unparseable (bad port, broken IPv6 literal): the fetcher reports it
        return url
    if parts.scheme.lower() not in ("http", "https"):
        return url
    if host in _DRIVE_HOSTS:
        return _drive(parts, port) or url
    if host in _DROPBOX_HOSTS:
        return _dropbox(parts) or url
    return url


def _drive(parts, port: int | None) -> str | None:  # noqa: ANN001  (a SplitResult)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    file_id = None
    match = _DRIVE_FILE_PATH.match(parts.path)
    if match:
        file_id = match.group(1)
    elif parts.path.rstrip("/") in ("/open", "/uc"):
        file_id = query.get("id")
    if not file_id or not _DRIVE_ID.fullmatch(file_id):
        return None
    params = [("export", "download"), ("id", file_id)]
    if query.get("resourcekey"):
        params.append(("resourcekey", query["resourcekey"]))
    netloc = "drive.google.com" + (f":{port}" if port else "")
    return urlunsplit((parts.scheme.lower(), netloc, "/uc", urlencode(params), ""))


def _dropbox(parts) -> str | None:  # noqa: ANN001
    if not parts.path.startswith(("/s/", "/scl/fi/")):
        return None  # folders (/sh/, /scl/fo/) would download as a zip; not media
    query = parse_qsl(parts.query, keep_blank_values=True)
    if any(key == "raw" and value == "1" for key, value in query):
        return None  # raw=1 already serves the file
    kept = [(key, value) for key, value in query if key != "dl"]
    kept.append(("dl", "1"))
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(kept), ""))
