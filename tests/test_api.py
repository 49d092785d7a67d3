"""WeChatAPI against the fake platform: retries, token recovery, timeouts, payloads, errors."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Literal

import aiohttp
import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpServer
from test_tokens import DictStorage

from bot.client.api import TransientAPIError, UserInfo, WeChatAPI, WeChatAPIError
from bot.testing.fake_wechat import FakeFollower, FakeWeChat

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Recorder:
    """An APIObserver that remembers what it saw."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []
        self.refreshes = 0

    def on_call(self, endpoint: str, errcode: int, seconds: float) -> None:
        assert seconds >= 0
        self.calls.append((endpoint, errcode))

    def on_token_refresh(self) -> None:
        self.refreshes += 1


@pytest.fixture
def fake() -> FakeWeChat:
    return FakeWeChat()


@pytest.fixture
def bodies(fake: FakeWeChat) -> list[bytes]:
    """Raw request bodies as the fake received them."""
    seen: list[bytes] = []

    @web.middleware
    async def capture(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.can_read_body:
            seen.append(await request.read())
        return await handler(request)

    fake.app.middlewares.append(capture)
    return seen


@pytest.fixture
async def base_url(aiohttp_server: AiohttpServer, fake: FakeWeChat, bodies: list[bytes]) -> str:
    server = await aiohttp_server(fake.app)
    return str(server.make_url("")).rstrip("/")


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture
def observer() -> Recorder:
    return Recorder()


@pytest.fixture
def make_api(
    session: aiohttp.ClientSession, base_url: str, observer: Recorder
) -> Callable[..., WeChatAPI]:
    def make(
        token_endpoint: Literal["stable", "legacy"] = "stable",
        app_secret: str = "fake_secret",
        url: str = base_url,
        **kwargs: Any,
    ) -> WeChatAPI:
        return WeChatAPI(
            session,
            app_id="wx_fake_app",
            app_secret=app_secret,
            storage=DictStorage(),
            base_url=url,
            token_endpoint=token_endpoint,
            backoff=kwargs.pop("backoff", 0.01),
            observer=observer,
            **kwargs,
        )

    return make


@pytest.fixture
def api(make_api: Callable[..., WeChatAPI]) -> WeChatAPI:
    return make_api()


# -- profiles ----------------------------------------------------------------------------------


async def test_profiles_are_parsed(api: WeChatAPI, fake: FakeWeChat) -> None:
    wang = await api.get_user_info("o_demo_wang")
    assert wang == UserInfo(
        openid="o_demo_wang",
        subscribe=True,
        nickname="",
        language="zh_CN",
        remark="",
        unionid=None,
        subscribe_time=1641364601,
        tagid_list=(),
        raw={},
    )
    assert wang.raw["subscribe_scene"] == "ADD_SCENE_SEARCH"
    alice = await api.get_user_info("o_demo_alice", "en")
    assert (alice.nickname, alice.language) == ("Alice", "en")
    lin = await api.get_user_info("o_demo_lin")
    assert (lin.nickname, lin.remark, lin.tagid_list) == ("", "林老師", (2,))
    assert (await api.get_user_info("o_demo_sam")).language is None
    gone = await api.get_user_info("o_demo_gone")
    assert (gone.subscribe, gone.nickname, gone.language, gone.subscribe_time) == (
        False,
        "",
        None,
        None,
    )
    assert fake.counters == {"stable_token": 1, "user_info": 5}


def test_user_info_from_raw_tolerates_odd_values() -> None:
    info = UserInfo.from_raw(
        {"openid": "o1", "subscribe": "1", "nickname": None, "language": "", "tagid_list": "x"}
    )
    assert (info.subscribe, info.nickname, info.language, info.tagid_list) == (True, "", None, ())
    with pytest.raises(ValueError):
        UserInfo.from_raw({"subscribe": 1})


async def test_batch_get_chunks_by_100(api: WeChatAPI, fake: FakeWeChat) -> None:
    openids = [f"o_{i}" for i in range(250)]
    for openid in openids:
        fake.add_follower(FakeFollower(openid))
    profiles = await api.batch_get_user_info(openids)
    assert [p.openid for p in profiles] == openids
    assert fake.counters["user_info_batchget"] == 3
    assert await api.batch_get_user_info([]) == []
    assert fake.counters["user_info_batchget"] == 3


# -- sends -------------------------------------------------------------------------------------


async def test_send_text_payload_is_exact_utf8_json(
    api: WeChatAPI, fake: FakeWeChat, bodies: list[bytes]
) -> None:
    await api.send_text("o_demo_wang", "你好, Wang 👋")
    assert fake.sent == [
        {"touser": "o_demo_wang", "msgtype": "text", "text": {"content": "你好, Wang 👋"}}
    ]
    assert (
        bodies[-1]
        == '{"touser":"o_demo_wang","msgtype":"text","text":{"content":"你好, Wang 👋"}}'.encode()
    )


async def test_typing_is_not_a_message(api: WeChatAPI, fake: FakeWeChat) -> None:
    await api.typing("o_demo_wang")
    await api.typing("o_demo_wang", typing=False)
    assert fake.counters["custom_typing"] == 2
    assert fake.sent == []


async def test_send_to_someone_who_unfollowed_raises_43004(api: WeChatAPI) -> None:
    with pytest.raises(WeChatAPIError) as info:
        await api.send_text("o_demo_gone", "hi")
    assert (info.value.errcode, info.value.endpoint) == (43004, "custom_send")


# -- token recovery ----------------------------------------------------------------------------


async def test_40001_once_invalidates_and_retries_with_a_new_token(
    make_api: Callable[..., WeChatAPI], fake: FakeWeChat, observer: Recorder
) -> None:
    api = make_api(token_endpoint="legacy")
    fake.fail_with_errcode("user_info", 40001)
    assert (await api.get_user_info("o_demo_wang")).openid == "o_demo_wang"
    assert fake.counters == {"token": 2, "user_info": 2}
    assert observer.refreshes == 2
    assert observer.calls == [("token", 0), ("user_info", 40001), ("token", 0), ("user_info", 0)]


async def test_stable_token_refused_but_handed_back_is_force_refreshed(
    api: WeChatAPI, fake: FakeWeChat, bodies: list[bytes]
) -> None:
    fake.fail_with_errcode("user_info", 40001)
    await api.get_user_info("o_demo_wang")
    assert fake.counters == {"stable_token": 3, "user_info": 2}
    forced = [json.loads(b)["force_refresh"] for b in bodies if b"client_credential" in b]
    assert forced == [False, False, True]


async def test_token_refused_twice_gives_up(api: WeChatAPI, fake: FakeWeChat) -> None:
    fake.fail_with_errcode("user_info", 42001, times=5)
    with pytest.raises(WeChatAPIError) as info:
        await api.get_user_info("o_demo_wang")
    assert info.value.errcode == 42001
    assert fake.counters["user_info"] == 2


async def test_expired_tokens_are_recovered(api: WeChatAPI, fake: FakeWeChat) -> None:
    await api.get_user_info("o_demo_wang")
    fake.expire_tokens()
    assert (await api.get_user_info("o_demo_wang")).subscribe
    assert fake.counters == {"stable_token": 2, "user_info": 3}


async def test_token_endpoint_refusal_is_typed_and_keeps_the_secret(
    make_api: Callable[..., WeChatAPI], fake: FakeWeChat
) -> None:
    api = make_api(app_secret="s3cr3t-value", token_endpoint="legacy")
    with pytest.raises(WeChatAPIError) as info:
        await api.get_user_info("o_demo_wang")
    assert not isinstance(info.value, TransientAPIError)
    assert (info.value.errcode, info.value.endpoint) == (40125, "token")
    assert str(info.value) == (
        "token: errcode 40125: invalid appsecret (the AppSecret is wrong: check WECHAT_APP_SECRET)"
    )
    assert fake.counters == {"token": 1}


# -- transient failures ------------------------------------------------------------------------


async def test_502_twice_then_ok(api: WeChatAPI, fake: FakeWeChat) -> None:
    fake.fail_with_status("user_info", 502, times=2)
    assert (await api.get_user_info("o_demo_wang")).subscribe
    assert fake.counters["user_info"] == 3


async def test_5xx_beyond_max_attempts_is_transient(api: WeChatAPI, fake: FakeWeChat) -> None:
    fake.fail_with_status("custom_send", 503, times=10)
    with pytest.raises(TransientAPIError) as info:
        await api.send_text("o_demo_wang", "hi")
    assert (info.value.errcode, info.value.errmsg) == (-2, "HTTP 503")
    assert fake.counters["custom_send"] == 3


async def test_connection_reset_then_ok(api: WeChatAPI, fake: FakeWeChat) -> None:
    fake.reset_connection("custom_send")
    await api.send_text("o_demo_wang", "hi")
    assert fake.counters["custom_send"] == 2
    assert len(fake.sent) == 1


async def test_system_busy_is_retried(api: WeChatAPI, fake: FakeWeChat) -> None:
    fake.fail_with_errcode("user_info", -1, times=2)
    assert (await api.get_user_info("o_demo_wang")).openid == "o_demo_wang"
    assert fake.counters["user_info"] == 3
    fake.fail_with_errcode("user_info", -1, times=3, errmsg="system error")
    with pytest.raises(TransientAPIError) as info:
        await api.get_user_info("o_demo_wang")
    assert (info.value.errcode, info.value.errmsg) == (-1, "errcode -1: system error")
    assert fake.counters["user_info"] == 6


@pytest.mark.parametrize("errcode", [45009, 45011, 48001])
async def test_quota_and_other_errors_are_not_retried(
    api: WeChatAPI, fake: FakeWeChat, errcode: int
) -> None:
    fake.fail_with_errcode("user_info", errcode, errmsg="refused")
    with pytest.raises(WeChatAPIError) as info:
        await api.get_user_info("o_demo_wang")
    assert not isinstance(info.value, TransientAPIError)
    assert (info.value.errcode, info.value.errmsg, info.value.endpoint) == (
        errcode,
        "refused",
        "user_info",
    )
    assert fake.counters["user_info"] == 1


async def test_non_json_answer_is_an_error_not_retried(api: WeChatAPI, fake: FakeWeChat) -> None:
    fake.fail_with_status("user_info", 404)
    with pytest.raises(WeChatAPIError) as info:
        await api.get_user_info("o_demo_wang")
    assert (info.value.errcode, info.value.errmsg) == (-3, "unusable answer (HTTP 404)")
    assert fake.counters["user_info"] == 1


async def test_call_timeout_is_honoured(api: WeChatAPI, fake: FakeWeChat) -> None:
    await api.tokens.get()
    fake.set_latency("user_info", 30.0)
    with pytest.raises(TransientAPIError) as info:
        # far below the fake's 30 s: the call itself gave up
        await asyncio.wait_for(api.get_user_info("o_demo_wang", timeout=0.3), 10)
    assert info.value.errcode == -2
    fake.set_latency("user_info", 0)
    assert (await api.get_user_info("o_demo_wang", timeout=5)).subscribe


async def test_each_attempt_has_the_client_timeout(
    make_api: Callable[..., WeChatAPI], fake: FakeWeChat
) -> None:
    api = make_api(timeout=0.2, max_attempts=2)
    await api.tokens.get()
    fake.set_latency("custom_send", 30.0)
    with pytest.raises(TransientAPIError) as info:
        await asyncio.wait_for(api.send_text("o_demo_wang", "hi"), 10)
    assert info.value.errmsg in ("TimeoutError", "ServerTimeoutError")
    assert fake.counters["custom_send"] == 2


# -- errors never carry credentials ------------------------------------------------------------


async def test_error_str_never_contains_the_token(api: WeChatAPI, fake: FakeWeChat) -> None:
    token = await api.tokens.get()
    fake.fail_with_errcode("user_info", 40003, errmsg=f"invalid openid for {token}")
    with pytest.raises(WeChatAPIError) as info:
        await api.get_user_info("o_stranger")
    assert token not in str(info.value)
    assert token not in repr(info.value)
    assert str(info.value) == (
        "user_info: errcode 40003: invalid openid for *** (this openid does not follow the account)"
    )


async def test_unreachable_platform_is_transient_and_never_shows_the_secret(
    make_api: Callable[..., WeChatAPI],
) -> None:
    with socket.socket() as sock:  # a loopback port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    api = make_api(
        token_endpoint="legacy", app_secret="s3cr3t-value", url=f"http://127.0.0.1:{port}"
    )
    with pytest.raises(TransientAPIError) as info:
        await api.send_text("o_demo_wang", "hi")
    assert (info.value.endpoint, info.value.errmsg) == ("token", "ClientConnectorError")
    chain: BaseException | None = info.value
    while chain is not None:  # aiohttp's own message names the URL: it must not be chained
        assert "s3cr3t" not in str(chain)
        assert not isinstance(chain, aiohttp.ClientError)
        chain = chain.__cause__ or chain.__context__
