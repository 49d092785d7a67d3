"""Media through the fake: temporary uploads and downloads, permanent material, the checks."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest
from conftest import WallClock
from media_samples import AMR, JPEG, MP4, png, sample

from bot.client.api import LimitError, TransientAPIError, WeChatAPI, WeChatAPIError
from bot.client.media import MaterialCount, VideoMaterial
from bot.storage.memory import MemoryStorage
from bot.testing.fake_wechat import FakeWeChat
from bot.testing.pytest_plugin import TEST_APP_ID, TEST_SECRET
from bot.wechat.media_formats import MediaFileError, check_media_file


async def test_upload_and_get_back_until_three_days_pass(
    platform_api: WeChatAPI, platform: FakeWeChat, wall_clock: WallClock, tmp_path: Path
) -> None:
    path = png(tmp_path)
    uploaded = await platform_api.media.upload("image", path)
    assert (uploaded.type, uploaded.created_at) == ("image", int(wall_clock.now))
    download = await platform_api.media.get(uploaded.media_id)
    assert (download.content, download.content_type, download.filename) == (
        path.read_bytes(),
        "image/png",
        "poster.png",
    )
    wall_clock.advance(3 * 24 * 3600)
    with pytest.raises(WeChatAPIError) as info:
        await platform_api.media.get(uploaded.media_id)
    assert info.value.errcode == 40007
    assert "expired media_id" in str(info.value)


async def test_every_type_uploads(platform_api: WeChatAPI, tmp_path: Path) -> None:
    for kind, name, content in (
        ("voice", "hello.amr", AMR),
        ("video", "clip.mp4", MP4),
        ("thumb", "cover.jpg", JPEG),
    ):
        uploaded = await platform_api.media.upload(kind, sample(tmp_path, name, content))
        assert uploaded.type == kind and uploaded.media_id


@pytest.mark.parametrize(
    ("kind", "name", "content", "problem"),
    [
        (
            "image",
            "big.png",
            b"\x89PNG\r\n\x1a\n" + b"\x00" * (2 * 1024 * 1024),
            "over the image limit",
        ),
        ("thumb", "cover.jpg", JPEG + b"\x00" * 65536, "over the thumb limit of 65,536 bytes"),
        ("image", "clip.png", MP4, "must be PNG/JPEG/GIF"),
        ("image", "photo.gif", JPEG, "the name says otherwise"),
        ("voice", "empty.mp3", b"", "empty"),
        ("sticker", "a.png", JPEG, "media type must be one of"),
    ],
)
async def test_a_file_the_platform_would_refuse_is_refused_first(
    platform_api: WeChatAPI,
    platform: FakeWeChat,
    tmp_path: Path,
    kind: str,
    name: str,
    content: bytes,
    problem: str,
) -> None:
    with pytest.raises(LimitError) as info:
        await platform_api.media.upload(kind, sample(tmp_path, name, content))
    assert problem in str(info.value)
    assert name in str(info.value) or kind == "sticker"
    assert platform.counters["media_upload"] == 0


async def test_the_platform_checks_the_bytes_too(platform_api: WeChatAPI) -> None:
    body = (
        b'--b\r\nContent-Disposition: form-data; name="media"; filename="x.png"\r\n'
        b"Content-Type: image/png\r\n\r\nnot an image\r\n--b--\r\n"
    )
    with pytest.raises(WeChatAPIError) as info:
        await platform_api.call(
            "POST",
            "/cgi-bin/media/upload",
            params={"type": "image"},
            body=body,
            content_type="multipart/form-data; boundary=b",
        )
    assert info.value.errcode == 40005
    with pytest.raises(WeChatAPIError) as info:
        await platform_api.call("POST", "/cgi-bin/media/upload", params={"type": "gif"}, body=b"")
    assert info.value.errcode == 40004


async def test_permanent_material(
    platform_api: WeChatAPI, platform: FakeWeChat, tmp_path: Path
) -> None:
    media = platform_api.media
    image = await media.add_material("image", png(tmp_path))
    assert image.url.endswith(image.media_id)
    with pytest.raises(LimitError):
        await media.add_material("video", sample(tmp_path, "clip.mp4", MP4))  # no title
    video = await media.add_material(
        "video", sample(tmp_path, "clip.mp4", MP4), title="开业", introduction="第一天"
    )
    assert await media.material_count() == MaterialCount(image=1, voice=0, video=1, news=0)
    fetched = await media.get_material(image.media_id)
    assert not isinstance(fetched, VideoMaterial) and fetched.content == png(tmp_path).read_bytes()
    described = await media.get_material(video.media_id)
    assert isinstance(described, VideoMaterial) and described.title == "开业"
    page = await media.list_materials("image")
    assert (page.total_count, [i.media_id for i in page.items]) == (1, [image.media_id])
    with pytest.raises(LimitError) as info:
        await media.list_materials("image", count=21)
    assert info.value.field == "count"
    await media.delete_material(image.media_id)
    with pytest.raises(WeChatAPIError) as error:
        await media.delete_material(image.media_id)
    assert error.value.errcode == 40007
    with pytest.raises(WeChatAPIError) as error:  # articles are drafts now
        await platform_api.call("POST", "/cgi-bin/material/add_material", params={"type": "news"})
    assert error.value.errcode == 45103
    assert platform.counters["material_add_material"] == 3


def test_check_media_file_reads_the_first_bytes(tmp_path: Path) -> None:
    assert check_media_file(png(tmp_path), "image").format == "png"
    with pytest.raises(MediaFileError, match="cannot read it"):
        check_media_file(tmp_path / "missing.png", "image")


async def test_a_file_has_longer_attempts_than_a_json_call(
    platform_url: str, platform: FakeWeChat, tmp_path: Path
) -> None:
    async with aiohttp.ClientSession() as session:
        api = WeChatAPI(
            session,
            app_id=TEST_APP_ID,
            app_secret=TEST_SECRET,
            storage=MemoryStorage(100),
            base_url=platform_url,
            timeout=0.2,
            backoff=0.01,
        )
        platform.set_latency("media_upload", 0.5)  # longer than a JSON call may take
        assert (await api.media.upload("image", png(tmp_path))).media_id
        platform.set_latency("user_get", 0.5)
        with pytest.raises(TransientAPIError):
            await api.users.list()
    assert platform.counters["media_upload"] == 1
