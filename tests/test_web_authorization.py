"""Web authorization's parts alone: the state, the settings, check-config's guidance, the fake."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from conftest import WallClock

from bot.cli.doctor import check_config
from bot.config import SETTINGS, ConfigError, load_config
from bot.demo.terminal import demo_config, with_demo_web_authorization
from bot.testing.fake_wechat import FakeWeChat
from bot.webauth.client import clean_nickname
from bot.webauth.guidance import PROBLEM, web_authorization_report
from bot.webauth.links import authorize_url, consent_link
from bot.webauth.pages import INVALID, STORED, render_page
from bot.webauth.state import StateRefused, StateSigner

BASE_ENV = {"WECHAT_TOKEN": "testtoken", "WECHAT_APP_ID": "wx_fake_app", "WECHAT_APP_SECRET": "s"}


class Clock:
    """A clock tests move."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


# -- the state ------------------------------------------------------------------------------


def test_a_state_is_short_alphanumeric_and_verifies_for_its_openid() -> None:
    signer = StateSigner("wx_app", "secret", 600)
    state = signer.issue("o_" + "x" * 60, "zh_TW")  # the openid's length does not matter
    assert re.fullmatch(r"[a-zA-Z0-9]{1,128}", state)
    verified = signer.verify(state)
    assert verified.language == "zh_TW"
    assert signer.bound_to(verified, "o_" + "x" * 60)
    assert not signer.bound_to(verified, "o_someone_else")
    assert "o_" not in state  # the openid is not in the URL
    assert signer.issue("o_a", "en") != signer.issue("o_a", "en")  # a fresh nonce each time


def test_a_forged_or_altered_state_is_refused() -> None:
    signer = StateSigner("wx_app", "secret", 600)
    state = signer.issue("o_a", "en")
    other_key = StateSigner("wx_app", "another secret", 600).issue("o_a", "en")
    longer_life = state[:2] + "ffffffff" + state[10:]
    for bad in (other_key, longer_life, state.upper(), state[:-1], "", "0" * 74, state + "a"):
        with pytest.raises(StateRefused) as caught:
            signer.verify(bad)
        assert caught.value.reason == "forged", bad
    with pytest.raises(StateRefused):
        StateSigner("wx_other_app", "secret", 600).verify(state)


def test_a_state_expires_after_its_ttl() -> None:
    clock = Clock()
    signer = StateSigner("wx_app", "secret", 300, clock=clock)
    state = signer.issue("o_a", "en")
    clock.now += 299
    assert signer.verify(state).language == "en"
    clock.now += 1
    with pytest.raises(StateRefused) as caught:
        signer.verify(state)
    assert (caught.value.reason, caught.value.language) == ("expired", "en")


# -- settings and the link -------------------------------------------------------------------


def load(tmp_path: Path, text: str, **env: str) -> Any:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return load_config(path, {**BASE_ENV, **env})


def test_the_section_from_yaml_and_the_environment(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        "web_authorization:\n  enabled: true\n  public_url: https://bot.example.com/\n"
        "  state_ttl: 300\n  link_text:\n    en: Use my WeChat name\n",
    )
    section = config.web_authorization
    assert section.enabled and section.state_ttl == 300
    assert section.redirect_uri == "https://bot.example.com/oauth/callback"
    assert section.text_of_link("en") == "Use my WeChat name"
    assert section.text_of_link("zh_CN") == "点这里，让我用你的微信昵称称呼你"
    assert section.oauth_base_url == "https://open.weixin.qq.com"
    env = {
        "BOT_WEB_AUTHORIZATION": "yes",
        "BOT_PUBLIC_URL": "https://other.example.com",
        "WECHAT_OAUTH_BASE_URL": "http://127.0.0.1:9",
    }
    overridden = load(tmp_path, "account_name: A\n", **env).web_authorization
    assert overridden.enabled and overridden.public_url == "https://other.example.com"
    assert overridden.oauth_base_url == "http://127.0.0.1:9"
    assert not load(tmp_path, "account_name: A\n").web_authorization.enabled


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("web_authorization:\n  enabled: true\n", "web_authorization.public_url: missing"),
        ("web_authorization:\n  colour: red\n", "web_authorization.colour: unknown setting"),
        ("web_authorization: [1]\n", "web_authorization: must be a mapping"),
        ("web_authorization:\n  enabled: maybe\n", "must be true or false"),
        ("web_authorization:\n  state_ttl: 5\n", "web_authorization.state_ttl: must be between"),
        ("web_authorization:\n  public_url: ftp://x\n", "web_authorization.public_url: must be"),
        ("web_authorization:\n  oauth_base_url: x\n", "web_authorization.oauth_base_url: must"),
        ("web_authorization:\n  link_text:\n    fr: Salut\n", "link_text.fr: unknown language"),
        ("web_authorization:\n  link_text:\n    en: '<b>'\n", "link_text.en: at most"),
    ],
)
def test_invalid_sections_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text)
    assert message in str(caught.value)


def test_the_reference_lists_every_sub_setting_with_its_variable() -> None:
    keys = {s.key: s for s in SETTINGS}
    assert keys["web_authorization.oauth_base_url"].env == "WECHAT_OAUTH_BASE_URL"
    assert keys["web_authorization.public_url"].env == "BOT_PUBLIC_URL"
    assert keys["web_authorization.enabled"].default == "false"


def test_the_link_is_the_platforms_authorize_url(tmp_path: Path) -> None:
    config = load(
        tmp_path, "web_authorization:\n  enabled: true\n  public_url: https://b.example\n"
    )
    url = authorize_url(config, "abc123")
    assert url == (
        "https://open.weixin.qq.com/connect/oauth2/authorize?appid=wx_fake_app"
        "&redirect_uri=https%3A%2F%2Fb.example%2Foauth%2Fcallback&response_type=code"
        "&scope=snsapi_userinfo&state=abc123#wechat_redirect"
    )
    link = consent_link(config, "o_a", "en")
    assert link.startswith('<a href="https://open.weixin.qq.com/connect/oauth2/authorize?')
    assert link.endswith('">Tap here to let me call you by your WeChat name</a>')


def test_nicknames_are_cleaned_and_bounded() -> None:
    assert clean_nickname("  小\n王\x00  ") == "小 王"
    assert len(clean_nickname("x" * 500)) == 64


def test_pages_escape_the_nickname_and_speak_the_language() -> None:
    page = render_page(STORED, "zh_CN", "Acct <1>", "<script>x</script>")
    assert "<script>" not in page and "&lt;script&gt;" in page and "Acct &lt;1&gt;" in page
    assert "好的，&lt;script&gt;x&lt;/script&gt;！" in page
    assert 'lang="zh-Hant"' in render_page(INVALID, "zh_TW", "A")
    assert "This link is not valid" in render_page(INVALID, "en", "A")
    assert 'lang="zh-Hans"' in render_page(INVALID, "fr", "A")  # unknown: the default


# -- check-config ----------------------------------------------------------------------------


def test_guidance_names_the_domain_and_the_account_type(tmp_path: Path) -> None:
    text = "web_authorization:\n  enabled: true\n  public_url: https://bot.example.com\n"
    lines = web_authorization_report(load(tmp_path, text))
    said = "\n".join(line for _, line in lines)
    assert "https://bot.example.com/oauth/callback" in said
    assert "enter bot.example.com as the account's 网页授权域名" in said
    assert "MP_verify_" in said and "verified service accounts" in said
    assert all(mark != PROBLEM for mark, _ in lines)
    text = "web_authorization:\n  enabled: true\n  public_url: http://bot.example.com:8080\n"
    problems = [
        line for mark, line in web_authorization_report(load(tmp_path, text)) if mark == PROBLEM
    ]
    assert len(problems) == 2 and "not https" in problems[0] and "port 8080" in problems[1]
    off = web_authorization_report(load(tmp_path, "account_name: A\n"))
    assert len(off) == 1 and "web authorization is off" in off[0][1]


async def test_check_config_reports_web_authorization(tmp_path: Path) -> None:
    fake = FakeWeChat(app_id="wx_fake_app", app_secret="s")
    server = TestServer(fake.app)
    await server.start_server()
    try:
        path = tmp_path / "config.yaml"
        path.write_text("web_authorization:\n  enabled: true\n", encoding="utf-8")
        env = {**BASE_ENV, "WECHAT_API_BASE_URL": str(server.make_url("")).rstrip("/")}
        out = io.StringIO()
        assert await check_config(str(path), environ=env, out=out) == 2
        assert "web_authorization.public_url: missing" in out.getvalue()
        env["BOT_PUBLIC_URL"] = "http://bot.example.com"
        out = io.StringIO()
        assert await check_config(str(path), environ=env, out=out) == 1
        assert "✗ public_url is not https" in out.getvalue()
        env["BOT_PUBLIC_URL"] = "https://bot.example.com"
        out = io.StringIO()
        assert await check_config(str(path), environ=env, out=out) == 0
        assert "✓ web authorization is on" in out.getvalue()
    finally:
        await server.close()


# -- the fake platform -----------------------------------------------------------------------


@pytest.fixture
def clock() -> WallClock:
    """The fake's clock."""
    return WallClock()


@pytest.fixture
async def fake_client(clock: WallClock) -> Any:
    """A client of a fake platform whose clock the test moves."""
    fake = FakeWeChat(clock=clock)
    client: TestClient[Any, Any] = TestClient(TestServer(fake.app))
    await client.start_server()
    yield fake, client
    await client.close()


def authorize_query(**changes: str) -> dict[str, str]:
    query = {
        "appid": "wx_fake_app",
        "redirect_uri": "https://bot.example.com/oauth/callback",
        "response_type": "code",
        "scope": "snsapi_userinfo",
        "state": "abc123",
    }
    query.update(changes)
    return {k: v for k, v in query.items() if v != "-"}


@pytest.mark.parametrize(
    ("changes", "errcode"),
    [
        ({"appid": "wx_other"}, 40013),
        ({"appid": "-"}, 10012),
        ({"redirect_uri": "-"}, 10011),
        ({"redirect_uri": "javascript:alert(1)"}, 10003),
        ({"response_type": "token"}, 40117),
        ({"scope": "-"}, 10010),
        ({"scope": "snsapi_login"}, 10005),
        ({"state": "has space"}, 40118),
        ({"state": "a" * 129}, 40118),
    ],
)
async def test_the_authorize_page_checks_like_the_platform(
    fake_client: Any, changes: dict[str, str], errcode: int
) -> None:
    _fake, client = fake_client
    async with client.get("/connect/oauth2/authorize", params=authorize_query(**changes)) as resp:
        assert resp.status == 400
        assert f"{errcode} " in await resp.text()


async def test_the_authorize_page_knows_the_domain_and_the_account_type(fake_client: Any) -> None:
    fake, client = fake_client
    fake.oauth.domains = frozenset({"other.example.com"})
    async with client.get("/connect/oauth2/authorize", params=authorize_query()) as resp:
        assert "10003 " in await resp.text()
    fake.oauth.domains = None
    fake.oauth.verified_service_account = False
    async with client.get("/connect/oauth2/authorize", params=authorize_query()) as resp:
        assert "10005 " in await resp.text()


async def test_allow_redirects_with_a_code_and_deny_without(fake_client: Any) -> None:
    _fake, client = fake_client
    async with client.get("/connect/oauth2/authorize", params=authorize_query()) as resp:
        page = await resp.text()
    assert "允许 · Allow" in page and "拒绝 · Deny" in page
    assert 'name="fake_user"' in page and "王小明" in page  # the follower picker
    form = {**authorize_query(), "fake_user": "o_demo_wang"}
    for decision, expect_code in (("allow", True), ("deny", False)):
        async with client.post(
            "/connect/oauth2/authorize", data={**form, "decision": decision}, allow_redirects=False
        ) as resp:
            assert resp.status == 302
            location = resp.headers["Location"]
        assert location.startswith("https://bot.example.com/oauth/callback?")
        assert ("code=" in location) is expect_code and location.endswith("state=abc123")


async def sns(client: Any, path: str, **params: str) -> dict[str, Any]:
    async with client.get(path, params=params) as resp:
        assert resp.status == 200
        answer: dict[str, Any] = await resp.json()
        return answer


def exchange_params(code: str, **changes: str) -> dict[str, str]:
    params = {
        "appid": "wx_fake_app",
        "secret": "fake_secret",
        "code": code,
        "grant_type": "authorization_code",
    }
    params.update(changes)
    return params


async def test_codes_work_once_within_five_minutes(fake_client: Any, clock: WallClock) -> None:
    fake, client = fake_client
    code = fake.oauth.issue_code("o_demo_wang")
    grant = await sns(client, "/sns/oauth2/access_token", **exchange_params(code))
    assert grant["openid"] == "o_demo_wang" and grant["scope"] == "snsapi_userinfo"
    assert grant["expires_in"] == 7200 and "refresh_token" in grant
    assert "is_snapshotuser" not in grant
    again = await sns(client, "/sns/oauth2/access_token", **exchange_params(code))
    assert again["errcode"] == 40163
    assert (await sns(client, "/sns/oauth2/access_token", **exchange_params("nope")))[
        "errcode"
    ] == 40029
    late = fake.oauth.issue_code("o_demo_wang")
    clock.advance(300)
    assert (await sns(client, "/sns/oauth2/access_token", **exchange_params(late)))[
        "errcode"
    ] == 42003
    fresh = fake.oauth.issue_code("o_demo_wang")
    for changes, errcode in (
        ({"appid": "wx_x"}, 40013),
        ({"secret": "x"}, 40125),
        ({"grant_type": "client_credential"}, 40002),
    ):
        answer = await sns(client, "/sns/oauth2/access_token", **exchange_params(fresh, **changes))
        assert answer["errcode"] == errcode


async def test_userinfo_gives_the_real_nickname_for_the_tokens_openid(
    fake_client: Any, clock: WallClock
) -> None:
    fake, client = fake_client
    grant = await sns(
        client, "/sns/oauth2/access_token", **exchange_params(fake.oauth.issue_code("o_demo_wang"))
    )
    token = grant["access_token"]
    info = await sns(
        client, "/sns/userinfo", access_token=token, openid="o_demo_wang", lang="zh_CN"
    )
    assert info["nickname"] == "王小明" and info["sex"] == 0 and info["city"] == ""
    other = await sns(client, "/sns/userinfo", access_token=token, openid="o_demo_alice")
    assert other["errcode"] == 40003
    assert (await sns(client, "/sns/userinfo", access_token="x", openid="o_demo_wang"))[
        "errcode"
    ] == 40001
    assert (await sns(client, "/sns/auth", access_token=token, openid="o_demo_wang"))[
        "errcode"
    ] == 0
    base = await sns(
        client,
        "/sns/oauth2/access_token",
        **exchange_params(fake.oauth.issue_code("o_demo_wang", scope="snsapi_base")),
    )
    answer = await sns(
        client, "/sns/userinfo", access_token=base["access_token"], openid="o_demo_wang"
    )
    assert answer["errcode"] == 48001
    snap = await sns(
        client,
        "/sns/oauth2/access_token",
        **exchange_params(fake.oauth.issue_code("o_virtual", snapshot=True)),
    )
    assert snap["is_snapshotuser"] == 1
    clock.advance(7200)
    expired = await sns(client, "/sns/userinfo", access_token=token, openid="o_demo_wang")
    assert expired["errcode"] == 42001
    assert fake.counters["sns_userinfo"] == 5


def test_the_readme_example_loads(tmp_path: Path) -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Greeting by the real WeChat nickname", 1)[1]
    block = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    config = load(tmp_path, block)
    assert config.web_authorization.enabled
    assert config.web_authorization.redirect_uri == "https://bot.example.com/oauth/callback"


def test_the_web_demo_turns_it_on_against_the_fake(tmp_path: Path) -> None:
    config = demo_config(None, "http://127.0.0.1:9999", str(tmp_path), safe=False)
    assert not config.web_authorization.enabled
    demo = with_demo_web_authorization(config, 8123, "http://127.0.0.1:9999")
    assert demo.web_authorization.enabled
    assert demo.web_authorization.redirect_uri == "http://127.0.0.1:8123/oauth/callback"
    assert authorize_url(demo, "s").startswith("http://127.0.0.1:9999/connect/oauth2/authorize?")
