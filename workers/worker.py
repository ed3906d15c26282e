"""`ingest worker`: an RQ worker on the product's one queue, with its settings and logging.

One queue per worker process, because RQ's reliable dequeue (BLMOVE into an intermediate
list) applies only to single-queue workers. Jobs run in the worker process itself
(SimpleWorker), so the Graph client and its event loop live as long as the process.

Redis outages (workers/outage.py): every Redis step of the work loop waits for Redis to come
back instead of ending the worker, and maintenance moves jobs stranded in RQ's intermediate
list back to their queue without spending a retry.

Crash safety: RQ's SimpleWorker sends no heartbeat while a job runs, so a killed worker's
job would sit in the started registry for the job timeout plus a minute. This worker
renews the job's entry from a thread every third of `worker_heartbeat_ttl` instead, and
runs maintenance every half of it: a job whose worker was killed is retried by another
worker within about one and a half `worker_heartbeat_ttl` (plus the job's retry interval).

SIGTERM (a PaaS restarting or scaling down): RQ's warm shutdown lets the running job finish;
one that outlives the platform's grace goes back to its queue (workers/shutdown.py).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any, TypeVar

import redis
from rq import Queue, SimpleWorker
from rq.defaults import DEFAULT_LOGGING_DATE_FORMAT, DEFAULT_LOGGING_FORMAT
from rq.job import Job
from rq.scheduler import RQScheduler
from rq.serializers import JSONSerializer
from rq.worker import WorkerStatus

from core import checks, defaults, logs
from core.exceptions import ConfigurationError, UpstreamTransient
from core.settings import Settings
from workers import outage, policy_config, shutdown, usage
from workers.context import WorkerContext, current, install, reset
from workers.graph.api import GraphApi
from workers.graph.client import graph

log = logs.get_logger("workers.worker")
T = TypeVar("T")
_PR_SET_PDEATHSIG = 1  # linux/prctl.h


class OrphanFreeScheduler(RQScheduler):
    """RQ's scheduler, in the process RQ forks for it, that ends with its worker.

    A worker killed with SIGKILL cannot stop its scheduler child, which would go on holding
    the queue's scheduler lock with the old settings. On Linux the kernel sends this process
    SIGTERM when its parent dies (PR_SET_PDEATHSIG; RQ's handler then releases the lock);
    elsewhere each heartbeat (every second) notices the new parent.
    """

    _parent = 0

    def work(self) -> None:
        self._parent = os.getppid()
        _die_with_parent()
        if os.getppid() != self._parent:  # the worker died before the request took effect
            return
        super().work()

    def heartbeat(self) -> None:
        if self._parent and os.getppid() != self._parent:
            self.request_stop()
        super().heartbeat()


def _die_with_parent() -> None:
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


class IngestWorker(SimpleWorker):
    """A SimpleWorker that keeps a running job's registry entry alive from a thread."""

    heartbeat_ttl: int = defaults.WORKER_HEARTBEAT_TTL_SECONDS
    death_penalty_class = shutdown.GraceDeathPenalty  # a job past the SIGTERM grace goes back
    # RQ's own backoff while it waits for a job and Redis is away (its default grows to 60 s).
    max_connection_wait_time = outage.MAX_WAIT_SECONDS

    def get_heartbeat_ttl(self, job: Job, working_time: float = 0.0) -> int:
        return self.heartbeat_ttl

    def request_stop(self, signum: int, frame: FrameType | None) -> None:
        """RQ's warm shutdown (idle: leave now; busy: after the job), and a busy worker's job
        ends at the shutdown grace (workers/shutdown.py)."""
        super().request_stop(signum, frame)
        shutdown.arm()

    def handle_exception(self, job: Job, *exc_info: Any) -> None:
        if not shutdown.putting_back(job.id):  # a put-back logs one line of its own below
            super().handle_exception(job, *exc_info)

    def handle_job_failure(self, job: Job, queue: Queue, started_job_registry: Any = None,
                           exc_string: str = "", execution: Any = None) -> None:  # fmt: skip
        if not shutdown.fired(job.id):
            super().handle_job_failure(job, queue, started_job_registry, exc_string, execution)
            return
        shutdown.put_back(self, job, queue, execution)

    def _stopping(self) -> bool:
        return bool(self._stop_requested)

    def _until_redis(self, step: str, fn: Callable[[], T]) -> T:
        return outage.until_redis(step, fn, self._stopping)

    def heartbeat(self, timeout: int | None = None, pipeline: Any = None) -> None:
        if pipeline is not None:  # part of a caller's transaction: its caller retries
            super().heartbeat(timeout, pipeline)
            return
        self._until_redis("heartbeat", lambda: SimpleWorker.heartbeat(self, timeout))

    def check_for_suspension(self, burst: bool) -> None:
        self._until_redis("suspension check",
                          lambda: SimpleWorker.check_for_suspension(self, burst))  # fmt: skip

    def run_maintenance_tasks(self) -> None:
        if self._stop_requested:
            # RQ's maintenance starts the scheduler again when it is not running, and a
            # stopping worker has just stopped its own: the new one would be forked only to be
            # ended again (and, forked from a threaded process, could hang the exit).
            return
        self._until_redis("maintenance", super().run_maintenance_tasks)

    def clean_registries(self) -> None:
        # Two passes at least this far apart must see a job unstarted; longer than a worker
        # that holds it waits to retry Redis, so such a worker starts it first.
        min_age = max(self.heartbeat_ttl / 2, 2 * outage.MAX_WAIT_SECONDS)
        for queue in self.queues:
            outage.recover_intermediate(queue, min_age)
        super().clean_registries()

    def _start_scheduler(
        self,
        burst: bool = False,
        logging_level: str | None = "INFO",
        date_format: str = DEFAULT_LOGGING_DATE_FORMAT,
        log_format: str = DEFAULT_LOGGING_FORMAT,
    ) -> None:
        """RQ's own start-up of the scheduler (rq/worker/base.py), with the scheduler above."""
        self.scheduler = OrphanFreeScheduler(
            self.queues,
            connection=self.connection,
            logging_level=logging_level if logging_level is not None else self.log.level,
            date_format=date_format,
            log_format=log_format,
            serializer=self.serializer,
        )
        self.scheduler.acquire_locks()
        if not self.scheduler.acquired_locks:
            return
        if not burst:
            self.scheduler.start()
            return
        try:
            self.scheduler.register_birth()
            self.scheduler.enqueue_scheduled_jobs()
        finally:
            self.scheduler.release_locks()
            self.scheduler.register_death()

    def execute_job(self, job: Job, queue: Queue) -> None:
        tries = [0]

        def prepare() -> Any:
            tries[0] += 1
            if tries[0] > 1 and not self._still_ours(job, queue):
                return None
            return self.prepare_execution(job)

        execution = self._until_redis("starting a job", prepare)
        if execution is None:
            return
        stop = threading.Event()
        beat = threading.Thread(
            target=self._beat, args=(job, execution, stop), daemon=True, name="job-heartbeat"
        )
        beat.start()
        ok: bool | None = None  # stays None when RQ's bookkeeping lost Redis: not a run
        try:
            ok = self.perform_job(job, queue, execution)
        except outage.OUTAGE as exc:
            # RQ's own bookkeeping around the job lost Redis: the job's registry entry
            # expires and maintenance retries it (crash safety); this worker waits for Redis.
            log.warning("job_bookkeeping_failed", job_id=job.id, error=type(exc).__name__)
        finally:
            stop.set()
            beat.join(5)
        if ok is not None:
            usage.job_done(self.connection, ok)  # the ops page's throughput chart
        self._until_redis("idle state", lambda: self.set_state(WorkerStatus.IDLE))

    def _still_ours(self, job: Job, queue: Queue) -> bool:
        """After an outage: whether the job still waits in the intermediate list for this
        worker (another's maintenance may have moved it back to the queue meanwhile)."""
        if self.connection.lpos(queue.intermediate_queue_key, job.id) is not None:
            return True
        log.info("job_requeued_meanwhile", job_id=job.id)
        return False

    def _beat(self, job: Job, execution: Any, stop: threading.Event) -> None:
        interval = max(1.0, self.heartbeat_ttl / 3)
        while not stop.wait(interval):
            try:
                self.maintain_heartbeats(job, execution)
            except redis.RedisError as exc:  # the next beat may succeed; the job goes on
                log.warning("heartbeat_failed", job_id=job.id, error=type(exc).__name__)


def build_worker(settings: Settings, conn: redis.Redis) -> IngestWorker:
    queue = Queue(settings.queue, connection=conn, serializer=JSONSerializer)
    ttl = settings.worker_heartbeat_ttl
    worker = IngestWorker(
        [queue],
        connection=conn,
        serializer=JSONSerializer,
        maintenance_interval=max(1, ttl // 2),
        # RQ blocks on the queue for worker_ttl - 15 s between maintenance checks.
        worker_ttl=15 + max(1, ttl // 2),
        job_monitoring_interval=max(1, ttl // 3),
    )
    worker.heartbeat_ttl = ttl
    return worker


def check(settings: Settings) -> None:
    """What every job needs, checked before the first one runs (ConfigurationError names the
    variable): Graph and Salesforce access, and a POLICY_FILE the policy accepts. A worker
    that started without them would fail every job after its retries, and lose the meetings."""
    settings.require_graph()
    settings.require_salesforce()
    policy_config.from_settings(settings)


def check_domains(settings: Settings, conn: redis.Redis) -> None:
    """Stop at start (ConfigurationError, exit 2) when the policy has no internal domains and
    Graph refuses the tenant's; a Graph that cannot be reached now is tried again per job."""
    if settings.graph_tenant_id is None or policy_config.from_settings(settings).internal_domains:
        return  # nothing to read, or no Graph configured (jobs that need it will say so)
    try:
        policy_config.check_domains(
            settings, conn, lambda: GraphApi(graph(current())).verified_domains()
        )
    except UpstreamTransient as exc:
        log.warning("tenant_domains_unreadable", error=str(exc))


def _refuse_an_untrusted_redis(settings: Settings, conn: redis.Redis) -> None:
    """A Redis whose TLS certificate is refused stops the start in one line (exit 2): the
    work loop would wait for it forever. Redis merely away is waited for (outage above)."""
    try:
        conn.ping()
    except redis.RedisError as exc:
        failure = checks.redis_unreachable(settings.redis_url, exc)
        if isinstance(failure, ConfigurationError):
            raise failure from None


def run(args: argparse.Namespace, settings: Settings) -> int:
    check(settings)
    logs.configure()
    conn = redis.Redis.from_url(settings.redis_url)
    _refuse_an_untrusted_redis(settings, conn)
    install(WorkerContext(settings, conn))
    try:
        check_domains(settings, conn)
    except BaseException:
        reset()
        raise
    worker = build_worker(settings, conn)
    log.info(
        "worker_starting",
        queue=settings.queue,
        burst=args.burst,
        heartbeat_ttl=settings.worker_heartbeat_ttl,
    )
    try:
        worker.work(burst=args.burst, with_scheduler=True, logging_level="WARNING")
    finally:
        reset()  # close the Graph client's loop and the Salesforce session
    return 0
