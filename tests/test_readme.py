"""The README's configuration table names exactly the variables the settings object reads,
so that the two cannot drift (a variable added to core/settings.py must be documented)."""

from __future__ import annotations

import re
from pathlib import Path

from tests.deploy.files import settings_variables

README = Path(__file__).resolve().parent.parent / "README.md"


def configuration_table() -> set[str]:
    """The variables named in the first column of the table under `### Configuration`."""
    text = README.read_text()
    section = text.split("### Configuration", 1)[1].split("\n### ", 1)[0]
    names: set[str] = set()
    for line in section.splitlines():
        if line.startswith("| `"):
            first = line.split("|")[1]
            names.update(re.findall(r"`([A-Z][A-Z0-9_]+)`", first))
    return names


class TestConfigurationTable:
    """Every setting in the table, and nothing in the table that the settings do not read."""

    def test_table_equals_the_settings(self) -> None:
        assert configuration_table() == set(settings_variables())

    def test_the_table_is_read(self) -> None:
        # The parse must see the table, or the comparison above proves nothing.
        assert {"REDIS_URL", "INGEST_OPS_TOKEN", "PORT"} <= configuration_table()
