"""The Salesforce emulator through simple-salesforce in session mode, as the product uses it."""

from __future__ import annotations

import base64
import datetime as dt
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceMalformedRequest,
    SalesforceMoreThanOneRecord,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)
from simple_salesforce.format import format_external_id

from emulators.salesforce.app import Config, SalesforceFaults
from emulators.salesforce.metadata import DEFAULT_DIR
from tests.certs import self_signed
from tests.emulators.salesforce_harness import Server

Meeting = "Teams_Meeting__c"


@pytest.fixture(scope="module")
def ca_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ca")


SEED = {
    "Contact": [
        {"FirstName": "Carol", "LastName": "Diaz", "Email": "carol@fabrikam.com",
         "Account": {"Name": "Fabrikam"}},
        {"LastName": "Zed", "Email": "zed@example.org"},
    ],
    "Account": [{"Name": "Fabrikam", "Website": "fabrikam.com"}, {"Name": "Contoso"}],
    "Opportunity": [
        {"Name": "Renewal", "StageName": "Negotiation", "CloseDate": "2026-12-31",
         "Account": {"Name": "Fabrikam"}},
        {"Name": "Old deal", "StageName": "Closed Won", "CloseDate": "2020-01-31",
         "Account": {"Name": "Fabrikam"}},
    ],
}  # fmt: skip


@pytest.fixture
def server(ca_dir: Path) -> Iterator[Server]:
    with Server(Config(seed=SEED), ca_dir) as srv:
        yield srv


@pytest.fixture
def sf(server: Server) -> Salesforce:
    return server.sf()


def meeting_body(**extra: Any) -> dict[str, Any]:
    return {"Name": "Renewal call", "Start__c": "2026-11-20T15:00:00Z",
            "End__c": "2026-11-20T15:30:00Z", "Duration_Seconds__c": 1800, **extra}  # fmt: skip


def _self_signed(key: rsa.RSAPrivateKey) -> bytes:
    return self_signed(key, "jwt").public_bytes(serialization.Encoding.PEM)


class TestToken:
    """The token endpoint grants client credentials and JWT bearer and refuses bad clients."""

    def test_client_credentials_by_form_and_basic(self, server: Server) -> None:
        form = {"grant_type": "client_credentials"}
        resp = server.http("POST", "/services/oauth2/token", data=form,
                           auth=("emulator-app", "emulator-secret"))  # fmt: skip
        body = resp.json()
        assert resp.status_code == 200
        assert body["token_type"] == "Bearer" and body["instance_url"] == server.base
        assert {"access_token", "id", "issued_at", "signature"} <= set(body)
        assert server.sf(body["access_token"]).query("SELECT Id FROM Account")["totalSize"] == 2

    def test_wrong_secret_is_invalid_client(self, server: Server) -> None:
        form = {"grant_type": "client_credentials", "client_id": "emulator-app",
                "client_secret": "nope"}  # fmt: skip
        resp = server.http("POST", "/services/oauth2/token", data=form)
        assert resp.status_code == 400
        assert resp.json()["error"] == "invalid_client"

    def test_jwt_bearer(self, ca_dir: Path, tmp_path: Path) -> None:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        cert = tmp_path / "jwt.pem"
        cert.write_bytes(_self_signed(key))
        from emulators.salesforce.oauth import load_public_key

        with Server(Config(jwt_key=load_public_key(cert)), ca_dir) as srv:
            exp = int(dt.datetime.now(dt.UTC).timestamp()) + 180
            claims = {"iss": "emulator-app", "sub": "integration@contoso.com", "aud": srv.base,
                      "exp": exp}  # fmt: skip
            form = {"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
                    "assertion": jwt.encode(claims, key, algorithm="RS256")}  # fmt: skip
            resp = srv.http("POST", "/services/oauth2/token", data=form)
            assert resp.status_code == 200, resp.text
            srv.sf(resp.json()["access_token"]).query("SELECT Id FROM Account")
            other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            form["assertion"] = jwt.encode(claims, other, algorithm="RS256")
            bad = srv.http("POST", "/services/oauth2/token", data=form)
            assert bad.status_code == 400 and bad.json()["error"] == "invalid_grant"


class TestSessions:
    """Expired or invalidated sessions answer 401 INVALID_SESSION_ID as a JSON list."""

    def test_lifetime(self, ca_dir: Path) -> None:
        with Server(Config(session_lifetime_s=0.05), ca_dir) as srv:
            sf = srv.sf()
            time.sleep(0.1)
            with pytest.raises(SalesforceExpiredSession) as info:
                sf.query("SELECT Id FROM Account")
            assert info.value.content[0]["errorCode"] == "INVALID_SESSION_ID"

    def test_expire_sessions_now(self, server: Server, sf: Salesforce) -> None:
        sf.query("SELECT Id FROM Account")
        server.faults(expire_sessions_now=True)
        with pytest.raises(SalesforceExpiredSession):
            sf.query("SELECT Id FROM Account")
        server.sf().query("SELECT Id FROM Account")  # a new token works


class TestUpsert:
    """Upsert by external id creates (201) then updates (200); the value is URL-decoded."""

    def test_created_then_updated(self, server: Server, sf: Salesforce) -> None:
        key = format_external_id("Meeting_Key__c", "19:meeting/abc+1 x")
        assert sf.Teams_Meeting__c.upsert(key, meeting_body()) == 201
        assert sf.Teams_Meeting__c.upsert(key, {"Name": "Renamed"}) == 200
        rows = server.dump()[Meeting]
        assert len(rows) == 1
        assert rows[0]["Meeting_Key__c"] == "19:meeting/abc+1 x" and rows[0]["Name"] == "Renamed"
        assert rows[0]["Id"].startswith("a01") and len(rows[0]["Id"]) == 18

    def test_several_matches_and_unknown_field(self, sf: Salesforce) -> None:
        for key in ("k1", "k2"):
            sf.Teams_Meeting__c.create(meeting_body(Meeting_Key__c=key, Online_Meeting_Id__c="om"))
        with pytest.raises(SalesforceMoreThanOneRecord):
            sf.Teams_Meeting__c.upsert("Online_Meeting_Id__c/om", {"Name": "x"})
        with pytest.raises(SalesforceResourceNotFound):
            sf.Teams_Meeting__c.upsert("Name/x", {"Name": "x"})


class TestValidation:
    """Writes fail with Salesforce's error codes."""

    @pytest.mark.parametrize(
        ("obj", "body", "code"),
        [
            ("Contact", {"FirstName": "No last name"}, "REQUIRED_FIELD_MISSING"),
            ("Contact", {"LastName": "x" * 81}, "STRING_TOO_LONG"),
            ("Contact", {"LastName": "x", "Nope__c": 1}, "INVALID_FIELD"),
            ("Contact", {"LastName": "x", "AccountId": "not-an-id"}, "MALFORMED_ID"),
            ("Contact", {"LastName": "x", "AccountId": "001000000000000AAA"},
             "INVALID_CROSS_REFERENCE_KEY"),
            ("Teams_Meeting__c", {"Meeting_Key__c": "k", "Start__c": "yesterday"},
             "JSON_PARSER_ERROR"),
            ("Opportunity", {"Name": "o", "StageName": "s", "CloseDate": "2026-01-01",
                             "IsClosed": True}, "INVALID_FIELD_FOR_INSERT_UPDATE"),
        ],
    )  # fmt: skip
    def test_create_errors(self, sf: Salesforce, obj: str, body: dict[str, Any], code: str) -> None:
        with pytest.raises(SalesforceMalformedRequest) as info:
            getattr(sf, obj).create(body)
        assert info.value.content[0]["errorCode"] == code

    def test_duplicate_external_id(self, sf: Salesforce) -> None:
        sf.Teams_Meeting__c.create(meeting_body(Meeting_Key__c="dup"))
        with pytest.raises(SalesforceMalformedRequest) as info:
            sf.Teams_Meeting__c.create(meeting_body(Meeting_Key__c="dup"))
        assert info.value.content[0]["errorCode"] == "DUPLICATE_VALUE"


class TestSoql:
    """The SOQL subset filters, follows parents, orders, limits, counts, and refuses the rest."""

    def test_filters_parent_fields_order_limit(self, sf: Salesforce) -> None:
        res = sf.query(
            "SELECT Name, Account.Name, Account.Website FROM Opportunity "
            "WHERE IsClosed = false AND (Account.Website LIKE 'FABRIKAM%' OR Name = 'x') "
            "ORDER BY CloseDate DESC NULLS LAST LIMIT 5"
        )
        assert [r["Name"] for r in res["records"]] == ["Renewal"]
        assert res["records"][0]["Account"]["Name"] == "Fabrikam"
        ordered = sf.query("SELECT Name FROM Contact ORDER BY LastName DESC LIMIT 1")
        assert [r["Name"] for r in ordered["records"]] == ["Zed"]
        found = sf.query("SELECT Id FROM Contact WHERE Email IN ('CAROL@fabrikam.com', 'q@q.q')")
        assert found["totalSize"] == 1
        dated = sf.query("SELECT Id FROM Opportunity WHERE CloseDate < 2021-01-01")
        assert dated["totalSize"] == 1
        assert sf.query("SELECT Id FROM Contact WHERE Account.Name = null")["totalSize"] == 1

    def test_pages_follow_next_records_url(self, ca_dir: Path) -> None:
        with Server(Config(seed=SEED, query_batch=1), ca_dir) as srv:
            sf = srv.sf()
            first = sf.query("SELECT Name FROM Account ORDER BY Name")
            assert first["done"] is False and first["totalSize"] == 2
            assert [
                r["Name"] for r in sf.query_all("SELECT Name FROM Account ORDER BY Name")["records"]
            ] == ["Contoso", "Fabrikam"]
            assert "GET query/{locator}" in srv.stats()["by_route"]

    def test_count(self, sf: Salesforce) -> None:
        assert sf.query("SELECT COUNT() FROM Contact WHERE Email != null")["totalSize"] == 2

    @pytest.mark.parametrize(
        "soql",
        [
            "SELECT Name FROM Account GROUP BY Name",
            "SELECT Name, (SELECT Id, (SELECT Id FROM Cases) FROM Contacts) FROM Account",
            "SELECT Name FROM Account WHERE Name = 'a' AND Name = 'b' OR Name = 'c'",
            "SELECT MAX(Amount) FROM Opportunity",
            "SELECT Name FROM Account WHERE",
        ],
    )
    def test_unsupported_is_malformed(self, sf: Salesforce, soql: str) -> None:
        with pytest.raises(SalesforceMalformedRequest) as info:
            sf.query(soql)
        assert info.value.content[0]["errorCode"] == "MALFORMED_QUERY"


def _participants(meeting_key: str, keys: list[str]) -> dict[str, Any]:
    return {"allOrNone": False, "records": [
        {"attributes": {"type": "Teams_Meeting_Participant__c"}, "Participant_Key__c": k,
         "Meeting__r": {"Meeting_Key__c": meeting_key}, "Email__c": f"{k}@fabrikam.com"}
        for k in keys]}  # fmt: skip


class TestCompositeAndCollections:
    """Composite resolves references and rolls back with allOrNone; collections report per item."""

    def test_composite_with_references_is_one_call(self, server: Server, sf: Salesforce) -> None:
        before = server.stats()["api_calls"]
        v = "/services/data/v62.0"
        # The participants name the meeting only by external id: an implicit dependency, so
        # the order must not be left to collation.
        res = sf.restful("composite", method="POST", json={
            "allOrNone": True, "collateSubrequests": False, "compositeRequest": [
            {"method": "PATCH", "referenceId": "m",
             "url": f"{v}/sobjects/Teams_Meeting__c/Meeting_Key__c/k1", "body": meeting_body()},
            {"method": "PATCH", "referenceId": "p",
             "url": f"{v}/composite/sobjects/Teams_Meeting_Participant__c/Participant_Key__c",
             "body": _participants("k1", ["a", "b"])},
            {"method": "GET", "referenceId": "q",
             "url": f"{v}/query?q=SELECT+Id+FROM+Teams_Meeting__c+WHERE+Id='@{{m.id}}'"},
            {"method": "POST", "referenceId": "t", "url": f"{v}/sobjects/Teams_Transcript__c",
             "body": {"Transcript_Key__c": "t1", "Meeting__c": "@{q.records[0].Id}"}},
        ]})  # fmt: skip
        codes = [r["httpStatusCode"] for r in res["compositeResponse"]]
        assert codes == [201, 200, 200, 201]
        assert server.stats()["api_calls"] == before + 1
        dump = server.dump()
        assert len(dump["Teams_Meeting_Participant__c"]) == 2
        assert dump["Teams_Transcript__c"][0]["Meeting__c"] == dump[Meeting][0]["Id"]

    def test_all_or_none_rolls_back(self, server: Server, sf: Salesforce) -> None:
        v = "/services/data/v62.0"
        res = sf.restful("composite", method="POST", json={"allOrNone": True, "compositeRequest": [
            {"method": "POST", "referenceId": "a", "url": f"{v}/sobjects/Account",
             "body": {"Name": "Tailspin"}},
            {"method": "POST", "referenceId": "c", "url": f"{v}/sobjects/Contact",
             "body": {"AccountId": "@{a.id}"}},
        ]})  # fmt: skip
        first, second = res["compositeResponse"]
        assert second["body"][0]["errorCode"] == "REQUIRED_FIELD_MISSING"
        assert first["body"][0]["errorCode"] == "PROCESSING_HALTED"
        names = [a["Name"] for a in server.dump()["Account"]]
        assert "Tailspin" not in names

    def test_collection_upsert_per_item_error(self, server: Server, sf: Salesforce) -> None:
        sf.Teams_Meeting__c.upsert("Meeting_Key__c/k1", meeting_body())
        body = _participants("k1", ["a", "b"])
        body["records"][1]["Meeting__r"] = {"Meeting_Key__c": "missing"}
        url = "composite/sobjects/Teams_Meeting_Participant__c/Participant_Key__c"
        res = sf.restful(url, method="PATCH", json=body)
        assert [r["success"] for r in res] == [True, False]
        assert res[0]["created"] is True
        assert res[1]["errors"][0]["statusCode"] == "INVALID_FIELD"
        again = sf.restful(url, method="PATCH", json=_participants("k1", ["a"]))
        assert again[0]["created"] is False
        # deploy/salesforce allows reparenting, so an upsert may name the parent again.
        k2 = sf.Teams_Meeting__c.upsert("Meeting_Key__c/k2", meeting_body())
        assert k2 == 201
        moved = sf.restful(url, method="PATCH", json=_participants("k2", ["a"]))
        assert moved[0]["success"] is True and moved[0]["created"] is False
        rows = server.dump()["Teams_Meeting_Participant__c"]
        assert [r["Participant_Key__c"] for r in rows] == ["a"]
        meetings = {r["Meeting_Key__c"]: r["Id"] for r in server.dump()[Meeting]}
        assert rows[0]["Meeting__c"] == meetings["k2"]

    def test_collection_delete_cascades(self, server: Server, sf: Salesforce) -> None:
        meeting = sf.Teams_Meeting__c.create(meeting_body(Meeting_Key__c="d"))["id"]
        url = "composite/sobjects/Teams_Meeting_Participant__c/Participant_Key__c"
        sf.restful(url, method="PATCH", json=_participants("d", ["x"]))
        res = sf.restful("composite/sobjects", method="DELETE",
                         params={"ids": f"{meeting},{meeting}"})  # fmt: skip
        assert [r["success"] for r in res] == [True, False]
        assert res[1]["errors"][0]["statusCode"] == "ENTITY_IS_DELETED"
        dump = server.dump()
        assert Meeting not in dump and "Teams_Meeting_Participant__c" not in dump


class TestDescribeAndFiles:
    """describe reflects deploy/salesforce; ContentVersion publishes a linked document."""

    def test_describe_reads_the_sfdx_xml(self, sf: Salesforce) -> None:
        path = DEFAULT_DIR / "force-app/main/default/objects/Teams_Transcript__c/fields"
        node = ET.parse(path / "Text__c.field-meta.xml").getroot()
        ns = "{http://soap.sforce.com/2006/04/metadata}"
        length = int(node.findtext(f"{ns}length") or 0)
        fields = {f["name"]: f for f in sf.Teams_Transcript__c.describe()["fields"]}
        assert fields["Text__c"]["length"] == length and fields["Text__c"]["type"] == "textarea"
        key = fields["Transcript_Key__c"]
        assert key["externalId"] and key["unique"] and not key["nillable"]
        assert fields["Meeting__c"]["referenceTo"] == ["Teams_Meeting__c"]
        assert fields["Meeting__c"]["relationshipName"] == "Meeting__r"

    def test_content_version_links_to_location(self, server: Server, sf: Salesforce) -> None:
        meeting = sf.Teams_Meeting__c.create(meeting_body(Meeting_Key__c="f"))["id"]
        data = base64.b64encode(b"WEBVTT\n\n").decode()
        version = sf.ContentVersion.create({"Title": "t", "PathOnClient": "t.vtt",
                                            "VersionData": data,
                                            "FirstPublishLocationId": meeting})["id"]  # fmt: skip
        doc = sf.ContentVersion.get(version)["ContentDocumentId"]
        links = sf.query(f"SELECT LinkedEntityId FROM ContentDocumentLink "
                         f"WHERE ContentDocumentId = '{doc}'")  # fmt: skip
        assert [r["LinkedEntityId"] for r in links["records"]] == [meeting]


class TestLimits:
    """Every API call is counted and reported; REQUEST_LIMIT_EXCEEDED comes and goes."""

    def test_counting_and_header(self, server: Server, sf: Salesforce) -> None:
        sf.query("SELECT Id FROM Account")
        sf.Account.create({"Name": "A"})
        stats = server.stats()
        assert stats["api_calls"] == 2
        assert stats["by_route"] == {"GET query": 1, "POST sobjects/Account": 1}
        resp = server.http("GET", "/services/data/v62.0/limits",
                           headers={"Authorization": f"Bearer {server.token()}"})  # fmt: skip
        assert resp.headers["Sforce-Limit-Info"] == "api-usage=3/15000"
        assert resp.json()["DailyApiRequests"] == {"Max": 15000, "Remaining": 14997}

    def test_request_limit_then_recovery(self, server: Server, sf: Salesforce) -> None:
        server.faults(request_limit_after=1, request_limit_burst=2)
        sf.query("SELECT Id FROM Account")
        for _ in range(2):
            with pytest.raises(SalesforceRefusedRequest) as info:
                sf.query("SELECT Id FROM Account")
            assert info.value.content[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"
        assert sf.query("SELECT Id FROM Account")["totalSize"] == 2

    def test_daily_limit_and_503(self, ca_dir: Path) -> None:
        with Server(Config(daily_limit=1), ca_dir) as srv:
            sf = srv.sf()
            sf.query("SELECT Id FROM Account")
            with pytest.raises(SalesforceRefusedRequest):
                sf.query("SELECT Id FROM Account")
            assert srv.stats()["rejected"] == {"request_limit": 1}
            srv.faults(rate_503=1.0)
            with pytest.raises(SalesforceGeneralError) as info:
                sf.query("SELECT Id FROM Account")
            assert info.value.status == 503


class TestPersistence:
    """--db keeps records across restarts, and seeding only happens on an empty database."""

    def test_restart(self, ca_dir: Path, tmp_path: Path) -> None:
        db = str(tmp_path / "sf.db")
        with Server(Config(db=db, seed=SEED), ca_dir) as srv:
            srv.sf().Teams_Meeting__c.upsert("Meeting_Key__c/k", meeting_body())
            first = srv.dump()
        with Server(Config(db=db, seed=SEED, faults=SalesforceFaults()), ca_dir) as srv:
            assert srv.dump() == first
            assert srv.sf().Teams_Meeting__c.upsert("Meeting_Key__c/k", meeting_body()) == 200
            made = srv.sf().Account.create({"Name": "New"})["id"]
            assert made not in {a["Id"] for a in first["Account"]}

    def test_dump_format(self, server: Server) -> None:
        dump = server.dump()
        assert sorted(dump) == ["Account", "Contact", "Opportunity"]
        carol = dump["Contact"][0]
        assert carol["LastName"] == "Diaz" and carol["Id"].startswith("003")
        assert carol["AccountId"] == dump["Account"][0]["Id"]
        assert dump["Opportunity"][1]["IsClosed"] is True
