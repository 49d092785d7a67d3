"""The fake WeChat API: the platform's shapes and codes, token lifetimes, fault injection."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from bot.testing.fake_wechat import DEMO_FOLLOWERS, FakeFollower, FakeWeChat, start_fake_wechat

CREDS = {"grant_type": "client_credential", "appid": "wx_fake_app", "secret": "fake_secret"}


class Clock:
    """A wall clock that tests move by hand."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


Client = TestClient[Any, Any]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def fake(clock: Clock) -> FakeWeChat:
    return FakeWeChat(clock=clock)


@pytest.fixture
async def client(aiohttp_client: AiohttpClient, fake: FakeWeChat) -> Client:
    return await aiohttp_client(fake.app)


async def stable(
    client: Client, force: bool = False, over: dict[str, str] | None = None
) -> dict[str, Any]:
    body = {**CREDS, "force_refresh": force, **(over or {})}
    resp = await client.post("/cgi-bin/stable_token", json=body)
    assert resp.status == 200
    answer: dict[str, Any] = await resp.json()
    return answer


async def legacy(client: Client) -> str:
    resp = await client.get("/cgi-bin/token", params=CREDS)
    token: str = (await resp.json())["access_token"]
    return token


async def user_info(client: Client, token: str, openid: str = "o_demo_wang") -> dict[str, Any]:
    resp = await client.get(
        "/cgi-bin/user/info", params={"access_token": token, "openid": openid, "lang": "zh_CN"}
    )
    answer: dict[str, Any] = await resp.json()
    return answer


async def post(client: Client, path: str, token: str, body: Any) -> dict[str, Any]:
    resp = await client.post(path, params={"access_token": token}, json=body)
    answer: dict[str, Any] = await resp.json()
    return answer


# -- tokens ------------------------------------------------------------------------------------


async def test_stable_token_is_the_same_while_valid_and_counts_down(
    client: Client, clock: Clock
) -> None:
    first = await stable(client)
    assert first["expires_in"] == 7200
    clock.now += 1000
    second = await stable(client)
    assert second == {"access_token": first["access_token"], "expires_in": 6200}


async def test_stable_token_force_refresh_replaces_and_kills_the_old_one(client: Client) -> None:
    old = (await stable(client))["access_token"]
    new = (await stable(client, force=True))["access_token"]
    assert new != old
    assert (await user_info(client, old))["errcode"] == 40001
    assert (await user_info(client, new))["openid"] == "o_demo_wang"


async def test_stable_token_expiry_gives_a_new_token_and_42001(
    client: Client, clock: Clock
) -> None:
    old = (await stable(client))["access_token"]
    clock.now += 7200
    assert (await user_info(client, old))["errcode"] == 42001
    new = await stable(client)
    assert new["access_token"] != old
    assert new["expires_in"] == 7200


async def test_stable_token_rolls_five_minutes_early(client: Client, clock: Clock) -> None:
    old = (await stable(client))["access_token"]
    clock.now += 7000  # 200 s left: the platform hands out the next token already
    new = (await stable(client))["access_token"]
    assert new != old
    assert (await user_info(client, old))["openid"] == "o_demo_wang"  # old one lives on


@pytest.mark.parametrize(
    ("over", "errcode"),
    [({"appid": "wx_other"}, 40013), ({"secret": "wrong"}, 40125), ({"grant_type": "x"}, 40002)],
)
async def test_stable_token_refuses_bad_credentials(
    client: Client, over: dict[str, str], errcode: int
) -> None:
    assert (await stable(client, over=over))["errcode"] == errcode


async def test_stable_token_wants_json(client: Client) -> None:
    resp = await client.post("/cgi-bin/stable_token", data=CREDS)
    assert (await resp.json())["errcode"] == 47001


async def test_legacy_token_is_new_every_call_and_the_previous_dies_after_300s(
    client: Client, clock: Clock
) -> None:
    first = await legacy(client)
    second = await legacy(client)
    assert first != second
    clock.now += 299
    assert (await user_info(client, first))["openid"] == "o_demo_wang"
    clock.now += 1
    assert (await user_info(client, first))["errcode"] == 40001
    assert (await user_info(client, second))["openid"] == "o_demo_wang"


async def test_legacy_and_stable_tokens_are_separate_and_both_accepted(client: Client) -> None:
    old_legacy = await legacy(client)
    stable_token = (await stable(client))["access_token"]
    await legacy(client)  # supersedes old_legacy, not the stable token
    assert stable_token != old_legacy
    assert (await user_info(client, stable_token))["subscribe"] == 1
    assert (await user_info(client, old_legacy))["subscribe"] == 1
    assert (await stable(client))["access_token"] == stable_token


async def test_legacy_token_refuses_a_wrong_secret(client: Client) -> None:
    resp = await client.get("/cgi-bin/token", params={**CREDS, "secret": "nope"})
    assert await resp.json() == {"errcode": 40125, "errmsg": "invalid appsecret"}


# -- profiles ----------------------------------------------------------------------------------


async def test_user_info_post_2021_shape(client: Client) -> None:
    token = (await stable(client))["access_token"]
    assert await user_info(client, token, "o_demo_wang") == {
        "subscribe": 1,
        "openid": "o_demo_wang",
        "nickname": "",
        "sex": 0,
        "language": "zh_CN",
        "city": "",
        "province": "",
        "country": "",
        "headimgurl": "",
        "subscribe_time": 1641364601,
        "remark": "",
        "groupid": 0,
        "tagid_list": [],
        "subscribe_scene": "ADD_SCENE_SEARCH",
        "qr_scene": 0,
        "qr_scene_str": "",
    }


async def test_user_info_old_account_remark_and_missing_language(client: Client) -> None:
    token = (await stable(client))["access_token"]
    alice = await user_info(client, token, "o_demo_alice")
    assert (alice["nickname"], alice["language"]) == ("Alice", "en")
    lin = await user_info(client, token, "o_demo_lin")
    assert (lin["nickname"], lin["remark"], lin["tagid_list"]) == ("", "林老師", [2])
    sam = await user_info(client, token, "o_demo_sam")
    assert "language" not in sam
    assert (sam["nickname"], sam["remark"]) == ("", "")


async def test_user_info_of_someone_who_unfollowed_has_only_openid_and_subscribe(
    client: Client,
) -> None:
    token = (await stable(client))["access_token"]
    assert await user_info(client, token, "o_demo_gone") == {
        "subscribe": 0,
        "openid": "o_demo_gone",
    }


async def test_user_info_errors(client: Client, fake: FakeWeChat) -> None:
    token = (await stable(client))["access_token"]
    assert (await user_info(client, token, "o_stranger"))["errcode"] == 40003
    assert (await user_info(client, "made_up"))["errcode"] == 40001
    resp = await client.get("/cgi-bin/user/info", params={"openid": "o_demo_wang"})
    assert (await resp.json())["errcode"] == 40001
    fake.add_follower(FakeFollower("o_new", unionid="u_1"))
    assert (await user_info(client, token, "o_new"))["unionid"] == "u_1"


async def test_batchget_answers_in_order(client: Client) -> None:
    token = (await stable(client))["access_token"]
    body = {"user_list": [{"openid": "o_demo_gone"}, {"openid": "o_demo_alice", "lang": "en"}]}
    answer = await post(client, "/cgi-bin/user/info/batchget", token, body)
    assert [u["openid"] for u in answer["user_info_list"]] == ["o_demo_gone", "o_demo_alice"]
    assert answer["user_info_list"][0] == {"subscribe": 0, "openid": "o_demo_gone"}


async def test_batchget_refuses_more_than_100_and_form_bodies(client: Client) -> None:
    token = (await stable(client))["access_token"]
    many = {"user_list": [{"openid": "o_demo_wang"}] * 101}
    answer = await post(client, "/cgi-bin/user/info/batchget", token, many)
    assert answer["errcode"] == 40032
    resp = await client.post(
        "/cgi-bin/user/info/batchget",
        params={"access_token": token},
        data={"user_list": "o_demo_wang"},
    )
    assert (await resp.json())["errcode"] == 47001


# -- customer-service messages ----------------------------------------------------------------


async def test_custom_send_records_valid_payloads(client: Client, fake: FakeWeChat) -> None:
    token = (await stable(client))["access_token"]
    msg = {"touser": "o_demo_wang", "msgtype": "text", "text": {"content": "你好"}}
    assert await post(client, "/cgi-bin/message/custom/send", token, msg) == {
        "errcode": 0,
        "errmsg": "ok",
    }
    typing = {"touser": "o_demo_wang", "command": "Typing"}
    assert (await post(client, "/cgi-bin/message/custom/typing", token, typing))["errcode"] == 0
    assert fake.sent == [msg]
    assert fake.counters["custom_send"] == 1
    assert fake.counters["custom_typing"] == 1


@pytest.mark.parametrize(
    ("body", "errcode"),
    [
        ({"touser": "o_stranger", "msgtype": "text", "text": {"content": "hi"}}, 40003),
        ({"touser": "o_demo_gone", "msgtype": "text", "text": {"content": "hi"}}, 43004),
        ({"touser": "o_demo_wang", "text": {"content": "hi"}}, 40008),
        ({"touser": "o_demo_wang", "msgtype": "image", "text": {"content": "hi"}}, 47001),
        ({"touser": "o_demo_wang", "msgtype": "text", "text": {"content": ""}}, 44004),
    ],
)
async def test_custom_send_refusals(
    client: Client, fake: FakeWeChat, body: dict[str, Any], errcode: int
) -> None:
    token = (await stable(client))["access_token"]
    assert (await post(client, "/cgi-bin/message/custom/send", token, body))["errcode"] == errcode
    assert fake.sent == []


# -- faults ------------------------------------------------------------------------------------


async def test_errcode_fault_applies_to_its_endpoint_for_n_calls(
    client: Client, fake: FakeWeChat
) -> None:
    token = (await stable(client))["access_token"]
    fake.fail_with_errcode("user_info", 45009, times=2, errmsg="api freq out of limit")
    assert await user_info(client, token) == {"errcode": 45009, "errmsg": "api freq out of limit"}
    assert (await stable(client))["access_token"] == token  # other endpoints unaffected
    assert (await user_info(client, token))["errcode"] == 45009
    assert (await user_info(client, token))["subscribe"] == 1
    assert fake.counters["user_info"] == 3


async def test_status_fault_and_any_endpoint(client: Client, fake: FakeWeChat) -> None:
    fake.fail_with_status(None, 502)
    resp = await client.post("/cgi-bin/stable_token", json={**CREDS, "force_refresh": False})
    assert resp.status == 502
    assert "access_token" in await stable(client)


async def test_reset_connection_drops_the_answer(client: Client, fake: FakeWeChat) -> None:
    fake.reset_connection("stable_token")
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await client.post("/cgi-bin/stable_token", json={**CREDS, "force_refresh": False})
    assert "access_token" in await stable(client)
    assert fake.counters["stable_token"] == 2


async def test_latency_until_set_back_to_zero(client: Client, fake: FakeWeChat) -> None:
    fake.set_latency("stable_token", 30.0)
    with pytest.raises(TimeoutError):
        await client.post(
            "/cgi-bin/stable_token",
            json={**CREDS, "force_refresh": False},
            timeout=aiohttp.ClientTimeout(total=0.2),
        )
    fake.set_latency("stable_token", 0)
    assert "access_token" in await stable(client)


async def test_expire_tokens_turns_every_token_into_42001(client: Client, fake: FakeWeChat) -> None:
    token = (await stable(client))["access_token"]
    older = await legacy(client)
    fake.expire_tokens()
    assert (await user_info(client, token))["errcode"] == 42001
    assert (await user_info(client, older))["errcode"] == 42001
    assert (await stable(client))["access_token"] != token


async def test_reset_clears_counters_sent_and_faults(client: Client, fake: FakeWeChat) -> None:
    token = (await stable(client))["access_token"]
    msg = {"touser": "o_demo_wang", "msgtype": "text", "text": {"content": "hi"}}
    await post(client, "/cgi-bin/message/custom/send", token, msg)
    fake.fail_with_errcode(None, -1, times=5)
    fake.reset()
    assert (fake.counters, fake.sent) == ({}, [])
    assert (await user_info(client, token))["subscribe"] == 1  # the token survives a reset


def test_unknown_endpoint_names_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown endpoint"):
        FakeWeChat().fail_with_errcode("userinfo", 40001)


def test_demo_followers_cover_the_profile_cases() -> None:
    by_id = {f.openid: f for f in DEMO_FOLLOWERS}
    assert by_id["o_demo_alice"].profile()["nickname"] == "Alice"
    assert by_id["o_demo_gone"].profile() == {"subscribe": 0, "openid": "o_demo_gone"}


# -- control over HTTP -------------------------------------------------------------------------


async def test_control_api(client: Client, fake: FakeWeChat) -> None:
    token = (await stable(client))["access_token"]
    resp = await client.post(
        "/_fake/fault", json={"endpoint": "custom_send", "kind": "errcode", "value": 45047}
    )
    assert await resp.json() == {"ok": True}
    msg = {"touser": "o_demo_wang", "msgtype": "text", "text": {"content": "hi"}}
    assert (await post(client, "/cgi-bin/message/custom/send", token, msg))["errcode"] == 45047
    assert (await post(client, "/cgi-bin/message/custom/send", token, msg))["errcode"] == 0
    assert await (await client.get("/_fake/counters")).json() == {
        "stable_token": 1,
        "custom_send": 2,
    }
    assert await (await client.get("/_fake/sent")).json() == [msg]
    await client.post("/_fake/fault", json={"kind": "expire_tokens"})
    assert (await user_info(client, token))["errcode"] == 42001
    await client.post("/_fake/fault", json={"endpoint": None, "kind": "status", "value": 503})
    assert (await client.get("/cgi-bin/token", params=CREDS)).status == 503
    assert await (await client.post("/_fake/reset")).json() == {"ok": True}
    assert fake.counters == {}


@pytest.mark.parametrize(
    "body",
    [
        {"endpoint": "custom_send", "kind": "explode"},
        {"endpoint": "nowhere", "kind": "errcode", "value": 1},
        {"endpoint": "token", "kind": "errcode", "value": "x"},
    ],
)
async def test_control_api_refuses_bad_faults(client: Client, body: dict[str, Any]) -> None:
    resp = await client.post("/_fake/fault", json=body)
    assert resp.status == 400
    assert "error" in await resp.json()


async def test_start_fake_wechat_picks_a_free_port() -> None:
    fake = FakeWeChat()
    runner, url = await start_fake_wechat("127.0.0.1", 0, fake)
    try:
        assert url.startswith("http://127.0.0.1:") and not url.endswith(":0")
        async with aiohttp.ClientSession() as session:
            async with session.get(url + "/_fake/counters") as resp:
                assert await resp.json() == {}
            async with session.get(url + "/cgi-bin/token", params=CREDS) as resp:
                assert (await resp.json())["expires_in"] == 7200
        assert fake.counters["token"] == 1
    finally:
        await runner.cleanup()


async def test_faults_reach_the_operator_endpoints_over_http(
    client: Client, fake: FakeWeChat
) -> None:
    resp = await client.post(
        "/_fake/fault", json={"endpoint": "menu_create", "kind": "errcode", "value": 45009}
    )
    assert resp.status == 200
    token = (await stable(client))["access_token"]
    body = {"button": [{"name": "a", "type": "click", "key": "k"}]}
    resp = await client.post(f"/cgi-bin/menu/create?access_token={token}", json=body)
    assert (await resp.json())["errcode"] == 45009
    resp = await client.post(f"/cgi-bin/menu/create?access_token={token}", json=body)
    assert (await resp.json())["errcode"] == 0
    resp = await client.post("/cgi-bin/menu/create?access_token=nope", json=body)
    assert (await resp.json())["errcode"] == 40001  # every operator endpoint checks the token
    resp = await client.get("/_fake/counters")
    assert (await resp.json())["menu_create"] == 3
