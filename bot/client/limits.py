"""Checks of the platform's documented limits, made before a request is sent (platform notes §8).

Each raises `LimitError` naming the field and the limit; lengths the platform counts in bytes
are counted in UTF-8 bytes, the others in characters.
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.client.errors import LimitError


def check_bytes(field: str, value: str, limit: int, *, minimum: int = 1) -> None:
    """`value` must be `minimum` to `limit` bytes of UTF-8."""
    size = len(value.encode("utf-8"))
    if size < minimum:
        raise LimitError(
            field, "must not be empty" if minimum == 1 else f"at least {minimum} bytes"
        )
    if size > limit:
        raise LimitError(field, f"at most {limit} bytes (got {size}: {_shown(value)})")


def check_chars(field: str, value: str, limit: int, *, minimum: int = 1) -> None:
    """`value` must be `minimum` to `limit` characters."""
    if len(value) < minimum:
        raise LimitError(field, "must not be empty" if minimum == 1 else f"at least {minimum}")
    if len(value) > limit:
        raise LimitError(field, f"at most {limit} characters (got {len(value)}: {_shown(value)})")


def check_count(field: str, items: Sequence[object], limit: int, *, minimum: int = 1) -> None:
    """`items` must hold `minimum` to `limit` entries."""
    if len(items) < minimum:
        raise LimitError(field, f"at least {minimum} needed (got {len(items)})")
    if len(items) > limit:
        raise LimitError(field, f"at most {limit} in one call (got {len(items)})")


def check_range(field: str, value: int, low: int, high: int) -> None:
    """`value` must lie in [low, high]."""
    if isinstance(value, bool) or not low <= value <= high:
        raise LimitError(field, f"must be between {low:,} and {high:,} (got {value!r})")


def check_openids(field: str, openids: Sequence[str], limit: int) -> None:
    """1 to `limit` non-empty openids."""
    check_count(field, openids, limit)
    for i, openid in enumerate(openids):
        if not isinstance(openid, str) or not openid:
            raise LimitError(f"{field}[{i}]", "must be a non-empty openid")


def _shown(value: str) -> str:
    return repr(value if len(value) <= 40 else value[:37] + "...")
