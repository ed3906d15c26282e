"""The callRecord path: callRecord (+participants) -> rules that need no address -> meeting by
joinWebUrl -> attendance report -> policy -> transcripts (workers/readiness.py).

A callRecord that arrives for a meeting already decided (live, it often comes hours after
the transcript) costs no Graph request: its id is noted, and filled in on the Salesforce
record when the meeting was already written without it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core.exceptions import NotFound
from policy import Decision, Participant
from workers import handoff, participants, resolve
from workers.readiness import Readiness


class CallRecordPath(Readiness):
    def on_call_record(self, payload: Mapping[str, Any]) -> dict[str, str]:
        cr_id = str(payload["ids"]["callRecordId"]).lower()
        change = str(payload.get("changeType") or "")
        known = self.ledger.alias("cr", cr_id)
        if known and self._decided(known):
            self._call_record_arrived(known, cr_id)
            return self._noted(known, f"callRecord {change} notification: already handled")
        record = self.api.call_record(cr_id)
        if record is None:
            raise NotFound(f"callRecord {cr_id} is not readable yet (404)")
        facts = resolve.from_call_record(record)
        # A recurring series shares one join link and online meeting id: the day tells apart
        # its occurrences.
        day = resolve.day(facts.start)
        url = resolve.occurrence(facts.join_web_url, day)
        known = known or self.ledger.alias("url", url)
        if known and self._decided(known):
            self.ledger.claim([("cr", cr_id), ("url", url)], known)
            self._call_record_arrived(known, cr_id)
            return self._noted(known, f"callRecord {change} notification: already handled")
        organizer = facts.organizer or Participant(display_name="(no organizer)", role="organizer")
        early = self._early_decision(organizer, facts)
        if early is not None or not facts.join_web_url or not facts.organizer_id:
            return self._without_meeting(cr_id, url, facts, change, organizer, early,
                                         "no online meeting: no joinWebUrl")  # fmt: skip
        meeting = self.api.meeting_by_join_url(facts.organizer_id, facts.join_web_url)
        if meeting is None or not meeting.get("id"):
            return self._without_meeting(cr_id, url, facts, change, organizer, None,
                                         "the online meeting was not found")  # fmt: skip
        om_id = str(meeting["id"])
        key = self.ledger.claim(
            [("cr", cr_id), ("url", url), ("om", resolve.occurrence(om_id, day))],
            resolve.online_meeting_key(om_id, day),
        )
        self.ledger.point("om", om_id, key)
        with self._lock(key):
            self._note_facts(key, facts, change)
            self._note_meeting(key, meeting, facts.organizer_id)
            if self._decided(key):
                return self._summary(key, "already decided")
            attendance = self.api.attendance(facts.organizer_id, om_id, facts.start, facts.end)
            org, joined = participants.merge(organizer, facts.joined, attendance, meeting)
            decision = self._decide(org, joined, facts.start, facts.end)
            return self._rule(key, decision, lambda: self._transcript_stage(key))

    def _without_meeting(
        self,
        cr_id: str,
        url: str | None,
        facts: resolve.CallRecordFacts,
        change: str,
        organizer: Participant,
        decision: Decision | None,
        why: str,
    ) -> dict[str, str]:
        """A meeting decided on its callRecord alone (a rule needing no address ruled it out,
        or there is no online meeting to read): it is skipped, or has no transcript."""
        key = self.ledger.claim([("cr", cr_id), ("url", url)], resolve.call_record_key(cr_id))
        with self._lock(key):
            self._note_facts(key, facts, change)
            if self._decided(key):
                return self._summary(key, "already decided")
            decision = decision or self._decide(organizer, facts.joined, facts.start, facts.end)
            return self._rule(key, decision, lambda: self._settle(key, "no_transcript", why))

    def _call_record_arrived(self, key: str, cr_id: str) -> None:
        """The callRecord of a meeting decided without it: note its id and, once the meeting
        is in Salesforce without it, queue the fill-in of `Call_Record_Id__c`."""
        if self.state(key).call_record_id:
            return
        self.ledger.update(key, call_record_id=cr_id)
        self.ledger.link_resource("callRecords", cr_id, key)
        self.ledger.event(key, "callRecord arrived after the meeting was decided")
        # Read after the write above: a push finishing meanwhile sees the id itself.
        if self.state(key).outcome == "pushed":
            handoff.enqueue_fill(self.queue, key)
