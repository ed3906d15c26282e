"""Every Redis key name and every job's dotted path, on one screen.

All keys start with `PREFIX`. Who writes each one is said beside it; anyone may read it.
Jobs are enqueued by dotted path so that the receiver never imports the workers' heavy
modules (the Graph SDK).
"""

from __future__ import annotations

PREFIX = "ingest"

# The subscription registry (workers/registry.py; written by workers/subscriptions.py).
SUBSCRIPTION_IDS = f"{PREFIX}:subscriptions"  # set of subscription ids
SUBSCRIPTION = f"{PREFIX}:subscription"  # + ":{id}": hash, one Subscription

# Written by `Manager.ensure` (`ingest subscriptions ensure`, the clock's renewal pass); its
# absence means Redis lost its data (or the product was never set up): the receiver answers
# 503 to items of unknown subscriptions and the clock restores what it can (ingest/recovery.py).
GENERATION = f"{PREFIX}:generation"

# The ECI user registry (workers/users.py) and connected users' sealed tokens (core/vault.py).
USERS = f"{PREFIX}:users"  # hash: directory id -> JSON EciUser
TOKENS = f"{PREFIX}:tokens"  # + ":{user id}": a sealed msal token cache

# The receiver's dedupe of notifications (ingest/enqueue.py).
SEEN = f"{PREFIX}:seen"  # + ":{digest}": the job id of an item already enqueued

# The ledger (workers/ledger.py): what was seen and decided, per resource and per meeting.
LEDGER = f"{PREFIX}:ledger"
OUTCOMES = f"{LEDGER}:outcomes"  # hash: outcome -> meetings
SUBSCRIPTION_SEEN = f"{LEDGER}:subscription_seen"  # hash: subscription id -> last notification
LATEST_MEETINGS = f"{LEDGER}:latest"  # sorted set: meeting key -> when its outcome was last set

# The meeting pipeline (workers/).
MEETING_LOCK = f"{PREFIX}:lock:meeting"  # + ":{meeting key}": one worker at a time
RESOLVED = f"{PREFIX}:resolved"  # + ":{meeting key}": the resolved meeting for the push job
TRANSCRIPT = f"{PREFIX}:transcript"  # + ":{...}": transcripts fetched once
TENANT_DOMAINS = f"{PREFIX}:tenant:domains"  # the tenant's verified domains, cached

# The clock (ingest/clock.py, ingest/reconcile.py) and health (ingest/health.py).
CLOCK_LEADER = f"{PREFIX}:clock:leader"
RECONCILE_WATERMARK = f"{PREFIX}:reconcile:watermark"
RECONCILE_DELTA = f"{PREFIX}:reconcile:transcripts-delta"  # + ":{user id}": the deltaLink
RECONCILE_ENQUEUED = f"{PREFIX}:reconcile:enqueued"  # + ":{callRecord id}": enqueued lately
HEALTH = f"{PREFIX}:health"
HEALTH_RECONCILE = f"{HEALTH}:reconcile"

# Usage the ops page shows (workers/usage.py): API calls per day, jobs finished per minute.
CALLS = f"{PREFIX}:calls"  # + ":{service}:{YYYY-MM-DD}": requests sent that UTC day
THROUGHPUT = f"{PREFIX}:throughput"  # + ":{unix minute}": hash ok|failed -> jobs

# The ops page's sessions (ingest/ops_auth.py).
OPS_SESSION = f"{PREFIX}:ops:session"  # + ":{sha256 of the cookie}": the session's CSRF token

# RQ jobs, by dotted path (workers/jobs.py).
JOB_NOTIFICATION = "workers.jobs.handle_notification"
JOB_LIFECYCLE = "workers.jobs.handle_lifecycle"
JOB_PUSH_MEETING = "workers.jobs.push_meeting"
JOB_CHECK_TRANSCRIPT = "workers.jobs.check_transcript"
JOB_FILL_CALL_RECORD = "workers.jobs.fill_call_record"


def key(*parts: str) -> str:
    """`PREFIX`-style key of parts joined by ':' (e.g. `key(SUBSCRIPTION, sub_id)`)."""
    return ":".join(parts)
