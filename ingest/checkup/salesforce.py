"""Salesforce: sign-in, then the start-up describe check (one API call), each missing or
read-only field of DESIGN §6 and each unreadable look-up on a line of its own with its fix."""

from __future__ import annotations

import re

from core.exceptions import ConfigurationError, UpstreamError
from core.settings import Settings
from ingest.checkup import Check, failed, passed
from workers.salesforce import schema
from workers.salesforce.client import SalesforceClient

FIX_SIGN_IN = (
    "check SF_INSTANCE_URL, SF_CLIENT_ID and SF_CLIENT_SECRET (client credentials: "
    "the connected app's Run As user) or SF_USERNAME with SF_PRIVATE_KEY_PATH (JWT "
    "bearer: the certificate uploaded to the connected app)"
)
DEPLOY = "deploy the objects: sf project deploy start --source-dir deploy/salesforce/force-app"
ASSIGN = (
    "assign the Teams_Transcript_Integration permission set to the integration user "
    "(sf org assign permset --name Teams_Transcript_Integration)"
)
# A problem as schema.problems words it: `Object[.Field] (reason)`.
_PROBLEM = re.compile(r"^(?P<what>\S+) \((?P<reason>[^)]*)\)$")


def fix_for(reason: str, what: str) -> str:
    if reason in ("object not found", "field not found"):
        return f"{DEPLOY}, then {ASSIGN}"
    if reason == "not updateable" and what.endswith(".Meeting__c"):
        return f"{DEPLOY} again (the master-detail field must allow reparenting), then {ASSIGN}"
    if reason in ("not createable", "not updateable", "object not createable"):
        return f"{ASSIGN}: it grants create and edit on {what}"
    return f"give the integration user read access to {what} (its profile or {ASSIGN})"


def check(settings: Settings) -> list[Check]:
    try:
        client = SalesforceClient.from_settings(settings)
    except ConfigurationError as exc:
        return [
            failed("salesforce sign-in", f"not configured: {exc}", FIX_SIGN_IN),
            failed("salesforce schema", "not checked: no sign-in", "fix the sign-in first"),
        ]
    try:
        return _checked(client, settings)
    finally:
        client.close()


def _checked(client: SalesforceClient, settings: Settings) -> list[Check]:
    try:
        client.api()  # one token request
    except UpstreamError as exc:
        return [
            failed("salesforce sign-in", str(exc), FIX_SIGN_IN),
            failed("salesforce schema", "not checked: no sign-in", "fix the sign-in first"),
        ]
    out = [
        passed(
            "salesforce sign-in",
            f"signed in to {settings.sf_instance_url} as the connected app {settings.sf_client_id}",
        )
    ]
    try:
        problems = schema.problems(schema.describe(client))
    except UpstreamError as exc:
        return [*out, failed("salesforce schema", f"describe failed: {exc}", DEPLOY)]
    if not problems:
        written = ", ".join(schema.REQUIRED)
        return [
            *out,
            passed(
                "salesforce schema",
                f"{written} and their fields writable; the "
                "look-ups' objects readable (one describe call)",
            ),
        ]
    for problem in problems:
        match = _PROBLEM.match(problem)
        what, reason = (match["what"], match["reason"]) if match else (problem, "")
        out.append(failed(f"salesforce {what}", reason or problem, fix_for(reason, what)))
    return out
