"""deploy/README.md goes from nothing to a live setup in order and ends with `ingest doctor`;
every file the deploy guides name is there."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.deploy.files import DEPLOY, ROOT, procfile

GUIDE = (DEPLOY / "README.md").read_text()
GUIDES = [*sorted(DEPLOY.glob("*/README.md")), DEPLOY / "README.md"]
# The milestones of going live, in the order an operator must reach them.
ORDER = [
    "sf project deploy start",
    "azure/manifest.json",
    "INGEST_SECRET_KEY",
    "appendonly",
    "ingest worker",
    "ingest users add",
    "ingest subscriptions ensure",
    "ingest doctor",
]


def test_guide_reaches_each_milestone_in_order() -> None:
    steps = GUIDE[GUIDE.index("## 1. ") :]
    position = 0
    for milestone in ORDER:
        position = steps.find(milestone, position)
        assert position >= 0, f"{milestone!r} missing, or before the previous milestone"


def test_guide_ends_with_doctor_all_ok() -> None:
    steps = re.findall(r"^## (\d+)\. (.*)$", GUIDE, flags=re.MULTILINE)
    assert [int(n) for n, _ in steps] == list(range(1, len(steps) + 1))
    assert "`ingest doctor`" in steps[-1][1]
    last = " ".join(GUIDE[GUIDE.index(f"## {len(steps)}. ") :].split())
    assert "every line says `ok`" in last and "exits 0" in last


def test_guide_names_every_procfile_process() -> None:
    for name, argv in procfile().items():
        assert f"`{name}`" in GUIDE and " ".join(argv[:2]) in GUIDE, name


@pytest.mark.parametrize("guide", GUIDES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_file_a_guide_names_exists(guide: Path) -> None:
    named = re.findall(r"`((?:salesforce|azure|heroku|docker|deploy)/[\w./-]*)`", guide.read_text())
    for path in named:
        base = ROOT if path.startswith("deploy/") else DEPLOY
        assert (base / path).exists(), f"{guide}: {path}"


def test_guide_points_to_each_platform_s_files() -> None:
    for path in (
        "salesforce/README.md",
        "azure/README.md",
        "azure/manifest.json",
        "heroku/README.md",
        "docker/README.md",
        "docker/env.example",
    ):
        assert f"`{path}`" in GUIDE, path


def test_heroku_guide_says_where_app_json_lives() -> None:
    text = (DEPLOY / "heroku" / "README.md").read_text()
    assert "`app.json` at the **repository root**" in text
    assert (ROOT / "app.json").is_file()
