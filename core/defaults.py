"""Default values, in one place so that they are easy to find and to change."""

REDIS_URL = "redis://localhost:6379/0"
GRAPH_BASE_URL = "https://graph.microsoft.com/v1.0"
GRAPH_AUTHORITY = "https://login.microsoftonline.com"
SF_API_VERSION = "62.0"

HOST = "0.0.0.0"  # noqa: S104 - the receiver must be reachable by Graph
PORT = 8000

# The receiver.
MAX_BODY_BYTES = 1024 * 1024  # DESIGN §3.2: 413 over 1 MiB
# More items than a genuine 1 MiB body can hold is refused with 413 before any is looked at.
# Graph's smallest items (lifecycle, compact JSON, our 64-character clientState) take ~270
# bytes, so 1 MiB holds at most ~3,900 of them; change items take ~500 bytes (~2,100).
MAX_ITEMS_PER_REQUEST = 4096
# Bodies up to this size are parsed on the event loop (at worst a few ms); larger ones in a
# child process, so that no body can stall the loop for the tens of ms a 1 MiB parse costs.
INLINE_PARSE_BYTES = 64 * 1024
# A body must arrive whole within this time (Graph sends it at once; a stalled one gets 408),
# and the bodies being read at once may reserve this many bytes in all (past it: 503).
BODY_TIMEOUT_SECONDS = 5.0
BODY_BUDGET_BYTES = 32 * 1024 * 1024
SLICE_SECONDS = 0.002  # the longest the receiver's per-item loops run without yielding
SECURITY_LOG_INTERVAL_SECONDS = 1.0  # at most one `security_event` per client this often
DEDUPE_TTL_SECONDS = 6 * 3600  # Graph retries for up to 4 h; keep keys a little longer
REGISTRY_REFRESH_SECONDS = 10.0  # the receiver's in-memory copy of the subscription registry
REGISTRY_MISS_REFRESH_SECONDS = 1.0  # at most one reload a second on unknown ids
# The receiver's Redis connections: requests past this many at once wait for one (Redis runs
# one command at a time, so more would not store faster) up to the wait, then get 503.
RECEIVER_REDIS_CONNECTIONS = 32
RECEIVER_REDIS_WAIT_SECONDS = 2.0

# Queues and jobs.
QUEUE = "ingest"
JOB_TIMEOUT_SECONDS = 300
JOB_RESULT_TTL_SECONDS = 24 * 3600
JOB_RETRY_INTERVALS = (10, 60, 300)

# Crash safety: a running job's registry entry lives this long unless its worker renews it
# (every third of it); another worker's maintenance (every half of it) then retries the job.
WORKER_HEARTBEAT_TTL_SECONDS = 30

# The meeting pipeline (workers/pipeline.py).
TRANSCRIPT_WINDOW_SECONDS = 7200.0  # how long a missing transcript is waited for (§5.2)
TRANSCRIPT_FIRST_INTERVAL_SECONDS = 60.0  # first re-check; each next one waits twice as long
GRAPH_TIMEOUT_SECONDS = 30.0  # per Graph request (the SDK's own default is 100 s)
CALL_RECORDS_MAX_MINUTES = 4230  # subscription lifetimes (reference/graph.md §2)
TRANSCRIPTS_MAX_MINUTES = 4320
SUBSCRIPTION_MARGIN_MINUTES = 15  # ask a little under the maximum

# The clock (ingest/clock.py): renewal, reconciliation, health.
CLOCK_TICK_SECONDS = 5.0  # how often the clock wakes up to see what is due
CLOCK_LOCK_TTL_SECONDS = 30.0  # the leader lock's lifetime; the leader extends it every third
RENEW_INTERVAL_SECONDS = 600.0  # how often subscriptions are checked (renewed when past half)
RECONCILE_INTERVAL_SECONDS = 900.0  # how often callRecords are listed for missed meetings
# Each listing reaches this far behind the watermark: a long meeting's record appears only
# after it ends, up to 150 min later (reference/graph.md §2), with a start long before.
RECONCILE_OVERLAP_SECONDS = 6 * 3600.0
CALL_RECORDS_RETENTION_DAYS = 30  # Graph keeps callRecords 30 days (reference/graph.md §8)
HEALTH_EXPIRY_WARNING_SECONDS = 3600  # a subscription this close to expiry is unhealthy

# The ops page (ingest/ops.py) and the counters it reads (workers/usage.py).
OPS_SESSION_SECONDS = 8 * 3600  # a sign-in lasts a working day
OPS_LATEST_MEETINGS = 50  # the ledger's bounded index of the latest outcomes
CALLS_TTL_SECONDS = 3 * 24 * 3600  # per-day API call counters outlive their day a little
THROUGHPUT_TTL_SECONDS = 2 * 3600  # per-minute job counters: the page charts one hour
