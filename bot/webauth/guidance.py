"""What `check-config` says about web authorization: what is missing and what to enter where."""

from __future__ import annotations

from urllib.parse import urlsplit

from bot.config import Config

OK = "✓"
PROBLEM = "✗"
NOTE = "·"
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def web_authorization_report(config: Config) -> list[tuple[str, str]]:
    """(mark, line) pairs: a problem is something that stops the flow working for followers."""
    section = config.web_authorization
    if not section.enabled:
        return [
            (
                NOTE,
                "web authorization is off: followers are greeted by a name they type or the "
                "operator's remark (web_authorization.enabled: true greets by their WeChat "
                "nickname, with their consent; verified service accounts only)",
            )
        ]
    url = urlsplit(section.public_url)
    host = url.hostname or ""
    lines = [(OK, f"web authorization is on: the redirect URI is {section.redirect_uri}")]
    if url.scheme != "https":
        mark = NOTE if host in _LOOPBACK else PROBLEM
        lines.append(
            (mark, f"public_url is not https: WeChat's browser needs https://{host} in production")
        )
    if url.port is not None and url.port != 443:
        mark = NOTE if host in _LOOPBACK else PROBLEM
        lines.append(
            (
                mark,
                f"public_url has port {url.port}: the 网页授权域名 is a bare domain, so the "
                "platform refuses redirects to other ports (10003); serve on 443",
            )
        )
    if url.path.strip("/"):
        lines.append(
            (
                NOTE,
                f"public_url has the path {url.path!r}: the proxy must send "
                f"{section.redirect_uri} to the bot's /oauth/callback",
            )
        )
    lines.append(
        (
            NOTE,
            f"enter {host or '(the public domain)'} as the account's 网页授权域名 (Settings and "
            "Development > Interface permissions > Web authorization: the exact domain, no "
            "scheme, path or subdomain) and serve the MP_verify_*.txt file the console offers "
            f"at https://{host}/",
        )
    )
    lines.append(
        (
            NOTE,
            "only verified service accounts have web authorization: on a subscription or "
            "unverified account followers would see 10005 (此公众号并没有这些scope的权限)",
        )
    )
    return lines
