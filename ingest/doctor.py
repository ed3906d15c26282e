"""`ingest doctor [--json]`: checks a live setup end to end and names each fix (DESIGN §3.4).

The checks run in a fixed order, each on its own (workers in ingest/checkup/): the settings;
Redis and its persistence; the Graph app's token; each application permission the
configuration needs; the Teams application access policy of each admin-added ECI user; the
public URL's validation handshake; the subscriptions' health; Salesforce sign-in and schema.
One line each, `ok` or `FAIL` with the fix; `--json` prints `{"checks": [...]}` alone on
stdout. Exit status 0 when every check passes, 1 otherwise (2, before any check, on a
malformed setting).
"""

from __future__ import annotations

import argparse
import json

import redis

from core import logs
from core.settings import Settings
from ingest.checkup import Check, failed, guarded, handshake, salesforce, store
from ingest.checkup import config as config_check
from ingest.checkup import graph as graph_check
from ingest.checkup import subscriptions as subscriptions_check
from workers import policy_config, users
from workers.subscriptions import GraphSubscriptions
from workers.users import EciUser

REDIS_TIMEOUT_SECONDS = 5.0


def collect(settings: Settings, handshake_limit: float = handshake.LIMIT_SECONDS) -> list[Check]:
    """Every check, in order; a ConfigurationError (a malformed POLICY_FILE) is raised first."""
    domains = policy_config.from_settings(settings).internal_domains
    conn = redis.Redis.from_url(
        settings.redis_url,
        socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
        socket_timeout=REDIS_TIMEOUT_SECONDS,
    )
    session = graph_check.GraphSession(settings)
    try:
        out = config_check.check(settings, domains)
        out += store.answers(conn, settings.redis_url)
        out += store.persistence(conn)
        out += guarded("graph token", graph_check.FIX_SIGN_IN, lambda: graph_check.token(session))
        try:
            admins: list[EciUser] | None = _admins(conn)
        except redis.RedisError as exc:
            admins, unread = None, f"cannot read the ECI users from Redis: {exc}"
        out += guarded(
            "permissions",
            graph_check.FIX_REACH,
            lambda: graph_check.permissions(session, domains, admins),
        )
        if admins is None:  # whose access policy to check is unknown
            out.append(failed("access policy", unread, store.FIX_UNREACHABLE))
        else:
            out += guarded(
                "access policy",
                graph_check.FIX_REACH,
                lambda: graph_check.access_policy(session, admins),
            )
        out += guarded(
            "handshake", handshake.FIX_ECHO, lambda: handshake.check(settings, handshake_limit)
        )
        out += guarded(
            subscriptions_check.NAME,
            subscriptions_check.FIX,
            lambda: _subscriptions(settings, conn, session),
        )
        out += guarded("salesforce", salesforce.FIX_SIGN_IN, lambda: salesforce.check(settings))
        return out
    finally:
        session.close()
        conn.close()


def _admins(conn: redis.Redis) -> list[EciUser]:
    """The ECI users an admin added: their meetings are read with the app's permissions."""
    return [u for u in users.all_users(conn) if u.source == "admin"]


def _subscriptions(
    settings: Settings, conn: redis.Redis, session: graph_check.GraphSession
) -> list[Check]:
    if session.client is None or session.problem:
        return [
            failed(subscriptions_check.NAME, session.problem, "fix the 'graph token' check first")
        ]
    listing = GraphSubscriptions(settings, session.client)
    return subscriptions_check.check(settings, conn, listing.list)


def run(args: argparse.Namespace, settings: Settings) -> int:
    logs.configure(level="WARNING")  # on stderr: stdout holds the report alone
    checks = collect(settings)
    if args.json:
        print(json.dumps({"checks": [c.as_json() for c in checks]}))
    else:
        print("\n".join(c.line() for c in checks))
    return 0 if all(c.ok for c in checks) else 1
