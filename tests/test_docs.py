"""The README's configuration reference is generated from `SETTINGS` and must not drift."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.config import SETTINGS, reference_markdown

README = Path(__file__).resolve().parent.parent / "README.md"
START = "<!-- config-reference:start -->"
END = "<!-- config-reference:end -->"
REGENERATE = (
    "regenerate it with\n"
    '    python -c "from bot.config import reference_markdown; print(reference_markdown())"\n'
    f"and paste the output between {START} and {END} in README.md"
)


@pytest.fixture(scope="module")
def readme() -> str:
    """README.md's text."""
    return README.read_text(encoding="utf-8")


def _reference_section(readme: str) -> str:
    assert readme.count(START) == 1, f"README.md needs exactly one {START} marker"
    assert readme.count(END) == 1, f"README.md needs exactly one {END} marker"
    section = readme.split(START, 1)[1].split(END, 1)[0]
    return section.strip("\n")


def test_readme_configuration_reference_is_the_generated_table(readme: str) -> None:
    section = _reference_section(readme)
    expected = reference_markdown().strip("\n")
    assert section == expected, f"README.md's configuration reference is out of date; {REGENERATE}"


def test_every_environment_variable_of_settings_is_in_the_readme(readme: str) -> None:
    variables = [s.env for s in SETTINGS if s.env]
    missing = [v for v in variables if not re.search(rf"\b{re.escape(v)}\b", readme)]
    assert missing == [], f"README.md does not mention {missing}; {REGENERATE}"


def test_reference_has_one_row_per_setting_with_its_env_and_default() -> None:
    rows = reference_markdown().splitlines()
    assert rows[0] == "| key | env | default | description |"
    assert len(rows) == 2 + len(SETTINGS)
    assert "| `port` | `PORT` | `8080` | Port to listen on. |" in rows
    assert "| `nonce_check` | — | `true` | Reject a nonce seen within the window. |" in rows
    secret_row = next(r for r in rows if r.startswith("| `app_secret` "))
    assert secret_row.endswith("Secret. |")
    # every row has exactly four cells: no unescaped pipe inside a description
    for row in rows:
        cells = re.split(r"(?<!\\)\|", row)
        assert len(cells) == 6, row
