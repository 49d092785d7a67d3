"""The aiohttp views: the webhook's handshake and pushes, the health check, the metrics."""

from __future__ import annotations

import time

from aiohttp import web

from bot.metrics import CONTENT_TYPE_LATEST
from bot.webhook.pipeline import TEXT, Answer, check_query, handle_push, refusal
from bot.webhook.services import SERVICES
from bot.wechat.signature import verify_signature

STARTED = web.AppKey("started", float)

COMPRESSED = "compressed bodies are not accepted"
"""The refusal of a push with a Content-Encoding (WeChat never compresses): 400 on every path."""


def _response(answer: Answer) -> web.Response:
    status, content_type, body = answer
    return web.Response(status=status, text=body, content_type=content_type)


async def handshake(request: web.Request) -> web.Response:
    """GET: the server-URL check; echo `echostr` when the signature holds."""
    services = request.app[SERVICES]
    q = request.query
    signature, timestamp, nonce, echostr = (
        q.get("signature"),
        q.get("timestamp"),
        q.get("nonce"),
        q.get("echostr"),
    )
    method, path = request.method, request.path
    if not (signature and timestamp and nonce and echostr):
        reason = "missing signature, timestamp, nonce or echostr"
        return _response(refusal(400, reason, method, path))
    if not verify_signature(services.config.token, timestamp, nonce, signature):
        return _response(refusal(403, "invalid signature", method, path))
    return web.Response(text=echostr, content_type=TEXT)


async def receive(request: web.Request) -> web.Response:
    """POST: one pushed message or event (`bot.server.fastpath` serves the same answers)."""
    started = time.perf_counter()
    services = request.app[SERVICES]
    q = request.query
    method, path = request.method, request.path
    refused = check_query(services, q, method, path)
    if refused is not None:
        return _response(refused)
    if request.headers.get("Content-Encoding", "identity").lower() != "identity":
        return _response(refusal(400, COMPRESSED, method, path, services))
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        reason = f"body over {services.config.max_body_bytes} bytes"
        return _response(refusal(413, reason, method, path, services))
    return _response(await handle_push(services, q, body, method, path, started))


async def healthz(request: web.Request) -> web.Response:
    """Liveness: 200 with a little JSON (storage "degraded" while Redis is away)."""
    services = request.app.get(SERVICES)
    degraded = False
    if services is not None and services.storage.degraded:
        # the fallback probes Redis (bounded), so a recovery shows without traffic
        await services.storage.ping()
        degraded = services.storage.degraded
    return web.json_response(
        {
            "status": "ok",
            "uptime_s": round(time.time() - request.app[STARTED], 1),
            "storage": "degraded" if degraded else "ok",
            "customer_service": services.customer_service.status if services else "unknown",
        }
    )


async def metrics(request: web.Request) -> web.Response:
    """Prometheus text exposition."""
    services = request.app[SERVICES]
    body = services.metrics.render()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
