"""Scale-out: two `wechat-bot serve` processes, one Redis, one fake WeChat API, behave as one bot.

Every test runs real processes against a real Redis (the machine's, in a namespace of its own
through a unique app id; or a throwaway `redis-server` where Redis is stopped mid-test) and a
fake WeChat API served by the test process on a real port, whose counters see both instances.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import aiohttp
import pytest
import redis.asyncio
import redis_fixtures
from redis_fixtures import RedisServer, delete_namespace, require_redis_server
from support import free_port, serve_command, wait_until_healthy

from bot.testing.fake_wechat import FakeFollower, FakeWeChat, start_fake_wechat
from bot.testing.pytest_plugin import TEST_TOKEN
from bot.testing.simulator import (
    BotReply,
    SignedRequest,
    WeChatSimulator,
    build_xml,
    sign_request,
    text_fields,
)
from handlers.greeting import _NOT_SAVED

# The session's Redis, bound here so pytest finds the fixture by name.
redis_url = redis_fixtures.redis_url

ROOT = Path(__file__).resolve().parent.parent
ACCOUNT = "Scale Test"
CONFIG = (
    f"account_name: {ACCOUNT}\n"
    "reply_budget: 4.5\n"
    "profile_timeout: 3.0\n"
    "shutdown_grace: 5\n"
    "redis_timeout: 0.5\n"
)
FALLBACK_WARNING = "redis unavailable, serving from the local fallback"
RECOVERED = "redis available again"


def greeting(name: str | None = None) -> str:
    """The zh_CN greeting the default templates produce, with or without a name."""
    if name is None:
        return f"你好！欢迎关注{ACCOUNT}。"
    return f"你好，{name}！欢迎关注{ACCOUNT}。"


@dataclass
class Instance:
    """One `python -m bot serve` process and a simulator pointed at it."""

    name: str
    base_url: str
    process: asyncio.subprocess.Process
    log_path: Path
    log_file: TextIO
    sim: WeChatSimulator

    async def send_text(self, openid: str, text: str) -> BotReply:
        """A signed text message from `openid` to this instance."""
        return await self.sim.send_text(openid, text)

    async def health(self) -> dict[str, Any]:
        """The instance's /healthz answer (which must be a 200)."""
        async with self.sim.session.get(f"{self.base_url}/healthz") as resp:
            assert resp.status == 200
            data: dict[str, Any] = await resp.json()
            return data

    def log(self) -> str:
        """Everything the instance wrote to stderr so far."""
        self.log_file.flush()
        return self.log_path.read_text(encoding="utf-8", errors="replace")


@dataclass
class Deployment:
    """One account (unique app id, so a Redis namespace of its own) and its fake WeChat API."""

    fake: FakeWeChat
    api_url: str
    session: aiohttp.ClientSession
    workdir: Path
    instances: list[Instance] = field(default_factory=list)

    @property
    def namespace(self) -> str:
        """The Redis namespace the instances use (see bot/webhook/app.py)."""
        return f"wechat-bot:{self.fake.app_id}"

    def follower(self, openid: str, remark: str = "") -> str:
        """Make `openid` a follower of the fake account; returns the openid."""
        self.fake.add_follower(FakeFollower(openid, remark=remark))
        return openid

    async def start(self, redis_url: str, names: tuple[str, ...] = ("A", "B")) -> list[Instance]:
        """Start one bot process per name against `redis_url`; returns when all answer."""
        config = self.workdir / "config.yaml"
        config.write_text(CONFIG, encoding="utf-8")
        started = [await self._spawn(name, redis_url, config) for name in names]
        self.instances.extend(started)
        await asyncio.gather(*(_wait_until_up(i) for i in started))
        return started

    async def _spawn(self, name: str, redis_url: str, config: Path) -> Instance:
        port = free_port()
        log_path = self.workdir / f"instance-{name}.log"
        log_file = log_path.open("w", encoding="utf-8")
        env = {
            **os.environ,
            "WECHAT_TOKEN": TEST_TOKEN,
            "WECHAT_APP_ID": self.fake.app_id,
            "WECHAT_APP_SECRET": self.fake.app_secret,
            "WECHAT_API_BASE_URL": self.api_url,
            "REDIS_URL": redis_url,
            "BOT_CONFIG": str(config),
            "BOT_DATA_DIR": str(self.workdir / f"data-{name}"),
            "BOT_HANDLERS": "scale_handlers,handlers.greeting",
            "LOG_FORMAT": "text",
            "LOG_LEVEL": "INFO",
            "PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), str(ROOT)]),
            "SCALE_INSTANCE": name,
        }
        process = await asyncio.create_subprocess_exec(
            *serve_command(port),
            cwd=ROOT,
            env=env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=log_file,
        )
        base_url = f"http://127.0.0.1:{port}"
        sim = WeChatSimulator(self.session, f"{base_url}/wechat", token=TEST_TOKEN)
        return Instance(name, base_url, process, log_path, log_file, sim)

    async def stop(self) -> None:
        """SIGTERM every instance; kill what has not exited within 15 s (idempotent)."""
        for instance in self.instances:
            if instance.process.returncode is None:
                instance.process.send_signal(signal.SIGTERM)
        for instance in self.instances:
            try:
                await asyncio.wait_for(instance.process.wait(), 15)
            except TimeoutError:
                instance.process.kill()
                await instance.process.wait()
            instance.log_file.close()


async def _wait_until_up(instance: Instance) -> None:
    up = await wait_until_healthy(
        instance.sim.session,
        f"{instance.base_url}/healthz",
        exited=lambda: instance.process.returncode is not None,
    )
    if not up:
        pytest.fail(f"instance {instance.name} did not start:\n{instance.log()}")


async def _wait_for(check: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
        await asyncio.sleep(0.2)


@pytest.fixture
async def deployment(tmp_path: Path) -> AsyncIterator[Deployment]:
    """A fake WeChat API on a real port for a fresh account; the instances are stopped after."""
    fake = FakeWeChat(app_id=f"wx_scale_{uuid.uuid4().hex[:12]}", followers=())
    runner, api_url = await start_fake_wechat("127.0.0.1", 0, fake)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as session:
        deployed = Deployment(fake, api_url, session, tmp_path)
        try:
            yield deployed
        finally:
            await deployed.stop()
            await runner.cleanup()


@pytest.fixture
async def shared_redis(redis_url: str, deployment: Deployment) -> AsyncIterator[str]:
    """The session's Redis; the deployment's namespace is deleted once its instances stopped."""
    yield redis_url
    await deployment.stop()  # first, so no instance writes into the namespace after the delete
    await delete_namespace(redis_url, deployment.namespace)


def _client(url: str) -> redis.asyncio.Redis:
    return redis.asyncio.Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0)


# -- one bot across two processes ----------------------------------------------------------------


async def test_100_concurrent_first_messages_over_two_instances_fetch_one_token(
    deployment: Deployment, shared_redis: str
) -> None:
    a, b = await deployment.start(shared_redis)
    openids = [deployment.follower(f"o_scale_{i:03d}", remark=f"客人{i:03d}") for i in range(100)]
    expected = [greeting(f"客人{i:03d}") for i in range(100)]

    replies = await asyncio.gather(
        *((a, b)[i % 2].send_text(openid, "你好") for i, openid in enumerate(openids))
    )

    assert [r.content for r in replies] == expected
    assert deployment.fake.counters["stable_token"] == 1
    assert deployment.fake.counters["token"] == 0
    assert deployment.fake.counters["user_info"] == 100
    # The same followers through the other instance: profiles come from the shared cache.
    again = await asyncio.gather(
        *((b, a)[i % 2].send_text(openid, "你好") for i, openid in enumerate(openids))
    )
    assert [r.content for r in again] == expected
    assert deployment.fake.counters["user_info"] == 100
    assert deployment.fake.counters["stable_token"] == 1
    client = _client(shared_redis)
    try:
        ttl = await client.ttl(f"{deployment.namespace}:profile:o_scale_000")
        token_ttl = await client.ttl(f"{deployment.namespace}:token:{deployment.fake.app_id}")
    finally:
        await client.aclose()
    assert 0 < ttl <= 3600  # the profile cache's TTL (profile_cache_ttl)
    assert 7000 < token_ttl <= 7200
    for instance in (a, b):
        assert (await instance.health())["storage"] == "ok"
        assert FALLBACK_WARNING not in instance.log()


async def test_same_msgid_to_both_instances_gets_one_run_and_identical_replies(
    deployment: Deployment, shared_redis: str
) -> None:
    a, b = await deployment.start(shared_redis)
    openid = deployment.follower("o_scale_dup")
    fields = text_fields(openid, "once 1.0", msg_id="770000001")

    # WeChat's first try and a retry land on different instances while the handler runs.
    first, retry = await asyncio.gather(a.sim.send_fields(fields), b.sim.send_fields(fields))
    # A last try after the answer is known, on each instance.
    late_a = await a.sim.send_fields(fields)
    late_b = await b.sim.send_fields(fields)

    replies = [first, retry, late_a, late_b]
    assert {r.body for r in replies} == {first.body}
    assert first.content in ("answered by A", "answered by B")
    runner = first.content.removeprefix("answered by ") if first.content else "?"
    assert deployment.fake.sent == [
        {"touser": openid, "msgtype": "text", "text": {"content": f"run by {runner}"}}
    ]


async def test_two_followers_reusing_a_msg_id_on_two_instances_each_get_their_own_greeting(
    deployment: Deployment, shared_redis: str
) -> None:
    a, b = await deployment.start(shared_redis)
    wu = deployment.follower("o_scale_wu", remark="吴")
    zhao = deployment.follower("o_scale_zhao", remark="赵")
    wu_push = text_fields(wu, "你好", msg_id="770000002")
    zhao_push = text_fields(zhao, "你好", msg_id="770000002")

    first_wu, first_zhao = await asyncio.gather(
        a.sim.send_fields(wu_push), b.sim.send_fields(zhao_push)
    )
    # WeChat's retries of each, on the other instance: the reply each one got, from Redis
    retry_wu, retry_zhao = await b.sim.send_fields(wu_push), await a.sim.send_fields(zhao_push)

    assert (first_wu.content, first_wu.fields["ToUserName"]) == (greeting("吴"), wu)
    assert (first_zhao.content, first_zhao.fields["ToUserName"]) == (greeting("赵"), zhao)
    assert (retry_wu.body, retry_zhao.body) == (first_wu.body, first_zhao.body)
    assert deployment.fake.counters["user_info"] == 2  # each greeting ran once


async def test_name_set_through_one_instance_is_used_by_the_other(
    deployment: Deployment, shared_redis: str
) -> None:
    a, b = await deployment.start(shared_redis)
    openid = deployment.follower("o_scale_wang")

    assert (await a.send_text(openid, "叫我小王")).content == "好的，以后就叫你小王。"
    assert (await b.send_text(openid, "你好")).content == greeting("小王")

    client = _client(shared_redis)
    try:
        stored = await client.hget(f"{deployment.namespace}:rec:follower:{openid}", "pref:name")
        record_ttl = await client.ttl(f"{deployment.namespace}:rec:follower:{openid}")
    finally:
        await client.aclose()
    assert stored == "小王".encode()
    assert record_ttl == -1  # durable: no expiry


async def test_a_nonce_seen_by_one_instance_is_refused_by_the_other_for_another_body(
    deployment: Deployment, shared_redis: str
) -> None:
    a, b = await deployment.start(shared_redis)
    openid = deployment.follower("o_scale_nonce")
    nonce = uuid.uuid4().hex[:10]

    def signed(text: str) -> SignedRequest:
        return sign_request(TEST_TOKEN, build_xml(text_fields(openid, text)), nonce=nonce)

    assert (await a.sim.post(signed("你好"))).content == greeting()
    replayed = await b.sim.post(signed("another body"))
    assert (replayed.status, replayed.body) == (403, "nonce already used\n")


async def test_b_reads_a_preference_set_through_a_within_the_same_burst(
    deployment: Deployment, shared_redis: str
) -> None:
    a, b = await deployment.start(shared_redis)
    openids = [deployment.follower(f"o_burst_{i:02d}") for i in range(16)]
    # B has seen every follower (and cached what it caches) before the names are set
    assert {(await b.send_text(o, "你好")).content for o in openids} == {greeting()}

    # each name set through A, and at once, in one burst, a message from each to B
    names = [f"阿{i:02d}" for i in range(16)]
    set_replies = await asyncio.gather(
        *(a.send_text(o, f"叫我{name}") for o, name in zip(openids, names, strict=True))
    )
    assert {r.content for r in set_replies} == {f"好的，以后就叫你{n}。" for n in names}
    burst = await asyncio.gather(*(b.send_text(o, "你好") for o in openids))
    assert [r.content for r in burst] == [greeting(n) for n in names]


async def test_a_nonce_replayed_across_instances_inside_one_batch_is_refused(
    deployment: Deployment, shared_redis: str
) -> None:
    a, b = await deployment.start(shared_redis)
    openid = deployment.follower("o_batch_nonce")
    nonces = [uuid.uuid4().hex[:12] for _ in range(12)]

    def signed(nonce: str, text: str) -> SignedRequest:
        return sign_request(TEST_TOKEN, build_xml(text_fields(openid, text)), nonce=nonce)

    # every nonce twice with two bodies, once to each instance, all at the same time, among
    # fresh pushes: they reach the instances' batches together
    sends = []
    for nonce in nonces:
        sends += [a.sim.post(signed(nonce, "你好")), b.sim.post(signed(nonce, "hello"))]
        sends += [(a, b)[len(sends) % 2].send_text(openid, "你好")]
    replies = await asyncio.gather(*sends)
    for n in range(len(nonces)):
        pair = replies[3 * n : 3 * n + 2]
        statuses = sorted(r.status for r in pair)
        assert statuses == [200, 403], [(r.status, r.body) for r in pair]
        refused = next(r for r in pair if r.status == 403)
        assert refused.body == "nonce already used\n"
        assert replies[3 * n + 2].status == 200
    # and within one instance's batch too
    nonce = uuid.uuid4().hex[:12]
    same = await asyncio.gather(a.sim.post(signed(nonce, "你好")), a.sim.post(signed(nonce, "hi")))
    assert sorted(r.status for r in same) == [200, 403]


async def test_a_profile_forgotten_through_a_is_dropped_by_b_at_once(
    deployment: Deployment, shared_redis: str
) -> None:
    a, b = await deployment.start(shared_redis)
    openid = deployment.follower("o_refollow", remark="老客")
    assert (await b.send_text(openid, "你好")).content == greeting("老客")  # B caches it

    # unfollowed through A; the operator changes the remark; the follower comes back
    assert (await a.sim.send_event(openid, "unsubscribe")).status == 200
    deployment.follower(openid, remark="回头客")
    assert (await a.sim.follow(openid)).content == greeting("回头客")

    async def b_greets_by_the_new_remark() -> bool:
        return (await b.send_text(openid, "你好")).content == greeting("回头客")

    # immediate: the announcement travels with Redis' pub/sub, not at the cache's TTL (3600 s)
    await _wait_for(b_greets_by_the_new_remark, 2.0, "B drops the forgotten profile")


async def test_an_expired_token_is_refreshed_once_across_both_instances(
    deployment: Deployment, shared_redis: str
) -> None:
    a, b = await deployment.start(shared_redis)
    fake = deployment.fake
    assert (await a.send_text(deployment.follower("o_exp_a0", "甲"), "你好")).content == (
        greeting("甲")
    )
    assert (await b.send_text(deployment.follower("o_exp_b0", "乙"), "你好")).content == (
        greeting("乙")
    )
    assert fake.counters["stable_token"] == 1

    # One after the other: A refreshes; B, refused with the old token, adopts A's new one.
    fake.expire_tokens()
    assert (await a.send_text(deployment.follower("o_exp_a1", "丙"), "你好")).content == (
        greeting("丙")
    )
    assert fake.counters["stable_token"] == 2
    assert (await b.send_text(deployment.follower("o_exp_b1", "丁"), "你好")).content == (
        greeting("丁")
    )
    assert fake.counters["stable_token"] == 2

    # At the same time, on both.
    fake.expire_tokens()
    openids = [deployment.follower(f"o_exp_{i:02d}", f"客{i:02d}") for i in range(20)]
    replies = await asyncio.gather(
        *((a, b)[i % 2].send_text(openid, "你好") for i, openid in enumerate(openids))
    )
    assert [r.content for r in replies] == [greeting(f"客{i:02d}") for i in range(20)]
    assert fake.counters["stable_token"] == 3


# -- Redis lost and found -----------------------------------------------------------------------


async def test_redis_stopped_mid_test_both_keep_answering_and_use_it_again_when_back(
    deployment: Deployment,
) -> None:
    server = RedisServer(require_redis_server(), free_port())
    await asyncio.to_thread(server.start)
    try:
        await _outage_and_recovery(deployment, server)
    finally:
        await asyncio.to_thread(server.kill)


async def _outage_and_recovery(deployment: Deployment, server: RedisServer) -> None:
    a, b = await deployment.start(server.url)
    wang = deployment.follower("o_out_wang")
    li = deployment.follower("o_out_li")
    assert (await a.send_text(wang, "叫我小王")).content == "好的，以后就叫你小王。"
    assert (await b.send_text(wang, "你好")).content == greeting("小王")

    await asyncio.to_thread(server.kill)

    # Both keep answering: names from the local copy, profiles from the API, token in memory.
    for instance in (a, b):
        assert (await instance.send_text(wang, "你好")).content == greeting("小王")
        newcomer = deployment.follower(f"o_out_new_{instance.name}", f"新人{instance.name}")
        assert (await instance.send_text(newcomer, "你好")).content == greeting(
            f"新人{instance.name}"
        )
        health = await instance.health()
        assert (health["status"], health["storage"]) == ("ok", "degraded")
    # A preference that cannot be stored is told, not silently kept.
    assert (await a.send_text(li, "叫我小李")).content == _NOT_SAVED["zh_CN"]
    assert (await a.send_text(li, "你好")).content == greeting()
    # Retries still run the handler once per instance, through the local table.
    fields = text_fields(deployment.follower("o_out_dup"), "once 0.5", msg_id="770000002")
    first, retry = await asyncio.gather(a.sim.send_fields(fields), a.sim.send_fields(fields))
    assert first.content == retry.content == "answered by A"
    assert len(deployment.fake.sent) == 1
    # Traffic for a while (several probes of Redis): still one warning per instance.
    for _ in range(4):
        await asyncio.sleep(0.5)
        for instance in (a, b):
            assert (await instance.send_text(wang, "你好")).content == greeting("小王")
    for instance in (a, b):
        assert instance.log().count(FALLBACK_WARNING) == 1, instance.log()

    await asyncio.to_thread(server.start)

    async def back_on_redis() -> bool:
        states = []
        for instance in (a, b):
            await instance.send_text(wang, "你好")  # traffic is what probes Redis again
            states.append((await instance.health())["storage"])
        return states == ["ok", "ok"]

    await _wait_for(back_on_redis, 10.0, "both instances back on Redis")
    for instance in (a, b):
        assert RECOVERED in instance.log()
    assert (await a.send_text(li, "叫我小李")).content == "好的，以后就叫你小李。"
    # B never saw this name locally: it can only have come from Redis.
    assert (await b.send_text(li, "你好")).content == greeting("小李")
    client = _client(server.url)
    try:
        stored = await client.hget(f"{deployment.namespace}:rec:follower:{li}", "pref:name")
    finally:
        await client.aclose()
    assert stored == "小李".encode()


async def test_a_frozen_redis_never_holds_a_push_past_the_reply_budget(
    deployment: Deployment,
) -> None:
    server = RedisServer(require_redis_server(), free_port())
    await asyncio.to_thread(server.start)
    try:
        a, b = await deployment.start(server.url)
        wang = deployment.follower("o_frozen_wang")
        assert (await a.send_text(wang, "叫我小王")).content == "好的，以后就叫你小王。"
        openids = [deployment.follower(f"o_frozen_{i:02d}", f"冻{i:02d}") for i in range(20)]

        server.freeze()  # SIGSTOP: connections stay open, nothing is answered

        async def timed(instance: Instance, openid: str) -> tuple[float, str | None]:
            started = time.monotonic()
            reply = await instance.send_text(openid, "你好")
            assert reply.status == 200
            return time.monotonic() - started, reply.content

        for _ in range(3):  # the first burst meets the freeze; later ones the fallback's probes
            results = await asyncio.gather(
                *(timed((a, b)[i % 2], o) for i, o in enumerate([wang, *openids]))
            )
            for seconds, _ in results:
                assert seconds < 4.5, results  # CONFIG's reply_budget
            assert results[0][1] == greeting("小王")  # the name from the local copy
            assert [c for _, c in results[1:]] == [greeting(f"冻{i:02d}") for i in range(20)]
            await asyncio.sleep(0.6)

        server.thaw()

        async def back_on_redis() -> bool:
            states = []
            for instance in (a, b):
                await instance.send_text(wang, "你好")
                states.append((await instance.health())["storage"])
            return states == ["ok", "ok"]

        await _wait_for(back_on_redis, 10.0, "both instances back on Redis")
    finally:
        server.thaw()
        await asyncio.to_thread(server.kill)


# -- start-up without Redis ---------------------------------------------------------------------


async def test_start_up_with_redis_unreachable_exits_2_with_one_clear_line(
    tmp_path: Path,
) -> None:
    dead = f"redis://:s3cretpw@127.0.0.1:{free_port()}/0"
    env = {
        **os.environ,
        "WECHAT_TOKEN": TEST_TOKEN,
        "WECHAT_APP_ID": "wx_scale_dead",
        "WECHAT_APP_SECRET": "dead_secret",
        "REDIS_URL": dead,
        "BOT_DATA_DIR": str(tmp_path / "data"),
        "BOT_CONFIG": str(tmp_path / "config.yaml"),
        "PYTHONPATH": str(ROOT),
    }
    (tmp_path / "config.yaml").write_text("redis_timeout: 0.5\n", encoding="utf-8")
    process = await asyncio.create_subprocess_exec(
        *serve_command(free_port()),
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), 20)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    text = stderr.decode()
    assert process.returncode == 2, text
    assert stdout == b""
    lines = text.splitlines()
    assert len(lines) == 1, text
    assert lines[0].startswith("wechat-bot: redis: cannot reach redis at redis://:***@127.0.0.1:")
    assert "s3cretpw" not in text
    assert "Traceback" not in text
