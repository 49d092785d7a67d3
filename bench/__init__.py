"""Benchmarks: the whole webhook pipeline against a bare aiohttp handler (`python -m bench`).

* `python -m bench` — fake WeChat API, bare reference server and the bot, each its own
  process, driven in turn by `wrk` with distinct signed requests; prints one table.
* `python -m bench --smoke` — a few seconds, checks that everything works, never asserts speed.
* `python -m bench memory` — 100,000 distinct followers through the caches, in process.
* `python -m bench profile` — where the bot's time goes per request (needs py-spy).
"""

from __future__ import annotations
