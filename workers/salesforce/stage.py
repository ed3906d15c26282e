"""The Salesforce stage: a meeting written in two API calls, one of look-ups, one of upserts.

Call 1 (composite, reads only): the transcript records if they exist, Contacts (with their
roles on open opportunities), Leads and Users by e-mail, and the open opportunities of the
contacts' accounts and of the external domains' accounts (workers.salesforce.matching). Call 2
(composite, allOrNone, run in the order sent): upserts by external id of the meeting, each of
its transcripts and the participants (sObject Collections of at most 200 each), and a
transcript's full WebVTT as a
ContentVersion when its text was truncated and no earlier run attached it. A replay writes
the same records again: upserts on external ids, and the file is created in the same
transaction as the truncated transcript that records it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import structlog

from core.exceptions import BadInput, UpstreamPermanent
from workers import context, insights, policy_config, trackers, vtt
from workers.ledger import Ledger
from workers.meeting import ResolvedMeeting
from workers.salesforce import mapping, matching, mentions, outcome, records, schema
from workers.salesforce.client import SalesforceClient

COLLECTION_SIZE = 200  # sObject Collections' limit per request
MAX_COLLECTIONS = 5  # queries and collections per composite request
MAX_SUBREQUESTS = 25  # subrequests per composite request
MAX_PARTICIPANTS = COLLECTION_SIZE * MAX_COLLECTIONS
MENTION_IDS = "mention_ids"  # ledger field: mention key -> Salesforce Id, as last written

log = structlog.get_logger("workers.salesforce")


@dataclass
class Connection:
    """A worker process's Salesforce client and what the start-up check learned."""

    client: SalesforceClient
    schema: schema.Schema

    def close(self) -> None:
        self.client.close()


def connect(ctx: context.WorkerContext) -> Connection:
    """The factory for `ctx.resource("salesforce", ...)`: sign in, then check the schema."""
    client = SalesforceClient.from_settings(ctx.settings)
    try:
        return Connection(client, schema.check(client))
    except BaseException:
        client.close()  # not kept: the next job signs in and checks again
        raise


@dataclass(frozen=True)
class Written:
    """What a write left in Salesforce: record ids by role, and the mentions' ids by key."""

    ids: dict[str, str]
    mentions: dict[str, str]


def push(meeting: ResolvedMeeting) -> dict[str, str]:
    """Write `meeting` in at most two API calls, with the mentions of POLICY_FILE's trackers;
    the ids of what was written. The ledger keeps which mentions this write left, so that the
    next write of the meeting deletes those it no longer finds."""
    ctx = context.current()
    tracked = policy_config.from_settings(ctx.settings).trackers
    ledger = Ledger(ctx.redis)
    kept = ledger.meeting(meeting.meeting_key).get(MENTION_IDS)
    before = json.loads(kept) if kept else None  # None: not known here, read from Salesforce
    done = write_all(ctx.resource("salesforce", connect), meeting, tracked, before)
    ledger.update(meeting.meeting_key, **{MENTION_IDS: done.mentions})
    return done.ids


def write(conn: Connection, meeting: ResolvedMeeting) -> dict[str, str]:
    """`write_all` without trackers: the ids of what was written."""
    return write_all(conn, meeting, (), {}).ids


def write_all(
    conn: Connection,
    meeting: ResolvedMeeting,
    tracked: tuple[tuple[str, tuple[str, ...]], ...],
    mentions_written: dict[str, str] | None,
) -> Written:
    """`push` with an explicit connection and trackers (tests, and callers holding their own).

    `mentions_written` is what an earlier write left (mention key -> Id); None when that is
    not known, and then Salesforce is asked."""
    if len(meeting.participants) > MAX_PARTICIPANTS:
        raise UpstreamPermanent(
            f"{len(meeting.participants)} participants: at most {MAX_PARTICIPANTS} fit one write"
        )
    try:
        parsed = [vtt.parse(t.vtt) for t in meeting.transcripts]
    except BadInput as exc:
        raise UpstreamPermanent(f"a transcript Graph returned is not WebVTT: {exc}") from None
    transcript = mapping.combined(parsed)
    client = conn.client
    calls = client.calls
    lookups = matching.lookup_requests(meeting, client.api_version)
    # The meeting row says whether it has mentions only where Mention_Count__c is deployed.
    recover = mentions_written is None and mentions.readable(conn.schema)
    if recover:
        lookups.append(mentions.before_request(meeting, client.api_version))
    refs = [records.transcript_ref(i) for i in range(len(parsed))] + [mentions.BEFORE_REF]
    allowed: dict[str, tuple[int, ...]] = dict.fromkeys(refs, (404,))
    looked_up = outcome.results(
        client.restful("composite", "POST", {"allOrNone": False, "compositeRequest": lookups}),
        allowed=allowed,
        meeting_key=meeting.meeting_key,
    )
    for ref, (_, body) in looked_up.items():
        _read_all_pages(client, ref, body)
    if mentions_written is None:
        mentions_written = _mentions_before(client, meeting, looked_up) if recover else {}
    found = matching.parse_lookup(looked_up)
    talk = mapping.talk_seconds(meeting, transcript)
    addresses = matching.emails(meeting)
    related = matching.decide_related(addresses, matching.external_domains(meeting), found)
    people = matching.match_people(addresses, found)
    found_mentions = trackers.find(meeting, parsed, tracked)
    subs, attach = _write_requests(conn, meeting, parsed, talk, related, people, found,
                                   len(found_mentions))  # fmt: skip
    rows: list[dict[str, object]] = []
    deleted: list[str] = []
    if records.MENTION in conn.schema.objects:
        rows = mentions.rows(meeting, found_mentions)
        heavy = sum("/composite/sobjects" in str(sub["url"]) for sub in subs)
        room = min(MAX_COLLECTIONS - heavy, MAX_SUBREQUESTS - len(subs))
        more, deleted = mentions.subrequests(client.api_version, rows, mentions_written, room)
        if rows and not more:
            log.warning("salesforce_mentions_left_out", meeting_key=meeting.meeting_key,
                        reason="no collection left in the write")  # fmt: skip
            rows = []
        subs += more
    # Collation is on by default (API 49.0+) and may run the participants and the transcript
    # before the meeting they name by external id: the order is set explicitly.
    results = outcome.results(
        client.restful(
            "composite",
            "POST",
            {"allOrNone": True, "collateSubrequests": False, "compositeRequest": subs},
            idempotent=not attach,
        ),
        subs,
        meeting_key=meeting.meeting_key,
    )
    written = mentions.written_now(
        rows, results.get(mentions.UPSERT_REF, (0, None))[1], mentions_written, deleted
    )
    ids = {"meeting": _id(results["meeting"])}
    for i in range(len(parsed)):
        ids[records.transcript_ref(i)] = _id(results[records.transcript_ref(i)])
    for ref in attach:
        ids[ref] = _id(results[ref])
    if related.account_id:
        ids["related_account"] = related.account_id
    if related.opportunity_id:
        ids["related_opportunity"] = related.opportunity_id
    log.info(
        "salesforce_written",
        meeting_key=meeting.meeting_key,
        participants=len(meeting.participants),
        matched=len(people),
        related=related.rule,
        transcripts=len(parsed),
        files_attached=len(attach),
        mentions=len(found_mentions),
        mentions_written=len(rows),
        mentions_deleted=len(deleted),
        api_calls=client.calls - calls,
    )
    return Written(ids, written)


def _write_requests(
    conn: Connection,
    meeting: ResolvedMeeting,
    parsed: list[vtt.Transcript],
    talk: dict[str, float],
    related: matching.Related,
    people: dict[str, matching.PersonMatch],
    found: matching.Lookup,
    mention_count: int = 0,
) -> tuple[list[dict[str, Any]], list[str]]:
    """The write round's subrequests, and the referenceIds of the files it attaches."""
    base = f"/services/data/v{conn.client.api_version}/sobjects"
    mkey = quote(records.meeting_external_key(meeting), safe="")
    meeting_fields = mapping.meeting_record(
        meeting, mapping.combined(parsed), talk, related, insights.compute(meeting, parsed)
    )
    meeting_fields["Mention_Count__c"] = mention_count
    subs: list[dict[str, Any]] = [
        {
            "method": "PATCH",
            "url": f"{base}/{records.MEETING}/{records.MEETING_KEY}/{mkey}",
            "referenceId": "meeting",
            "body": conn.schema.keep(records.MEETING, meeting_fields),
        },
    ]
    attach = []
    for index, (resolved, transcript) in enumerate(zip(meeting.transcripts, parsed, strict=True)):
        ref = records.transcript_ref(index)
        tkey = quote(records.transcript_key(meeting, resolved), safe="")
        text_fields, truncated = mapping.transcript_record(meeting, transcript, index)
        subs.append(
            {
                "method": "PATCH",
                "url": f"{base}/{records.TRANSCRIPT}/{records.TRANSCRIPT_KEY}/{tkey}",
                "referenceId": ref,
                "body": text_fields,
            }
        )
        # The file is created with the transcript that says it exists (one transaction), so
        # a transcript already marked truncated means an earlier run attached it.
        if truncated and index not in found.truncated:
            file_ref = ref.replace("transcript", "file")
            attach.append(file_ref)
            subs.append(
                {
                    "method": "POST",
                    "url": f"{base}/{records.FILE}",
                    "referenceId": file_ref,
                    "body": mapping.transcript_file(meeting, resolved, "@{meeting.id}"),
                }
            )
    rows = mapping.participant_records(meeting, talk, people)
    for n, start in enumerate(range(0, len(rows), COLLECTION_SIZE)):
        subs.append(
            {
                "method": "PATCH",
                "url": f"/services/data/v{conn.client.api_version}/composite/sobjects/"
                f"{records.PARTICIPANT}/{records.PARTICIPANT_KEY}",
                "referenceId": f"participants{n}",
                "body": {"allOrNone": True, "records": rows[start : start + COLLECTION_SIZE]},
            }
        )
    if len(subs) > MAX_SUBREQUESTS:
        raise UpstreamPermanent(
            f"{len(meeting.transcripts)} transcripts ({len(attach)} with a file) and "
            f"{len(rows)} participants need {len(subs)} subrequests: at most "
            f"{MAX_SUBREQUESTS} fit one write"
        )
    return subs, attach


def _read_all_pages(client: SalesforceClient, ref: str, body: Any) -> None:
    """Complete a query result (and its rows' child lists) that Salesforce answered in more
    than one batch: batches shrink below 2,000 for wide rows and count child rows. Each
    further batch is one more API call, logged; a meeting's look-ups normally fit one."""
    if not isinstance(body, dict) or not isinstance(body.get("records"), list):
        return
    pages = 0
    while body.get("done") is False and body.get("nextRecordsUrl"):
        path = str(body["nextRecordsUrl"]).split(f"/v{client.api_version}/", 1)[-1]
        more = client.restful(path)
        body["records"].extend(more.get("records") or [])
        body["done"], body["nextRecordsUrl"] = more.get("done", True), more.get("nextRecordsUrl")
        pages += 1
    if pages:
        log.warning("salesforce_lookup_paged", lookup=ref, extra_calls=pages)
    for row in body["records"]:
        if isinstance(row, dict):
            for name, value in row.items():
                if isinstance(value, dict) and "records" in value:
                    _read_all_pages(client, f"{ref}.{name}", value)


def _mentions_before(
    client: SalesforceClient, meeting: ResolvedMeeting, looked_up: dict[str, tuple[int, Any]]
) -> dict[str, str]:
    """The mentions Salesforce holds for a meeting the ledger knows nothing of: none for a new
    meeting (no call), else one query (one more call)."""
    meeting_id = mentions.meeting_with_mentions(looked_up.get(mentions.BEFORE_REF))
    if meeting_id is None:
        return {}
    body = client.restful(f"query?q={quote(mentions.existing_query(meeting_id), safe='')}")
    _read_all_pages(client, "mentions_before", body)
    found = mentions.by_key(body.get("records") if isinstance(body, dict) else None)
    log.info("salesforce_mentions_read", meeting_key=meeting.meeting_key, mentions=len(found))
    return found


def _id(result: tuple[int, Any]) -> str:
    body = result[1]
    if not isinstance(body, dict) or not body.get("id"):
        raise UpstreamPermanent(f"Salesforce answered {result[0]} without an id")
    return str(body["id"])


def set_call_record(meeting_key: str, call_record_id: str) -> None:
    """Fill in `Call_Record_Id__c` of a meeting written before its callRecord existed (the
    transcript came first): one upsert of the meeting row by its external id, nothing else."""
    conn = context.current().resource("salesforce", connect)
    key = quote(records.external_key(meeting_key), safe="")
    conn.client.restful(
        f"sobjects/{records.MEETING}/{records.MEETING_KEY}/{key}",
        "PATCH",
        {"Call_Record_Id__c": call_record_id[: records.KEY_LIMIT]},
    )
    log.info("salesforce_call_record_filled", meeting_key=meeting_key)
