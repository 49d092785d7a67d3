"""The WeChat API client: calls with timeouts and bounded retries, access tokens, cached
profiles."""
