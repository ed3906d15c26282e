"""`ingest doctor`'s checks: each a function that returns lines of `Check`, one per finding.

Every check stands alone: it makes its own read-only requests and turns what goes wrong into
a failed `Check` that names the dependency and the fix, so one failure never hides another.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from core.exceptions import IngestError


@dataclass(frozen=True)
class Check:
    """One line of the doctor's report: `fix` says what to do when `ok` is false."""

    name: str
    ok: bool
    detail: str
    fix: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail, "fix": self.fix}

    def line(self) -> str:
        if self.ok:
            return f"ok    {self.name}: {self.detail}"
        return f"FAIL  {self.name}: {self.detail} -- fix: {self.fix}"


def passed(name: str, detail: str) -> Check:
    return Check(name, True, detail)


def failed(name: str, detail: str, fix: str) -> Check:
    return Check(name, False, detail, fix)


def guarded(name: str, fix: str, check: Callable[[], list[Check]]) -> list[Check]:
    """`check()`, or one failed line naming what broke: an unexpected error in one check must
    neither stop the others nor print a traceback."""
    try:
        return check()
    except IngestError as exc:
        return [failed(name, str(exc), fix)]
    except Exception as exc:  # the report names it; the other checks go on
        return [failed(name, f"{type(exc).__name__}: {str(exc)[:300]}", fix)]


def safe_url(url: str) -> str:
    """`url` without a password (REDIS_URL may carry one)."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))
