"""The Salesforce stage against the Salesforce emulator over HTTPS, through simple-salesforce."""

from __future__ import annotations

import base64
import datetime as dt
import shutil
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from prometheus_client import REGISTRY
from structlog.testing import capture_logs

from core.exceptions import SchemaMissing, UpstreamPermanent, UpstreamTransient
from core.settings import Settings
from emulators.salesforce.app import Config
from emulators.salesforce.metadata import DEFAULT_DIR
from emulators.salesforce.oauth import load_public_key
from tests.certs import self_signed
from tests.emulators import salesforce_harness as harness
from workers import context
from workers.meeting import ResolvedMeeting, ResolvedParticipant, ResolvedTranscript
from workers.salesforce import matching, outcome, records, schema, stage
from workers.salesforce.client import Backoff, Credentials, SalesforceClient
from workers.salesforce.stage import Connection
from workers.vtt import SALESFORCE_TEXT_LIMIT

FAST = Backoff(attempts=3, first_delay=0.01, max_delay=0.02)


class Server(harness.Server):
    """The Salesforce emulator of tests/emulators/salesforce_harness.py, with the product's
    own client pointed at it (closed with the server)."""

    def __init__(self, config: Config, ca_dir: Path) -> None:
        super().__init__(config, ca_dir)
        self.clients: list[SalesforceClient] = []

    def __exit__(self, *exc: object) -> None:
        for client in self.clients:
            client.close()
        super().__exit__(*exc)

    def client(self, credentials: Credentials | None = None) -> SalesforceClient:
        creds = credentials or Credentials("emulator-app", "emulator-secret")
        client = SalesforceClient(
            self.base, creds, "62.0", self.ca_dir / "ca.pem", timeout=(5, 30), retry=FAST
        )
        self.clients.append(client)
        return client

    def connection(self) -> Connection:
        client = self.client()
        return Connection(client, schema.check(client))

    def calls(self) -> int:
        return int(self.stats()["api_calls"])

    def settings(self, **more: Any) -> Settings:
        """The product's settings pointed at this emulator."""
        return Settings(
            sf_instance_url=self.base,
            sf_client_id="emulator-app",
            sf_client_secret="emulator-secret",
            ca_bundle=self.ca_dir / "ca.pem",
            **more,
        )


@pytest.fixture(scope="module")
def ca_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ca")


SEED: dict[str, list[dict[str, Any]]] = {
    "Account": [
        {"Name": "Fabrikam", "Website": "https://www.fabrikam.com"},
        {"Name": "Tailspin", "Website": "tailspin.com"},
        {"Name": "Northwind"},
        {"Name": "Litware"},
        {"Name": "Wingtip", "Website": "https://WingtipToys.com/shop"},
        {"Name": "Proseware", "Website": "proseware.com"},
    ],
    "Contact": [
        {"LastName": "Diaz", "Email": "carol@fabrikam.com", "Account": {"Name": "Fabrikam"}},
        {"LastName": "Both", "Email": "both@fabrikam.com", "Account": {"Name": "Fabrikam"}},
        {"LastName": "Tai", "Email": "tai@tailspin-corp.net", "Account": {"Name": "Tailspin"}},
        {"LastName": "Nor", "Email": "nora@northwind.io", "Account": {"Name": "Northwind"}},
        {"LastName": "Lin", "Email": "lina@litware.com", "Account": {"Name": "Litware"}},
        {"LastName": "Pat", "Email": "pat@proseware.com", "Account": {"Name": "Proseware"}},
    ],
    "Lead": [
        {"LastName": "Lee", "Company": "Tailspin", "Email": "LEE@tailspin.com"},
        {"LastName": "Both", "Company": "Fabrikam", "Email": "both@fabrikam.com"},
    ],
    "User": [
        {"LastName": "Adams", "Username": "alice@contoso.com.sf", "Email": "alice@contoso.com"},
    ],
    "Opportunity": [
        {"Name": "Renewal", "StageName": "Negotiation", "CloseDate": "2027-01-31",
         "Account": {"Name": "Fabrikam"}},
        {"Name": "Old deal", "StageName": "Closed Won", "CloseDate": "2025-01-31",
         "Account": {"Name": "Fabrikam"}},
        {"Name": "Tailspin pilot", "StageName": "Prospecting", "CloseDate": "2027-03-31",
         "Account": {"Name": "Tailspin"}},
        # No contact roles on these: found through the contact's account or the website.
        {"Name": "Litware expansion", "StageName": "Qualification", "CloseDate": "2027-05-31",
         "Account": {"Name": "Litware"}},
        {"Name": "Wingtip trial", "StageName": "Prospecting", "CloseDate": "2027-06-30",
         "Account": {"Name": "Wingtip"}},
        {"Name": "Proseware lost", "StageName": "Closed Lost", "CloseDate": "2026-01-31",
         "Account": {"Name": "Proseware"}},
    ],
    "OpportunityContactRole": [
        {"Opportunity": {"Name": "Old deal"}, "Contact": {"Email": "carol@fabrikam.com"}},
        {"Opportunity": {"Name": "Renewal"}, "Contact": {"Email": "both@fabrikam.com"}},
        {"Opportunity": {"Name": "Tailspin pilot"}, "Contact": {"Email": "tai@tailspin-corp.net"}},
    ],
}  # fmt: skip


@pytest.fixture
def server(ca_dir: Path) -> Iterator[Server]:
    with Server(Config(seed=SEED), ca_dir) as srv:
        yield srv


def cue(i: int, speaker: str, words: str) -> str:
    stamp = f"00:{i // 60:02d}:{i % 60:02d}"
    return f"{stamp}.000 --> {stamp}.900\n<v {speaker}>{words}</v>\n\n"


VTT = "WEBVTT\n\n" + cue(2, "Carol Diaz", "Fine, thanks?") + cue(0, "Alice Adams", "Hello Carol.")


def person(
    email: str | None, kind: str, name: str = "", key: str | None = None
) -> ResolvedParticipant:
    role = "organizer" if email == "alice@contoso.com" else "attendee"
    return ResolvedParticipant(key or email or name, name or email or "?", email, role, kind)


BASE = (
    person("alice@contoso.com", "internal", "Alice Adams"),
    person("carol@fabrikam.com", "external", "Carol Diaz"),
    person("lee@tailspin.com", "external", "Lee"),
    person("both@fabrikam.com", "external", "Bo Both"),
    person(None, "unidentified", "+14255550100"),
)


def meeting(key: str = "m-001", participants: tuple[ResolvedParticipant, ...] = BASE,
            vtt: str = VTT) -> ResolvedMeeting:  # fmt: skip
    return ResolvedMeeting(
        meeting_key=key, online_meeting_id="MSo" + key, call_record_id="cr-" + key,
        subject="Renewal call", start=dt.datetime(2026, 11, 20, 15, 0, tzinfo=dt.UTC),
        end=dt.datetime(2026, 11, 20, 15, 30, tzinfo=dt.UTC), organizer_email="alice@contoso.com",
        reason="external_participants", participants=participants,
        transcripts=(ResolvedTranscript("t-" + key, vtt),),
    )  # fmt: skip


def crowd(n: int) -> tuple[ResolvedParticipant, ...]:
    return BASE + tuple(person(f"guest{i}@example{i % 7}.org", "external") for i in range(n - 5))


def counts(dump: dict[str, list[dict[str, Any]]]) -> dict[str, int]:
    names = ("Teams_Meeting__c", "Teams_Meeting_Participant__c", "Teams_Transcript__c",
             "ContentVersion", "ContentDocumentLink")  # fmt: skip
    return {n: len(dump.get(n, [])) for n in names}


def _self_signed(key: rsa.RSAPrivateKey) -> bytes:
    return self_signed(key, "jwt").public_bytes(serialization.Encoding.PEM)


class TestAuth:
    """The client signs in by client credentials or JWT bearer against SF_INSTANCE_URL."""

    def test_client_credentials(self, server: Server) -> None:
        rows = server.client().api().query("SELECT Id FROM Account")
        assert rows["totalSize"] == len(SEED["Account"])

    def test_wrong_secret_is_permanent(self, server: Server) -> None:
        client = server.client(Credentials("emulator-app", "wrong"))
        with pytest.raises(UpstreamPermanent, match="invalid_client") as info:
            client.api()
        assert "wrong" not in str(info.value)

    def test_jwt_bearer(self, ca_dir: Path, tmp_path: Path) -> None:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        (tmp_path / "cert.pem").write_bytes(_self_signed(key))
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        (tmp_path / "key.pem").write_bytes(pem)
        config = Config(jwt_key=load_public_key(tmp_path / "cert.pem"))
        with Server(config, ca_dir) as srv:
            creds = Credentials("emulator-app", username="int@contoso.com",
                                private_key_path=tmp_path / "key.pem")  # fmt: skip
            assert srv.client(creds).api().query("SELECT Id FROM Account")["totalSize"] == 0


class TestSchemaCheck:
    """At start, describe shows every object and field the product writes, or names what lacks."""

    def test_shipped_metadata_passes(self, server: Server) -> None:
        checked = schema.check(server.client())
        assert checked.optional["Teams_Meeting__c"] == set(schema.OPTIONAL["Teams_Meeting__c"])
        assert len(schema.OPTIONAL["Teams_Meeting__c"]) == 9
        assert checked.objects == {"Teams_Meeting_Mention__c"}

    def test_missing_field_is_named(self, ca_dir: Path, tmp_path: Path) -> None:
        project = tmp_path / "salesforce"
        shutil.copytree(DEFAULT_DIR, project)
        objects = project / "force-app" / "main" / "default" / "objects"
        (objects / "Teams_Transcript__c" / "fields" / "Cue_Count__c.field-meta.xml").unlink()
        (objects / "Teams_Meeting__c" / "fields" / "Question_Count__c.field-meta.xml").unlink()
        with (
            Server(Config(metadata_dir=project), ca_dir) as srv,
            pytest.raises(SchemaMissing) as info,
        ):
            schema.check(srv.client())
        message = str(info.value)
        assert "Teams_Transcript__c.Cue_Count__c (field not found)" in message
        assert "deploy/salesforce" in message
        assert "Question_Count__c" not in message  # optional: left out, not required

    def test_fixed_master_detail_is_named(self, ca_dir: Path, tmp_path: Path) -> None:
        """An org deployed before the masters allowed reparenting is told to deploy again."""
        project = tmp_path / "salesforce"
        shutil.copytree(DEFAULT_DIR, project)
        field = (project / "force-app/main/default/objects/Teams_Meeting_Participant__c"
                 / "fields/Meeting__c.field-meta.xml")  # fmt: skip
        field.write_text(field.read_text().replace(">true</reparentable", ">false</reparentable"))
        with (
            Server(Config(metadata_dir=project), ca_dir) as srv,
            pytest.raises(SchemaMissing) as info,
        ):
            schema.check(srv.client())
        assert "Teams_Meeting_Participant__c.Meeting__c (not updateable)" in str(info.value)
        assert "Teams_Transcript__c" not in str(info.value)

    def test_unreadable_lookups_are_named(self) -> None:
        def describe(names: Iterable[str], queryable: bool = True) -> dict[str, Any]:
            fields = [{"name": n, "createable": True, "updateable": True} for n in names]
            return {"createable": True, "queryable": queryable, "fields": fields}

        describes: dict[str, dict[str, Any] | None] = {
            obj: describe(wanted) for obj, wanted in schema.REQUIRED.items()
        }
        describes |= {obj: describe(names) for obj, names in schema.READ.items()}
        assert schema.problems(describes) == []
        describes["Opportunity"] = None  # no read access: describe answers 404
        describes["Lead"] = describe(schema.READ["Lead"], queryable=False)
        describes["Account"] = describe(["Name"])  # Website hidden by field-level security
        assert schema.problems(describes) == [
            "Lead (not readable)",
            "Account.Website (not readable)",
            "Opportunity (not readable)",
        ]

    def test_optional_fields_left_out(self) -> None:
        kept = schema.Schema({"Teams_Meeting__c": frozenset({"Question_Count__c"})})
        record = {"Name": "x", "Question_Count__c": 1, "Internal_Talk_Ratio__c": 5.0}
        assert kept.keep("Teams_Meeting__c", record) == {"Name": "x", "Question_Count__c": 1}


class TestPush:
    """A meeting is written in two API calls whatever its size, and replays change nothing."""

    def test_many_participants_in_two_calls_and_replays(self, server: Server) -> None:
        conn = server.connection()
        m = meeting(participants=crowd(250))
        first = server.calls()
        ids = stage.write(conn, m)
        assert server.calls() - first == 2
        before = server.dump()
        assert counts(before) == {"Teams_Meeting__c": 1, "Teams_Meeting_Participant__c": 250,
                                  "Teams_Transcript__c": 1, "ContentVersion": 0,
                                  "ContentDocumentLink": 0}  # fmt: skip
        for _ in range(3):
            start = server.calls()
            assert stage.write(conn, m) == ids
            assert server.calls() - start == 2
        after = server.dump()
        assert counts(after) == counts(before)
        key = "Teams_Meeting_Participant__c"
        assert {r["Id"] for r in after[key]} == {r["Id"] for r in before[key]}
        assert after["Teams_Meeting__c"][0]["Id"] == ids["meeting"]

    def test_records_and_matches(self, server: Server) -> None:
        ids = stage.write(server.connection(), meeting())
        dump = server.dump()
        by_id = {r["Id"]: r for rows in dump.values() for r in rows}
        rows = {r.get("Email__c"): r for r in dump["Teams_Meeting_Participant__c"]}
        contact = {r["Email"]: r["Id"] for r in dump["Contact"]}
        lead = {r["Email"].lower(): r["Id"] for r in dump["Lead"]}
        carol, lee, both = (
            rows["carol@fabrikam.com"],
            rows["lee@tailspin.com"],
            rows["both@fabrikam.com"],
        )
        alice, phone = rows["alice@contoso.com"], rows[None]
        assert carol.get("Contact__c") == contact["carol@fabrikam.com"] and carol["Is_External__c"]
        assert both.get("Contact__c") == contact["both@fabrikam.com"] and not both.get("Lead__c")
        assert lee.get("Lead__c") == lead["lee@tailspin.com"] and not lee.get("Contact__c")
        assert alice.get("User__c") == dump["User"][0]["Id"] and not alice["Is_External__c"]
        assert not any(phone.get(f) for f in ("Contact__c", "Lead__c", "User__c"))
        assert alice["Role__c"] == "organizer" and alice["Talk_Time_Seconds__c"] == 1
        text = dump["Teams_Transcript__c"][0]
        assert text["Text__c"] == "Alice Adams: Hello Carol.\nCarol Diaz: Fine, thanks?"
        assert text["Is_Truncated__c"] is False and text["Cue_Count__c"] == 2
        assert text["Meeting__c"] == ids["meeting"] == carol["Meeting__c"]
        meeting_row = by_id[ids["meeting"]]
        assert meeting_row["Meeting_Key__c"] == "m-001"
        assert meeting_row["Start__c"].startswith("2026-11-20T15:00:00")
        assert meeting_row["Internal_Talk_Ratio__c"] == 50.0
        # ECI's order: the participant's contact role on the open Renewal (the closed deal
        # that Carol has a role on is excluded).
        renewal = next(r["Id"] for r in dump["Opportunity"] if r["Name"] == "Renewal")
        assert meeting_row["Related_Opportunity__c"] == renewal == ids["related_opportunity"]
        fabrikam = next(r["Id"] for r in dump["Account"] if r["Name"] == "Fabrikam")
        assert meeting_row["Related_Account__c"] == fabrikam

    def test_related_by_website_domain(self, server: Server) -> None:
        people = (BASE[0], person("dana@tailspin.com", "external", "Dana"))
        ids = stage.write(server.connection(), meeting("m-web", people))
        dump = server.dump()
        pilot = next(r["Id"] for r in dump["Opportunity"] if r["Name"] == "Tailspin pilot")
        assert ids["related_opportunity"] == pilot
        row = next(r for r in dump["Teams_Meeting__c"] if r["Meeting_Key__c"] == "m-web")
        assert row["Related_Opportunity__c"] == pilot

    @pytest.mark.parametrize(
        ("email", "account", "opportunity"),
        [
            # 2. Carol's own role is on a closed deal; her account's open Renewal is found
            # through a colleague's role.
            ("carol@fabrikam.com", "Fabrikam", "Renewal"),
            # 2. an open opportunity on the contact's account that has no contact role at all.
            ("lina@litware.com", "Litware", "Litware expansion"),
            # 3. no contact at all: the domain is the website of an account with an open deal.
            ("gus@wingtiptoys.com", "Wingtip", "Wingtip trial"),
            # 4. no open opportunity: the contact's account alone.
            ("nora@northwind.io", "Northwind", None),
            ("pat@proseware.com", "Proseware", None),
            # nothing known about the person or the domain.
            ("ann@unknown.example", None, None),
        ],
    )
    def test_related_fallbacks(
        self, server: Server, email: str, account: str | None, opportunity: str | None
    ) -> None:
        people = (BASE[0], person(email, "external", "Guest"))
        ids = stage.write(server.connection(), meeting("m-rel", people))
        dump = server.dump()
        names = {r["Id"]: r["Name"] for r in dump["Account"] + dump["Opportunity"]}
        row = dump["Teams_Meeting__c"][0]
        assert names.get(row.get("Related_Account__c", "")) == account
        assert names.get(row.get("Related_Opportunity__c", "")) == opportunity
        assert names.get(ids.get("related_opportunity", "")) == opportunity

    def test_new_participant_on_replay(self, server: Server) -> None:
        conn = server.connection()
        stage.write(conn, meeting("m-grow", BASE[:2]))
        stage.write(conn, meeting("m-grow", BASE[:4]))
        assert counts(server.dump())["Teams_Meeting_Participant__c"] == 4


class TestCollation:
    """Salesforce collates a composite's subrequests by default from API 49.0 and may run the
    participants before the meeting they name by external id; the write turns it off, so the
    first write of a meeting succeeds against an emulator that collates, as Salesforce does."""

    def test_first_write_with_collation_as_live(
        self, server: Server, ca_dir: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        conn = server.connection()
        sent: list[dict[str, Any]] = []
        restful = conn.client.restful

        def keep(path: str, method: str = "GET", body: Any = None, idempotent: bool = True) -> Any:
            sent.append(body)
            return restful(path, method, body, idempotent)

        monkeypatch.setattr(conn.client, "restful", keep)
        ids = stage.write(conn, meeting())
        assert counts(server.dump())["Teams_Meeting_Participant__c"] == len(BASE)
        write = sent[-1]
        assert write["collateSubrequests"] is False and ids["meeting"]
        # The same write left to the default order fails in a fresh org: the flag matters.
        with Server(Config(seed=SEED), ca_dir) as fresh:
            default = {k: v for k, v in write.items() if k != "collateSubrequests"}
            answer = fresh.client().restful("composite", "POST", default)
            codes = {r["referenceId"]: r["httpStatusCode"] for r in answer["compositeResponse"]}
            assert codes["meeting"] == 400
            assert counts(fresh.dump())["Teams_Meeting__c"] == 0


def _role_picklist(tmp_path: Path, values: tuple[str, ...]) -> Path:
    """deploy/salesforce with Role__c made a restricted picklist, as an admin might."""
    project = tmp_path / "salesforce"
    shutil.copytree(DEFAULT_DIR, project)
    role = project / ("force-app/main/default/objects/Teams_Meeting_Participant__c/fields/"
                      "Role__c.field-meta.xml")  # fmt: skip
    entries = "".join(
        f"<value><fullName>{v}</fullName><default>false</default><label>{v}</label></value>"
        for v in values
    )
    role.write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<CustomField xmlns="http://soap.sforce.com/2006/04/metadata"><fullName>Role__c'
        "</fullName><label>Role</label><type>Picklist</type><valueSet><restricted>true"
        f"</restricted><valueSetDefinition>{entries}</valueSetDefinition></valueSet>"
        "</CustomField>\n"
    )
    return project


class TestRollback:
    """One record Salesforce refuses rolls the whole meeting back; the log and the error name
    that record and its error, not the PROCESSING_HALTED echoes of the others."""

    def test_bad_participant_rolls_back_the_meeting(self, ca_dir: Path, tmp_path: Path) -> None:
        config = Config(seed=SEED, metadata_dir=_role_picklist(tmp_path, ("attendee",)))
        m = meeting("m-bad")
        alice = records.participant_key(m, BASE[0])  # the organizer: not in the picklist
        with Server(config, ca_dir) as srv:
            conn = srv.connection()
            with capture_logs() as logs, pytest.raises(UpstreamPermanent) as info:
                stage.write(conn, m)
            dump = srv.dump()
        assert counts(dump) == dict.fromkeys(counts(dump), 0)
        assert "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST" in str(info.value)
        assert alice in str(info.value) and "PROCESSING_HALTED" not in str(info.value)
        (entry,) = [e for e in logs if e["event"] == "salesforce_refused"]
        assert entry["record_key"] == alice and entry["meeting_key"] == "m-bad"
        assert entry["error_code"] == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
        assert entry["error"] == "Role: bad value for restricted picklist field: organizer"
        assert entry["subrequest"] == "participants0" and entry["log_level"] == "warning"


class TestLongTranscript:
    """Past 131,072 characters the text is cut and the full WebVTT is attached exactly once."""

    def test_truncated_with_one_file(self, server: Server) -> None:
        long = "WEBVTT\n\n" + "".join(cue(i, "Carol Diaz", "word " * 60) for i in range(600))
        conn = server.connection()
        m = meeting("m-long", vtt=long)
        ids = stage.write(conn, m)
        for _ in range(3):
            start = server.calls()
            stage.write(conn, m)
            assert server.calls() - start == 2
        dump = server.dump()
        assert counts(dump)["ContentVersion"] == 1
        text = dump["Teams_Transcript__c"][0]
        assert text["Is_Truncated__c"] is True and len(text["Text__c"]) <= SALESFORCE_TEXT_LIMIT
        version = dump["ContentVersion"][0]
        assert version["Id"] == ids["file"]
        assert base64.b64decode(version["VersionData"]).decode() == long
        links = [r for r in dump["ContentDocumentLink"] if r["LinkedEntityId"] == ids["meeting"]]
        assert len(links) == 1


class TestFaults:
    """Expired sessions are renewed; limits and 503 are retried, then raised as transient."""

    def test_session_expiry_mid_run(self, server: Server) -> None:
        conn = server.connection()
        stage.write(conn, meeting())
        tokens = server.stats()["token_requests"]
        server.faults(expire_sessions_now=True)
        start = server.calls()
        stage.write(conn, meeting())
        assert server.calls() - start == 2
        assert server.stats()["token_requests"] == tokens + 1

    def test_request_limit_burst_then_pushed(self, server: Server) -> None:
        conn = server.connection()
        server.faults(request_limit_after=0, request_limit_burst=FAST.attempts)
        with pytest.raises(UpstreamTransient, match="REQUEST_LIMIT_EXCEEDED"):
            stage.write(conn, meeting())
        assert counts(server.dump())["Teams_Meeting__c"] == 0
        start = server.calls()
        assert stage.write(conn, meeting())["meeting"]
        assert server.calls() - start == 2

    def test_short_burst_is_absorbed_by_retries(self, server: Server) -> None:
        conn = server.connection()
        server.faults(request_limit_after=0, request_limit_burst=1)
        assert stage.write(conn, meeting())["meeting"]
        assert counts(server.dump())["Teams_Meeting__c"] == 1

    def test_unavailable_is_transient(self, server: Server) -> None:
        conn = server.connection()
        server.faults(rate_503=1.0)
        with pytest.raises(UpstreamTransient, match="503"):
            stage.write(conn, meeting())
        server.faults(rate_503=0.0)
        assert stage.write(conn, meeting())["meeting"]

    def test_long_retry_after_is_handed_to_the_job(self, server: Server) -> None:
        conn = server.connection()
        server.faults(rate_429=1.0, retry_after_s=7)
        before = REGISTRY.get_sample_value(
            "ingest_salesforce_calls_total", {"outcome": "transient"}
        )
        with pytest.raises(UpstreamTransient, match="429") as info:
            stage.write(conn, meeting())
        assert info.value.retry_after == 7.0
        after = REGISTRY.get_sample_value("ingest_salesforce_calls_total", {"outcome": "transient"})
        assert after == (before or 0) + 1
        assert server.stats()["api_calls"] == 1  # the describe only

    def test_unreachable_is_transient(self, server: Server) -> None:
        client = SalesforceClient("https://127.0.0.1:9", Credentials("a", "b"), "62.0", retry=FAST)
        with pytest.raises(UpstreamTransient, match="unreachable"):
            client.api()
        client.close()


class TestOutcomes:
    """Every sub-response and item is checked; each failure is transient or permanent."""

    @pytest.mark.parametrize(
        ("status", "code", "error"),
        [
            (503, "SERVER_UNAVAILABLE", UpstreamTransient),
            (403, "REQUEST_LIMIT_EXCEEDED", UpstreamTransient),
            (400, "DUPLICATE_VALUE", UpstreamTransient),
            (400, "MALFORMED_QUERY", UpstreamPermanent),
            (404, "NOT_FOUND", UpstreamPermanent),
            (300, "", UpstreamPermanent),
        ],
    )
    def test_sub_response(self, status: int, code: str, error: type[Exception]) -> None:
        halted = [{"errorCode": "PROCESSING_HALTED", "message": "rolled back"}]
        reply = {"compositeResponse": [
            {"referenceId": "meeting", "httpStatusCode": 400, "body": halted},
            {"referenceId": "x", "httpStatusCode": status,
             "body": [{"errorCode": code, "message": "m"}]},
        ]}  # fmt: skip
        with pytest.raises(error, match=f"x: {status} {code}"):
            outcome.results(reply)

    def test_allowed_status(self) -> None:
        reply = {"compositeResponse": [{"referenceId": "transcript", "httpStatusCode": 404,
                                        "body": [{"errorCode": "NOT_FOUND"}]}]}  # fmt: skip
        assert outcome.results(reply, allowed={"transcript": (404,)})["transcript"][0] == 404

    @pytest.mark.parametrize(
        ("items", "error", "cause"),
        [
            ([{"success": True, "id": "a"}, {"success": True, "id": "b"}], None, ""),
            ([{"success": True}, {"success": False, "errors": [{"statusCode": "STRING_TOO_LONG"}]}],
             UpstreamPermanent, "STRING_TOO_LONG .*record p1"),
            ([{"success": False, "errors": [{"statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK"}]},
              {"success": False, "errors": [{"statusCode": "UNABLE_TO_LOCK_ROW"}]}],
             UpstreamTransient, "UNABLE_TO_LOCK_ROW .*record p1"),
            # Two workers upserting the same new key: the loser's insert is a duplicate.
            ([{"success": False, "errors": [{"statusCode": "DUPLICATE_VALUE"}]},
              {"success": False, "errors": [{"statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK"}]}],
             UpstreamTransient, "DUPLICATE_VALUE .*record p0"),
            ({"not": "a list"}, UpstreamPermanent, "expected a list"),
        ],
    )  # fmt: skip
    def test_collection_items(self, items: Any, error: type[Exception] | None, cause: str) -> None:
        """A collection answers 200 whatever happened; the item that failed is the cause."""
        url = "/services/data/v62.0/composite/sobjects/Teams_Meeting_Participant__c/" \
              "Participant_Key__c"  # fmt: skip
        records = [{"Participant_Key__c": f"p{n}"} for n in range(2)]
        subs = [
            {
                "referenceId": "meeting",
                "url": "/services/data/v62.0/sobjects/Teams_Meeting__c/Meeting_Key__c/m-1",
            },
            {"referenceId": "participants0", "url": url, "body": {"records": records}},
        ]
        halted = [{"errorCode": "PROCESSING_HALTED", "message": "rolled back"}]
        reply = {"compositeResponse": [
            {"referenceId": "meeting", "httpStatusCode": 400 if error else 201,
             "body": halted if error else {"id": "a01"}},
            {"referenceId": "participants0", "httpStatusCode": 200, "body": items},
        ]}  # fmt: skip
        if error is None:
            assert outcome.results(reply, subs)["participants0"][1] == items
            return
        with capture_logs() as logs, pytest.raises(error, match=cause):
            outcome.results(reply, subs, meeting_key="m-1")
        (entry,) = [e for e in logs if e["event"] == "salesforce_refused"]
        assert entry["subrequest"] == "participants0" and entry["meeting_key"] == "m-1"

    def test_stale_lookups_leave_one_set_of_records(
        self, server: Server, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        conn = server.connection()
        first = stage.write(conn, meeting())
        # As if another worker wrote the meeting between this push's look-ups and its write:
        # the upserts still land on the same records (or, where Salesforce refuses to name a
        # parent again, fail as transient and are retried with fresh look-ups).
        monkeypatch.setattr(stage.matching, "parse_lookup", lambda results: matching.Lookup())
        try:
            again = stage.write(conn, meeting())
        except UpstreamTransient:
            again = first
        monkeypatch.undo()
        ids = ("meeting", "transcript")
        final = stage.write(conn, meeting())
        assert [final[k] for k in ids] == [first[k] for k in ids] == [again[k] for k in ids]
        assert counts(server.dump())["Teams_Meeting_Participant__c"] == len(BASE)


class TestTimeouts:
    """Every request has a timeout; a write that may have landed is not sent again."""

    def test_read_timeout_on_lookups_is_retried_then_transient(self, server: Server) -> None:
        conn = server.connection()
        conn.client.http.default_timeout = (5.0, 0.1)
        server.faults(latency_ms=300)
        with pytest.raises(UpstreamTransient, match="ReadTimeout"):
            stage.write(conn, meeting())

    def test_timed_out_write_is_not_resent_and_the_file_stays_single(
        self, server: Server, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        long = "WEBVTT\n\n" + "".join(cue(i, "Carol Diaz", "word " * 60) for i in range(600))
        m = meeting("m-slow", vtt=long)
        conn = server.connection()
        restful = conn.client.restful
        sent: list[bool] = []

        def slow_writes(
            path: str, method: str = "GET", body: Any = None, idempotent: bool = True
        ) -> Any:
            if not idempotent:  # only the write that carries the file is not idempotent
                sent.append(True)
                server.faults(latency_ms=300)
                conn.client.http.default_timeout = (5.0, 0.1)
            return restful(path, method, body, idempotent)

        monkeypatch.setattr(conn.client, "restful", slow_writes)
        with pytest.raises(UpstreamTransient, match="ReadTimeout"):
            stage.write(conn, m)
        assert sent == [True]
        monkeypatch.undo()
        server.faults(latency_ms=0)
        conn.client.http.default_timeout = (5.0, 30.0)
        for _ in range(100):  # the emulator finishes the write the client gave up on
            if counts(server.dump())["Teams_Meeting__c"]:
                break
            threading.Event().wait(0.02)
        stage.write(conn, m)
        stage.write(conn, m)
        assert counts(server.dump())["ContentVersion"] == 1


class TestUsageMetric:
    """API usage from Sforce-Limit-Info is exported as Prometheus gauges."""

    def test_gauges(self, server: Server) -> None:
        stage.write(server.connection(), meeting())
        used = REGISTRY.get_sample_value("ingest_salesforce_api_used")
        assert used == server.calls()
        assert REGISTRY.get_sample_value("ingest_salesforce_api_limit") == 15000


class TestPagedLookups:
    """Salesforce may answer a look-up in several batches: every batch is read, at one more
    API call each, and the meeting comes out as it does in one batch."""

    @staticmethod
    def matched(server: Server) -> tuple[Any, ...]:
        dump = server.dump()
        names = {r["Id"]: r.get("Name") or r.get("Email") or r.get("LastName")
                 for rows in dump.values() for r in rows}  # fmt: skip
        people = sorted(
            (str(r.get("Email__c")), *(names.get(r.get(f) or "") for f in REFS))
            for r in dump["Teams_Meeting_Participant__c"]
        )
        (row,) = dump["Teams_Meeting__c"]
        related = (names.get(row.get("Related_Account__c") or ""),
                   names.get(row.get("Related_Opportunity__c") or ""))  # fmt: skip
        return tuple(people), related

    def test_one_record_per_batch(self, server: Server, ca_dir: Path) -> None:
        stage.write(server.connection(), meeting())
        whole = self.matched(server)
        with Server(Config(seed=SEED, query_batch=1), ca_dir) as paged:
            conn = paged.connection()
            start = paged.calls()
            stage.write(conn, meeting())
            extra = paged.calls() - start - 2
            assert self.matched(paged) == whole
        # contacts, leads and the website opportunities each found two rows.
        assert extra == 3
        assert whole[1] == ("Fabrikam", "Renewal")

    def test_child_lists_are_completed(self) -> None:
        """A row's child list can come in batches too (its own nextRecordsUrl)."""

        class Pages:  # only what _read_all_pages uses of a SalesforceClient
            api_version = "62.0"
            asked: list[str] = []

            def restful(self, path: str) -> dict[str, Any]:
                self.asked.append(path)
                return {"done": True, "records": [{"OpportunityId": "006b"}]}

        body = {"done": True, "records": [{"Id": "003", "OpportunityContactRoles": {
            "done": False, "nextRecordsUrl": "/services/data/v62.0/query/01gX-1",
            "records": [{"OpportunityId": "006a"}]}}]}  # fmt: skip
        client = Pages()
        stage._read_all_pages(client, "contacts", body)  # type: ignore[arg-type]
        roles = body["records"][0]["OpportunityContactRoles"]
        assert [r["OpportunityId"] for r in roles["records"]] == ["006a", "006b"]
        assert roles["done"] is True and client.asked == ["query/01gX-1"]


REFS = ("Contact__c", "Lead__c", "User__c")


class TestPushFromWorkerContext:
    """`push` uses the worker process's one connection, built and checked on first use."""

    def test_push(self, server: Server, redis_conn: redis.Redis) -> None:
        settings = server.settings()
        context.install(context.WorkerContext(settings, redis_conn))
        try:
            first = stage.push(meeting())
            start = server.calls()
            assert stage.push(meeting()) == first
            assert server.calls() - start == 2
        finally:
            context.reset()
