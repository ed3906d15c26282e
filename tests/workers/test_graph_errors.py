"""Graph failures become transient (retry) or permanent (actionable ledger error) exceptions."""

from __future__ import annotations

from types import SimpleNamespace

import httpx
import pytest

from core.exceptions import NotFound, Unauthorized, UpstreamPermanent, UpstreamTransient
from workers.graph.errors import translate


def odata(status: int, code: str = "", headers: dict[str, str] | None = None) -> Exception:
    exc = Exception("odata")
    exc.response_status_code = status  # type: ignore[attr-defined]
    exc.error = SimpleNamespace(code=code, message="App is not authorized")  # type: ignore[attr-defined]
    exc.response_headers = headers or {}  # type: ignore[attr-defined]
    return exc


class TestTranslate:
    """403 is permanent and says what to grant; 429/503 are transient with Retry-After."""

    def test_forbidden_is_actionable(self) -> None:
        err = translate(odata(403, "Forbidden"), "reading the meeting")
        assert isinstance(err, UpstreamPermanent)
        assert "application access policy" in str(err)
        assert "OnlineMeetingTranscript.Read.All" in str(err)

    @pytest.mark.parametrize("status", [429, 503, 504])
    def test_throttled_is_transient(self, status: int) -> None:
        err = translate(odata(status, headers={"Retry-After": "7"}), "x")
        assert isinstance(err, UpstreamTransient)
        assert err.retry_after == 7.0

    def test_not_found_and_unauthorized(self) -> None:
        assert isinstance(translate(odata(404), "x"), NotFound)
        assert isinstance(translate(odata(401), "x"), Unauthorized)

    def test_bad_request_is_permanent(self) -> None:
        assert isinstance(translate(odata(400), "x"), UpstreamPermanent)

    def test_transport(self) -> None:
        assert isinstance(translate(httpx.ConnectTimeout("t"), "x"), UpstreamTransient)
        assert translate(ValueError("bug"), "x") is None
