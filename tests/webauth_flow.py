"""Walking the web-authorization flow over HTTP as WeChat's in-app browser would."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from urllib.parse import parse_qs, urlencode, urlsplit

import aiohttp

_LINK = re.compile(r'<a href="([^"]+)">([^<]+)</a>')
_HIDDEN = re.compile(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)">')


@dataclass(frozen=True)
class Page:
    """A page the follower ends on: status, final URL and HTML."""

    status: int
    url: str
    text: str


def link_in(content: str | None) -> tuple[str, str]:
    """The (href, text) of the one link in a text reply."""
    found = _LINK.findall(content or "")
    assert len(found) == 1, f"expected one link in {content!r}"
    href, text = found[0]
    return html.unescape(href), text


def state_of(href: str) -> str:
    """The `state` parameter of an authorize URL."""
    return parse_qs(urlsplit(href).query)["state"][0]


def as_user(href: str, openid: str, *, snapshot: bool = False) -> str:
    """The authorize URL as WeChat's browser opens it for `openid` (the fake's stand-in)."""
    extra = {"fake_user": openid, **({"fake_snapshot": "1"} if snapshot else {})}
    return href.split("#", 1)[0] + "&" + urlencode(extra)


async def callback_url(
    session: aiohttp.ClientSession,
    href: str,
    openid: str,
    *,
    decision: str = "allow",
    snapshot: bool = False,
) -> str:
    """Open the link, press Allow (or Deny) on the fake's consent page: where it redirects."""
    async with session.get(as_user(href, openid, snapshot=snapshot)) as response:
        assert response.status == 200, await response.text()
        form = dict(_HIDDEN.findall(await response.text()))
    form = {k: html.unescape(v) for k, v in form.items()}
    form["decision"] = decision
    base = href.split("/connect/", 1)[0]
    async with session.post(
        f"{base}/connect/oauth2/authorize", data=form, allow_redirects=False
    ) as response:
        assert response.status == 302, await response.text()
        return response.headers["Location"]


async def consent(
    session: aiohttp.ClientSession,
    href: str,
    openid: str,
    *,
    decision: str = "allow",
    snapshot: bool = False,
) -> Page:
    """The whole walk: consent page, Allow (or Deny), the bot's callback page."""
    url = await callback_url(session, href, openid, decision=decision, snapshot=snapshot)
    return await open_page(session, url)


async def open_page(session: aiohttp.ClientSession, url: str) -> Page:
    """GET `url` (a callback URL, say) and the page it answers."""
    async with session.get(url, allow_redirects=False) as response:
        return Page(response.status, str(response.url), await response.text())
