"""Matching participants (Contact, Lead, User) and the meeting's related records in ECI's order."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from workers.meeting import ResolvedMeeting, ResolvedParticipant, ResolvedTranscript
from workers.salesforce import matching
from workers.salesforce.matching import Lookup, Opportunity, Person, PersonMatch, Related, Role

OLD, NEW = "2026-01-01T00:00:00.000+0000", "2026-06-01T00:00:00.000+0000"


def meeting(*people: ResolvedParticipant) -> ResolvedMeeting:
    return ResolvedMeeting(
        meeting_key="m-1", online_meeting_id=None, call_record_id=None, subject="s",
        start=datetime(2026, 1, 1, tzinfo=UTC), end=datetime(2026, 1, 1, 1, tzinfo=UTC),
        organizer_email="alice@contoso.com", reason="external_participants",
        participants=people, transcripts=(ResolvedTranscript("t", "WEBVTT\n"),),
    )  # fmt: skip


def p(email: str | None, kind: str = "external", key: str | None = None) -> ResolvedParticipant:
    return ResolvedParticipant(key or email or "x", "N", email, "attendee", kind)


class TestPeople:
    """A participant is matched to a Contact, else a Lead, else a User, case-insensitively."""

    LOOKUP = Lookup(
        contacts=(Person("003a", "both@x.com"), Person("003b", "contact@x.com")),
        leads=(Person("00Qa", "both@x.com"), Person("00Qb", "lead@x.com"),
               Person("00Qc", "lead@x.com")),
        users=(Person("005a", "lead@x.com"), Person("005b", "user@contoso.com")),
    )  # fmt: skip

    @pytest.mark.parametrize(
        ("email", "match"),
        [
            ("both@x.com", PersonMatch(contact_id="003a")),
            ("CONTACT@x.com", PersonMatch(contact_id="003b")),
            ("lead@x.com", PersonMatch(lead_id="00Qb")),
            ("user@contoso.com", PersonMatch(user_id="005b")),
            ("nobody@x.com", None),
        ],
    )
    def test_order(self, email: str, match: PersonMatch | None) -> None:
        assert matching.match_people([email], self.LOOKUP).get(email.casefold()) == match


def opp(oid: str, account: str | None, site: str | None = None, modified: str = OLD) -> Opportunity:
    return Opportunity(oid, account, modified, site)


def role(oid: str, contact: str, account: str | None, modified: str = OLD) -> Role:
    return Role(contact, Opportunity(oid, account, modified))


CAROL = Person("003carol", "carol@fabrikam.com", "001fab", OLD)
DAN = Person("003dan", "dan@fabrikam.com", "001fab", OLD)
ZZ = Person("003zz", "zz@other.com", "001fab", NEW)  # a contact who was not in the meeting


class TestRelated:
    """ECI's order: contact roles, contact's account, website domain, then the account alone."""

    @pytest.mark.parametrize(
        ("lookup", "related"),
        [
            # 1. a participant's contact role on an open opportunity wins over everything else.
            (
                Lookup(
                    contacts=(CAROL, ZZ),
                    roles=(role("006role", "003carol", "001other"), role("006zz", "003zz", "001z")),
                    opportunities=(
                        opp("006web", "001web", "https://www.fabrikam.com", NEW),
                        opp("006acc", "001fab", modified=NEW),
                    ),
                ),
                Related("001other", "006role", "contact_role"),
            ),
            # tie-break: most participants with a role, then the latest modified.
            (
                Lookup(
                    contacts=(CAROL, DAN),
                    roles=(
                        role("006one", "003carol", "001a", modified=NEW),
                        role("006two", "003carol", "001b"),
                        role("006two", "003dan", "001b"),
                    ),
                ),
                Related("001b", "006two", "contact_role"),
            ),
            (
                Lookup(
                    contacts=(CAROL,),
                    roles=(
                        role("006old", "003carol", "001a"),
                        role("006new", "003carol", "001b", modified=NEW),
                    ),
                ),
                Related("001b", "006new", "contact_role"),
            ),
            # a role of a contact who was not in the meeting does not count.
            (
                Lookup(contacts=(CAROL,), roles=(role("006zz", "003zz", "001z"),)),
                Related("001fab", None, "contact_account"),
            ),
            # 2. an open opportunity of a participant contact's account, without any role:
            # the latest modified.
            (
                Lookup(
                    contacts=(CAROL,),
                    opportunities=(
                        opp("006web", "001web", "fabrikam.com", NEW),
                        opp("006acc", "001fab"),
                        opp("006acc2", "001fab", modified=NEW),
                    ),
                ),
                Related("001fab", "006acc2", "contact_account_opportunity"),
            ),
            # 3. an account whose website is an external participant's domain.
            (
                Lookup(
                    opportunities=(
                        opp("006web", "001web", "http://www.Fabrikam.com/x"),
                        opp("006no", "001no", "notfabrikam.com", NEW),
                    )
                ),
                Related("001web", "006web", "website_opportunity"),
            ),
            # 4. no open opportunity: the contact's account.
            (Lookup(contacts=(CAROL,)), Related("001fab", None, "contact_account")),
            # nothing at all.
            (Lookup(), Related()),
        ],
    )
    def test_order(self, lookup: Lookup, related: Related) -> None:
        got = matching.decide_related(
            ["carol@fabrikam.com", "dan@fabrikam.com", "alice@contoso.com"],
            ["fabrikam.com"],
            lookup,
        )
        assert got == related

    def test_contacts_not_in_the_meeting_do_not_count(self) -> None:
        lookup = Lookup(contacts=(CAROL, DAN))
        assert matching.decide_related(["alice@contoso.com"], [], lookup) == Related()

    def test_account_with_most_participant_contacts(self) -> None:
        other = Person("003e", "eve@tailspin.com", "001tail", NEW)
        lookup = Lookup(contacts=(CAROL, DAN, other))
        emails = ["carol@fabrikam.com", "dan@fabrikam.com", "eve@tailspin.com"]
        assert matching.decide_related(emails, [], lookup).account_id == "001fab"
        assert matching.decide_related(emails[1:], [], lookup).account_id == "001tail"

    @pytest.mark.parametrize(
        ("website", "domain"),
        [
            ("https://www.fabrikam.com/about", "fabrikam.com"),
            ("fabrikam.com", "fabrikam.com"),
            ("www.FABRIKAM.com.", "fabrikam.com"),
            ("http://shop.fabrikam.com:8080", "shop.fabrikam.com"),
            ("", None),
            (None, None),
        ],
    )
    def test_website_domain(self, website: str | None, domain: str | None) -> None:
        assert matching.website_domain(website) == domain


def queries(subs: list[dict[str, Any]]) -> dict[str, str]:
    out = {}
    for sub in subs:
        q = parse_qs(urlsplit(sub["url"]).query).get("q")
        if q:
            out[sub["referenceId"]] = q[0]
    return out


class TestLookupRequests:
    """The look-up round holds at most five queries, with every value quoted."""

    def test_queries(self) -> None:
        m = meeting(
            p("alice@contoso.com", "internal"), p("O'Brien@Fabrikam.com"), p(None, key="tel")
        )
        subs = matching.lookup_requests(m, "62.0")
        q = queries(subs)
        assert set(q) == {
            "contacts", "leads", "users", "account_opportunities", "website_opportunities"
        }  # fmt: skip
        assert all(s["method"] == "GET" for s in subs)
        assert "'o\\'brien@fabrikam.com'" in q["contacts"]
        assert "FROM OpportunityContactRoles WHERE Opportunity.IsClosed = false" in q["contacts"]
        assert (
            "AccountId IN (SELECT AccountId FROM Contact WHERE Email IN"
            in (q["account_opportunities"])
        )
        site = q["website_opportunities"]
        assert "Account.Website LIKE '%fabrikam.com%'" in site and "contoso.com" not in site
        assert all("IsClosed = false AND LastModifiedDate = LAST_N_DAYS:730" in q[k]
                   for k in ("account_opportunities", "website_opportunities"))  # fmt: skip
        assert subs[0]["referenceId"] == "transcript"

    def test_internal_only_no_website_query(self) -> None:
        subs = matching.lookup_requests(meeting(p("alice@contoso.com", "internal")), "62.0")
        assert set(queries(subs)) == {"contacts", "leads", "users", "account_opportunities"}

    def test_no_addresses_no_queries(self) -> None:
        subs = matching.lookup_requests(meeting(p(None, key="tel")), "62.0")
        assert queries(subs) == {} and [s["referenceId"] for s in subs] == ["transcript"]

    def test_parse(self) -> None:
        results = {
            "transcript": (200, {"Id": "a03x", "Is_Truncated__c": True}),
            "contacts": (200, {"records": [
                {"Id": "003", "Email": "C@X.com", "AccountId": "001",
                 "OpportunityContactRoles": {"totalSize": 1, "done": True, "records": [
                     {"OpportunityId": "006",
                      "Opportunity": {"AccountId": "001", "LastModifiedDate": NEW}}]}},
                {"Id": "003b", "Email": "d@x.com", "AccountId": None,
                 "OpportunityContactRoles": None},
            ]}),
            "account_opportunities": (200, {"records": [
                {"Id": "006", "AccountId": "001", "LastModifiedDate": NEW,
                 "Account": {"Website": "x.com"}}]}),
            "website_opportunities": (200, {"records": [
                {"Id": "006", "AccountId": "001", "LastModifiedDate": NEW,
                 "Account": {"Website": "x.com"}},
                {"Id": "006w", "AccountId": "001w", "LastModifiedDate": OLD, "Account": None}]}),
        }  # fmt: skip
        found = matching.parse_lookup(results)
        assert found.transcript_truncated
        assert found.contacts == (Person("003", "c@x.com", "001", ""), Person("003b", "d@x.com"))
        assert found.roles == (Role("003", Opportunity("006", "001", NEW)),)
        assert found.opportunities == (
            Opportunity("006", "001", NEW, "x.com"), Opportunity("006w", "001w", OLD)
        )  # fmt: skip
        missing = matching.parse_lookup({"transcript": (404, [{"errorCode": "NOT_FOUND"}])})
        assert not missing.transcript_truncated and missing == Lookup()
