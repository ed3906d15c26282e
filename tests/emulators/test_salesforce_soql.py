"""The emulator's SOQL subset, run directly against an org (no HTTP)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from emulators.salesforce.errors import SfError
from emulators.salesforce.metadata import read_objects
from emulators.salesforce.query import Runner
from emulators.salesforce.records import Org
from emulators.salesforce.schema import Schema, standard_objects
from emulators.salesforce.store import Store


@pytest.fixture(scope="module")
def org() -> Org:
    org = Org(Schema(standard_objects() + read_objects()), Store())
    s = org.sobject
    fab = org.create(s("Account"), {"Name": "Fabrikam", "Website": "fabrikam.com"})
    org.create(s("Account"), {"Name": "100% Tea"})
    org.create(s("Contact"), {"LastName": "O'Brien", "Email": "ob@fabrikam.com",
                              "AccountId": fab["Id"]})  # fmt: skip
    org.create(s("Contact"), {"LastName": "Ng"})
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    meeting = org.create(s("Teams_Meeting__c"), {
        "Meeting_Key__c": "m1", "Name": "Today", "Start__c": now.isoformat(),
        "Related_Account__c": fab["Id"], "Duration_Seconds__c": 1800,
    })  # fmt: skip
    org.create(s("Teams_Meeting__c"), {"Meeting_Key__c": "m2", "Name": "Old",
                                       "Start__c": "2020-01-01T10:00:00+02:00"})  # fmt: skip
    org.create(s("Teams_Meeting_Participant__c"), {"Participant_Key__c": "p1",
                                                   "Meeting__c": meeting["Id"]})  # fmt: skip
    gone = org.create(s("Account"), {"Name": "Deleted Co"})
    org.delete(s("Account"), gone["Id"])
    return org


def names(org: Org, soql: str, all_rows: bool = False) -> list[Any]:
    res = Runner(org, "62.0").run(soql, all_rows)
    return [next(v for k, v in r.items() if k != "attributes") for r in res["records"]]


class TestSoql:
    """Filters, ordering and paths give Salesforce's answers."""

    @pytest.mark.parametrize(
        ("soql", "expected"),
        [
            ("SELECT LastName FROM Contact WHERE LastName = 'O\\'Brien'", ["O'Brien"]),
            ("SELECT Name FROM Account WHERE Name LIKE '100\\% %'", ["100% Tea"]),
            ("SELECT Name FROM Account WHERE Name LIKE 'f_brikam'", ["Fabrikam"]),
            ("SELECT Name FROM Account WHERE NOT Name = 'Fabrikam'", ["100% Tea"]),
            ("SELECT Name FROM Account WHERE Name NOT IN ('Fabrikam')", ["100% Tea"]),
            ("SELECT Name FROM Account ORDER BY Website NULLS FIRST", ["100% Tea", "Fabrikam"]),
            ("SELECT Name FROM Account ORDER BY Website ASC NULLS LAST", ["Fabrikam", "100% Tea"]),
            ("SELECT Name FROM Account ORDER BY Name LIMIT 1 OFFSET 1", ["Fabrikam"]),
            ("SELECT LastName FROM Contact WHERE Contact.Account.Website = 'FABRIKAM.COM'",
             ["O'Brien"]),
            ("SELECT Name FROM Teams_Meeting__c WHERE Start__c = TODAY", ["Today"]),
            ("SELECT Name FROM Teams_Meeting__c WHERE Start__c < LAST_N_DAYS:30", ["Old"]),
            ("SELECT Name FROM Teams_Meeting__c WHERE Start__c = 2020-01-01T08:00:00Z", ["Old"]),
            ("SELECT Name FROM Teams_Meeting__c WHERE Duration_Seconds__c >= 1800", ["Today"]),
            ("SELECT Participant_Key__c FROM Teams_Meeting_Participant__c "
             "WHERE Meeting__r.Related_Account__r.Name = 'Fabrikam'", ["p1"]),
            ("SELECT Name FROM Account WHERE (Name = 'x' OR Name = 'Fabrikam') AND Website != null",
             ["Fabrikam"]),
        ],
    )  # fmt: skip
    def test_answers(self, org: Org, soql: str, expected: list[Any]) -> None:
        assert names(org, soql) == expected

    def test_query_all_includes_deleted(self, org: Org) -> None:
        assert "Deleted Co" not in names(org, "SELECT Name FROM Account")
        assert "Deleted Co" in names(org, "SELECT Name FROM Account", all_rows=True)

    def test_nested_parent_shape(self, org: Org) -> None:
        res = Runner(org, "62.0").run(
            "SELECT Meeting__r.Related_Account__r.Name, Meeting__r.Name "
            "FROM Teams_Meeting_Participant__c"
        )
        meeting = res["records"][0]["Meeting__r"]
        assert meeting["Name"] == "Today"
        assert meeting["Related_Account__r"]["Name"] == "Fabrikam"
        assert meeting["attributes"]["type"] == "Teams_Meeting__c"


class TestSemiJoin:
    """Semi- and anti-joins answer as Salesforce does and are refused where it refuses them."""

    @pytest.mark.parametrize(
        ("soql", "expected"),
        [
            ("SELECT Name FROM Account WHERE Id IN (SELECT AccountId FROM Contact)",
             ["Fabrikam"]),
            ("SELECT Name FROM Account WHERE Id NOT IN (SELECT AccountId FROM Contact) "
             "ORDER BY Name", ["100% Tea"]),
            ("SELECT Name FROM Account WHERE Id IN "
             "(SELECT AccountId FROM Contact WHERE Email LIKE '%@fabrikam.com' OR LastName = 'x')",
             ["Fabrikam"]),
            ("SELECT Name FROM Account WHERE Id IN (SELECT AccountId FROM Contact "
             "WHERE LastName = 'Ng')", []),
            ("SELECT LastName FROM Contact WHERE AccountId IN "
             "(SELECT Related_Account__c FROM Teams_Meeting__c WHERE Meeting_Key__c = 'm1') "
             "AND Id NOT IN (SELECT ContactId FROM OpportunityContactRole)", ["O'Brien"]),
            ("SELECT Name FROM Account WHERE Name != 'x' AND (Website = null OR Name = 'y') "
             "AND Id NOT IN (SELECT AccountId FROM Contact)", ["100% Tea"]),
        ],
    )  # fmt: skip
    def test_answers(self, org: Org, soql: str, expected: list[Any]) -> None:
        assert names(org, soql) == expected

    @pytest.mark.parametrize(
        "soql",
        [
            "SELECT Id FROM Account WHERE Name = 'x' OR Id IN (SELECT AccountId FROM Contact)",
            "SELECT Id FROM Account WHERE Name = 'x' OR (Name = 'y' AND "
            "Id IN (SELECT AccountId FROM Contact))",
            "SELECT Id FROM Account WHERE NOT Id IN (SELECT AccountId FROM Contact)",
            "SELECT Id FROM Account WHERE Id IN (SELECT AccountId FROM Contact) "
            "AND Id IN (SELECT AccountId FROM Opportunity) "
            "AND Id NOT IN (SELECT Related_Account__c FROM Teams_Meeting__c)",
            "SELECT Id FROM Account WHERE Id IN (SELECT AccountId FROM Contact "
            "WHERE Id IN (SELECT ContactId FROM OpportunityContactRole))",
            "SELECT Id FROM Account WHERE Id IN (SELECT AccountId, Id FROM Contact)",
            "SELECT Id FROM Account WHERE Id IN (SELECT Account.Id FROM Contact)",
            "SELECT Id FROM Account WHERE Id IN (SELECT AccountId FROM Contact ORDER BY Id)",
            "SELECT Id FROM Account WHERE Id IN (SELECT COUNT() FROM Contact)",
            "SELECT Id FROM Account WHERE Name IN (SELECT AccountId FROM Contact)",
            "SELECT Id FROM Account WHERE Id IN (SELECT Email FROM Contact)",
            "SELECT Id FROM Account WHERE Id IN (SELECT Id FROM Account)",
        ],
    )
    def test_refused(self, org: Org, soql: str) -> None:
        with pytest.raises(SfError) as info:
            Runner(org, "62.0").run(soql)
        assert info.value.code == "MALFORMED_QUERY"
        assert info.value.status == 400


@pytest.fixture(scope="module")
def deals() -> Org:
    org = Org(Schema(standard_objects() + read_objects()), Store())
    s = org.sobject
    fab = org.create(s("Account"), {"Name": "Fabrikam"})
    org.create(s("Account"), {"Name": "Empty"})
    carol = org.create(s("Contact"), {"LastName": "Carol", "AccountId": fab["Id"]})
    org.create(s("Contact"), {"LastName": "Dan", "AccountId": fab["Id"]})
    for name, stage in (
        ("Renewal", "Prospecting"),
        ("Lost", "Closed Lost"),
        ("Add-on", "Qualification"),
    ):
        deal = org.create(
            s("Opportunity"),
            {
                "Name": name,
                "StageName": stage,
                "CloseDate": "2027-01-31",
                "AccountId": fab["Id"],
            },
        )
        org.create(
            s("OpportunityContactRole"), {"OpportunityId": deal["Id"], "ContactId": carol["Id"]}
        )
    return org  # fmt: skip


class TestChildSelect:
    """Parent-to-child sub-selects: one list per parent, filtered, ordered and cut, or null."""

    def test_children_per_parent(self, deals: Org) -> None:
        res = Runner(deals, "62.0").run(
            "SELECT Name, (SELECT Name FROM Opportunities WHERE IsClosed = false "
            "ORDER BY Name DESC LIMIT 5), (SELECT LastName FROM contacts ORDER BY LastName) "
            "FROM Account ORDER BY Name"
        )
        empty, fab = res["records"]
        assert empty["Opportunities"] is None and empty["Contacts"] is None
        opps = fab["Opportunities"]
        assert [r["Name"] for r in opps["records"]] == ["Renewal", "Add-on"]
        assert opps["totalSize"] == 2 and opps["done"] is True
        assert opps["records"][0]["attributes"]["type"] == "Opportunity"
        assert [r["LastName"] for r in fab["Contacts"]["records"]] == ["Carol", "Dan"]

    def test_parent_fields_inside(self, deals: Org) -> None:
        res = Runner(deals, "62.0").run(
            "SELECT LastName, (SELECT Opportunity.Name, Opportunity.Account.Name "
            "FROM OpportunityContactRoles WHERE Opportunity.IsClosed = false LIMIT 1) "
            "FROM Contact WHERE LastName IN ('Carol', 'Dan') ORDER BY LastName"
        )
        carol, dan = res["records"]
        (role,) = carol["OpportunityContactRoles"]["records"]
        assert role["Opportunity"]["Account"]["Name"] == "Fabrikam"
        assert role["Opportunity"]["Name"] in ("Renewal", "Add-on")
        assert dan["OpportunityContactRoles"] is None

    @pytest.mark.parametrize(
        ("soql", "code"),
        [
            ("SELECT Name, (SELECT Id FROM Nothings) FROM Account", "INVALID_TYPE"),
            ("SELECT Name, (SELECT Id FROM OpportunityContactRoles) FROM Account",
             "INVALID_TYPE"),
            ("SELECT Name, (SELECT Bogus FROM Contacts) FROM Account", "INVALID_FIELD"),
            ("SELECT Name, (SELECT Id FROM Contacts OFFSET 1) FROM Account", "MALFORMED_QUERY"),
            ("SELECT Name, (SELECT COUNT() FROM Contacts) FROM Account", "MALFORMED_QUERY"),
            ("SELECT Name, (SELECT Id FROM Contacts WHERE Id IN "
             "(SELECT ContactId FROM OpportunityContactRole)) FROM Account", "MALFORMED_QUERY"),
            ("SELECT Name FROM Account WHERE Id IN (SELECT AccountId, "
             "(SELECT Id FROM Cases) FROM Contact)", "MALFORMED_QUERY"),
        ],
    )  # fmt: skip
    def test_refused(self, deals: Org, soql: str, code: str) -> None:
        with pytest.raises(SfError) as info:
            Runner(deals, "62.0").run(soql)
        assert info.value.code == code


class TestSoqlErrors:
    """Unsupported or invalid SOQL is refused with Salesforce's error code, never answered."""

    @pytest.mark.parametrize(
        ("soql", "code"),
        [
            ("SELECT Id FROM Nope__c", "INVALID_TYPE"),
            ("SELECT Id FROM Teams_Transcript__c WHERE Text__c = 'x'", "INVALID_FIELD"),
            ("SELECT Id FROM Account WHERE Name = 1", "INVALID_FIELD"),
            ("SELECT Id FROM Teams_Meeting__c WHERE Start__c > 2020-01-01", "INVALID_FIELD"),
            ("SELECT Id FROM Account WHERE Bogus.Name = 'x'", "INVALID_FIELD"),
            ("SELECT Id FROM Account WHERE Name = 'a' OR Name = 'b' AND Name = 'c'",
             "MALFORMED_QUERY"),
            ("SELECT COUNT() FROM Account ORDER BY Name", "MALFORMED_QUERY"),
            ("SELECT Id FROM Account WHERE Id IN (SELECT AccountId FROM Contact LIMIT 1)",
             "MALFORMED_QUERY"),
            ("SELECT Id FROM Account WHERE CreatedDate = THIS_QUARTER", "MALFORMED_QUERY"),
            ("SELECT Id FROM Account WHERE Name = 'unterminated", "MALFORMED_QUERY"),
            ("SELECT Id FROM Account LIMIT 5 extra", "MALFORMED_QUERY"),
        ],
    )  # fmt: skip
    def test_refused(self, org: Org, soql: str, code: str) -> None:
        with pytest.raises(SfError) as info:
            Runner(org, "62.0").run(soql)
        assert info.value.code == code
        assert info.value.status == 400
