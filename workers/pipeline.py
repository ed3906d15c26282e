"""The meeting pipeline: both notification paths converge on one meeting key, whatever the order.

callRecord path (workers/callrecord_path.py): callRecord (+participants) -> rules that need no
address -> meeting by joinWebUrl -> attendance report -> policy -> transcripts -> hand-off.
Transcript path (workers/transcript_path.py): transcript list (organizer and ids from the
resource) -> callRecord, if it exists yet -> meeting -> attendance report -> policy ->
transcripts -> hand-off. Transcript readiness and the hand-off: workers/readiness.py; what
both share (deciding, the ledger, settling, the meeting lock): workers/steps.py.

A meeting may have several transcripts (transcription stopped and started again): each is
fetched once and handed off with the others, in the order they were made. Live, the
transcript usually comes first and the callRecord up to hours later: a meeting written before
its callRecord existed gets its `Call_Record_Id__c` filled in when the callRecord arrives.

Both claim the meeting's aliases (callRecord id, online meeting id, join link) atomically,
then work under a per-meeting Redis lock, so duplicates, `updated` versions and the two paths
leave one ledger entry and download the transcript once. Whatever was learned is written to
the ledger, so a later notification about a decided meeting costs no Graph request.
"""

from __future__ import annotations

from workers.callrecord_path import CallRecordPath
from workers.steps import GraphReader
from workers.transcript_path import TranscriptPath

__all__ = ["GraphReader", "Pipeline"]


class Pipeline(CallRecordPath, TranscriptPath):
    """One worker's view of the pipeline: both notification paths and the transcript stage."""
