"""Parameter QR codes through the fake: scenes, lifetimes, limits, the image."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from conftest import WallClock
from png_check import png_size

from bot.client.api import LimitError, TransientAPIError, WeChatAPI, WeChatAPIError
from bot.testing.fake_wechat import FakeWeChat


async def test_temporary_string_scene(
    platform_api: WeChatAPI, platform: FakeWeChat, wall_clock: WallClock
) -> None:
    code = await platform_api.qrcodes.create_temporary("spring_fair", 3600)
    assert (code.scene, code.expire_seconds) == ("spring_fair", 3600)
    assert code.url.startswith("http://weixin.qq.com/q/")
    assert platform.qrcodes.scene_of(code.ticket) == "spring_fair"
    # the ticket is URL-encoded in the image URL (real tickets carry + / =)
    assert parse_qs(urlsplit(code.image_url).query)["ticket"] == [code.ticket]
    assert png_size(await platform_api.qrcodes.image(code.ticket)) == (100, 100)
    wall_clock.advance(3600)
    assert platform.qrcodes.scene_of(code.ticket) is None
    with pytest.raises(WeChatAPIError) as info:  # an expired code has no image
        await platform_api.qrcodes.image(code.ticket)
    assert info.value.endpoint == "showqrcode"


async def test_integer_and_permanent_scenes(platform_api: WeChatAPI, platform: FakeWeChat) -> None:
    temporary = await platform_api.qrcodes.create_temporary(-7, 60)
    permanent = await platform_api.qrcodes.create_permanent(100_000)
    named = await platform_api.qrcodes.create_permanent("store_42")
    assert platform.qrcodes.scene_of(temporary.ticket) == -7
    assert (permanent.expire_seconds, permanent.expires_at) == (None, None)
    assert platform.qrcodes.scene_of(named.ticket) == "store_42"
    assert platform.qrcodes.permanent_count == 2


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"scene": "s" * 65, "expire_seconds": 60}, "scene_str"),
        ({"scene": "", "expire_seconds": 60}, "scene_str"),
        ({"scene": 0, "expire_seconds": 60}, "scene_id"),
        ({"scene": 2**31, "expire_seconds": 60}, "scene_id"),
        ({"scene": "a", "expire_seconds": 2_592_001}, "expire_seconds"),
        ({"scene": "a", "expire_seconds": 59}, "expire_seconds"),
    ],
)
async def test_temporary_limits_are_checked_first(
    platform_api: WeChatAPI, platform: FakeWeChat, kwargs: dict[str, object], field: str
) -> None:
    with pytest.raises(LimitError) as info:
        await platform_api.qrcodes.create_temporary(**kwargs)  # type: ignore[arg-type]
    assert info.value.field == field
    assert platform.counters["qrcode_create"] == 0


async def test_permanent_limits_are_checked_first(platform_api: WeChatAPI) -> None:
    for scene in (0, 100_001):
        with pytest.raises(LimitError) as info:
            await platform_api.qrcodes.create_permanent(scene)
        assert "between 1 and 100,000" in str(info.value)


async def test_the_platform_refusals_are_explained(
    platform_api: WeChatAPI, platform: FakeWeChat
) -> None:
    body = {"action_name": "QR_STR_SCENE", "expire_seconds": 60,
            "action_info": {"scene": {"scene_str": "x" * 65}}}  # fmt: skip
    with pytest.raises(WeChatAPIError) as info:
        await platform_api.call("POST", "/cgi-bin/qrcode/create", json_body=body)
    assert info.value.errcode == 40053
    assert "scene" in info.value.explanation
    platform.qrcodes.permanent_count = 100_000
    with pytest.raises(WeChatAPIError) as info:
        await platform_api.qrcodes.create_permanent(1)
    assert info.value.errcode == 45029
    platform.fail_with_status("qrcode_create", 503, times=5)
    with pytest.raises(TransientAPIError):  # the same bounded retries as every call
        await platform_api.qrcodes.create_temporary(1, 60)
    assert platform.counters["qrcode_create"] == 2 + 3
