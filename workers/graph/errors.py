"""Graph failures turned into the product's exceptions: transient (retry) or permanent (stop).

403 means a missing consent or no Teams application access policy: retrying cannot mend it,
so it becomes an UpstreamPermanent whose message says what the admin must do: grant the one
permission the request needed, or run the two PowerShell cmdlets for the organizer.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from core.exceptions import (
    NotFound,
    Unauthorized,
    UpstreamError,
    UpstreamPermanent,
    UpstreamTransient,
)

_AADSTS = re.compile(r"AADSTS\d+")  # Entra's error code, e.g. AADSTS7000215: bad secret
_TRANSIENT = frozenset({408, 409, 423, 429, 500, 502, 503, 504})
# How Graph words a missing Teams application access policy: the current docs' "No
# application access policy found for this app", the older "App … is not authorized to …
# on behalf of user …", and "Application is not allowed to perform operations on the user".
_NO_POLICY = re.compile(
    r"application access policy|on behalf of user|not allowed to perform operations on the user",
    re.IGNORECASE,
)
_CONSENT_HINT = (
    "grant the app's application permissions (CallRecords.Read.All, OnlineMeetings.Read.All, "
    "OnlineMeetingArtifact.Read.All, OnlineMeetingTranscript.Read.All) with admin consent, "
    "and a Teams application access policy for the organizer "
    "(New-CsApplicationAccessPolicy / Grant-CsApplicationAccessPolicy)"
)
# How a 403's message tells its two causes apart (`ingest doctor` reads them back).
NO_POLICY_TEXT = "No Teams application access policy"
NO_PERMISSION_TEXT = "Permission missing"


def _retry_after(headers: Any) -> float | None:
    if headers is None:
        return None
    raw = None
    try:
        raw = headers.get("retry-after") or headers.get("Retry-After")
    except AttributeError:
        return None
    if not raw:
        return None
    text = next(iter(raw), "") if isinstance(raw, list | tuple | set) else raw
    text = str(text).strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def policy_fix(user_id: str | None, app_id: str | None = None) -> str:
    """What a Teams administrator runs so that the app may read `user_id`'s meetings."""
    who = f'-Identity "{user_id or "<organizer id>"}"'
    return (
        "a Teams administrator creates and grants a Teams application access policy for the "
        f'app: New-CsApplicationAccessPolicy -Identity "ingest" -AppIds "{app_id or "<app id>"}"'
        f', then Grant-CsApplicationAccessPolicy -PolicyName "ingest" {who} (or -Global); '
        "it takes up to 30 minutes to apply"
    )


def permission_fix(permission: str) -> str:
    return (
        f"grant the app the Microsoft Graph permission {permission} and give admin consent "
        "(Entra admin center > App registrations > API permissions)"
    )


def forbidden(
    detail: str, message: str, permission: str | None, user_id: str | None, app_id: str | None
) -> str:
    """The ledger text of a 403: the access policy's cmdlets or the permission to grant."""
    detail = detail.rstrip(".")
    if _NO_POLICY.search(message):
        return f"{detail}. {NO_POLICY_TEXT}: {policy_fix(user_id, app_id)}"
    if permission:
        return f"{detail}. {NO_PERMISSION_TEXT}: {permission_fix(permission)}"
    return f"{detail}. Access denied: {_CONSENT_HINT}"


def from_status(
    status: int,
    code: str,
    message: str,
    what: str,
    headers: Any = None,
    permission: str | None = None,
    user_id: str | None = None,
    app_id: str | None = None,
) -> UpstreamError:
    """The product's exception for a Graph answer with `status` while doing `what`; a 403 names
    `permission` (what the request needed) or the access policy of app `app_id` for `user_id`."""
    detail = f"Graph {status} {code or ''}".rstrip() + f" while {what}"
    if message:
        detail += f": {message[:300]}"
    if status == 404:
        return NotFound(detail)
    if status == 401:
        return Unauthorized(detail)
    if status == 403:
        return UpstreamPermanent(forbidden(detail, message, permission, user_id, app_id))
    if status == 402:
        return UpstreamPermanent(
            f"{detail}. Metered API: set up Azure billing for the app (metered Teams APIs)"
        )
    if status in _TRANSIENT:
        return UpstreamTransient(detail, retry_after=_retry_after(headers))
    return UpstreamPermanent(detail)


def translate(
    exc: BaseException,
    what: str,
    permission: str | None = None,
    user_id: str | None = None,
    app_id: str | None = None,
) -> UpstreamError | None:
    """The product's exception for an SDK or transport failure, or None when not one."""
    status = getattr(exc, "response_status_code", None)
    if isinstance(status, int):
        error = getattr(exc, "error", None)
        code = str(getattr(error, "code", "") or "")
        message = str(getattr(error, "message", "") or "")
        headers = getattr(exc, "response_headers", None)
        return from_status(status, code, message, what, headers, permission, user_id, app_id)
    if isinstance(exc, httpx.TimeoutException):
        return UpstreamTransient(f"Graph timed out while {what}")
    if isinstance(exc, httpx.TransportError):
        return UpstreamTransient(f"Graph unreachable while {what}: {type(exc).__name__}")
    name = type(exc).__name__
    if name == "ClientAuthenticationError":  # azure-identity: the token request failed
        auth_status = getattr(exc, "status_code", None)
        entra = _AADSTS.search(str(exc))
        if entra is None and auth_status is None and getattr(exc, "response", None) is None:
            # Neither Entra's error code nor a status: the authority was not reached.
            return UpstreamTransient(f"Graph sign-in unreachable while {what}")
        if isinstance(auth_status, int) and (auth_status == 429 or auth_status >= 500):
            return UpstreamTransient(f"Graph sign-in answered {auth_status} while {what}")
        return UpstreamPermanent(
            f"Graph sign-in failed while {what}"
            + (f" ({entra.group(0)})" if entra else "")
            + ": check GRAPH_TENANT_ID, GRAPH_CLIENT_ID and the client secret or certificate"
        )
    if name == "ServiceRequestError":  # azure-identity could not reach the authority
        return UpstreamTransient(f"Graph sign-in unreachable while {what}")
    return None
