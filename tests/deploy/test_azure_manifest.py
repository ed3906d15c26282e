"""The Entra app manifest asks for exactly DESIGN §6's Microsoft Graph permissions, by well-formed
ids that match the table an admin reads in deploy/azure/README.md."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from tests.deploy.files import DEPLOY

MICROSOFT_GRAPH = "00000003-0000-0000-c000-000000000000"
MANIFEST: dict[str, Any] = json.loads((DEPLOY / "azure" / "manifest.json").read_text())
README = (DEPLOY / "azure" / "README.md").read_text()

# DESIGN §6, word for word: the permissions the product uses, which the manifest must equal.
DESIGN_6 = """
Delegated scopes requested by the connect flow (as ECI does): `Calendars.Read`,
`Files.Read`, `OnlineMeetingArtifact.Read.All`, `OnlineMeetings.Read`,
`OnlineMeetingTranscript.Read.All`, `User.Read`, plus `openid profile email
offline_access`. Application permissions: `CallRecords.Read.All` always; `User.Read.All`
for `ingest users add`; `Organization.Read.All` only when `INTERNAL_DOMAINS` is unset (the
verified domains). A user added by an admin (`ingest users add`) rather than through the
connect flow is read with the application permissions `OnlineMeetings.Read.All`,
`OnlineMeetingArtifact.Read.All` and `OnlineMeetingTranscript.Read.All` under a Teams
application access policy. `deploy/azure/` holds the app registration manifest with exactly
these permissions.
"""
PERMISSION = re.compile(r"[A-Z][A-Za-z]+(?:\.[A-Z][A-Za-z]+)+")
OIDC = {"openid", "profile", "email", "offline_access"}
TYPES = {"Application": "Role", "Delegated": "Scope"}


def design_permissions() -> set[tuple[str, str]]:
    """(name, "Role" or "Scope") for each permission the quoted §6 text names."""
    delegated, _, application = DESIGN_6.partition("Application permissions:")
    out = set()
    for part, kind in ((delegated, "Scope"), (application, "Role")):
        for quoted in re.findall(r"`([^`]+)`", part.replace("\n", " ")):
            for word in quoted.split():
                if PERMISSION.fullmatch(word) or (kind == "Scope" and word in OIDC):
                    out.add((word, kind))
    return out


def readme_table() -> dict[tuple[str, str], str]:
    """(name, type) -> id, from the README's permission table."""
    rows = re.findall(
        r"^\| `([\w.]+)` \| (Application|Delegated) \| `([0-9a-f-]+)` \|", README, re.MULTILINE
    )
    table = {(name, TYPES[kind]): guid for name, kind, guid in rows}
    assert len(table) == len(rows), "a permission is listed twice"
    return table


def manifest_access() -> list[dict[str, str]]:
    (graph,) = MANIFEST["requiredResourceAccess"]  # Microsoft Graph and nothing else
    assert graph["resourceAppId"] == MICROSOFT_GRAPH
    return list(graph["resourceAccess"])


def test_design_quote_names_six_application_and_ten_delegated_permissions() -> None:
    kinds = [kind for _, kind in design_permissions()]
    assert (kinds.count("Role"), kinds.count("Scope")) == (6, 10)


def test_readme_table_lists_exactly_designs_permissions() -> None:
    assert set(readme_table()) == design_permissions()


def test_manifest_holds_exactly_the_readme_ids() -> None:
    access = manifest_access()
    pairs = [(a["id"], a["type"]) for a in access]
    assert len(pairs) == len(set(pairs))
    expected = {(guid, kind) for (_, kind), guid in readme_table().items()}
    assert set(pairs) == expected


def test_every_id_is_a_canonical_guid() -> None:
    for entry in manifest_access():
        assert str(uuid.UUID(entry["id"])) == entry["id"], entry
        assert set(entry) == {"id", "type"}
    ids = [a["id"] for a in manifest_access()]
    assert len(ids) == len(set(ids))  # an application permission and a scope never share an id


def test_app_is_single_tenant_with_the_callback_as_web_redirect() -> None:
    assert MANIFEST["signInAudience"] == "AzureADMyOrg"
    (uri,) = MANIFEST["web"]["redirectUris"]
    assert uri.startswith("https://") and uri.endswith("/auth/callback")
    assert not any(MANIFEST["web"]["implicitGrantSettings"].values())


def test_readme_names_the_access_policy_cmdlets_and_both_scopes_of_grant() -> None:
    for text in (
        "New-CsApplicationAccessPolicy",
        "Grant-CsApplicationAccessPolicy",
        "-Global",
        "-Identity",
        "{INGEST_PUBLIC_URL}/auth/callback",
        "GRAPH_ENCRYPTION_CERT_PATH",
        "GRAPH_ENCRYPTION_KEY_PATH",
        "openssl req",
    ):
        assert text in README, text
