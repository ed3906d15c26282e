"""The Salesforce emulator is as strict as the REST API Developer Guide where the product relies
on it: collated composite subrequests, allOrNone across collections, request bodies, limits."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest

from emulators.salesforce import collate
from emulators.salesforce.app import Config
from emulators.salesforce.metadata import DEFAULT_DIR
from tests.emulators.salesforce_harness import Server

V = "/services/data/v62.0"
MEETING, PARTICIPANT, TRANSCRIPT = (
    "Teams_Meeting__c",
    "Teams_Meeting_Participant__c",
    "Teams_Transcript__c",
)
HALTED = "The transaction was rolled back since another operation in the same transaction failed."


@pytest.fixture(scope="module")
def ca_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ca")


@pytest.fixture
def server(ca_dir: Path) -> Iterator[Server]:
    with Server(Config(), ca_dir) as srv:
        yield srv


@pytest.fixture
def sf(server: Server) -> Salesforce:
    return server.sf()


def meeting_sub(key: str = "k1", v: str = V) -> dict[str, Any]:
    url = f"{v}/sobjects/{MEETING}/Meeting_Key__c/{key}"
    return {"method": "PATCH", "referenceId": "meeting", "url": url, "body": {"Name": "Call"}}


def transcript_sub(key: str = "k1", v: str = V) -> dict[str, Any]:
    return {"method": "PATCH", "referenceId": "transcript",
            "url": f"{v}/sobjects/{TRANSCRIPT}/Transcript_Key__c/t-{key}",
            "body": {"Text__c": "Hello", "Meeting__r": {"Meeting_Key__c": key}}}  # fmt: skip


def participants_sub(
    key: str = "k1", emails: tuple[str, ...] = ("a@x.com", "b@x.com"), inner: bool = True
) -> dict[str, Any]:
    records = [
        {"attributes": {"type": PARTICIPANT}, "Participant_Key__c": f"{key}/{n}",
         "Email__c": email, "Meeting__r": {"Meeting_Key__c": key}}
        for n, email in enumerate(emails)
    ]  # fmt: skip
    return {"method": "PATCH", "referenceId": "participants",
            "url": f"{V}/composite/sobjects/{PARTICIPANT}/Participant_Key__c",
            "body": {"allOrNone": inner, "records": records}}  # fmt: skip


def composite(sf: Salesforce, subs: list[dict[str, Any]], **flags: Any) -> dict[str, Any]:
    answer = sf.restful("composite", method="POST", json={**flags, "compositeRequest": subs})
    return {r["referenceId"]: r for r in answer["compositeResponse"]}


class TestCollation:
    """Guide, Composite Request Body: collateSubrequests "Controls whether the API collates
    unrelated subrequests to bulkify them (true) or not (false). When subrequests are collated,
    the processing speed is faster, but the order of execution is not guaranteed (unless there
    is an explicit dependency between the subrequests). If collation is disabled, then the
    subrequests are executed in the order in which they are received. Subrequests that contain
    valid HTTP headers are not collated. In API version 49.0 and later, the default value is
    true. In version 48.0, the default value is false." The emulator collates by default and
    runs a group's sObject types in the reverse of the order sent."""

    def test_children_named_by_external_id_fail_when_collated(
        self, server: Server, sf: Salesforce
    ) -> None:
        foreign_key = {
            "errorCode": "INVALID_FIELD",
            "message": "Foreign key external ID: k1 not found for field Meeting_Key__c in "
            "entity Teams_Meeting__c",
            "fields": ["Meeting__c"],
        }
        res = composite(sf, [meeting_sub(), transcript_sub()], allOrNone=True)
        assert res["transcript"]["httpStatusCode"] == 400
        assert res["transcript"]["body"] == [foreign_key]
        assert res["meeting"]["body"][0]["errorCode"] == "PROCESSING_HALTED"
        res = composite(sf, [meeting_sub(), transcript_sub(), participants_sub()],
                        allOrNone=True)  # fmt: skip
        items = res["participants"]["body"]
        assert items[0]["errors"][0]["statusCode"] == "INVALID_FIELD"
        assert items[0]["errors"][0]["message"] == foreign_key["message"]
        assert res["meeting"]["body"][0]["errorCode"] == "PROCESSING_HALTED"
        assert res["transcript"]["body"][0]["errorCode"] == "PROCESSING_HALTED"
        assert server.dump() == {}

    @pytest.mark.parametrize(
        ("flags", "v"), [({"collateSubrequests": False}, V), ({}, "/services/data/v48.0")]
    )
    def test_in_order_when_not_collated(
        self, server: Server, sf: Salesforce, flags: dict[str, Any], v: str
    ) -> None:
        subs = [meeting_sub(v=v), transcript_sub(v=v)]
        resp = sf.session.post(
            f"{server.base}{v}/composite",
            headers=sf.headers,
            json={"allOrNone": True, **flags, "compositeRequest": subs},
        )
        assert [r["httpStatusCode"] for r in resp.json()["compositeResponse"]] == [201, 201]
        assert len(server.dump()[TRANSCRIPT]) == 1

    def test_explicit_reference_runs_after_what_it_names(
        self, server: Server, sf: Salesforce
    ) -> None:
        subs = [
            {"method": "POST", "referenceId": "acct", "url": f"{V}/sobjects/Account",
             "body": {"Name": "Fabrikam"}},
            {"method": "POST", "referenceId": "opp", "url": f"{V}/sobjects/Opportunity",
             "body": {"Name": "Deal", "StageName": "Prospecting", "CloseDate": "2027-01-01"}},
            {"method": "POST", "referenceId": "contact", "url": f"{V}/sobjects/Contact",
             "body": {"LastName": "Diaz", "AccountId": "@{acct.id}"}},
        ]  # fmt: skip
        res = composite(sf, subs, allOrNone=True)
        assert [r["httpStatusCode"] for r in res.values()] == [201, 201, 201]
        dump = server.dump()
        assert dump["Contact"][0]["AccountId"] == dump["Account"][0]["Id"]

    def test_order(self) -> None:
        subs = [meeting_sub(), transcript_sub(), participants_sub(),
                {"method": "POST", "referenceId": "file", "url": f"{V}/sobjects/ContentVersion",
                 "body": {"FirstPublishLocationId": "@{meeting.id}"}},
                {"method": "GET", "referenceId": "q", "url": f"{V}/query?q=SELECT+Id+FROM+User"},
                {**meeting_sub("k2"), "referenceId": "m2",
                 "httpHeaders": {"If-Match": "x"}}]  # fmt: skip
        assert collate.order(subs, collate=True) == [2, 1, 0, 3, 4, 5]
        assert collate.order(subs, collate=False) == [0, 1, 2, 3, 4, 5]
        assert collate.enabled(None, "49.0") and not collate.enabled(None, "48.0")
        assert not collate.enabled(False, "62.0")


class TestAllOrNoneAcrossCollections:
    """Guide, allOrNone Parameters in Composite and Collections Requests: "If the Composite
    request has allOrNone set to true, then the all-or-none behavior also applies to each of
    the sObject Collections subrequests, overriding the value of allOrNone in the
    subrequests." Its example answers the collection with its items (httpStatusCode 200) and
    the other subrequest with httpStatusCode 400 and `[{"errorCode" : "PROCESSING_HALTED",
    "message" : "The transaction was rolled back since another operation in the same
    transaction failed."}]`; "the fact that the Composite request is rolled back means that
    the Account creation is rolled back.\""""

    @pytest.mark.parametrize("inner", [False, True])
    def test_one_bad_record_rolls_back_everything(
        self, server: Server, sf: Salesforce, inner: bool
    ) -> None:
        subs = [meeting_sub(), participants_sub(emails=("a@x.com", "not an address"), inner=inner)]
        res = composite(sf, subs, allOrNone=True, collateSubrequests=False)
        assert res["meeting"]["httpStatusCode"] == 400
        assert res["meeting"]["body"] == [{"errorCode": "PROCESSING_HALTED", "message": HALTED}]
        items = res["participants"]
        assert items["httpStatusCode"] == 200
        assert items["body"][1]["errors"][0]["statusCode"] == "INVALID_EMAIL_ADDRESS"
        first = items["body"][0]
        assert first["success"] is not inner  # as the guide's case 4 shows it: "success" : true
        assert server.dump() == {}

    def test_without_outer_all_or_none_the_collection_decides(
        self, server: Server, sf: Salesforce
    ) -> None:
        subs = [meeting_sub(), participants_sub(emails=("a@x.com", "not an address"), inner=False)]
        res = composite(sf, subs, allOrNone=False, collateSubrequests=False)
        assert res["meeting"]["httpStatusCode"] == 201
        assert [i["success"] for i in res["participants"]["body"]] == [True, False]
        assert len(server.dump()[PARTICIPANT]) == 1


def _with_role_picklist(tmp_path: Path) -> Path:
    """deploy/salesforce with Role__c turned into a restricted picklist of two values."""
    project = tmp_path / "sf"
    shutil.copytree(DEFAULT_DIR, project)
    role = project / f"force-app/main/default/objects/{PARTICIPANT}/fields/Role__c.field-meta.xml"
    role.write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<CustomField xmlns="http://soap.sforce.com/2006/04/metadata">\n'
        "  <fullName>Role__c</fullName><label>Role</label><type>Picklist</type>\n"
        "  <valueSet><restricted>true</restricted><valueSetDefinition><sorted>false</sorted>\n"
        "    <value><fullName>Organizer</fullName><default>false</default>"
        "<label>Organizer</label></value>\n"
        "    <value><fullName>Attendee</fullName><default>false</default>"
        "<label>Attendee</label></value>\n"
        "  </valueSetDefinition></valueSet>\n</CustomField>\n"
    )
    return project


class TestRecordBodies:
    """Request bodies Salesforce refuses are refused."""

    def test_restricted_picklist(self, ca_dir: Path, tmp_path: Path) -> None:
        """Metadata API, Picklist: "With a restricted picklist, only an admin can add or change
        values; users can't load or remove values through the API.\""""
        with Server(Config(metadata_dir=_with_role_picklist(tmp_path)), ca_dir) as srv:
            sf = srv.sf()
            fields = {f["name"]: f for f in sf.Teams_Meeting_Participant__c.describe()["fields"]}
            assert fields["Role__c"]["restrictedPicklist"] is True
            assert [v["value"] for v in fields["Role__c"]["picklistValues"]] == [
                "Organizer", "Attendee"]  # fmt: skip
            sf.Teams_Meeting__c.upsert("Meeting_Key__c/k1", {"Name": "Call"})
            row = {"Meeting__r": {"Meeting_Key__c": "k1"}, "Role__c": "Presenter"}
            with pytest.raises(SalesforceMalformedRequest) as info:
                sf.Teams_Meeting_Participant__c.upsert("Participant_Key__c/p1", row)
            assert info.value.content == [{
                "errorCode": "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                "message": "Role: bad value for restricted picklist field: Presenter",
                "fields": ["Role__c"],
            }]  # fmt: skip
            row["Role__c"] = "Attendee"
            assert sf.Teams_Meeting_Participant__c.upsert("Participant_Key__c/p1", row) == 201

    @pytest.mark.parametrize("field", ["Meeting_Key__c", "meeting_key__c", "Id"])
    def test_upsert_key_in_body(self, server: Server, sf: Salesforce, field: str) -> None:
        """sObject Rows by External ID: "Do not specify Id or an external ID field in the
        request body or an error is generated." (The error is the one the guide prints for an
        Id in an update's body: `[{"message":"The Id field should not be specified in the
        sobject data.","errorCode":"INVALID_FIELD"}]`.)"""
        with pytest.raises(SalesforceMalformedRequest) as info:
            sf.Teams_Meeting__c.upsert("Meeting_Key__c/k1", {"Name": "Call", field: "k1"})
        assert info.value.content == [{
            "message": f"The {field} field should not be specified in the sobject data.",
            "errorCode": "INVALID_FIELD",
        }]  # fmt: skip
        assert server.dump() == {}

    def test_update_id_in_body(self, sf: Salesforce) -> None:
        """Update a Record: `[{"message":"The Id field should not be specified in the sobject
        data.","errorCode":"INVALID_FIELD"}]`."""
        made = sf.Account.create({"Name": "Fabrikam"})["id"]
        with pytest.raises(SalesforceMalformedRequest) as info:
            sf.Account.update(made, {"Id": made, "Name": "Renamed"})
        assert info.value.content[0]["errorCode"] == "INVALID_FIELD"

    def test_collection_record_needs_its_type(self, server: Server, sf: Salesforce) -> None:
        """Upsert Records Using sObject Collections: "Each object in the request body must
        contain an attributes map. The map must contain a value for type." and "If the request
        isn't well formed, the API returns a 400 Bad Request HTTP Status.\""""
        sf.Teams_Meeting__c.upsert("Meeting_Key__c/k1", {"Name": "Call"})
        body = participants_sub()["body"]
        del body["records"][1]["attributes"]
        with pytest.raises(SalesforceMalformedRequest) as info:
            sf.restful(f"composite/sobjects/{PARTICIPANT}/Participant_Key__c", method="PATCH",
                       json=body)  # fmt: skip
        assert info.value.content[0]["errorCode"] == "INVALID_TYPE"
        assert PARTICIPANT not in server.dump()


class TestQueryLimits:
    """Query length and batches follow the documented limits."""

    def test_soql_over_100000_characters(self, sf: Salesforce) -> None:
        """SOQL and SOSL Reference: "By default, SOQL statements can't exceed 100,000
        characters in length. For SOQL statements that exceed this maximum length, the API
        returns a MALFORMED_QUERY exception code; no result rows are returned." Sent inside a
        composite request, as the product sends its look-ups (a URL that long is refused
        before any SOQL is read)."""
        names = ", ".join(f"'{n:08d}'" for n in range(9_100))
        soql = f"SELECT Id FROM Account WHERE Name IN ({names})"
        res = composite(sf, [{"method": "GET", "referenceId": "q",
                              "url": f"{V}/query?q={soql}"}])  # fmt: skip
        assert len(soql) > 100_000
        assert res["q"]["httpStatusCode"] == 400
        assert res["q"]["body"][0]["errorCode"] == "MALFORMED_QUERY"
        fits = f"SELECT Id FROM Account WHERE Name IN ({names[:90_000].rsplit(',', 1)[0]})"
        res = composite(sf, [{"method": "GET", "referenceId": "q",
                              "url": f"{V}/query?q={fits}"}])  # fmt: skip
        assert res["q"]["httpStatusCode"] == 200

    def test_child_rows_count_in_the_batch(self, ca_dir: Path) -> None:
        """Query Options Header: "Child objects count toward the number of records for the
        batch size. For example, in relationship queries, multiple child objects are returned
        per parent row returned.\""""
        seed = {
            "Account": [{"Name": "A"}, {"Name": "B"}, {"Name": "C"}],
            "Contact": [{"LastName": f"{a}{n}", "Account": {"Name": a}}
                        for a, count in (("A", 2), ("B", 1), ("C", 5)) for n in range(count)],
        }  # fmt: skip
        with Server(Config(seed=seed, query_batch=3), ca_dir) as srv:
            sf = srv.sf()
            soql = "SELECT Name, (SELECT LastName FROM Contacts ORDER BY LastName) FROM Account"
            first = sf.query(soql + " ORDER BY Name")
            # A and its two contacts fill the batch of three.
            assert [r["Name"] for r in first["records"]] == ["A"] and first["done"] is False
            second = sf.query_more(first["nextRecordsUrl"], identifier_is_url=True)
            assert [r["Name"] for r in second["records"]] == ["B"]
            third = sf.query_more(second["nextRecordsUrl"], identifier_is_url=True)
            (c,) = third["records"]
            assert third["done"] is True
            # C's five contacts overflow a batch alone: its child list comes in batches too.
            contacts = c["Contacts"]
            assert contacts["totalSize"] == 5 and contacts["done"] is False
            assert [r["LastName"] for r in contacts["records"]] == ["C0", "C1"]
            rest = sf.query_more(contacts["nextRecordsUrl"], identifier_is_url=True)
            assert [r["LastName"] for r in rest["records"]] == ["C2", "C3", "C4"]
            assert rest["done"] is True
