"""Matching people and related records (ECI's order) from one round of look-ups; pure.

The look-up round is one composite request of at most five queries (Salesforce's cap):
the meeting's existing participants, Contacts, Leads and Users by e-mail, and the
contact roles of open, recently modified opportunities reached by a participant's e-mail,
by a contact on an external participant's domain, or by an Account website on that domain.
Opportunities are therefore found through their contact roles: one without any contact role
is not seen. The fifth query cannot also read Opportunity, and one Opportunity query cannot
reach all three ways: Salesforce refuses semi-joins under OR ("Semi join sub-selects are not
allowed with the 'OR' operator"). `decide_related` applies ECI's order:
1. contact roles of participants on open opportunities (most roles, then latest modified);
2. open opportunities of a participant contact's account;
3. open opportunities of an account whose website is an external participant's domain;
4. the participant contacts' account (most contacts, then latest modified).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

from workers.meeting import ResolvedMeeting
from workers.salesforce import mapping
from workers.salesforce.mapping import PersonMatch, Related

_DOMAIN = re.compile(r"[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?")
STALE_DAYS = 730  # ECI ignores opportunities not modified in two years
ROW_LIMIT = 2000


def soql_quote(value: str) -> str:
    """A SOQL string literal."""
    escaped = value.replace("\\", "\\\\").replace("'", "\\'")
    escaped = escaped.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    return f"'{escaped}'"


def _in(values: Iterable[str]) -> str:
    return "(" + ", ".join(soql_quote(v) for v in values) + ")"


def emails(meeting: ResolvedMeeting) -> list[str]:
    """Distinct lower-cased addresses of the participants, in order."""
    return list(dict.fromkeys(p.email.casefold() for p in meeting.participants if p.email))


def external_domains(meeting: ResolvedMeeting) -> list[str]:
    out = []
    for p in meeting.participants:
        if p.kind == "external" and p.email and "@" in p.email:
            domain = p.email.rpartition("@")[2].casefold().rstrip(".")
            if _DOMAIN.fullmatch(domain):
                out.append(domain)
    return list(dict.fromkeys(out))


def lookup_requests(meeting: ResolvedMeeting, version: str) -> list[dict[str, Any]]:
    """The composite subrequests of the look-up round (no writes; at most five queries)."""
    base = f"/services/data/v{version}"

    def query(ref: str, fields: str, obj: str, where: str, tail: str = "") -> dict[str, Any]:
        # Every value in `where` went through soql_quote; names are the module's constants.
        soql = f"SELECT {fields} FROM {obj} WHERE {where} {tail}".strip()  # noqa: S608
        return {
            "method": "GET",
            "url": f"{base}/query?q={quote(soql, safe='')}",
            "referenceId": ref,
        }

    tkey = quote(mapping.transcript_key(meeting), safe="")
    subs: list[dict[str, Any]] = [
        {
            "method": "GET",
            "url": f"{base}/sobjects/{mapping.TRANSCRIPT}/{mapping.TRANSCRIPT_KEY}/{tkey}"
            "?fields=Id,Is_Truncated__c",
            "referenceId": "transcript",
        },
        query(
            "participants",
            f"Id, {mapping.PARTICIPANT_KEY}",
            mapping.PARTICIPANT,
            f"Meeting__r.{mapping.MEETING_KEY} = {soql_quote(mapping.meeting_key(meeting))}",
        ),
    ]
    addresses = emails(meeting)
    if not addresses:
        return subs
    where = f"Email IN {_in(addresses)}"
    latest = f"ORDER BY LastModifiedDate DESC, Id LIMIT {ROW_LIMIT}"
    subs += [
        query("contacts", "Id, Email, AccountId, LastModifiedDate", "Contact", where, latest),
        query("leads", "Id, Email", "Lead", f"IsConverted = false AND {where}", latest),
        query("users", "Id, Email", "User", f"IsActive = true AND {where}", latest),
    ]
    reach = [f"Contact.Email IN {_in(addresses)}"]
    for domain in external_domains(meeting):
        reach.append(f"Contact.Email LIKE {soql_quote('%@' + domain)}")
        reach.append(f"Opportunity.Account.Website LIKE {soql_quote('%' + domain + '%')}")
    subs.append(
        query(
            "roles",
            "OpportunityId, ContactId, Contact.Email, Opportunity.AccountId, "
            "Opportunity.Account.Website, Opportunity.LastModifiedDate",
            "OpportunityContactRole",
            f"Opportunity.IsClosed = false AND Opportunity.LastModifiedDate = "
            f"LAST_N_DAYS:{STALE_DAYS} AND ({' OR '.join(reach)})",
            f"LIMIT {ROW_LIMIT}",
        )
    )
    return subs


@dataclass(frozen=True)
class Person:
    id: str
    email: str
    account_id: str | None = None
    modified: str = ""


@dataclass(frozen=True)
class Role:
    """One contact role on an open opportunity, with the opportunity's account."""

    opportunity_id: str
    contact_id: str
    contact_email: str
    account_id: str | None
    website: str | None
    modified: str


@dataclass(frozen=True)
class Lookup:
    """What the look-up round found."""

    transcript_id: str | None = None
    transcript_truncated: bool = False
    existing_participants: frozenset[str] = frozenset()
    contacts: tuple[Person, ...] = ()
    leads: tuple[Person, ...] = ()
    users: tuple[Person, ...] = ()
    roles: tuple[Role, ...] = field(default_factory=tuple)


def _records(body: Any) -> list[dict[str, Any]]:
    records = body.get("records") if isinstance(body, dict) else None
    return [r for r in records if isinstance(r, dict)] if isinstance(records, list) else []


def _people(body: Any) -> tuple[Person, ...]:
    return tuple(
        Person(
            id=str(r["Id"]),
            email=str(r.get("Email") or "").casefold(),
            account_id=r.get("AccountId"),
            modified=str(r.get("LastModifiedDate") or ""),
        )
        for r in _records(body)
    )


def parse_lookup(results: dict[str, tuple[int, Any]]) -> Lookup:
    """The Lookup from sub-responses by referenceId (status, body), already checked."""
    status, body = results.get("transcript", (404, None))
    found = status == 200 and isinstance(body, dict)
    roles = []
    for r in _records(results.get("roles", (200, None))[1]):
        opp = r.get("Opportunity") or {}
        account = opp.get("Account") or {}
        contact = r.get("Contact") or {}
        roles.append(
            Role(
                opportunity_id=str(r["OpportunityId"]),
                contact_id=str(r["ContactId"]),
                contact_email=str(contact.get("Email") or "").casefold(),
                account_id=opp.get("AccountId"),
                website=account.get("Website"),
                modified=str(opp.get("LastModifiedDate") or ""),
            )
        )
    return Lookup(
        transcript_id=str(body["Id"]) if found else None,
        transcript_truncated=bool(found and body.get("Is_Truncated__c")),
        existing_participants=frozenset(
            str(r[mapping.PARTICIPANT_KEY])
            for r in _records(results.get("participants", (200, None))[1])
        ),
        contacts=_people(results.get("contacts", (200, None))[1]),
        leads=_people(results.get("leads", (200, None))[1]),
        users=_people(results.get("users", (200, None))[1]),
        roles=tuple(roles),
    )


def match_people(addresses: Iterable[str], lookup: Lookup) -> dict[str, PersonMatch]:
    """Per lower-cased address: its Contact, else Lead, else User (first row wins: the rows
    come most recently modified first)."""
    out: dict[str, PersonMatch] = {}
    for address in addresses:
        email = address.casefold()
        contact = next((c for c in lookup.contacts if c.email == email), None)
        lead = next((c for c in lookup.leads if c.email == email), None)
        user = next((c for c in lookup.users if c.email == email), None)
        if contact:
            out[email] = PersonMatch(contact_id=contact.id)
        elif lead:
            out[email] = PersonMatch(lead_id=lead.id)
        elif user:
            out[email] = PersonMatch(user_id=user.id)
    return out


def website_domain(website: str | None) -> str | None:
    """`https://www.Fabrikam.com/about` → `fabrikam.com`."""
    if not website or not website.strip():
        return None
    raw = website.strip()
    host = urlsplit(raw if "//" in raw else "//" + raw).hostname or ""
    host = host.casefold().rstrip(".").removeprefix("www.")
    return host or None


def _on_domain(domain: str, site: str | None) -> bool:
    return site is not None and (domain == site or domain.endswith("." + site))


def _best(candidates: dict[str, tuple[int, str, str | None]]) -> tuple[str, str | None] | None:
    """The opportunity with most participant roles, then latest modified, then lowest id."""
    if not candidates:
        return None
    best = min(candidates.items(), key=lambda kv: (-kv[1][0], _desc(kv[1][1]), kv[0]))
    return best[0], best[1][2]


def _desc(stamp: str) -> tuple[int, ...]:
    return tuple(-ord(ch) for ch in stamp)


def decide_related(
    participant_emails: Iterable[str], domains: Iterable[str], lookup: Lookup
) -> Related:
    """The meeting's related Account and Opportunity, in ECI's order (module docstring)."""
    addresses = {e.casefold() for e in participant_emails}
    contacts = {c.id: c for c in lookup.contacts if c.email in addresses}
    opps: dict[str, Role] = {}
    role_count: Counter[str] = Counter()
    for role in lookup.roles:
        opps.setdefault(role.opportunity_id, role)
        if role.contact_id in contacts or role.contact_email in addresses:
            role_count[role.opportunity_id] += 1

    def pick(ids: Iterable[str]) -> tuple[str, str | None] | None:
        return _best({i: (role_count[i], opps[i].modified, opps[i].account_id) for i in ids})

    accounts = {c.account_id for c in contacts.values() if c.account_id}
    site_domains = list(domains)
    rules = (
        ("contact_role", [i for i in opps if role_count[i] > 0]),
        ("contact_account_opportunity", [i for i in opps if opps[i].account_id in accounts]),
        (
            "website_opportunity",
            [
                i
                for i in opps
                if any(_on_domain(d, website_domain(opps[i].website)) for d in site_domains)
            ],
        ),
    )
    for rule, ids in rules:
        chosen = pick(ids)
        if chosen is not None:
            return Related(account_id=chosen[1], opportunity_id=chosen[0], rule=rule)
    if accounts:
        per_account = Counter(c.account_id for c in contacts.values() if c.account_id)
        latest = {
            a: max(c.modified for c in contacts.values() if c.account_id == a) for a in accounts
        }
        account = min(accounts, key=lambda a: (-per_account[a], _desc(latest[a]), a))
        return Related(account_id=account, rule="contact_account")
    return Related()
