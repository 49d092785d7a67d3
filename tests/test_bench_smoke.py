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


def test_smoke_drives_bare_and_bot_in_both_modes_with_every_check_passing(
    tmp_path: Path,
) -> None:
    report = _smoke(tmp_path)

    driver = report["machine"]["driver"]
    assert driver.startswith("wrk") == (shutil.which("wrk") is not None)
    rows = {(r["server"], r["mode"]): r for r in report["rows"]}
    assert set(rows) == {("bare", "plain"), ("bare", "safe"), ("bot", "plain"), ("bot", "safe")}
    for row in rows.values():
        assert row["load"]["requests"] > 0
        assert sum(row["load"]["errors"].values()) == 0
    # the bot saw only fresh messages and answered every one with a greeting
    assert set(report["outcomes"]) == {"replied"}
    bot_requests = sum(
        rows[("bot", m)]["load"]["requests"] + rows[("bot", m)]["warmup"]["requests"]
        for m in ("plain", "safe")
    )
    assert report["outcomes"]["replied"] >= bot_requests
    assert report["upstream"]["stable_token"] == 1
    assert 0 < report["upstream"]["user_info"] <= SMOKE_FOLLOWERS
    assert report["bot_peak_rss_kib"] > 10_000
    checks = {c["name"]: c for c in report["checks"]}
    assert checks["corpus signed like bot.testing.sign_request"]["ok"] is True
    assert "Bench 0" in checks["probe plain: greeting by the operator's remark"]["detail"]
    assert "(encrypted)" in checks["probe safe: greeting by the operator's remark"]["detail"]
    assert report["ok"] is True
