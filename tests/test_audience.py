"""The follower list, remarks, tags and the blacklist through the fake; quotas."""

from __future__ import annotations

import aiohttp
import pytest

from bot.client.api import LimitError, WeChatAPI, WeChatAPIError
from bot.client.quota import Quota, within_minute_quota
from bot.client.tags import Tag
from bot.storage.memory import MemoryStorage
from bot.testing.fake_wechat import FakeFollower, FakeWeChat, many_followers
from bot.testing.pytest_plugin import TEST_APP_ID, TEST_SECRET


async def test_the_follower_list_pages_by_ten_thousand(
    platform_api: WeChatAPI, platform: FakeWeChat
) -> None:
    for follower in many_followers(20_500):
        platform.add_follower(follower)
    pages = [page async for page in platform_api.users.pages()]
    assert [len(p.openids) for p in pages] == [10_000, 10_000, 504]  # + 4 demo followers
    assert pages[0].total == 20_504 and pages[-1].next_openid == ""
    everyone = [o for p in pages for o in p.openids]
    assert len(set(everyone)) == 20_504 and "o_demo_gone" not in everyone
    assert platform.counters["user_get"] == 3


async def test_a_remark_is_set_and_checked(platform_api: WeChatAPI, platform: FakeWeChat) -> None:
    await platform_api.users.update_remark("o_demo_wang", "王老板")
    follower = platform.follower("o_demo_wang")
    assert follower is not None and follower.remark == "王老板"
    assert (await platform_api.get_user_info("o_demo_wang")).remark == "王老板"
    with pytest.raises(LimitError) as info:  # 10 × 3 bytes: not under 30
        await platform_api.users.update_remark("o_demo_wang", "一" * 10)
    assert (info.value.field, info.value.problem[:17]) == ("remark", "at most 29 bytes ")
    with pytest.raises(WeChatAPIError) as error:
        await platform_api.call(
            "POST",
            "/cgi-bin/user/info/updateremark",
            json_body={"openid": "o_demo_wang", "remark": "一" * 10},
        )
    assert error.value.errcode == 40092


async def test_tags_from_creation_to_deletion(
    platform_api: WeChatAPI, platform: FakeWeChat
) -> None:
    tags = platform_api.tags
    vip = await tags.create("VIP")
    await tags.tag(vip.id, ["o_demo_wang", "o_demo_alice"])
    assert await tags.tags_of("o_demo_wang") == (vip.id,)
    assert Tag(vip.id, "VIP", 2) in await tags.list()
    assert Tag(2, "星标组", 1) in await tags.list()
    members = (await tags.members(vip.id)).openids
    assert sorted(members) == ["o_demo_alice", "o_demo_wang"]
    await tags.untag(vip.id, ["o_demo_alice"])
    assert (await tags.members(vip.id)).openids == ("o_demo_wang",)
    await tags.rename(vip.id, "贵宾")
    assert Tag(vip.id, "贵宾", 1) in await tags.list()
    await tags.delete(vip.id)
    assert await tags.tags_of("o_demo_wang") == ()
    with pytest.raises(WeChatAPIError) as info:
        await tags.delete(vip.id)
    assert info.value.errcode == 45159


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda api: api.tags.create("t" * 31), "tag.name"),
        (lambda api: api.tags.tag(100, [f"o_{i}" for i in range(51)]), "openid_list"),
        (lambda api: api.tags.untag(100, []), "openid_list"),
        (lambda api: api.tags.rename(2, "x"), "tag.id"),
        (lambda api: api.tags.delete(0), "tag.id"),
        (lambda api: api.blacklist.add([f"o_{i}" for i in range(21)]), "openid_list"),
        (lambda api: api.quota.get("message/custom/send"), "cgi_path"),
    ],
)
async def test_limits_are_checked_first(
    platform_api: WeChatAPI, platform: FakeWeChat, call: object, field: str
) -> None:
    with pytest.raises(LimitError) as info:
        await call(platform_api)  # type: ignore[operator]
    assert info.value.field == field
    assert sum(platform.counters.values()) == 0  # not even a token was asked for


async def test_the_platforms_tag_refusals(platform_api: WeChatAPI, platform: FakeWeChat) -> None:
    await platform_api.tags.create("VIP")
    with pytest.raises(WeChatAPIError) as info:
        await platform_api.tags.create("VIP")
    assert info.value.errcode == 45157
    with pytest.raises(WeChatAPIError) as info:  # the client lets ids 0–2 through nowhere
        await platform_api.call("POST", "/cgi-bin/tags/delete", json_body={"tag": {"id": 2}})
    assert info.value.errcode == 45058
    tag_ids = [(await platform_api.tags.create(f"t{i}")).id for i in range(20)]
    for tag_id in tag_ids:
        await platform_api.tags.tag(tag_id, ["o_demo_wang"])
    with pytest.raises(WeChatAPIError) as info:  # the 21st tag of one follower
        await platform_api.tags.tag(1 + max(tag_ids) - 21, ["o_demo_wang"])
    assert (info.value.errcode, "20 tags" in str(info.value)) == (45059, True)
    with pytest.raises(WeChatAPIError) as info:
        await platform_api.tags.tag(tag_ids[0], ["o_demo_wang", "o_stranger"])
    assert info.value.errcode == 40003
    for i in range(79):
        await platform_api.tags.create(f"more{i}")
    with pytest.raises(WeChatAPIError) as info:
        await platform_api.tags.create("one too many")
    assert info.value.errcode == 45056


async def test_the_blacklist(platform_api: WeChatAPI, platform: FakeWeChat) -> None:
    for i in range(1_500):
        platform.add_follower(FakeFollower(f"o_b{i:04d}"))
    await platform_api.blacklist.add([f"o_b{i:04d}" for i in range(20)])
    for start in range(20, 1_500, 20):
        await platform_api.blacklist.add([f"o_b{i:04d}" for i in range(start, start + 20)])
    first = await platform_api.blacklist.list()
    assert (first.total, len(first.openids), first.next_openid) == (1_500, 1_000, "o_b0999")
    rest = await platform_api.blacklist.list(first.next_openid)
    assert (len(rest.openids), rest.next_openid) == (500, "")
    await platform_api.blacklist.remove(["o_b0000"])
    assert (await platform_api.blacklist.list()).total == 1_499
    with pytest.raises(WeChatAPIError) as info:
        await platform_api.blacklist.add(["o_nobody"])
    assert info.value.errcode == 40003


async def test_quota_get_and_clear(platform_api: WeChatAPI, platform: FakeWeChat) -> None:
    await platform_api.send_text("o_demo_wang", "hi")
    await platform_api.send_text("o_demo_wang", "hi")
    quota = await platform_api.quota.get("/cgi-bin/message/custom/send")
    assert quota == Quota(daily_limit=100_000, used=2, remain=99_998)
    await platform_api.quota.clear()
    assert (await platform_api.quota.get("/cgi-bin/message/custom/send")).used == 0
    with pytest.raises(WeChatAPIError) as info:
        await platform_api.quota.get("/cgi-bin/nothing/here")
    assert info.value.errcode == 76021
    for _ in range(8):
        await platform_api.quota.clear()
    await platform_api.quota.clear_with_secret()  # the 10th clear
    with pytest.raises(WeChatAPIError) as info:  # 10 a month, both endpoints together
        await platform_api.quota.clear_with_secret()
    assert (info.value.errcode, "10 a month" in str(info.value)) == (48006, True)
    assert platform.counters["clear_quota_v2"] == 2


async def test_clearing_with_the_secret_needs_no_token_and_never_shows_the_secret(
    platform_url: str, platform: FakeWeChat
) -> None:
    platform.fail_with_errcode("stable_token", 45009, times=5)  # no token to be had today
    async with aiohttp.ClientSession() as session:
        right, wrong = (
            WeChatAPI(
                session,
                app_id=TEST_APP_ID,
                app_secret=secret,
                storage=MemoryStorage(100),
                base_url=platform_url,
            )
            for secret in (TEST_SECRET, "s3cr3t-wrong")
        )
        await right.quota.clear_with_secret()
        with pytest.raises(WeChatAPIError) as info:
            await wrong.quota.clear_with_secret()
        assert info.value.errcode == 40125
        # should the platform echo what it was sent, the secret is masked
        platform.fail_with_errcode("clear_quota_v2", 40125, errmsg="bad appsecret s3cr3t-wrong")
        with pytest.raises(WeChatAPIError) as info:
            await wrong.quota.clear_with_secret()
    assert str(info.value).startswith("clear_quota_v2: errcode 40125: bad appsecret ***")
    assert (platform.quota_clears, platform.counters["stable_token"]) == (1, 0)


async def test_the_minute_quota_is_waited_out_a_bounded_number_of_times(
    platform_api: WeChatAPI, platform: FakeWeChat
) -> None:
    platform.fail_with_errcode("user_get", 45011, times=2)
    page = await within_minute_quota(platform_api.users.list, wait=0.01, retries=2)
    assert page.total == 4
    platform.fail_with_errcode("user_get", 45011, times=3)
    with pytest.raises(WeChatAPIError) as info:
        await within_minute_quota(platform_api.users.list, wait=0.01, retries=2)
    assert info.value.errcode == 45011
    platform.fail_with_errcode("user_get", 45009, times=1)
    with pytest.raises(WeChatAPIError) as info:  # the daily quota: not waited for
        await within_minute_quota(platform_api.users.list, wait=30, retries=2)
    assert info.value.errcode == 45009
    assert platform.counters["user_get"] == 3 + 3 + 1
