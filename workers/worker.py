"""`ingest worker`: an RQ worker on the product's one queue, with its settings and logging.

One queue per worker process, because RQ's reliable dequeue (BLMOVE into an intermediate
list) applies only to single-queue workers. Jobs run in the worker process itself
(SimpleWorker), so the Graph client and its event loop live as long as the process.

Crash safety: RQ's SimpleWorker sends no heartbeat while a job runs, so a killed worker's
job would sit in the started registry for the job timeout plus a minute. This worker
renews the job's entry from a thread every third of `worker_heartbeat_ttl` instead, and
runs maintenance every half of it: a job whose worker was killed is retried by another
worker within about one and a half `worker_heartbeat_ttl` (plus the job's retry interval).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import signal
import sys
import threading
from typing import Any

import redis
from rq import Queue, SimpleWorker
from rq.defaults import DEFAULT_LOGGING_DATE_FORMAT, DEFAULT_LOGGING_FORMAT
from rq.job import Job
from rq.scheduler import RQScheduler
from rq.serializers import JSONSerializer
from rq.worker import WorkerStatus

from core import defaults, logs
from core.exceptions import UpstreamTransient
from core.settings import Settings
from workers import policy_config, usage
from workers.context import WorkerContext, current, install, reset
from workers.graph.api import GraphApi
from workers.graph.client import graph

log = logs.get_logger("workers.worker")
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

    def get_heartbeat_ttl(self, job: Job, working_time: float = 0.0) -> int:
        return self.heartbeat_ttl

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
        execution = self.prepare_execution(job)
        stop = threading.Event()
        beat = threading.Thread(
            target=self._beat, args=(job, execution, stop), daemon=True, name="job-heartbeat"
        )
        beat.start()
        try:
            ok = self.perform_job(job, queue, execution)
        finally:
            stop.set()
            beat.join(5)
        usage.job_done(self.connection, ok)  # the ops page's throughput chart
        self.set_state(WorkerStatus.IDLE)

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


def run(args: argparse.Namespace, settings: Settings) -> int:
    check(settings)
    logs.configure()
    conn = redis.Redis.from_url(settings.redis_url)
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
