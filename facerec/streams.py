"""The live video streams one process is tracking: a bounded, expiring map from a
client-chosen stream id to its Tracker.

State lives in this process's memory only. Under several worker processes (gunicorn) a
stream keeps its tracks only while its frames reach the same worker (one kept-alive
connection); a worker that has not seen a stream simply starts it fresh, so the cost of
a switch is a few frames of "pending", never a wrong answer."""

from __future__ import annotations

import itertools
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from facerec.tracking import Tracker, TrackerConfig


@dataclass
class Stream:
    stream_id: str
    tracker: Tracker
    last_seen: float
    lock: threading.Lock = field(default_factory=threading.Lock)


class StreamRegistry:
    """At most `max_streams` streams (least recently used dropped first); a stream idle
    for `idle_seconds` is forgotten."""

    def __init__(self, config: TrackerConfig | None = None, *, max_streams: int = 256,
                 idle_seconds: float = 30.0, clock: Callable[[], float] = time.monotonic):
        if max_streams < 1 or idle_seconds <= 0:
            raise ValueError("max_streams must be at least 1 and idle_seconds positive")
        self.config = config or TrackerConfig()
        self.max_streams = max_streams
        self.idle_seconds = idle_seconds
        self.clock = clock
        self._streams: OrderedDict[str, Stream] = OrderedDict()
        self._lock = threading.Lock()
        self._track_ids = itertools.count(1)  # unique across this process's streams

    def __len__(self) -> int:
        with self._lock:
            return len(self._streams)

    def __contains__(self, stream_id: str) -> bool:
        with self._lock:
            return stream_id in self._streams

    def _expire(self, now: float) -> None:
        while self._streams:
            oldest = next(iter(self._streams.values()))
            if now - oldest.last_seen < self.idle_seconds:
                break
            self._streams.popitem(last=False)

    @contextmanager
    def open(self, stream_id: str) -> Iterator[tuple[Tracker, bool]]:
        """The stream's tracker (and whether it was created now), held exclusively: frames
        of one stream are processed one at a time, other streams run in parallel."""
        with self._lock:
            now = self.clock()
            self._expire(now)
            stream = self._streams.get(stream_id)
            created = stream is None
            if created:
                stream = Stream(stream_id, Tracker(self.config, self._track_ids), now)
                self._streams[stream_id] = stream
                while len(self._streams) > self.max_streams:
                    self._streams.popitem(last=False)
            else:
                self._streams.move_to_end(stream_id)
            stream.last_seen = now
        with stream.lock:
            yield stream.tracker, created

    def forget(self, stream_id: str) -> bool:
        with self._lock:
            return self._streams.pop(stream_id, None) is not None
