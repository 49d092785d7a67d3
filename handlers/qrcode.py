"""Parameter QR codes: a follow through one (`subscribe` with `qrscene_<scene>`) or a follower's
scan of one (`SCAN`) is welcomed with the campaign the code belongs to, and the follower's first
source is kept in `ctx.state["source"]`. An unknown scene is SKIPped: the greeting answers.
"""

from __future__ import annotations

from bot import SKIP, Context, Message, Router, ScanEvent, Skip, StorageUnavailable, SubscribeEvent

router = Router("qrcode")

# scene (what the code was created with: action_info.scene.scene_str) → campaign name per language
CAMPAIGNS: dict[str, dict[str, str]] = {
    "spring_fair": {"zh_CN": "春季展会", "zh_TW": "春季展會", "en": "the Spring Fair"},
    "store_42": {"zh_CN": "42 号门店", "zh_TW": "42 號門市", "en": "Store 42"},
}

_FOLLOWED = {
    "zh_CN": "欢迎！你通过「{campaign}」的二维码关注了我们。发送“帮助”看看我能做什么。",
    "zh_TW": "歡迎！你透過「{campaign}」的 QR 碼關注了我們。發送「幫助」看看我能做什麼。",
    "en": 'Welcome! You followed us through the {campaign} QR code. Send "help" to see more.',
}
_SCANNED = {
    "zh_CN": "欢迎回来！这是「{campaign}」的二维码。",
    "zh_TW": "歡迎回來！這是「{campaign}」的 QR 碼。",
    "en": "Welcome back! This is the {campaign} QR code.",
}


@router.event("subscribe")
async def followed_by_code(msg: Message, ctx: Context) -> str | Skip:
    """A follow through a parameter QR code (a plain follow has no scene: SKIP)."""
    scene = msg.scene if isinstance(msg, SubscribeEvent) else None
    return await _welcome(ctx, scene, _FOLLOWED)


@router.event("SCAN")
async def scanned_by_follower(msg: Message, ctx: Context) -> str | Skip:
    """An existing follower scanned a parameter QR code; `EventKey` is the bare scene."""
    scene = msg.event_key if isinstance(msg, ScanEvent) else None
    return await _welcome(ctx, scene, _SCANNED)


async def _welcome(ctx: Context, scene: str | None, templates: dict[str, str]) -> str | Skip:
    campaign = CAMPAIGNS.get(scene) if scene else None
    if scene is None or campaign is None:
        return SKIP  # not one of ours: the next handler (the greeting) answers
    try:
        if await ctx.state.get("source") is None:  # the first campaign that brought them counts
            await ctx.state.set("source", scene)
    except StorageUnavailable:
        pass  # bookkeeping must not cost the follower their welcome
    language = await ctx.language()
    return templates[language].format(campaign=campaign[language])
