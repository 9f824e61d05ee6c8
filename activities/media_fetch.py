"""Download a post's media URLs to the worker's disk before publish time.

Streams with httpx under a size cap and a time cap, follows at most 5 redirects, heartbeats
progress, and refuses hosts that resolve to private or loopback addresses unless the operator
allowed private networks (development and tests). The full media pipeline (sniffing, renditions,
delivery URLs, rebinding-proof connects) is a separate piece of work; this is the part
publishing needs now.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import mimetypes
import os
import re
import socket
from pathlib import Path
from typing import Callable
from urllib.parse import unquote, urlsplit

import httpx

MAX_REDIRECTS = 5


class MediaFetchError(Exception):
    """A URL that can never be fetched as given (blocked host, too large, 4xx)."""


def kind_of(mime: str) -> str:
    top = mime.split("/", 1)[0]
    return top if top in ("image", "video", "audio") else "other"


async def check_host_allowed(url: str, allow_private: bool) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise MediaFetchError(f"only http(s) URLs can be fetched: {url[:200]}")
    if allow_private:
        return
    infos = await asyncio.get_running_loop().getaddrinfo(parts.hostname, parts.port or 443, type=socket.SOCK_STREAM)
    for info in infos:
        ip = ipaddress.ip_address(info[4][0])
        if ip.version == 6 and ip.ipv4_mapped:
            ip = ip.ipv4_mapped
        if not ip.is_global or ip.is_multicast:
            raise MediaFetchError(f"refusing to fetch {parts.hostname}: it resolves to a non-public address")


def _filename_for(url: str, content_type: str | None, index: int) -> str:
    name = Path(unquote(urlsplit(url).path)).name
    name = re.sub(r"[^A-Za-z0-9._-]", "_", name)[:100] or f"media-{index}"
    if "." not in name and content_type:
        name += mimetypes.guess_extension(content_type) or ""
    return name


async def download(
    http: httpx.AsyncClient,
    url: str,
    dest_dir: Path,
    index: int,
    *,
    max_bytes: int,
    allow_private: bool,
    heartbeat: Callable[[str], None],
) -> dict:
    """Fetch one URL into dest_dir; returns the local file's facts (path, filename, mime, size, sha256, kind)."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    current = url
    for _ in range(MAX_REDIRECTS + 1):
        await check_host_allowed(current, allow_private)
        async with http.stream("GET", current, follow_redirects=False) as resp:
            if resp.is_redirect:
                current = str(resp.next_request.url) if resp.next_request else ""
                continue
            if resp.status_code >= 400:
                message = f"GET {url[:200]} answered HTTP {resp.status_code}"
                if resp.status_code >= 500 or resp.status_code == 429:
                    raise httpx.HTTPStatusError(message, request=resp.request, response=resp)
                raise MediaFetchError(message)
            declared = int(resp.headers.get("content-length") or 0)
            if declared > max_bytes:
                raise MediaFetchError(f"{url[:200]} is {declared:,} bytes; the limit is {max_bytes:,}")
            content_type = (resp.headers.get("content-type") or "").split(";")[0].strip() or None
            filename = _filename_for(current, content_type, index)
            mime = content_type if content_type and content_type != "application/octet-stream" else (
                mimetypes.guess_type(filename)[0] or "application/octet-stream")
            path = dest_dir / f"{index}-{filename}"
            tmp = path.with_suffix(path.suffix + ".part")
            digest, size = hashlib.sha256(), 0
            with open(tmp, "wb") as fh:
                async for chunk in resp.aiter_bytes(1 << 16):
                    size += len(chunk)
                    if size > max_bytes:
                        fh.close()
                        tmp.unlink(missing_ok=True)
                        raise MediaFetchError(f"{url[:200]} exceeds the {max_bytes:,}-byte limit")
                    digest.update(chunk)
                    fh.write(chunk)
                    heartbeat(f"{index}:{size}")
            if size == 0:
                tmp.unlink(missing_ok=True)
                raise MediaFetchError(f"{url[:200]} is empty")
            os.replace(tmp, path)
            return {"path": str(path), "filename": filename, "mime": mime, "size": size,
                    "sha256": digest.hexdigest(), "kind": kind_of(mime)}
    raise MediaFetchError(f"{url[:200]}: more than {MAX_REDIRECTS} redirects")
