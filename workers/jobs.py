"""RQ jobs: thin, module-level, with plain JSON arguments; the work lives elsewhere.

The receiver enqueues these by dotted path (`workers.jobs.handle_notification`), so it never
imports this module or what it uses. A permanent failure (403: consent or access policy
missing) is written to the ledger and ends the job without retries; a transient one raises,
so RQ retries the job.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import structlog
from rq import Queue, get_current_job
from rq.serializers import JSONSerializer

from core.exceptions import ConfigurationError, UpstreamPermanent
from workers import handoff
from workers.context import WorkerContext, current
from workers.graph.api import GraphApi
from workers.graph.client import graph as graph_client
from workers.graph.delegated import resolver
from workers.ledger import Ledger
from workers.pipeline import Pipeline
from workers.salesforce import stage
from workers.subscriptions import GraphSubscriptions, Manager
from workers.validation import TokenChecker

log = structlog.get_logger("workers.jobs")


def pipeline(context: WorkerContext | None = None) -> Pipeline:
    """The pipeline on the process's context: its Redis, settings and Graph clients (the app's,
    and connected organizers' delegated ones)."""
    ctx = context or current()

    def graph() -> Any:
        return GraphApi(graph_client(ctx), resolver(ctx))

    def tokens() -> TokenChecker:
        return ctx.resource("validation_tokens", lambda c: TokenChecker(c.settings))

    queue = Queue(ctx.settings.queue, connection=ctx.redis, serializer=JSONSerializer)
    return Pipeline(ctx.redis, ctx.settings, graph, queue, tokens=tokens)


def handle_notification(payload: dict[str, Any]) -> dict[str, str]:
    """A validated callRecord or transcript notification: resolve, decide, fetch, hand off."""
    ctx = current()
    Ledger(ctx.redis).record_notification(payload)
    kind = str(payload.get("kind"))
    ids = payload.get("ids") or {}
    rid = str(ids.get("callRecordId") or ids.get("meetingId") or "")
    work = pipeline(ctx)
    try:
        if kind == "callRecords":
            result = work.on_call_record(payload)
        elif kind == "transcripts":
            result = work.on_transcript(payload)
        else:
            log.warning("unknown_notification_kind", kind=kind)
            return {"action": "ignored"}
    except UpstreamPermanent as exc:
        work.fail(None, kind, rid, str(exc))
        log.error("notification_failed", kind=kind, resource_id=rid, error=str(exc))
        return {"action": "failed", "error": str(exc)}
    except ConfigurationError as exc:  # the job fails loudly; explain shows why
        work.ledger.resource_error(kind, rid, f"configuration: {exc}")
        raise
    log.info("notification_handled", kind=kind, **result)
    return result


def check_transcript(meeting_key: str) -> dict[str, str]:
    """A scheduled re-check of a transcript that was not there yet."""
    work = pipeline()
    try:
        result = work.check_transcript(meeting_key)
    except UpstreamPermanent as exc:
        work.fail(meeting_key, "meeting", meeting_key, str(exc))
        return {"action": "failed", "error": str(exc)}
    log.info("transcript_checked", **result)
    return result


def push_meeting(meeting_key: str) -> dict[str, str]:
    """Write an eligible meeting with its transcript to Salesforce (workers.salesforce.stage)."""
    ctx = current()
    ledger = Ledger(ctx.redis)
    state = ledger.meeting(meeting_key)
    meeting = handoff.load(ctx.redis, meeting_key)
    written = int(state.get("written_transcripts") or 1)
    if state.get("outcome") == "pushed" and (
        meeting is None or len(meeting.transcripts) <= written
    ):
        _fill_call_record(ledger, meeting_key)  # a retry after the fill-in failed
        return {"meeting_key": meeting_key, "action": "already pushed"}
    if meeting is None:
        ledger.error(meeting_key, "the resolved meeting expired before it was pushed")
        ledger.set_outcome(meeting_key, "failed", "resolved meeting missing")
        return {"meeting_key": meeting_key, "action": "failed"}
    late = ledger.meeting(meeting_key).get("call_record_id")
    if late and not meeting.call_record_id:  # the callRecord arrived after the hand-off
        meeting = dataclasses.replace(meeting, call_record_id=late)
    try:
        ids: dict[str, str] = stage.push(meeting)
    except UpstreamPermanent as exc:
        ledger.error(meeting_key, str(exc))
        ledger.set_outcome(meeting_key, "failed", str(exc))
        return {"meeting_key": meeting_key, "action": "failed"}
    except Exception as exc:
        job = get_current_job()
        ledger.error(meeting_key, f"Salesforce push failed: {exc}")
        if job is None or not job.retries_left:
            ledger.set_outcome(meeting_key, "failed", f"Salesforce push failed: {exc}")
        raise
    ledger.update(
        meeting_key,
        salesforce_ids=ids,
        stage="done",
        written_call_record_id=meeting.call_record_id,
        written_transcripts=len(meeting.transcripts),
    )
    ledger.set_outcome(meeting_key, "pushed", "written to Salesforce")
    log.info("meeting_pushed", meeting_key=meeting_key)
    _fill_call_record(ledger, meeting_key)  # a callRecord that arrived during the push
    return {"meeting_key": meeting_key, "action": "pushed", **ids}


def fill_call_record(meeting_key: str) -> dict[str, str]:
    """Fill in Call_Record_Id__c of a meeting pushed before its callRecord arrived."""
    filled = _fill_call_record(Ledger(current().redis), meeting_key)
    return {"meeting_key": meeting_key, "action": "filled" if filled else "nothing to fill"}


def _fill_call_record(ledger: Ledger, meeting_key: str) -> bool:
    """One upsert of the meeting row when the ledger knows a callRecord id that the pushed
    row lacks; False when there is nothing to do. The ledger is read after the outcome was
    set, so that this and the callRecord path between them never miss a late id."""
    state = ledger.meeting(meeting_key)
    cr_id = state.get("call_record_id")
    if state.get("outcome") != "pushed" or not cr_id:
        return False
    if cr_id == state.get("written_call_record_id"):
        return False
    stage.set_call_record(meeting_key, cr_id)
    ledger.update(meeting_key, written_call_record_id=cr_id)
    ledger.event(meeting_key, "Call_Record_Id__c filled in", call_record_id=cr_id)
    return True


def handle_lifecycle(payload: dict[str, Any]) -> dict[str, str]:
    """A lifecycle notification: reauthorizationRequired renews the subscription (a PATCH also
    reauthorizes it); subscriptionRemoved re-creates what is missing; missed is logged (the
    reconciliation pass finds what it lost)."""
    ctx = current()
    Ledger(ctx.redis).record_notification(payload)
    event, sub_id = str(payload.get("lifecycleEvent")), str(payload.get("subscriptionId"))
    log.warning("lifecycle_event", lifecycle_event=event, subscription_id=sub_id)
    manager = Manager(ctx.settings, ctx.redis, GraphSubscriptions(ctx.settings, graph_client(ctx)))
    if event == "reauthorizationRequired":
        return {k: str(v) for k, v in manager.renew_one(sub_id).items()}
    if event == "subscriptionRemoved":
        manager.ensure()
        return {"id": sub_id, "action": "ensured"}
    return {"id": sub_id, "action": "noted"}
