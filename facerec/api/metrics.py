"""Prometheus metrics of one process.

Each gunicorn worker keeps its own registry, so one scrape sees one worker. Scrape each
worker, or run a single worker per port, when exact totals matter; prometheus_client's
multiprocess mode (PROMETHEUS_MULTIPROC_DIR) is the way to merge them and is not wired
up here."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 5, 10)
CONTENT_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("facerec_http_requests", "HTTP requests by endpoint, method "
                                "and status", ["endpoint", "method", "status"], registry=r)
        self.latency = Histogram("facerec_http_request_duration_seconds", "Request latency by "
                                 "endpoint", ["endpoint"], buckets=LATENCY_BUCKETS, registry=r)
        self.faces = Histogram("facerec_faces_per_photo", "Faces found per photo sent to a "
                               "recognition endpoint", ["endpoint"],
                               buckets=(0, 1, 2, 3, 5, 10, 20, 50), registry=r)
        self.index_faces = Gauge("facerec_index_faces", "Faces searchable by this process "
                                 "(current generation plus delta)", registry=r)
        self.index_generation = Gauge("facerec_index_generation", "Index generation this "
                                      "process searches", registry=r)
        self.users = Gauge("facerec_users", "Users in the database", registry=r)
        self.db_faces = Gauge("facerec_active_faces", "Active faces in the database", registry=r)
        self.models_loaded = Gauge("facerec_models_loaded", "1 when this process has its "
                                   "models loaded", registry=r)

    def observe(self, endpoint: str, method: str, status: int, seconds: float,
                faces: int | None) -> None:
        self.requests.labels(endpoint, method, str(status)).inc()
        self.latency.labels(endpoint).observe(seconds)
        if faces is not None:
            self.faces.labels(endpoint).observe(faces)

    def render(self, *, index_faces: int | None, generation: int | None, users: int,
               faces: int, models_loaded: bool) -> bytes:
        if index_faces is not None:
            self.index_faces.set(index_faces)
        if generation is not None:
            self.index_generation.set(generation)
        self.users.set(users)
        self.db_faces.set(faces)
        self.models_loaded.set(int(models_loaded))
        return generate_latest(self.registry)
