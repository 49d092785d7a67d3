"""The webhook: request → verify → (decrypt) → parse → dedup → route → render → (encrypt).

Bad requests get a clear 4xx and a log line; nothing a request carries can produce a 500.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

from aiohttp import web

from bot.client.api import WeChatAPI
from bot.client.profiles import ProfileCache
from bot.config import Config
from bot.followers.store import FollowerStore
from bot.logs import log_message
from bot.metrics import Metrics
from bot.routing.context import Context
from bot.routing.dispatch import Dispatcher, Outcome
from bot.storage.base import Storage
from bot.webhook.delivery import LateDelivery
from bot.webhook.ledger import SUCCESS, ReplyLedger
from bot.webhook.replay import ReplayGuard, ReplayVerdict
from bot.wechat.crypto import AppIdMismatch, CryptoError, MessageCrypto
from bot.wechat.messages import Message, MessageError, UnknownMessage, parse_message
from bot.wechat.signature import verify_msg_signature, verify_signature
from bot.wechat.xml import BodyError, parse_body

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Services:
    """Everything the webhook needs, opened once per app."""

    config: Config
    storage: Storage
    api: WeChatAPI
    followers: FollowerStore
    profiles: ProfileCache
    dispatcher: Dispatcher
    ledger: ReplyLedger[tuple[Message, Outcome]]
    delivery: LateDelivery
    replay: ReplayGuard
    crypto: MessageCrypto | None
    metrics: Metrics

    @property
    def local(self) -> bool:
        """Nothing is shared (no Redis): `handle_push`'s own code never needs a task."""
        return not self.config.redis_url


SERVICES = web.AppKey("services", Services)

TEXT = "text/plain"
XML = "application/xml"

Answer = tuple[int, str, str]
"""What the webhook answers: (status, content type, body), whatever serves the HTTP."""

_SUCCESS_ANSWER: Answer = (200, TEXT, SUCCESS)


def refuse(services: Services, status: int, reason: str, method: str, path: str) -> Answer:
    """A push's 4xx answer with its reason; logged and counted."""
    services.metrics.count_request("-", f"rejected_{status}")
    return _refusal(status, reason, method, path)


def _refusal(status: int, reason: str, method: str, path: str) -> Answer:
    log.warning("%s %s refused (%d): %s", method, path, status, reason)
    return status, TEXT, reason + "\n"


def check_query(services: Services, q: Mapping[str, str], method: str, path: str) -> Answer | None:
    """The refusal for a push whose query is unsigned or wrongly signed; None when it holds.

    Checked before the body is read, so an unsigned request never costs a body read.
    """
    signature = q.get("signature")
    timestamp = q.get("timestamp")
    nonce = q.get("nonce")
    if not signature:
        return refuse(services, 403, "missing signature", method, path)
    if not (timestamp and nonce):
        return refuse(services, 400, "missing timestamp or nonce", method, path)
    if not verify_signature(services.config.token, timestamp, nonce, signature):
        return refuse(services, 403, "invalid signature", method, path)
    return None


async def handle_push(
    services: Services, q: Mapping[str, str], body: bytes, method: str, path: str, started: float
) -> Answer:
    """One signed push (`check_query` passed): replay check, parse, dedup, route, render.

    Never raises for anything the request carries; `started` is `time.perf_counter()` at
    arrival (the log line's latency). The steps are also public one by one (`admit`,
    `answer_message`, `conclude`): `bot.server.batch` runs each over a batch of pushes.
    """
    deadline = time.monotonic() + services.config.reply_budget
    replay = services.replay
    if replay.local:
        verdict = replay.check_now(q["timestamp"], q["nonce"], body)
    else:
        verdict = await replay.check(q["timestamp"], q["nonce"], body)
    admitted = admit(services, q, body, verdict, deadline, method, path)
    if not isinstance(admitted, Admitted):
        return admitted
    return conclude(services, admitted, await answer_message(services, admitted), started)


class Admitted(NamedTuple):
    """A push that passed every check: its message, and how it wants its answer."""

    msg: Message
    encrypted_reply: bool  # the request asked for an encrypted answer (encrypt_type=aes)
    deadline: float  # time.monotonic() when the reply budget runs out


Replied = tuple[str, str | None, str]
"""A message's passive answer: (body, handler or None, outcome label)."""


def admit(
    services: Services,
    q: Mapping[str, str],
    body: bytes,
    verdict: ReplayVerdict,
    deadline: float,
    method: str,
    path: str,
) -> Admitted | Answer:
    """After the replay guard's `verdict`: the admitted message, or the push's refusal."""
    if verdict is ReplayVerdict.STALE:
        return refuse(services, 403, "timestamp outside the accepted window", method, path)
    if verdict is ReplayVerdict.REPLAYED:
        return refuse(services, 403, "nonce already used", method, path)
    # The mode follows each request: only encrypt_type=aes asks for an encrypted answer
    encrypt_type = q.get("encrypt_type")
    encrypted_reply = encrypt_type is not None and encrypt_type.lower() == "aes"
    try:
        if services.config.safe_mode_only and not encrypted_reply:
            raise _Refusal(403, "plaintext requests are refused in safe mode")
        fields = parse_body(body)
        if "Encrypt" in fields and services.crypto is not None:
            fields = _decrypt(services, fields, q["timestamp"], q["nonce"], q.get("msg_signature"))
        elif encrypted_reply:
            raise _Refusal(
                400,
                "encrypted request but no EncodingAESKey is configured"
                if services.crypto is None
                else "encrypted request without Encrypt",
            )
        return Admitted(parse_message(fields), encrypted_reply, deadline)
    except _Refusal as refusal:
        return refuse(services, refusal.status, refusal.reason, method, path)
    except (BodyError, MessageError) as exc:
        return refuse(services, 400, f"bad message: {exc.reason}", method, path)


async def answer_message(services: Services, admitted: Admitted) -> Replied:
    """Run an admitted message through the ledger and its handler; never raises."""
    try:
        return await _answer(services, admitted.msg, admitted.deadline)
    except Exception:
        key = admitted.msg.dedup_key
        log.exception("message %s: unexpected failure; answering success", key)
        return SUCCESS, None, "error"


def conclude(services: Services, admitted: Admitted, replied: Replied, started: float) -> Answer:
    """Count and log the message, and give its HTTP answer (encrypted when it asked)."""
    msg = admitted.msg
    answer_body, handler, outcome = replied
    # Label by known types only, so metrics stay bounded whatever MsgType arrives.
    kind = "unknown" if isinstance(msg, UnknownMessage) else msg.msg_type
    services.metrics.count_request(kind, outcome)
    log_message(
        msg_id=msg.msg_id or msg.dedup_key,
        msg_type=msg.msg_type,
        handler=handler,
        outcome=outcome,
        started=started,
    )
    if answer_body == SUCCESS:
        return _SUCCESS_ANSWER
    if admitted.encrypted_reply and services.crypto is not None:
        answer_body = services.crypto.encrypt_reply(answer_body, services.config.token)
    return 200, XML, answer_body


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
    if not (signature and timestamp and nonce and echostr):
        return _handshake_refused(400, "missing signature, timestamp, nonce or echostr", request)
    if not verify_signature(services.config.token, timestamp, nonce, signature):
        return _handshake_refused(403, "invalid signature", request)
    return web.Response(text=echostr, content_type=TEXT)


def _handshake_refused(status: int, reason: str, request: web.Request) -> web.Response:
    return _response(_refusal(status, reason, request.method, request.path))


async def receive(request: web.Request) -> web.Response:
    """POST: one pushed message or event (through aiohttp; `bot.server.fastpath` serves it too)."""
    started = time.perf_counter()
    services = request.app[SERVICES]
    q = request.query
    refusal = check_query(services, q, request.method, request.path)
    if refusal is not None:
        return _response(refusal)
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        reason = f"body over {services.config.max_body_bytes} bytes"
        return _response(refuse(services, 413, reason, request.method, request.path))
    return _response(await handle_push(services, q, body, request.method, request.path, started))


class _Refusal(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def _decrypt(
    services: Services,
    fields: dict[str, object],
    timestamp: str,
    nonce: str,
    msg_signature: str | None,
) -> dict[str, object]:
    """The decrypted message fields; the encrypted part is authoritative (compatible mode too)."""
    assert services.crypto is not None
    encrypt = fields.get("Encrypt")
    if not isinstance(encrypt, str) or not encrypt:
        raise _Refusal(400, "empty Encrypt")
    # Always verified first (whatever encrypt_type says), so decryption is never an oracle
    if msg_signature is None:
        raise _Refusal(403, "missing msg_signature")
    if not verify_msg_signature(services.config.token, timestamp, nonce, encrypt, msg_signature):
        raise _Refusal(403, "invalid msg_signature")
    try:
        plain = services.crypto.decrypt(encrypt)
    except AppIdMismatch:
        raise _Refusal(403, "message encrypted for another appid") from None
    except CryptoError as exc:
        raise _Refusal(400, f"cannot decrypt: {exc.reason}") from None
    inner = parse_body(plain)
    if "Encrypt" in inner:
        raise _Refusal(400, "nested Encrypt")
    return inner


async def _answer(services: Services, msg: Message, deadline: float) -> Replied:
    """Run the message through the ledger; returns (body, handler, outcome)."""
    ran: list[Outcome] = []

    async def produce() -> tuple[Message, Outcome]:
        ctx = Context(msg, services.config, services.api, services.followers, services.profiles)
        outcome = await services.dispatcher.dispatch(msg, ctx)
        ran.append(outcome)
        return msg, outcome

    # handlers start in a task of their own, unless every route and the storage need none
    needs_task = not (services.dispatcher.task_free and services.local)
    answer = await services.ledger.answer(msg.dedup_key, produce, deadline, needs_task=needs_task)
    if answer.duplicate:
        services.metrics.dedup_hits.inc()
        return answer.body, None, "duplicate"
    if answer.late:
        services.metrics.budget_overruns.inc()
        return answer.body, None, "late"
    outcome = ran[0] if ran else None
    handler = outcome.handler if outcome else None
    if outcome is not None and outcome.failed:
        return answer.body, handler, "handler_error"
    return answer.body, handler, "replied" if answer.body != SUCCESS else "no_reply"
