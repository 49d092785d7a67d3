"""The push pipeline: verify → timestamp window → (decrypt) → parse → nonce and dedup claim →
route → render → (encrypt), as steps that each return one result type.

`handle_push` runs them for one push. Each step is public so a server can run one step over
many pushes before the next (`bot.server.batch`); the steps are the same either way. Nothing
a request carries makes a step raise: bad requests get a 4xx `Answer` and one log line.

The nonce and dedup step is `screen` when nothing is shared (answered at once, in process) and
`claim` with a shared store (Redis): one round trip for any number of pushes, which also reads
each sender's record (their preferences), so the handler needs no round trip of its own.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from functools import partial
from typing import NamedTuple

from bot.logs import log_message
from bot.routing.context import Context
from bot.routing.dispatch import Outcome
from bot.storage.base import ClaimTerms, PushClaim, PushClaimed, StorageUnavailable
from bot.webhook.carry import carry_waiting
from bot.webhook.ledger import SUCCESS, LedgerAnswer
from bot.webhook.pending import PREFIX as PENDING_PREFIX
from bot.webhook.replay import ReplayVerdict
from bot.webhook.services import Services
from bot.wechat.crypto import AppIdMismatch, CryptoError
from bot.wechat.messages import Message, MessageError, UnknownMessage, parse_message
from bot.wechat.signature import verify_msg_signature, verify_signature
from bot.wechat.xml import BodyError, parse_body

log = logging.getLogger(__name__)

TEXT = "text/plain"
XML = "application/xml"


class Answer(NamedTuple):
    """What the webhook answers, whatever serves the HTTP."""

    status: int
    content_type: str
    body: str


class Admitted(NamedTuple):
    """A push that passed every check but its nonce: its message, how it wants its answer."""

    msg: Message
    encrypted_reply: bool  # the request asked for an encrypted answer (encrypt_type=aes)
    deadline: float  # time.monotonic() when the reply budget runs out
    nonce: str
    body: bytes  # as received (a nonce is remembered with the digest of its body)


class Replied(NamedTuple):
    """A message's passive answer before it is sealed: its body and how it came about."""

    body: str
    handler: str | None  # the handler that answered (or raised)
    outcome: str  # replied, no_reply, duplicate, late, handler_error, error


SUCCESS_ANSWER = Answer(200, TEXT, SUCCESS)


def refusal(
    status: int, reason: str, method: str, path: str, services: Services | None = None
) -> Answer:
    """A 4xx answer with its reason: one WARNING line, and counted when `services` is given."""
    if services is not None:
        services.metrics.count_request("-", f"rejected_{status}")
    log.warning("%s %s refused (%d): %s", method, path, status, reason)
    return Answer(status, TEXT, reason + "\n")


def check_query(services: Services, q: Mapping[str, str], method: str, path: str) -> Answer | None:
    """The refusal for a push whose query is unsigned or wrongly signed; None when it holds.

    Checked before the body is read, so an unsigned request never costs a body read.
    """
    signature = q.get("signature")
    timestamp = q.get("timestamp")
    nonce = q.get("nonce")
    if not signature:
        return refusal(403, "missing signature", method, path, services)
    if not (timestamp and nonce):
        return refusal(400, "missing timestamp or nonce", method, path, services)
    if not verify_signature(services.config.token, timestamp, nonce, signature):
        return refusal(403, "invalid signature", method, path, services)
    return None


async def handle_push(
    services: Services, q: Mapping[str, str], body: bytes, method: str, path: str, started: float
) -> Answer:
    """One signed push (`check_query` passed): every step after it, in order.

    `started` is `time.perf_counter()` at arrival (the log line's latency).
    """
    deadline = time.monotonic() + services.config.reply_budget
    admitted = admit(services, q, body, deadline, method, path)
    if isinstance(admitted, Answer):
        return admitted
    claimed: PushClaimed | None = None
    if services.local:
        refused = screen(services, admitted, method, path)
        if refused is not None:
            return refused
    else:
        (outcome,) = await claim(services, (admitted,), method, path)
        if isinstance(outcome, Answer):
            return outcome
        claimed = outcome
    replied = answer_message(services, admitted, claimed)
    if not isinstance(replied, Replied):
        replied = await replied
    return conclude(services, admitted, replied, started)


def admit(
    services: Services,
    q: Mapping[str, str],
    body: bytes,
    deadline: float,
    method: str,
    path: str,
) -> Admitted | Answer:
    """The timestamp window, the mode and the body: the admitted message, or the refusal."""
    if services.replay.stale(q["timestamp"]):
        return refusal(403, "timestamp outside the accepted window", method, path, services)
    # The mode follows each request: only encrypt_type=aes asks for an encrypted answer
    encrypt_type = q.get("encrypt_type")
    encrypted_reply = encrypt_type is not None and encrypt_type.lower() == "aes"
    crypto = services.crypto
    if services.config.safe_mode_only and not encrypted_reply:
        return refusal(403, "plaintext requests are refused in safe mode", method, path, services)
    try:
        fields = parse_body(body)
        if "Encrypt" in fields and crypto is not None:
            opened = _open_envelope(services, fields, q, method, path)
            if isinstance(opened, Answer):
                return opened
            fields = opened
        elif encrypted_reply:
            reason = (
                "encrypted request but no EncodingAESKey is configured"
                if crypto is None
                else "encrypted request without Encrypt"
            )
            return refusal(400, reason, method, path, services)
        return Admitted(parse_message(fields), encrypted_reply, deadline, q["nonce"], body)
    except (BodyError, MessageError) as exc:
        return refusal(400, f"bad message: {exc.reason}", method, path, services)


def screen(services: Services, admitted: Admitted, method: str, path: str) -> Answer | None:
    """The nonce check when nothing is shared (at once, in process): the refusal of a replay,
    else None."""
    if services.replay.nonce_now(admitted.nonce, admitted.body) is ReplayVerdict.REPLAYED:
        return refusal(403, "nonce already used", method, path, services)
    return None


async def claim(
    services: Services, batch: Sequence[Admitted], method: str, path: str
) -> list[PushClaimed | Answer]:
    """The nonce check and the dedup claim of every push of `batch`, with each sender's record,
    in one round trip to the shared store (which also carries the answers the ledger has not
    published yet): per push its claim, or the refusal of a replay.

    Never raises: a store that fails lets every push through (the local reply ledger still
    runs each message once on this instance), as when a store is lost mid-failover.
    """
    replay, ledger, followers = services.replay, services.ledger, services.followers
    terms = ClaimTerms(replay.nonce_ttl, ledger.ttl, ledger.marker)
    claims = []
    for admitted in batch:
        nonce_key, digest = replay.nonce_claim(admitted.nonce, admitted.body)
        dedup_key = ledger.claim_for(admitted.msg.dedup_key)
        claims.append(
            PushClaim(nonce_key, digest, dedup_key, followers.record_name(admitted.msg.from_user))
        )
    writes = ledger.take_unpublished()  # the answers given since the last claims go along
    try:
        outcomes = await services.storage.claim_pushes(claims, terms, writes)
    except BaseException as exc:
        ledger.put_back_unpublished(writes)  # they go with the next claims, or on their own
        if not isinstance(exc, Exception):
            raise  # cancelled (shutdown)
        log.exception("%s %s: the shared claim failed; answering from this instance", method, path)
        return [_UNCLAIMED] * len(batch)
    return [
        refusal(403, "nonce already used", method, path, services) if outcome.replayed else outcome
        for outcome in outcomes
    ]


# A claim the shared store could not make: this instance runs the message (its ledger dedups).
_UNCLAIMED = PushClaimed(False, False, True, None, {})


def answer_message(
    services: Services, admitted: Admitted, claimed: PushClaimed | None = None
) -> Replied | Awaitable[Replied]:
    """Run an admitted message through the ledger and its handler; never raises.

    `claimed`: the message's `claim` with a shared store (None without one). The answer itself
    when it is ready at once (a handler that never waited, a retry of an answered message),
    else an awaitable of it.
    """
    msg = admitted.msg
    ran: list[Outcome] = []
    # the preferences read with the claim; none when the store did not answer it (the handler
    # then reads them itself, from whatever answers)
    prefs = (
        None
        if claimed is None or claimed is _UNCLAIMED
        else services.followers.preferences_in(claimed.record)
    )

    async def produce() -> tuple[Message, Outcome]:
        services.quota.granted(msg)  # the customer-service allowance this message opens
        ctx = Context(
            msg, services.config, services.api, services.followers, services.profiles, _prefs=prefs
        )
        outcome = await services.dispatcher.dispatch(msg, ctx)
        record = await _record_of(services, msg.from_user, claimed)
        waits = any(name.startswith(PENDING_PREFIX) for name in record)
        no_api = not services.customer_service.available
        # waiting answers ride only on a passive answer (a late one waits itself)
        if (waits or (outcome.extra and no_api)) and services.ledger.answers_passively(
            msg.dedup_key
        ):
            outcome = await carry_waiting(
                services.pending,
                services.delivery,
                msg.from_user,
                record if waits else None,
                outcome,
                await ctx.language(),
                services.customer_service.available,
            )
        ran.append(outcome)
        return msg, outcome

    try:
        begun = services.ledger.begin(
            msg.dedup_key, produce, admitted.deadline, claimed, partial(_watch, services, msg)
        )
    except Exception:
        return _unexpected(msg)
    if isinstance(begun, LedgerAnswer):
        return _replied(services, begun, ran)
    return _replied_later(services, msg, begun, ran)


_NO_RECORD: Mapping[str, str] = {}


def _watch(services: Services, msg: Message, finished: Callable[[], bool]) -> None:
    """A handler still running after its first step: the typing indicator while it runs."""
    services.typing.watch(msg.from_user, finished)


async def _record_of(
    services: Services, openid: str, claimed: PushClaimed | None
) -> Mapping[str, str]:
    """The follower's record as far as waiting answers go: read with the claim (shared
    store); else read only when answers wait for them (`PendingAnswers.followers`)."""
    if claimed is not None:
        return claimed.record
    if openid not in services.pending.followers:
        return _NO_RECORD
    name = services.followers.record_name(openid)
    record = services.storage.cached_record(name)
    if record is not None:
        return record
    try:
        return await services.storage.get_record(name)
    except StorageUnavailable:
        return {}


async def _replied_later(
    services: Services, msg: Message, begun: Awaitable[LedgerAnswer], ran: list[Outcome]
) -> Replied:
    try:
        answer = await begun
        if answer.late:
            # written down before `success` tells WeChat to stop trying (bot.webhook.journal)
            await services.journal.accept(msg, services.dispatcher.handler_for(msg))
        return _replied(services, answer, ran)
    except Exception:
        return _unexpected(msg)


def _replied(services: Services, answer: LedgerAnswer, ran: list[Outcome]) -> Replied:
    if answer.duplicate:
        services.metrics.dedup_hits.inc()
        return Replied(answer.body, None, "duplicate")
    if answer.late:
        services.metrics.budget_overruns.inc()
        return Replied(answer.body, None, "late")
    outcome = ran[0] if ran else None
    handler = outcome.handler if outcome else None
    if outcome is not None and outcome.failed:
        return Replied(answer.body, handler, "handler_error")
    return Replied(answer.body, handler, "replied" if answer.body != SUCCESS else "no_reply")


def _unexpected(msg: Message) -> Replied:
    log.exception("message %s: unexpected failure; answering success", msg.dedup_key)
    return Replied(SUCCESS, None, "error")


def conclude(services: Services, admitted: Admitted, replied: Replied, started: float) -> Answer:
    """Count and log the message, and give its HTTP answer (encrypted when it asked)."""
    msg = admitted.msg
    body, handler, outcome = replied
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
    if body == SUCCESS:
        return SUCCESS_ANSWER
    if admitted.encrypted_reply and services.crypto is not None:
        body = services.crypto.encrypt_reply(body, services.config.token)
    return Answer(200, XML, body)


def _open_envelope(
    services: Services, fields: dict[str, object], q: Mapping[str, str], method: str, path: str
) -> dict[str, object] | Answer:
    """The decrypted message fields (the encrypted part is authoritative, compatible mode
    too), or the refusal."""
    crypto = services.crypto
    assert crypto is not None
    encrypt = fields.get("Encrypt")
    if not isinstance(encrypt, str) or not encrypt:
        return refusal(400, "empty Encrypt", method, path, services)
    # Always verified first (whatever encrypt_type says), so decryption is never an oracle
    msg_signature = q.get("msg_signature")
    if msg_signature is None:
        return refusal(403, "missing msg_signature", method, path, services)
    token = services.config.token
    if not verify_msg_signature(token, q["timestamp"], q["nonce"], encrypt, msg_signature):
        return refusal(403, "invalid msg_signature", method, path, services)
    try:
        plain = crypto.decrypt(encrypt)
    except AppIdMismatch:
        return refusal(403, "message encrypted for another appid", method, path, services)
    except CryptoError as exc:
        return refusal(400, f"cannot decrypt: {exc.reason}", method, path, services)
    inner = parse_body(plain)
    if "Encrypt" in inner:
        return refusal(400, "nested Encrypt", method, path, services)
    return inner
