"""What a file really is, from its leading bytes.

Uploads and downloads come with a claimed type (a Content-Type header, a file name) that is often
wrong and sometimes hostile; everything downstream (which decoder opens the file, which network
rules apply) keys on the type found here instead. The signatures are the ones the formats'
specifications put at the start of the file:

* JPEG SOI ``FF D8 FF``; PNG's 8-byte signature; ``GIF87a``/``GIF89a``; BMP ``BM``;
  TIFF ``II*\\0`` / ``MM\\0*`` (and BigTIFF ``II+\\0`` / ``MM\\0+``).
* RIFF containers by their form type: ``WEBP``, ``AVI ``, ``WAVE``; AIFF is ``FORM....AIFF``.
* ISO base media files (MP4, MOV, 3GP, M4A, HEIF, AVIF) by the ``ftyp`` box: major brand first,
  then the compatible brands (ISO/IEC 14496-12 §4.3, the brand registry at mp4ra.org).
* Matroska and WebM share the EBML magic ``1A 45 DF A3``; the EBML header's DocType element
  (ID ``42 82``) says ``webm`` or ``matroska`` (RFC 8794 §11.2.4, RFC 9559).
* MPEG transport streams: sync byte ``0x47`` every 188 bytes (192 for M2TS, which prefixes a
  4-byte timecode).
* MP3: an ID3v2 tag or an MPEG audio frame header; AAC ADTS: the 12-bit sync ``FFF`` with
  layer ``00`` (ISO/IEC 13818-7 §6.2). An ID3 tag is skipped to look at the frame after it, so an
  ADTS stream with an ID3 tag is still AAC.
* Ogg: ``OggS``, then the first packet of the first logical stream names the codec
  (``OpusHead``, ``\\x01vorbis``, ``\\x80theora``, ``\\x7fFLAC``, ``Speex   ``); FLAC ``fLaC``.
* PDF ``%PDF-``.

Text formats (SVG, HTML) are deliberately not recognised: they are never passed to a decoder, and
an unknown file is an opaque document (``application/octet-stream``) to the pipeline.
"""

from __future__ import annotations

import os

from media.types import Sniffed

# Enough for every signature above, including the EBML DocType (within the first ~40 bytes),
# the compatible brands of an ftyp box, and three TS packets.
HEAD_BYTES = 4096

JPEG = Sniffed("image/jpeg", "image", "jpg")
PNG = Sniffed("image/png", "image", "png")
GIF = Sniffed("image/gif", "image", "gif")
WEBP = Sniffed("image/webp", "image", "webp")
BMP = Sniffed("image/bmp", "image", "bmp")
TIFF = Sniffed("image/tiff", "image", "tiff")
HEIC = Sniffed("image/heic", "image", "heic")
HEIF = Sniffed("image/heif", "image", "heif")
AVIF = Sniffed("image/avif", "image", "avif")
MP4 = Sniffed("video/mp4", "video", "mp4")
M4V = Sniffed("video/x-m4v", "video", "m4v")
MOV = Sniffed("video/quicktime", "video", "mov")
THREE_GP = Sniffed("video/3gpp", "video", "3gp")
THREE_G2 = Sniffed("video/3gpp2", "video", "3g2")
WEBM = Sniffed("video/webm", "video", "webm")
MKV = Sniffed("video/x-matroska", "video", "mkv")
AVI = Sniffed("video/x-msvideo", "video", "avi")
MPEG_TS = Sniffed("video/mp2t", "video", "ts")
OGV = Sniffed("video/ogg", "video", "ogv")
MP3 = Sniffed("audio/mpeg", "audio", "mp3")
AAC = Sniffed("audio/aac", "audio", "aac")
M4A = Sniffed("audio/mp4", "audio", "m4a")
WAV = Sniffed("audio/wav", "audio", "wav")
AIFF = Sniffed("audio/aiff", "audio", "aiff")
OGG = Sniffed("audio/ogg", "audio", "ogg")
OPUS = Sniffed("audio/ogg", "audio", "opus")
FLAC = Sniffed("audio/flac", "audio", "flac")
PDF = Sniffed("application/pdf", "other", "pdf")

# ftyp brands (mp4ra.org brand registry). Checked major brand first, then compatible brands in
# file order, so a HEIF file whose major brand is the generic ``mif1`` but that lists ``heic`` is
# HEIC, and an ``isom`` file is MP4 only when nothing more specific is listed.
_SPECIFIC_BRANDS: dict[bytes, Sniffed] = {
    b"avif": AVIF,
    b"avis": AVIF,  # AVIF image sequence
    b"heic": HEIC,
    b"heix": HEIC,
    b"heim": HEIC,
    b"heis": HEIC,
    b"hevc": HEIC,  # HEVC image sequence
    b"hevx": HEIC,
    b"qt  ": MOV,
    b"M4A ": M4A,
    b"M4B ": M4A,  # audiobook
    b"M4P ": M4A,
    b"M4V ": M4V,
    b"M4VH": M4V,
    b"M4VP": M4V,
    b"3g2a": THREE_G2,
    b"3g2b": THREE_G2,
    b"3g2c": THREE_G2,
}
_GENERIC_BRANDS: dict[bytes, Sniffed] = {
    b"mif1": HEIF,
    b"msf1": HEIF,
    b"isom": MP4,
    b"iso2": MP4,
    b"iso3": MP4,
    b"iso4": MP4,
    b"iso5": MP4,
    b"iso6": MP4,
    b"iso7": MP4,
    b"iso8": MP4,
    b"iso9": MP4,
    b"mp41": MP4,
    b"mp42": MP4,
    b"mp71": MP4,
    b"avc1": MP4,
    b"dash": MP4,
    b"mmp4": MP4,
    b"MSNV": MP4,  # Sony PSP
    b"NDAS": MP4,
    b"f4v ": MP4,
    b"XAVC": MP4,
}


def sniff(path: str | os.PathLike[str]) -> Sniffed | None:
    """The real type of the file at ``path``, or None when the bytes match no known signature."""
    with open(path, "rb") as f:
        head = f.read(HEAD_BYTES)
        found = sniff_bytes(head)
        if found is MP3 and head.startswith(b"ID3"):
            # Look past the ID3v2 tag (its size is a 28-bit "syncsafe" integer, ID3v2.4 §3.1;
            # a footer adds 10 bytes) at the first audio frame: ADTS there means AAC.
            size = _syncsafe(head[6:10]) + 10 + (10 if head[5] & 0x10 else 0)
            f.seek(size)
            frame = f.read(4)
            if _is_adts(frame):
                return AAC
        return found


def sniff_bytes(head: bytes) -> Sniffed | None:
    """The type from the first bytes of a file (``HEAD_BYTES`` of them are plenty)."""
    if len(head) < 4:
        return None
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return GIF
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return TIFF
    if head.startswith(b"RIFF") and len(head) >= 12:
        return {b"WEBP": WEBP, b"AVI ": AVI, b"WAVE": WAV}.get(head[8:12])
    if head.startswith(b"FORM") and head[8:12] in (b"AIFF", b"AIFC"):
        return AIFF
    if head[4:8] == b"ftyp":
        return _ftyp(head)
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return _ebml(head)
    if head.startswith(b"OggS"):
        return _ogg(head)
    if head.startswith(b"fLaC"):
        return FLAC
    if head.startswith(b"%PDF-"):
        return PDF
    if head.startswith(b"BM") and _is_bmp(head):
        return BMP
    if _is_ts(head, 188, 0) or _is_ts(head, 192, 4):
        return MPEG_TS
    if head.startswith(b"ID3"):
        return MP3
    if _is_adts(head):
        return AAC
    if _is_mpeg_audio(head):
        return MP3
    return None


def _ftyp(head: bytes) -> Sniffed | None:
    # Compatible brands run from offset 16 to the end of the box; a size below 16 (0 = "to the
    # end of the file", 1 = a 64-bit size follows, which no real ftyp box needs) reads what we have.
    box_size = int.from_bytes(head[0:4], "big")
    end = min(len(head), box_size if box_size >= 16 else len(head))
    major = head[8:12]
    compatible = [head[i : i + 4] for i in range(16, end - 3, 4)]
    for brand in (major, *compatible):
        if brand in _SPECIFIC_BRANDS:
            return _SPECIFIC_BRANDS[brand]
        if brand.startswith(b"3gp") or brand.startswith(b"3ge") or brand.startswith(b"3gs"):
            return THREE_GP
    for brand in (major, *compatible):
        if brand in _GENERIC_BRANDS:
            return _GENERIC_BRANDS[brand]
    return None


def _ebml(head: bytes) -> Sniffed | None:
    # The DocType element (ID 0x4282) sits inside the EBML header, within its first few dozen
    # bytes; its size is an EBML variable-length integer (RFC 8794 §4).
    at = head.find(b"\x42\x82", 4, 64)
    if at < 0:
        return None
    size_byte = head[at + 2] if at + 2 < len(head) else 0
    length = 1
    while length <= 8 and not size_byte & (0x80 >> (length - 1)):
        length += 1
    if length > 8:
        return None
    size = size_byte & (0xFF >> length)
    for b in head[at + 3 : at + 2 + length]:
        size = (size << 8) | b
    start = at + 2 + length
    doc_type = head[start : start + size].rstrip(b"\x00")
    if doc_type == b"webm":
        return WEBM
    if doc_type == b"matroska":
        return MKV
    return None


def _ogg(head: bytes) -> Sniffed | None:
    # Page header is 27 bytes plus one lacing byte per segment (RFC 3533 §6); the first packet of
    # the first page is the codec's identification header.
    if len(head) < 28:
        return None
    packet = head[27 + head[26] :]
    if packet.startswith(b"OpusHead"):
        return OPUS
    if packet.startswith(b"\x01vorbis") or packet.startswith(b"Speex   ") or packet.startswith(b"\x7fFLAC"):
        return OGG
    if packet.startswith(b"\x80theora"):
        return OGV
    return OGG


def _is_bmp(head: bytes) -> bool:
    # "BM" alone is too weak (plenty of text starts with it): the DIB header size that follows
    # the 14-byte file header is one of the sizes the BMP versions define.
    if len(head) < 18:
        return False
    return int.from_bytes(head[14:18], "little") in (12, 16, 40, 52, 56, 64, 108, 124)


def _is_ts(head: bytes, packet: int, offset: int) -> bool:
    positions = [offset + packet * i for i in range(3)]
    return positions[-1] < len(head) and all(head[p] == 0x47 for p in positions)


def _is_adts(b: bytes) -> bool:
    # 12-bit sync 0xFFF, then layer == 0 (bits 1-2 of the second byte) marks ADTS rather than an
    # MPEG audio layer I-III frame; sampling-frequency index 13-15 is reserved.
    return len(b) >= 3 and b[0] == 0xFF and (b[1] & 0xF6) == 0xF0 and ((b[2] >> 2) & 0x0F) < 13


def _is_mpeg_audio(b: bytes) -> bool:
    # 11-bit frame sync, a version other than the reserved 01, a layer other than the reserved
    # 00 (that is ADTS), a bitrate index other than 1111 and a sample-rate index other than 11.
    if len(b) < 4 or b[0] != 0xFF or (b[1] & 0xE0) != 0xE0:
        return False
    version = (b[1] >> 3) & 0x03
    layer = (b[1] >> 1) & 0x03
    bitrate = (b[2] >> 4) & 0x0F
    rate = (b[2] >> 2) & 0x03
    return version != 1 and layer != 0 and bitrate != 0x0F and rate != 0x03


def _syncsafe(b: bytes) -> int:
    return (b[0] & 0x7F) << 21 | (b[1] & 0x7F) << 14 | (b[2] & 0x7F) << 7 | (b[3] & 0x7F)
