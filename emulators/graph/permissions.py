"""Who may read what: consented application roles and the Teams application access policy.

An app token carries only the roles the scenario's admin consented to
(`tenant.app_permissions`; tokens.py puts them in the token). Reading a user's online meetings,
attendance reports or transcripts with an app token also needs the Teams application access
policy granted to that user (`tenant.access_policy`): Graph's "Allow applications to access
online meetings on behalf of a user". A delegated token (the connect flow) reads its own
user's meetings with its scopes, and needs no policy.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from aiohttp import web

from emulators.graph.auth import Caller, caller
from emulators.graph.errors import GraphHTTPError
from emulators.scenario import GLOBAL, Scenario

INSUFFICIENT = "Insufficient privileges to complete the operation."
# Graph's answer when no policy covers the user (learn.microsoft.com, "Configure application
# access to online meetings", Errors; the same text users report from live tenants).
NO_POLICY = "No application access policy found for this app."
# The documented roles above the least privileged one, which Graph accepts as well.
HIGHER = {
    "User.Read.All": ("User.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"),
    "Organization.Read.All": (
        "Directory.Read.All",
        "Organization.ReadWrite.All",
        "Directory.ReadWrite.All",
    ),
    "OnlineMeetings.Read.All": ("OnlineMeetings.ReadWrite.All",),
}


@dataclass(frozen=True)
class AccessPolicy:
    """To whom the Teams application access policy is granted: everyone, or these user ids."""

    everyone: bool
    user_ids: frozenset[str] = frozenset()

    @classmethod
    def of(cls, scenario: Scenario) -> AccessPolicy:
        granted = scenario.tenant.access_policy
        if isinstance(granted, str):
            return cls(everyone=granted == GLOBAL)
        upns = {u.lower() for u in granted}
        return cls(False, frozenset(u.id.lower() for u in scenario.users if u.upn.lower() in upns))

    def covers(self, user_id: str) -> bool:
        return self.everyone or user_id.lower() in self.user_ids


POLICY_KEY = web.AppKey("graph_access_policy", AccessPolicy)


def accepted(role: str) -> frozenset[str]:
    """`role` and the higher-privileged roles Graph accepts in its place."""
    return frozenset((role, *HIGHER.get(role, ())))


def holds(who: Caller, roles: Iterable[str]) -> bool:
    return any(bool(accepted(r) & who.roles) for r in roles)


def require_app_role(request: web.Request, role: str, code: str = "Forbidden") -> Caller:
    """An app-only caller holding `role` (or a higher one); 403 `code` otherwise."""
    who = caller(request)
    if not who.is_app or not holds(who, [role]):
        raise GraphHTTPError(403, code, f"Missing application permission: {role}. {INSUFFICIENT}")
    return who


def require_policy(request: web.Request, who: Caller, user_id: str) -> None:
    """An app reading `user_id`'s meetings needs the access policy granted to that user."""
    policy = request.app.get(POLICY_KEY)
    if who.is_app and policy is not None and not policy.covers(user_id):
        raise GraphHTTPError(403, "Forbidden", NO_POLICY)


def require_user_access(request: web.Request, user_id: str, *, app_role: str, scope: str) -> Caller:
    """An app token holding `app_role` under the access policy, or a delegated token OF
    `user_id` holding `scope`."""
    who = caller(request)
    if who.is_app:
        if not holds(who, [app_role]):
            raise GraphHTTPError(403, "Forbidden", INSUFFICIENT)
        require_policy(request, who, user_id)
        return who
    own = who.user_id is not None and who.user_id.lower() == user_id.lower()
    if own and (scope in who.scopes or _implied(scope, who.scopes)):
        return who
    raise GraphHTTPError(
        403,
        "Forbidden",
        f"The caller may read only their own resources with the delegated permission {scope}.",
    )


def require_directory(request: web.Request, role: str, delegated: Iterable[str]) -> Caller:
    """A directory read (`/users`, `/organization`): an app holding `role` (or a higher one),
    or a user holding one of `delegated`; 403 Authorization_RequestDenied otherwise."""
    who = caller(request)
    allowed = holds(who, [role]) if who.is_app else bool(set(delegated) & who.scopes)
    if not allowed:
        raise GraphHTTPError(403, "Authorization_RequestDenied", INSUFFICIENT)
    return who


def _implied(scope: str, held: frozenset[str]) -> bool:
    """`X.Read.All` held implies `X.Read` (Graph grants the narrower scope)."""
    return scope.endswith(".Read") and scope + ".All" in held
