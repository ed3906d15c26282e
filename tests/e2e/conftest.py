"""End-to-end tests: msgraph's generated builders warn as they are first imported (not ours)."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/e2e/" in str(item.path).replace("\\", "/"):
            item.add_marker(pytest.mark.filterwarnings("ignore::DeprecationWarning:msgraph"))
            item.add_marker(
                pytest.mark.filterwarnings("ignore::DeprecationWarning:kiota_abstractions")
            )
