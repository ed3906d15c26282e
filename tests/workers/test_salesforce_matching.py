"""Matching participants (Contact, Lead, User) and the meeting's related records in ECI's order."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from workers.meeting import ResolvedMeeting, ResolvedParticipant
from workers.salesforce import matching
from workers.salesforce.mapping import PersonMatch, Related
from workers.salesforce.matching import Lookup, Person, Role

OLD, NEW = "2026-01-01T00:00:00.000+0000", "2026-06-01T00:00:00.000+0000"


def meeting(*people: ResolvedParticipant) -> ResolvedMeeting:
    return ResolvedMeeting(
        meeting_key="m-1", online_meeting_id=None, call_record_id=None, subject="s",
        start=datetime(2026, 1, 1, tzinfo=UTC), end=datetime(2026, 1, 1, 1, tzinfo=UTC),
        organizer_email="alice@contoso.com", reason="external_participants",
        participants=people, transcript_id="t", transcript_vtt="WEBVTT\n",
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


def role(opp: str, contact: str, email: str, account: str | None, site: str | None = None,
         modified: str = OLD) -> Role:  # fmt: skip
    return Role(opp, contact, email, account, site, modified)


CAROL = Person("003carol", "carol@fabrikam.com", "001fab", OLD)
DAN = Person("003dan", "dan@fabrikam.com", "001fab", OLD)


class TestRelated:
    """ECI's order: contact roles, contact's account, website domain, then the account alone."""

    @pytest.mark.parametrize(
        ("lookup", "related"),
        [
            # 1. a participant's contact role on an open opportunity wins over everything else.
            (
                Lookup(
                    contacts=(CAROL,),
                    roles=(
                        role(
                            "006web", "003zz", "zz@other.com", "001web", "https://www.fabrikam.com"
                        ),
                        role("006acc", "003zz", "zz@other.com", "001fab"),
                        role("006role", "003carol", "carol@fabrikam.com", "001other"),
                    ),
                ),
                Related("001other", "006role", "contact_role"),
            ),
            # tie-break: most participant roles, then the latest modified.
            (
                Lookup(
                    contacts=(CAROL, DAN),
                    roles=(
                        role("006one", "003carol", "carol@fabrikam.com", "001a", modified=NEW),
                        role("006two", "003carol", "carol@fabrikam.com", "001b"),
                        role("006two", "003dan", "dan@fabrikam.com", "001b"),
                    ),
                ),
                Related("001b", "006two", "contact_role"),
            ),
            (
                Lookup(
                    contacts=(CAROL,),
                    roles=(
                        role("006old", "003carol", "carol@fabrikam.com", "001a"),
                        role("006new", "003carol", "carol@fabrikam.com", "001b", modified=NEW),
                    ),
                ),
                Related("001b", "006new", "contact_role"),
            ),
            # 2. an open opportunity of a participant contact's account.
            (
                Lookup(
                    contacts=(CAROL,),
                    roles=(
                        role("006web", "003zz", "zz@other.com", "001web", "fabrikam.com"),
                        role("006acc", "003zz", "zz@other.com", "001fab"),
                    ),
                ),
                Related("001fab", "006acc", "contact_account_opportunity"),
            ),
            # 3. an account whose website is an external participant's domain.
            (
                Lookup(
                    roles=(
                        role(
                            "006web", "003zz", "zz@other.com", "001web", "http://www.Fabrikam.com/x"
                        ),
                        role("006no", "003zz", "zz@other.com", "001no", "notfabrikam.com"),
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
        assert set(q) == {"participants", "contacts", "leads", "users", "roles"}
        assert all(s["method"] == "GET" for s in subs)
        assert "'o\\'brien@fabrikam.com'" in q["contacts"]
        assert "Opportunity.IsClosed = false" in q["roles"]
        assert "LIKE '%fabrikam.com%'" in q["roles"] and "contoso.com%" not in q["roles"]
        assert subs[0]["referenceId"] == "transcript"

    def test_no_addresses_no_person_queries(self) -> None:
        subs = matching.lookup_requests(meeting(p(None, key="tel")), "62.0")
        assert set(queries(subs)) == {"participants"}

    def test_parse(self) -> None:
        results = {
            "transcript": (200, {"Id": "a03x", "Is_Truncated__c": True}),
            "participants": (200, {"records": [{"Id": "a02", "Participant_Key__c": "k1"}]}),
            "contacts": (200, {"records": [{"Id": "003", "Email": "C@X.com", "AccountId": "001"}]}),
            "roles": (200, {"records": [{
                "OpportunityId": "006", "ContactId": "003", "Contact": {"Email": "c@x.com"},
                "Opportunity": {"AccountId": "001", "LastModifiedDate": NEW,
                                "Account": {"Website": "x.com"}}}]}),
        }  # fmt: skip
        found = matching.parse_lookup(results)
        assert found.transcript_id == "a03x" and found.transcript_truncated
        assert found.existing_participants == frozenset({"k1"})
        assert found.contacts == (Person("003", "c@x.com", "001", ""),)
        assert found.roles == (Role("006", "003", "c@x.com", "001", "x.com", NEW),)
        missing = matching.parse_lookup({"transcript": (404, [{"errorCode": "NOT_FOUND"}])})
        assert missing.transcript_id is None and not missing.transcript_truncated
