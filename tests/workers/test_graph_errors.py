"""Graph failures become transient (retry) or permanent (actionable ledger error) exceptions."""

from __future__ import annotations

from types import SimpleNamespace

import httpx
import pytest

from core.exceptions import NotFound, Unauthorized, UpstreamPermanent, UpstreamTransient
from workers.graph.errors import translate


def odata(
    status: int,
    code: str = "",
    headers: dict[str, str] | None = None,
    message: str = "App is not authorized",
) -> Exception:
    exc = Exception("odata")
    exc.response_status_code = status  # type: ignore[attr-defined]
    exc.error = SimpleNamespace(code=code, message=message)  # type: ignore[attr-defined]
    exc.response_headers = headers or {}  # type: ignore[attr-defined]
    return exc


class TestTranslate:
    """403 is permanent and says what to grant; 429/503 are transient with Retry-After."""

    def test_forbidden_is_actionable(self) -> None:
        err = translate(odata(403, "Forbidden"), "reading the meeting")
        assert isinstance(err, UpstreamPermanent)
        assert "application access policy" in str(err)
        assert "OnlineMeetingTranscript.Read.All" in str(err)

    @pytest.mark.parametrize(
        "message",
        [
            "No application access policy found for this app.",
            "App 1234 is not authorized to Create meeting on behalf of user 5678",
            "Application is not allowed to perform operations on the user 'x@contoso.com'",
        ],
    )
    def test_access_policy_names_the_cmdlets(self, message: str) -> None:
        user = "11111111-aaaa-4bbb-8ccc-000000000002"
        err = translate(odata(403, "Forbidden", message=message), "reading", "X.Read.All", user,
                        "app-1")  # fmt: skip
        assert isinstance(err, UpstreamPermanent)
        text = str(err)
        assert 'New-CsApplicationAccessPolicy -Identity "ingest" -AppIds "app-1"' in text
        assert ".." not in text
        assert f'Grant-CsApplicationAccessPolicy -PolicyName "ingest" -Identity "{user}"' in text
        assert "X.Read.All" not in text  # the permission is there; the policy is not

    def test_missing_permission_names_it(self) -> None:
        message = "Insufficient privileges to complete the operation."
        err = translate(odata(403, "Authorization_RequestDenied", message=message),
                        "reading the organization's domains", "Organization.Read.All")  # fmt: skip
        assert "Permission missing" in str(err) and "Organization.Read.All" in str(err)
        assert "CsApplicationAccessPolicy" not in str(err)

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
