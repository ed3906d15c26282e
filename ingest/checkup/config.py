"""The settings a live setup needs beyond what start-up demands: the Graph app, Salesforce and
the public URL (malformed values never get this far: they stop `ingest` with exit status 2)."""

from __future__ import annotations

from urllib.parse import urlsplit

from core.settings import Settings, is_loopback_host
from ingest.checkup import Check, failed, passed

GUIDE = "deploy/README.md"


def missing(settings: Settings) -> list[str]:
    """The variables a live setup lacks, by name."""
    out = [
        name
        for name, value in (
            ("GRAPH_TENANT_ID", settings.graph_tenant_id),
            ("GRAPH_CLIENT_ID", settings.graph_client_id),
        )
        if not value
    ]
    if not settings.graph_client_secret and not settings.graph_client_certificate_path:
        out.append("GRAPH_CLIENT_SECRET (or GRAPH_CLIENT_CERTIFICATE_PATH)")
    if not settings.sf_instance_url:
        out.append("SF_INSTANCE_URL")
    if not settings.sf_client_id:
        out.append("SF_CLIENT_ID")
    jwt_bearer = settings.sf_username and settings.sf_private_key_path
    if not settings.sf_client_secret and not jwt_bearer:
        out.append("SF_CLIENT_SECRET (or SF_USERNAME with SF_PRIVATE_KEY_PATH)")
    if not settings.public_url:
        out.append("INGEST_PUBLIC_URL")
    return out


def check(settings: Settings, internal_domains: tuple[str, ...]) -> list[Check]:
    lacking = missing(settings)
    if lacking:
        return [
            failed(
                "settings",
                "not set: " + ", ".join(lacking),
                f"set them in the environment of every process ({GUIDE})",
            )
        ]
    sf_auth = "JWT bearer" if settings.sf_private_key_path else "client credentials"
    graph_auth = "secret" if settings.graph_client_secret else "certificate"
    domains = (
        ", ".join(internal_domains)
        if internal_domains
        else "none set: the tenant's verified domains are read from Graph"
    )
    detail = (
        f"Graph app {settings.graph_client_id} ({graph_auth}) of tenant "
        f"{settings.graph_tenant_id}; Salesforce {settings.sf_instance_url} ({sf_auth}); "
        f"public URL {settings.public_url}; internal domains: {domains}"
    )
    if is_loopback_host(urlsplit(settings.public_url or "").hostname):
        detail += " (a loopback URL: only a local emulator can reach it)"
    return [passed("settings", detail)]
