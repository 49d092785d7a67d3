"""The followers of the fake WeChat API: the demo's five, or as many as a test needs."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class FakeFollower:
    """One follower as the fake platform knows it."""

    openid: str
    subscribe: int = 1
    nickname: str = ""
    language: str = "zh_CN"
    remark: str = ""
    unionid: str | None = None
    subscribe_time: int = 1641364601
    subscribe_scene: str = "ADD_SCENE_SEARCH"
    tagid_list: tuple[int, ...] = ()
    wechat_nickname: str = ""
    """The nickname WeChat shows: `user/info` hides it, `sns/userinfo` gives it after consent."""

    def profile(self) -> dict[str, Any]:
        """The `user/info` answer for this follower, shaped like today's platform."""
        if not self.subscribe:
            return {"subscribe": 0, "openid": self.openid}
        info: dict[str, Any] = {
            "subscribe": 1,
            "openid": self.openid,
            "nickname": self.nickname,
            "sex": 0,
            "city": "",
            "province": "",
            "country": "",
            "headimgurl": "",
            "subscribe_time": self.subscribe_time,
            "remark": self.remark,
            "groupid": 0,
            "tagid_list": list(self.tagid_list),
            "subscribe_scene": self.subscribe_scene,
            "qr_scene": 0,
            "qr_scene_str": "",
        }
        if self.language:  # "no longer provided": absent when the fake has none
            info["language"] = self.language
        if self.unionid:
            info["unionid"] = self.unionid
        return info


DEMO_FOLLOWERS: tuple[FakeFollower, ...] = (
    FakeFollower(
        "o_demo_alice",
        nickname="Alice",
        language="en",
        subscribe_time=1500000000,
        wechat_nickname="Alice",
    ),
    FakeFollower("o_demo_wang", wechat_nickname="王小明"),
    FakeFollower("o_demo_lin", remark="林老師", tagid_list=(2,), wechat_nickname="林曉"),
    FakeFollower("o_demo_sam", language="", wechat_nickname="Sam 🌊"),
    FakeFollower("o_demo_gone", subscribe=0, wechat_nickname="Gone"),
)


def many_followers(count: int, prefix: str = "o_fake_") -> Iterator[FakeFollower]:
    """`count` followers with distinct openids, subscribe times and, for every tenth, a remark."""
    scenes = ("ADD_SCENE_SEARCH", "ADD_SCENE_QR_CODE", "ADD_SCENE_PROFILE_CARD")
    for i in range(count):
        yield FakeFollower(
            f"{prefix}{i:06d}",
            remark=f"客户{i}" if i % 10 == 0 else "",
            subscribe_time=1_600_000_000 + i * 60,
            subscribe_scene=scenes[i % len(scenes)],
        )
