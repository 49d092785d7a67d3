"""What the operator-API modules need from the client: calls with the token, and files.

`WeChatAPI` is the implementation; the area modules (menus, media, tags, …) depend on this
protocol only, so each stays a small module the client composes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class Download:
    """A file the platform answered with (media, material, a QR-code image)."""

    content: bytes
    content_type: str
    filename: str = ""


class APICaller(Protocol):
    """Authorised calls (timeouts, bounded retries, token recovery) and public downloads."""

    @property
    def app_id(self) -> str:
        """The account's AppID."""

    @property
    def mp_base_url(self) -> str:
        """Where the platform serves QR-code images (https://mp.weixin.qq.com)."""

    async def call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
        body: bytes | None = None,
        content_type: str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 -- as WeChatAPI.call
        attempt_timeout: float | None = None,
    ) -> dict[str, Any]:
        """A JSON call; raises WeChatAPIError on an errcode."""

    async def download(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
        timeout: float | None = None,  # noqa: ASYNC109 -- as WeChatAPI.call
        attempt_timeout: float | None = None,
    ) -> Download:
        """A call answered with a file."""

    async def call_with_secret(self, path: str, json_body: Mapping[str, Any]) -> dict[str, Any]:
        """A JSON call authenticated by AppID and AppSecret instead of a token."""

    async def fetch_public(self, url: str, endpoint: str) -> Download:
        """A file served without a token."""
