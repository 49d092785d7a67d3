"""Small files in the formats the platform takes (their first bytes are what it checks)."""

from __future__ import annotations

from pathlib import Path

from bot.testing.fake_qrcodes import png_image

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 200 + b"\xff\xd9"
MP4 = b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 300
AMR = b"#!AMR\n" + b"\x3c" * 100


def png(tmp_path: Path, name: str = "poster.png", size: int = 8) -> Path:
    """A valid PNG of `size`×`size` pixels."""
    path = tmp_path / name
    path.write_bytes(png_image([[True] * size] * size, scale=1))
    return path


def sample(tmp_path: Path, name: str, content: bytes) -> Path:
    """`content` written to `tmp_path / name`."""
    path = tmp_path / name
    path.write_bytes(content)
    return path
