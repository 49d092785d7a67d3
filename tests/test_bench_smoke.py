"""`python -m bench --smoke` works end to end: servers, signed pushes, load, checks.

It never looks at speed. The load comes from wrk when it is on PATH, otherwise from the bench's
in-process aiohttp client loop, so the test runs (and passes) on a machine without wrk too.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from redis_fixtures import in_ci

ROOT = Path(__file__).resolve().parent.parent
SMOKE_FOLLOWERS = 50  # BenchOptions.for_smoke


def _smoke(tmp_path: Path) -> dict[str, Any]:
    out = tmp_path / "smoke.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,  # a hang must fail the test, not the CI run; it takes ~15 s
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    report: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return report


def test_smoke_drives_bare_and_both_bots_in_both_modes_with_every_check_passing(
    tmp_path: Path,
) -> None:
    report = _smoke(tmp_path)

    driver = report["machine"]["driver"]
    assert driver.startswith("wrk") == (shutil.which("wrk") is not None)
    rows = {(r["server"], r["mode"]): r for r in report["rows"]}
    # the Redis rows run wherever redis-server is installed (always in CI)
    with_redis = shutil.which("redis-server") is not None or in_ci()
    servers = ("bare", "bot", "bot+redis") if with_redis else ("bare", "bot")
    assert set(rows) == {(server, mode) for server in servers for mode in ("plain", "safe")}
    for row in rows.values():
        assert row["load"]["requests"] > 0
        assert sum(row["load"]["errors"].values()) == 0
    assert set(report["bots"]) == set(servers[1:])
    for name, bot in report["bots"].items():
        # the bot saw only fresh messages and answered every one with a greeting
        assert set(bot["outcomes"]) == {"replied"}, name
        bot_requests = sum(
            rows[(name, m)]["load"]["requests"] + rows[(name, m)]["warmup"]["requests"]
            for m in ("plain", "safe")
        )
        assert bot["outcomes"]["replied"] >= bot_requests
        assert bot["upstream"]["stable_token"] == 1
        assert 0 < bot["upstream"]["user_info"] <= SMOKE_FOLLOWERS
        assert bot["peak_rss_kib"] > 10_000
    if with_redis:
        redis_bot = report["bots"]["bot+redis"]
        pushes = sum(redis_bot["outcomes"].values())
        # the bench's own Redis counted the bot's commands; the bot its round trips
        assert redis_bot["redis_commands"]["hgetall"] >= pushes
        assert 0 < redis_bot["redis_round_trips"]["claim_pushes"] < pushes
    checks = {c["name"]: c for c in report["checks"]}
    assert checks["corpus signed like bot.testing.sign_request"]["ok"] is True
    for name in servers[1:]:
        probe = f"probe plain ({name}): greeting by the operator's remark"
        assert "Bench 0" in checks[probe]["detail"]
        probe = f"probe safe ({name}): greeting by the operator's remark"
        assert "(encrypted)" in checks[probe]["detail"]
    assert report["ok"] is True
