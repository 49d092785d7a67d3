"""What the platform accepts as media (platform notes §8): types, sizes and formats.

Sizes are the safe ones where the docs disagree (an image: 2 MB, not 10). A file's format is
read from its first bytes, not trusted from its name; the name's extension must agree.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypeAlias

MediaType: TypeAlias = Literal["image", "voice", "video", "thumb"]
MEDIA_TYPES: tuple[MediaType, ...] = ("image", "voice", "video", "thumb")
_MB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class MediaLimit:
    """The largest file of a media type and the formats it may be in."""

    max_bytes: int
    formats: tuple[str, ...]


MEDIA_LIMITS: dict[str, MediaLimit] = {
    "image": MediaLimit(2 * _MB, ("png", "jpeg", "gif")),
    "voice": MediaLimit(2 * _MB, ("amr", "mp3")),
    "video": MediaLimit(10 * _MB, ("mp4",)),
    "thumb": MediaLimit(64 * 1024, ("jpeg",)),
}
_EXTENSIONS = {
    "png": "png",
    "jpg": "jpeg",
    "jpeg": "jpeg",
    "gif": "gif",
    "amr": "amr",
    "mp3": "mp3",
    "mp4": "mp4",
}
CONTENT_TYPES = {
    "png": "image/png",
    "jpeg": "image/jpeg",
    "gif": "image/gif",
    "amr": "audio/amr",
    "mp3": "audio/mpeg",
    "mp4": "video/mp4",
}
_HEAD = 16


class MediaFileError(ValueError):
    """A file the platform would refuse: missing, too large, or of the wrong format."""


@dataclass(frozen=True, slots=True)
class MediaFile:
    """A checked local file: where it is, what type it is sent as, its size and format."""

    path: Path
    kind: MediaType
    size: int
    format: str


def sniff_format(head: bytes) -> str | None:
    """The format of a file from its first 16 bytes (None when not one the platform takes)."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    if head.startswith(b"#!AMR"):
        return "amr"
    if head.startswith(b"ID3") or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "mp3"
    if head[4:8] == b"ftyp":
        return "mp4"
    return None


def check_media(kind: str, filename: str, head: bytes, size: int) -> str:
    """The format of a `kind` file named `filename`; MediaFileError when it would be refused."""
    limit = MEDIA_LIMITS.get(kind)
    if limit is None:
        raise MediaFileError(f"media type must be one of {', '.join(MEDIA_TYPES)}, not {kind!r}")
    if size <= 0:
        raise MediaFileError(f"{filename}: the file is empty")
    if size > limit.max_bytes:
        raise MediaFileError(
            f"{filename}: {size:,} bytes is over the {kind} limit of {limit.max_bytes:,} bytes"
        )
    found = sniff_format(head)
    allowed = "/".join(limit.formats)
    if found not in limit.formats:
        what = found.upper() if found else "not a known media format"
        raise MediaFileError(f"{filename}: a {kind} must be {allowed.upper()} ({what})")
    extension = _EXTENSIONS.get(os.path.splitext(filename)[1].lower().lstrip("."))
    if extension != found:
        raise MediaFileError(f"{filename}: the name says otherwise than the content ({found})")
    return found


def check_media_file(path: str | os.PathLike[str], kind: str) -> MediaFile:
    """Check a local file for upload as `kind`; MediaFileError when it would be refused."""
    where = Path(path)
    try:
        size = where.stat().st_size
        with where.open("rb") as file:
            head = file.read(_HEAD)
    except OSError as exc:
        raise MediaFileError(f"{where}: cannot read it ({exc.strerror})") from None
    found = check_media(kind, str(where), head, size)
    return MediaFile(where, media_type(kind), size, found)


def media_type(kind: str) -> MediaType:
    """`kind` as a `MediaType`; MediaFileError when it is not one."""
    for known in MEDIA_TYPES:
        if kind == known:
            return known
    raise MediaFileError(f"media type must be one of {', '.join(MEDIA_TYPES)}, not {kind!r}")
