"""Graph: the app's token, each application permission the configuration needs (DESIGN §6),
and the Teams application access policy for each ECI user an admin added.

Each permission is proven by one read Graph answers only with it (workers/graph/probes.py);
a 403 names the permission and the admin-consent link. The token's `roles` claim (the
consented application permissions) is shown, and decides only where no read can: when every
admin-added user is outside the access policy, no meeting read gets as far as the role.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jwt

from core.exceptions import ConfigurationError, UpstreamError
from core.settings import Settings
from ingest.checkup import Check, failed, passed
from workers.graph import probes
from workers.graph.api import ARTIFACTS, TRANSCRIPTS
from workers.graph.client import GraphClient
from workers.graph.errors import NO_PERMISSION_TEXT, NO_POLICY_TEXT, policy_fix
from workers.users import EciUser

FIX_SIGN_IN = (
    "check GRAPH_TENANT_ID, GRAPH_CLIENT_ID and GRAPH_CLIENT_SECRET or "
    "GRAPH_CLIENT_CERTIFICATE_PATH "
    "(an expired client secret is the usual cause: add a new one under Certificates & secrets) "
    "and that GRAPH_AUTHORITY is reachable"
)
FIX_REACH = "make Graph reachable, then run `ingest doctor` again"
# Application permission -> the read that proves it: once, or as an admin-added user.
_APP_WIDE: dict[str, Callable[[GraphClient], int]] = {
    probes.CALL_RECORDS: probes.call_records,
    probes.USERS: probes.users,
    probes.ORGANIZATION: probes.organization,
}
_PER_USER: dict[str, Callable[[GraphClient, str], int]] = {
    probes.MEETINGS: probes.meetings,
    ARTIFACTS: probes.attendance,
    TRANSCRIPTS: probes.transcripts,
}


class GraphSession:
    """The checks' one app client, and what the token check learnt (or why there is none)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.client: GraphClient | None = None
        self.roles: frozenset[str] | None = None  # the token's `roles` claim
        self.problem = "not checked: no app token (see the 'graph token' check)"

    def close(self) -> None:
        if self.client is not None:
            self.client.close()

    def consent_url(self) -> str:
        s = self.settings
        return f"{s.graph_authority}/{s.graph_tenant_id}/adminconsent?client_id={s.graph_client_id}"


def token(session: GraphSession) -> list[Check]:
    """Client credentials against GRAPH_AUTHORITY: one token request."""
    s = session.settings
    try:
        session.client = GraphClient(s)
    except ConfigurationError as exc:
        session.problem = f"not checked: the Graph app is not configured ({exc})"
        fix = "set GRAPH_TENANT_ID, GRAPH_CLIENT_ID and GRAPH_CLIENT_SECRET (or a certificate)"
        return [failed("graph token", f"cannot sign in: {exc}", fix)]
    try:
        raw = session.client.access_token()
    except UpstreamError as exc:
        return [failed("graph token", str(exc), FIX_SIGN_IN)]
    try:  # read, not verified: the roles only name what a refusal means
        claims: dict[str, Any] = jwt.decode(raw, options={"verify_signature": False})
    except jwt.PyJWTError:
        claims = {}
    roles = claims.get("roles")
    session.roles = frozenset(str(r) for r in roles) if isinstance(roles, list) else None
    session.problem = ""
    shown = ", ".join(sorted(session.roles)) if session.roles else "none"
    return [
        passed(
            "graph token",
            f"app {s.graph_client_id} signed in at {s.graph_authority}/"
            f"{s.graph_tenant_id}; consented roles: {shown}",
        )
    ]


def needed(internal_domains: tuple[str, ...], admins: list[EciUser] | None) -> list[str]:
    """The application permissions this configuration uses (DESIGN §6)."""
    out = [probes.CALL_RECORDS, probes.USERS]
    if not internal_domains:
        out.append(probes.ORGANIZATION)
    if admins:
        out += list(_PER_USER)
    return out


def permissions(
    session: GraphSession, internal_domains: tuple[str, ...], admins: list[EciUser] | None
) -> list[Check]:
    out = []
    for permission in needed(internal_domains, admins):
        name = f"permission {permission}"
        if session.client is None or session.problem:
            out.append(failed(name, session.problem, "fix the 'graph token' check first"))
        elif permission in _APP_WIDE:
            out.append(_app_wide(session, permission))
        else:
            out.append(_per_user(session, permission, admins or []))
    return out


def _app_wide(session: GraphSession, permission: str) -> Check:
    assert session.client is not None
    try:
        found = _APP_WIDE[permission](session.client)
    except UpstreamError as exc:
        return _refused(session, permission, exc)
    return passed(f"permission {permission}", f"granted: the read answered ({found} found)")


def _per_user(session: GraphSession, permission: str, admins: list[EciUser]) -> Check:
    """Read as each admin-added user in turn until one read is authorized."""
    assert session.client is not None
    why = "no admin-added user is inside the access policy, so no read could prove it"
    for user in admins:
        try:
            _PER_USER[permission](session.client, user.id)
        except UpstreamError as exc:
            text = str(exc)
            if NO_POLICY_TEXT in text:
                continue  # this user's policy is the next check's; try another user
            if text.startswith("Graph 400"):  # the probe's made-up meeting id, refused as such
                why = f"Graph answered the read of {user.upn}'s with 400"
                break
            return _refused(session, permission, exc)
        granted = f"granted: Graph answered the read for {user.upn}"
        return passed(f"permission {permission}", granted)
    if session.roles is not None and _holds(session.roles, permission):
        return passed(f"permission {permission}", f"in the app token's roles ({why})")
    return failed(
        f"permission {permission}",
        f"not in the app token's roles ({why})",
        _consent_fix(session, permission),
    )


def _refused(session: GraphSession, permission: str, exc: UpstreamError) -> Check:
    text = str(exc).split(f". {NO_PERMISSION_TEXT}")[0]
    if not text.startswith("Graph 403"):
        return failed(f"permission {permission}", f"cannot check: {text}", FIX_REACH)
    if session.roles is not None and not _holds(session.roles, permission):
        text += " (the app token's roles lack it too)"
    return failed(f"permission {permission}", text, _consent_fix(session, permission))


def _consent_fix(session: GraphSession, permission: str) -> str:
    return (
        f"add the Microsoft Graph application permission {permission} to the app "
        f"registration and grant admin consent: {session.consent_url()}"
    )


def _holds(roles: frozenset[str], permission: str) -> bool:
    """The role, or its ReadWrite sibling that Graph accepts in its place."""
    return permission in roles or permission.replace(".Read.", ".ReadWrite.") in roles


def access_policy(session: GraphSession, admins: list[EciUser]) -> list[Check]:
    """For each admin-added user: a read of their online meetings with the app's token."""
    if not admins:
        return [
            passed(
                "access policy",
                "no admin-added ECI users (the connect flow's users "
                "are read with their own delegated tokens)",
            )
        ]
    out = []
    app_id = session.settings.graph_client_id
    for user in admins:
        name = f"access policy {user.upn}"
        if session.client is None or session.problem:
            out.append(failed(name, session.problem, "fix the 'graph token' check first"))
            continue
        try:
            probes.meetings(session.client, user.id)
        except UpstreamError as exc:
            text = str(exc)
            if NO_POLICY_TEXT in text:
                refusal = text.split(". ")[0]
                detail = f"Graph refused the app a read of {user.upn}'s meetings: {refusal}"
                out.append(failed(name, detail, policy_fix(user.id, app_id)))
            elif text.startswith("Graph 403"):
                out.append(
                    failed(
                        name,
                        "cannot check: " + text.split(f". {NO_PERMISSION_TEXT}")[0],
                        _consent_fix(session, probes.MEETINGS),
                    )
                )
            else:
                out.append(failed(name, f"cannot check: {text}", FIX_REACH))
            continue
        out.append(passed(name, f"the app may read the online meetings of {user.upn} ({user.id})"))
    return out
