"""`ingest worker`: an RQ worker on the product's one queue, with its settings and logging.

One queue per worker process, because RQ's reliable dequeue (BLMOVE into an intermediate
list) applies only to single-queue workers. Jobs run in the worker process itself
(SimpleWorker), so the Graph client and its event loop live as long as the process.
A worker killed mid-job leaves the job in the started registry; another worker's
maintenance (every `MAINTENANCE_INTERVAL` seconds) retries it.
"""

from __future__ import annotations

import argparse

import redis
from rq import Queue, SimpleWorker
from rq.serializers import JSONSerializer

from ingest import logs
from ingest.settings import Settings
from workers.context import WorkerContext, install

MAINTENANCE_INTERVAL = 30
WORKER_TTL = 60


def build_worker(settings: Settings, conn: redis.Redis) -> SimpleWorker:
    queue = Queue(settings.queue, connection=conn, serializer=JSONSerializer)
    return SimpleWorker(
        [queue], connection=conn, serializer=JSONSerializer,
        maintenance_interval=MAINTENANCE_INTERVAL, worker_ttl=WORKER_TTL,
    )  # fmt: skip


def run(args: argparse.Namespace, settings: Settings) -> int:
    logs.configure()
    conn = redis.Redis.from_url(settings.redis_url)
    install(WorkerContext(settings, conn))
    worker = build_worker(settings, conn)
    logs.get_logger("workers.worker").info(
        "worker_starting", queue=settings.queue, burst=args.burst
    )
    worker.work(burst=args.burst, with_scheduler=True, logging_level="WARNING")
    return 0
