"""Media: an image comes back as the same image (its `MediaId` may be used in a reply for three
days), and a voice message is answered with what WeChat heard (`Recognition`: it is only filled in
when the account has voice recognition turned on, so expect it to be empty).
"""

from __future__ import annotations

from bot import Context, ImageMessage, ImageReply, Message, Reply, Router, VoiceMessage

router = Router("media")

_HEARD = {
    "zh_CN": "我听到的是：「{text}」",
    "zh_TW": "我聽到的是：「{text}」",
    "en": 'I heard: "{text}"',
}
_NOT_HEARD = {
    "zh_CN": "收到你的语音了，但没能识别出文字。发文字给我试试？",
    "zh_TW": "收到你的語音了，但沒能辨識出文字。傳文字給我試試？",
    "en": "Got your voice message, but no transcript came with it. Could you type it?",
}


@router.message(ImageMessage)
async def echo_image(msg: Message, ctx: Context) -> Reply | None:
    """The same image back."""
    if not isinstance(msg, ImageMessage) or not msg.media_id:
        return None  # nothing to send back: answer `success`
    return ImageReply(msg.media_id)


@router.message(VoiceMessage)
async def repeat_voice(msg: Message, ctx: Context) -> str:
    """What the platform's speech recognition heard, in the language it was said in."""
    heard = msg.recognition.strip() if isinstance(msg, VoiceMessage) else ""
    language = await ctx.language()  # detected from the transcript when there is one
    if not heard:
        return _NOT_HEARD[language]
    return _HEARD[language].format(text=heard)
