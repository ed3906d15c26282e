"""Directory routes (`/users/{id|upn}`, `/me`, `/organization`) and how Graph shows each person."""

from __future__ import annotations

import uuid
from typing import Any

from aiohttp import web

from emulators.graph.auth import caller
from emulators.graph.data import (
    GRAPH_ROOT,
    collection,
    context,
    select,
    target_user,
    top,
    world_of,
)
from emulators.graph.permissions import require_directory
from emulators.graph.world import World
from emulators.scenario import Participant, User

_EMPTY_IDENTITY_SET = (
    "acsUser", "spoolUser", "phone", "guest", "encrypted", "onPremises",
    "acsApplicationInstance", "spoolApplicationInstance", "applicationInstance", "application",
    "device", "azureCommunicationServicesUser",
)  # fmt: skip


def add_routes(app: web.Application) -> None:
    app.router.add_get(f"{GRAPH_ROOT}/users", list_users)
    app.router.add_get(f"{GRAPH_ROOT}/users/{{uid}}", get_user)
    app.router.add_get(f"{GRAPH_ROOT}/me", get_user)
    app.router.add_get(f"{GRAPH_ROOT}/organization", organization)


async def get_user(request: web.Request) -> web.Response:
    """A tenant user; an app needs User.Read.All, a user may read themself with User.Read or
    anyone with User.ReadBasic.All / User.Read.All."""
    user = target_user(request)
    who = caller(request)
    own = not who.is_app and (who.user_id or "").lower() == user.id.lower()
    scopes = ["User.ReadBasic.All", "User.Read.All", "Directory.Read.All"]
    require_directory(request, "User.Read.All", [*scopes, "User.Read"] if own else scopes)
    body = {"@odata.context": context(request, "users/$entity")} | profile(user)
    return web.json_response(select(request, body))


async def list_users(request: web.Request) -> web.Response:
    """The tenant's users, a page of `$top` (100 by default, as Graph's); an app needs
    User.Read.All, a user User.ReadBasic.All or a higher scope."""
    require_directory(
        request, "User.Read.All", ["User.ReadBasic.All", "User.Read.All", "Directory.Read.All"]
    )
    users = [select(request, profile(u)) for u in world_of(request).scenario.users]
    return collection(request, "users", users, top(request, 100))


def profile(user: User) -> dict[str, Any]:
    given, _, surname = user.name.partition(" ")
    return {
        "businessPhones": [],
        "displayName": user.name,
        "givenName": given or None,
        "jobTitle": None,
        "mail": user.upn,
        "mobilePhone": None,
        "officeLocation": None,
        "preferredLanguage": "en-US",
        "surname": surname or None,
        "userPrincipalName": user.upn,
        "id": user.id,
    }


async def organization(request: web.Request) -> web.Response:
    """The tenant and its verified domains: an app needs Organization.Read.All (or a higher
    role); a signed-in user reads them with User.Read."""
    require_directory(request, "Organization.Read.All", ["User.Read", "Directory.Read.All"])
    world = world_of(request)
    domains = world.scenario.tenant.domains
    initial = domains[0].split(".")[0] + ".onmicrosoft.com"
    verified = [
        {"capabilities": "Email, OfficeCommunicationsOnline", "isDefault": i == 0,
         "isInitial": False, "name": d, "type": "Managed"}
        for i, d in enumerate(domains)
    ] + [{"capabilities": "Email, OfficeCommunicationsOnline", "isDefault": False,
          "isInitial": True, "name": initial, "type": "Managed"}]  # fmt: skip
    org = {
        "id": world.tenant_id,
        "displayName": domains[0].split(".")[0].title(),
        "verifiedDomains": verified,
    }
    return web.json_response({"@odata.context": context(request, "organization"), "value": [org]})


# -- identities -----------------------------------------------------------------------------
def guest_id(meeting_id: str, index: int) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"guest:{meeting_id}:{index}"))


def visitor_id(meeting_id: str, index: int) -> str:
    """An anonymous visitor's id in callRecords: `teamsvisitor:` and 32 hex digits."""
    return "teamsvisitor:" + uuid.uuid5(uuid.NAMESPACE_URL, f"guest:{meeting_id}:{index}").hex


def b2b_upn(world: World, email: str) -> str:
    """A B2B guest's UPN in the host tenant: `carol_fabrikam.com#EXT#@contoso.onmicrosoft.com`."""
    local, _, domain = email.partition("@")
    host = world.scenario.tenant.domains[0].split(".")[0] + ".onmicrosoft.com"
    return f"{local}_{domain}".lower() + f"#EXT#@{host}"


def call_identity(world: World, person: Participant, meeting_id: str, index: int) -> dict[str, Any]:
    """A communicationsIdentitySet as callRecords show this participant (DESIGN §7)."""
    out: dict[str, Any] = dict.fromkeys(_EMPTY_IDENTITY_SET)
    out["user"] = None
    if person.kind == "user":
        user = world.user(person.upn or "")
        assert user is not None
        out["user"] = {"@odata.type": "#microsoft.graph.userIdentity", "id": user.id,
                       "displayName": user.name, "tenantId": world.tenant_id,
                       "userPrincipalName": user.upn}  # fmt: skip
    elif person.kind == "external":
        email = person.email or ""
        ident = {"@odata.type": "#microsoft.graph.userIdentity", "id": world.person_id(person),
                 "displayName": "External user",
                 "tenantId": world.person_tenant(person)}  # fmt: skip
        if world.is_b2b_guest(person):
            # A guest account of the home tenant: its name and #EXT# UPN are the tenant's own.
            ident["displayName"] = person.name or email.split("@")[0]
            ident["userPrincipalName"] = b2b_upn(world, email)
        out["user"] = ident
    elif person.kind == "phone":
        out["phone"] = {"id": person.phone, "displayName": None}
    else:
        # An anonymous visitor is a `user` with a `teamsvisitor:` id and neither name nor
        # tenant (reference/participants.md §3: docs #8196, contrib #5304), not the `guest` key.
        out["user"] = {"@odata.type": "#microsoft.graph.userIdentity",
                       "id": visitor_id(meeting_id, index), "displayName": None,
                       "tenantId": None}  # fmt: skip
    return out


def display_name(world: World, person: Participant) -> str:
    """The name a person shows in attendance reports and transcripts."""
    if person.kind == "user":
        user = world.user(person.upn or "")
        return user.name if user else ""
    if person.kind == "external":
        return person.name or (person.email or "").split("@")[0]
    if person.kind == "phone":
        return person.phone or ""
    return person.guest or ""
