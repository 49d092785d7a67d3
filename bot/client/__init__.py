"""The WeChat API client: calls with timeouts and bounded retries, access tokens, cached
profiles, and the operator APIs, one module per area (menus, QR codes, media, notices, users,
tags, blacklist, quota)."""
