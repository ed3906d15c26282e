"""The policy settings a worker applies: POLICY_FILE, INTERNAL_DOMAINS, else the tenant's domains.

Reading the tenant's verified domains costs one Graph request; the answer is kept in Redis
for a day (and in the process), so meetings do not pay for it.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import redis

from core import keys
from core.exceptions import ConfigurationError, UpstreamPermanent
from core.settings import Settings
from policy import (
    PolicyConfigError,
    PolicySettings,
    parse_domain_list,
    parse_toml,
    with_internal_domains,
)

DOMAINS_KEY = keys.TENANT_DOMAINS
DOMAINS_TTL_SECONDS = 24 * 3600


def from_settings(settings: Settings) -> PolicySettings:
    """POLICY_FILE (or the defaults) with the INTERNAL_DOMAINS override applied."""
    policy = PolicySettings()
    if settings.policy_file is not None:
        try:
            policy = parse_toml(settings.policy_file.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigurationError("POLICY_FILE", f"cannot read it: {exc.strerror}") from None
        except PolicyConfigError as exc:
            raise ConfigurationError("POLICY_FILE", str(exc)) from None
    if settings.internal_domains:
        try:
            domains = parse_domain_list(",".join(settings.internal_domains))
        except PolicyConfigError as exc:
            raise ConfigurationError("INTERNAL_DOMAINS", exc.reason) from None
        policy = with_internal_domains(policy, domains)
    return policy


def effective(
    settings: Settings, conn: redis.Redis, tenant_domains: Callable[[], list[str]]
) -> PolicySettings:
    """The settings to decide with; asks `tenant_domains` (Graph) only when none are set."""
    policy = from_settings(settings)
    if policy.internal_domains:
        return policy
    cached = conn.get(DOMAINS_KEY)
    if isinstance(cached, bytes):
        domains = json.loads(cached)
    else:
        domains = tenant_domains()
        conn.set(DOMAINS_KEY, json.dumps(domains), ex=DOMAINS_TTL_SECONDS)
    try:
        return with_internal_domains(policy, domains)
    except PolicyConfigError as exc:
        raise ConfigurationError("INTERNAL_DOMAINS", f"the tenant's domains: {exc}") from None


def check_domains(
    settings: Settings, conn: redis.Redis, tenant_domains: Callable[[], list[str]]
) -> None:
    """At a worker's start: without internal domains the policy needs the tenant's verified
    domains, so read them now (`GET /organization`, Organization.Read.All). A refusal stops the
    worker with one line naming both fixes, rather than failing every meeting later."""
    try:
        effective(settings, conn, tenant_domains)
    except UpstreamPermanent as exc:
        raise ConfigurationError(
            "INTERNAL_DOMAINS",
            "unset, and the tenant's verified domains cannot be read: set INTERNAL_DOMAINS "
            "(or internal_domains in POLICY_FILE), or grant the app Organization.Read.All "
            f"with admin consent ({exc})",
        ) from None
