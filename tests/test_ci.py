"""CI (`.ci/run`) runs the README's `make test` on every Python the project supports.

The script is read, not run: these tests pin what it covers, and that `.ci/find-python` fails
loudly when an interpreter is missing.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUN = ROOT / ".ci" / "run"
FIND_PYTHON = ROOT / ".ci" / "find-python"
SUPPORTED = ["3.11", "3.12", "3.13"]


def _versions() -> list[str]:
    match = re.search(r"^VERSIONS=\(([^)]*)\)$", RUN.read_text(encoding="utf-8"), re.MULTILINE)
    assert match, "`.ci/run` has no VERSIONS=(...) line"
    return match[1].split()


def _commands() -> list[str]:
    """The script's command lines, comments and blank lines left out."""
    lines = (line.strip() for line in RUN.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def test_ci_covers_every_supported_python() -> None:
    assert _versions() == SUPPORTED


def test_the_oldest_version_tested_is_the_one_the_project_requires() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["requires-python"] == f">={SUPPORTED[0]}"


def test_ci_runs_make_test_per_interpreter_in_a_venv_of_its_own() -> None:
    commands = _commands()
    make = [line for line in commands if re.match(r"(if\s+)?make\s", line)]
    assert make == ['if make test PYTHON="${pythons[$i]}" VENV=".venv-$version"; then'], (
        "the README's `make test`, with this interpreter and its own venv, once in the loop"
    )
    assert 'for i in "${!VERSIONS[@]}"; do' in commands
    assert 'pythons+=("$(.ci/find-python "$version")")' in commands
    # a failing version fails the run, after the others have run too
    assert commands[-1] == 'exit "$failed"'


def test_each_interpreters_venv_is_ignored_and_cleaned() -> None:
    ignored = (ROOT / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert ".venv-3.*/" in ignored
    clean = re.search(r"^clean:\n\t(.*)$", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert clean and ".venv-3.*" in clean[1].split()


def test_find_python_gives_an_interpreter_of_the_version_asked() -> None:
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    found = subprocess.run([FIND_PYTHON, version], capture_output=True, text=True, check=True)
    python = found.stdout.strip()
    ran = subprocess.run(
        [python, "-c", "import sys; print(sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert ran.stdout.strip() == str(sys.version_info[:2])


def test_find_python_fails_loudly_when_the_version_is_missing() -> None:
    found = subprocess.run([FIND_PYTHON, "3.0"], capture_output=True, text=True)
    assert found.returncode != 0
    assert found.stdout == ""
    assert "no Python 3.0" in found.stderr
