"""Matching people and related records (ECI's order) from one round of look-ups; pure.

The look-up round is one composite request: each transcript record by its key (whether an
earlier run stored it truncated, with its file), and at most five queries (Salesforce's cap
per composite request):
- Contacts by the participants' e-mail addresses, each with its contact roles on open
  opportunities modified in the last two years (a parent-to-child sub-select);
- Leads and Users by the same addresses;
- the open opportunities of those contacts' accounts (a semi-join on Contact);
- the open opportunities of accounts whose Website names an external participant's domain.
The last two cannot be one query: Salesforce refuses semi-joins under OR ("Semi join
sub-selects are not allowed with the 'OR' operator"). `decide_related` applies ECI's order:
1. contact roles of participants on open opportunities (most participants with a role, then
   latest modified);
2. open opportunities of a participant contact's account;
3. open opportunities of an account whose website is an external participant's domain;
4. the participant contacts' account (most contacts, then latest modified).
Within steps 2 and 3 no opportunity has a participant's role (step 1 would have taken it),
so the latest modified wins; the lowest id breaks a tie.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from workers.meeting import ResolvedMeeting
from workers.salesforce import records

_DOMAIN = re.compile(r"[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?")
STALE_DAYS = 730  # ECI ignores opportunities not modified in two years
ROW_LIMIT = 2000


@dataclass(frozen=True)
class PersonMatch:
    """The Salesforce person an e-mail address matched: at most one of the three ids."""

    contact_id: str | None = None
    lead_id: str | None = None
    user_id: str | None = None


@dataclass(frozen=True)
class Related:
    """The meeting's related Account and open Opportunity, and the ECI rule that found them."""

    account_id: str | None = None
    opportunity_id: str | None = None
    rule: str | None = None


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


OPEN = f"IsClosed = false AND LastModifiedDate = LAST_N_DAYS:{STALE_DAYS}"
OPPORTUNITY_FIELDS = "Id, AccountId, Account.Website, LastModifiedDate"
ROLES = "OpportunityContactRoles"  # Contact's child relationship to OpportunityContactRole


def lookup_requests(meeting: ResolvedMeeting, version: str) -> list[dict[str, Any]]:
    """The composite subrequests of the look-up round (no writes; at most five queries)."""
    base = f"/services/data/v{version}"

    def query(ref: str, fields: str, obj: str, where: str) -> dict[str, Any]:
        # Every value in `where` went through soql_quote; names are the module's constants.
        soql = (
            f"SELECT {fields} FROM {obj} WHERE {where} "  # noqa: S608
            f"ORDER BY LastModifiedDate DESC, Id LIMIT {ROW_LIMIT}"
        )
        return {
            "method": "GET",
            "url": f"{base}/query?q={quote(soql, safe='')}",
            "referenceId": ref,
        }

    subs: list[dict[str, Any]] = [
        {
            "method": "GET",
            "url": f"{base}/sobjects/{records.TRANSCRIPT}/{records.TRANSCRIPT_KEY}/"
            f"{quote(records.transcript_key(meeting, transcript), safe='')}"
            "?fields=Id,Is_Truncated__c",
            "referenceId": records.transcript_ref(index),
        }
        for index, transcript in enumerate(meeting.transcripts)
    ]
    addresses = emails(meeting)
    if not addresses:
        return subs
    where = f"Email IN {_in(addresses)}"
    roles = (
        "(SELECT OpportunityId, Opportunity.AccountId, Opportunity.LastModifiedDate "  # noqa: S608
        f"FROM {ROLES} WHERE Opportunity.IsClosed = false "
        f"AND Opportunity.LastModifiedDate = LAST_N_DAYS:{STALE_DAYS})"
    )
    subs += [
        query("contacts", f"Id, Email, AccountId, LastModifiedDate, {roles}", "Contact", where),
        query("leads", "Id, Email", "Lead", f"IsConverted = false AND {where}"),
        query("users", "Id, Email", "User", f"IsActive = true AND {where}"),
        query(
            "account_opportunities",
            OPPORTUNITY_FIELDS,
            "Opportunity",
            f"{OPEN} AND AccountId IN (SELECT AccountId FROM Contact WHERE {where})",  # noqa: S608
        ),
    ]
    sites = [
        f"Account.Website LIKE {soql_quote('%' + domain + '%')}"
        for domain in external_domains(meeting)
    ]
    if sites:
        subs.append(
            query(
                "website_opportunities",
                OPPORTUNITY_FIELDS,
                "Opportunity",
                f"{OPEN} AND ({' OR '.join(sites)})",
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
class Opportunity:
    """An open opportunity with its account (and the account's website, when read)."""

    id: str
    account_id: str | None
    modified: str
    website: str | None = None


@dataclass(frozen=True)
class Role:
    """A contact's role on an open opportunity."""

    contact_id: str
    opportunity: Opportunity


@dataclass(frozen=True)
class Lookup:
    """What the look-up round found."""

    truncated: frozenset[int] = frozenset()  # transcripts (by index) stored truncated before
    contacts: tuple[Person, ...] = ()
    leads: tuple[Person, ...] = ()
    users: tuple[Person, ...] = ()
    roles: tuple[Role, ...] = ()
    opportunities: tuple[Opportunity, ...] = ()

    @property
    def transcript_truncated(self) -> bool:
        """Whether the (first) transcript was stored truncated before."""
        return 0 in self.truncated


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


def _body(results: dict[str, tuple[int, Any]], ref: str) -> Any:
    return results.get(ref, (200, None))[1]


def parse_lookup(results: dict[str, tuple[int, Any]]) -> Lookup:
    """The Lookup from sub-responses by referenceId (status, body), already checked."""
    truncated = set()
    for ref, (status, body) in results.items():
        index = _transcript_index(ref)
        if (
            index is not None
            and status == 200
            and isinstance(body, dict)
            and body.get("Is_Truncated__c")
        ):
            truncated.add(index)
    contacts = _records(_body(results, "contacts"))
    roles = []
    for contact in contacts:
        for r in _records(contact.get(ROLES)):
            opp = r.get("Opportunity") or {}
            roles.append(
                Role(
                    contact_id=str(contact["Id"]),
                    opportunity=Opportunity(
                        id=str(r["OpportunityId"]),
                        account_id=opp.get("AccountId"),
                        modified=str(opp.get("LastModifiedDate") or ""),
                    ),
                )
            )
    opportunities = {}
    for ref in ("account_opportunities", "website_opportunities"):
        for r in _records(_body(results, ref)):
            opportunities[str(r["Id"])] = Opportunity(
                id=str(r["Id"]),
                account_id=r.get("AccountId"),
                modified=str(r.get("LastModifiedDate") or ""),
                website=(r.get("Account") or {}).get("Website"),
            )
    return Lookup(
        truncated=frozenset(truncated),
        contacts=_people({"records": contacts}),
        leads=_people(_body(results, "leads")),
        users=_people(_body(results, "users")),
        roles=tuple(roles),
        opportunities=tuple(opportunities.values()),
    )


def _transcript_index(ref: str) -> int | None:
    """The transcript index `records.transcript_ref` gave this referenceId, if it is one."""
    if ref == "transcript":
        return 0
    rest = ref.removeprefix("transcript")
    return int(rest) - 1 if rest != ref and rest.isdigit() and int(rest) > 1 else None


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


def _best(candidates: Iterable[Opportunity], participants: Counter[str]) -> Opportunity | None:
    """The opportunity with most participants holding a role, then latest modified, then
    lowest id."""
    return min(
        candidates, key=lambda o: (-participants[o.id], _desc(o.modified), o.id), default=None
    )


def _desc(stamp: str) -> tuple[int, ...]:
    return tuple(-ord(ch) for ch in stamp)


def decide_related(
    participant_emails: Iterable[str], domains: Iterable[str], lookup: Lookup
) -> Related:
    """The meeting's related Account and Opportunity, in ECI's order (module docstring)."""
    addresses = {e.casefold() for e in participant_emails}
    contacts = {c.id: c for c in lookup.contacts if c.email in addresses}
    holders: dict[str, set[str]] = {}  # opportunity id -> participant contacts with a role
    with_roles: dict[str, Opportunity] = {}
    for role in lookup.roles:
        if role.contact_id in contacts:
            holders.setdefault(role.opportunity.id, set()).add(role.contact_id)
            with_roles.setdefault(role.opportunity.id, role.opportunity)
    participants = Counter({opp: len(ids) for opp, ids in holders.items()})
    accounts = {c.account_id for c in contacts.values() if c.account_id}
    site_domains = list(domains)
    rules = (
        ("contact_role", with_roles.values()),
        (
            "contact_account_opportunity",
            [o for o in lookup.opportunities if o.account_id in accounts],
        ),
        (
            "website_opportunity",
            [
                o
                for o in lookup.opportunities
                if any(_on_domain(d, website_domain(o.website)) for d in site_domains)
            ],
        ),
    )
    for rule, candidates in rules:
        chosen = _best(candidates, participants)
        if chosen is not None:
            return Related(account_id=chosen.account_id, opportunity_id=chosen.id, rule=rule)
    if accounts:
        per_account = Counter(c.account_id for c in contacts.values() if c.account_id)
        latest = {
            a: max(c.modified for c in contacts.values() if c.account_id == a) for a in accounts
        }
        account = min(accounts, key=lambda a: (-per_account[a], _desc(latest[a]), a))
        return Related(account_id=account, rule="contact_account")
    return Related()
