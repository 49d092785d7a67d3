"""`ImageReply(file=...)`: uploaded on first use, the media id cached until shortly before the
platform's 3 days end, one upload for concurrent first uses, in a process and across them."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest
import redis_fixtures
from conftest import WallClock
from media_samples import JPEG, MP4, png, sample

from bot import Context, ImageReply, Message, MusicReply, Router, VideoReply
from bot.client.api import WeChatAPI
from bot.client.media_files import EXPIRY_MARGIN, MediaFileCache
from bot.storage import RedisStorage
from bot.storage.memory import MemoryStorage
from bot.testing.fake_wechat import FakeWeChat
from bot.testing.pytest_plugin import TEST_APP_ID, TEST_SECRET, BotFactory
from bot.wechat.media_formats import MediaFileError, check_media_file
from bot.wechat.replies import render_reply

POSTER = Path(__file__).resolve().parents[1] / "handlers" / "static" / "poster.png"
router = Router("media-files-test")


@router.text("poster")
async def poster(msg: Message, ctx: Context) -> ImageReply:
    """A reply from a local file."""
    return ImageReply(file=POSTER)


async def test_answered_three_times_with_one_upload(wechat_bot: BotFactory) -> None:
    bot = await wechat_bot(handlers=["test_media_files"])
    ids = set()
    for _ in range(3):
        reply = await bot.send_text("o_demo_wang", "poster")
        assert reply.msg_type == "image"
        ids.add(reply.fields["Image"]["MediaId"])
    assert bot.fake.counters["media_upload"] == 1
    assert ids == {bot.fake.media.uploads[0]}
    stored = bot.fake.media.temporary[bot.fake.media.uploads[0]]
    assert stored.content == POSTER.read_bytes()


async def test_the_shipped_poster_button_answers_with_the_file(wechat_bot: BotFactory) -> None:
    bot = await wechat_bot(handlers=["handlers.menu"])
    reply = await bot.send_event("o_demo_wang", "CLICK", "MENU_POSTER")
    assert reply.msg_type == "image"
    assert bot.fake.counters["media_upload"] == 1


async def test_an_upload_that_fails_answers_success_and_is_logged(
    wechat_bot: BotFactory, caplog: pytest.LogCaptureFixture
) -> None:
    bot = await wechat_bot(handlers=["test_media_files"])
    bot.fake.fail_with_errcode("media_upload", 48001)
    reply = await bot.send_text("o_demo_wang", "poster")
    assert reply.is_success
    assert "its reply's file could not be uploaded" in caplog.text
    assert (await bot.send_text("o_demo_wang", "poster")).msg_type == "image"  # not cached


def _cache(api: WeChatAPI, storage: MemoryStorage, clock: WallClock) -> MediaFileCache:
    return MediaFileCache(api.media, storage, app_id=TEST_APP_ID, clock=clock, lock_ttl=5.0)


async def test_uploaded_again_after_the_cached_id_expires(
    platform_api: WeChatAPI, platform: FakeWeChat, wall_clock: WallClock
) -> None:
    file = check_media_file(POSTER, "image")
    first = await platform_api.media_files.media_id(file)
    wall_clock.advance(3 * 24 * 3600 - EXPIRY_MARGIN - 1)
    assert await platform_api.media_files.media_id(file) == first
    assert platform.counters["media_upload"] == 1
    wall_clock.advance(2)  # now within the margin before the platform forgets it
    second = await platform_api.media_files.media_id(file)
    assert second != first
    # two uploads (the fake's token expired too: the upload was retried with a fresh one)
    assert len(platform.media.uploads) == 2
    assert platform_api.media_files.uploads == 2


async def test_twenty_concurrent_first_uses_upload_once(
    platform_api: WeChatAPI, platform: FakeWeChat
) -> None:
    platform.set_latency("media_upload", 0.2)
    replies = await asyncio.gather(
        *(platform_api.media_files.resolve(ImageReply(file=POSTER)) for _ in range(20))
    )
    assert {r.media_id for r in replies if isinstance(r, ImageReply)} == set(platform.media.uploads)
    assert platform.counters["media_upload"] == 1


async def test_processes_sharing_a_store_upload_once(
    platform_url: str, platform: FakeWeChat, wall_clock: WallClock
) -> None:
    shared = MemoryStorage(1000)  # what Redis is to several instances
    platform.set_latency("media_upload", 0.3)
    async with aiohttp.ClientSession() as session:
        apis = [
            WeChatAPI(
                session,
                app_id=TEST_APP_ID,
                app_secret=TEST_SECRET,
                storage=shared,
                base_url=platform_url,
                clock=wall_clock,
            )
            for _ in range(3)
        ]
        caches = [_cache(api, shared, wall_clock) for api in apis]
        file = check_media_file(POSTER, "image")
        ids = await asyncio.gather(*(cache.media_id(file) for cache in caches))
    assert len(set(ids)) == 1
    assert platform.counters["media_upload"] == 1


async def test_an_edited_file_is_a_new_upload(
    platform_api: WeChatAPI, platform: FakeWeChat, tmp_path: Path
) -> None:
    path = png(tmp_path, size=4)
    first = await platform_api.media_files.resolve(ImageReply(file=path))
    path.write_bytes(png(tmp_path, "other.png", size=5).read_bytes())
    second = await platform_api.media_files.resolve(ImageReply(file=path))
    assert isinstance(first, ImageReply) and isinstance(second, ImageReply)
    assert first.media_id != second.media_id


async def test_video_and_music_thumb_files(platform_api: WeChatAPI, tmp_path: Path) -> None:
    video = await platform_api.media_files.resolve(
        VideoReply(file=sample(tmp_path, "clip.mp4", MP4), title="开业")
    )
    music = await platform_api.media_files.resolve(
        MusicReply("歌", music_url="https://m/1.mp3", thumb_file=sample(tmp_path, "c.jpg", JPEG))
    )
    assert isinstance(video, VideoReply) and video.media_id and video.title == "开业"
    assert isinstance(music, MusicReply) and music.thumb_media_id


def test_a_bad_file_is_refused_when_the_reply_is_built(tmp_path: Path) -> None:
    with pytest.raises(MediaFileError, match="over the image limit"):
        ImageReply(file=sample(tmp_path, "big.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 2_100_000))
    with pytest.raises(MediaFileError, match="must be PNG/JPEG/GIF"):
        ImageReply(file=sample(tmp_path, "x.png", MP4))
    with pytest.raises(MediaFileError, match="cannot read it"):
        ImageReply(file=tmp_path / "missing.png")
    with pytest.raises(ValueError, match="needs a media_id or a file"):
        ImageReply()


def test_a_file_reply_is_not_rendered_before_its_upload() -> None:
    with pytest.raises(ValueError, match="has no media_id yet"):
        render_reply(ImageReply(file=POSTER), to_user="o", from_user="gh", create_time=1)


# The session's Redis and a namespace per test, bound here so pytest finds them by name.
redis_url = redis_fixtures.redis_url
redis_namespace = redis_fixtures.redis_namespace


async def test_instances_share_the_media_id_through_redis(
    redis_url: str, redis_namespace: str, platform_url: str, platform: FakeWeChat
) -> None:
    platform.set_latency("media_upload", 0.3)
    stores = [await RedisStorage.connect(redis_url, redis_namespace, timeout=2.0) for _ in range(3)]
    try:
        async with aiohttp.ClientSession() as session:
            apis = [
                WeChatAPI(
                    session,
                    app_id=TEST_APP_ID,
                    app_secret=TEST_SECRET,
                    storage=store,
                    base_url=platform_url,
                )
                for store in stores
            ]
            file = check_media_file(POSTER, "image")
            first = await asyncio.gather(*(api.media_files.media_id(file) for api in apis[:2]))
            later = await apis[2].media_files.media_id(file)  # a third instance, afterwards
    finally:
        for store in stores:
            await store.close()
        await redis_fixtures.delete_namespace(redis_url, redis_namespace)
    assert len({*first, later}) == 1
    assert len(platform.media.uploads) == 1
