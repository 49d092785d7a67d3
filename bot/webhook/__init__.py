"""The push pipeline: signature and replay checks, parsing, the reply ledger, late delivery,
the aiohttp views and the app factory. Served correctly by aiohttp alone."""
