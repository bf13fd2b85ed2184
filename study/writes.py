"""The recorder's write queue: MLflow writes run on writer threads, in order per trial.

A file store (SQLite) gets one writer thread (concurrent writers would lock the file); a
tracking server gets several, each trial always on the same one (its ``key``), so a trial's
writes stay in the order they were queued.  Results that arrive faster than the store takes
them wait in a buffer that one queued write drains (:meth:`WriteQueue.buffer`): each write
then carries several epochs of a run instead of the queue growing without bound.
"""

from __future__ import annotations

import logging
import threading
import time
import zlib
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

log = logging.getLogger(__name__)


class WriteQueue:
    """Writer threads (started at the first write), the futures of the writes queued, and
    the per-writer buffers of items waiting for one drain."""

    def __init__(self, writers: int) -> None:
        self.writers = writers
        self._threads: list[ThreadPoolExecutor] = []
        self._pending: list[Future] = []
        self._buffers: dict[int, dict[str, tuple[Any, list]]] = {}
        self._draining: set[int] = set()
        self._lock = threading.Lock()

    def submit(self, fn: Callable[..., None], *args: Any, key: str = "") -> None:
        """Queue ``fn(*args)`` on the writer of ``key``; each writer runs its writes in order."""
        if not self._threads:
            self._threads = [ThreadPoolExecutor(max_workers=1, thread_name_prefix="mlflow-writer")
                             for _ in range(self.writers)]
        self._pending = [f for f in self._pending if not f.done() or f.exception()]
        self._pending.append(self._threads[self._shard(key)].submit(_guarded, fn, *args))

    def buffer(self, key: str, context: Any, item: Any,
               drain: Callable[[str, Any, list], None]) -> None:
        """Add ``item`` to ``key``'s buffer and make sure a drain of its writer is queued:
        the drain calls ``drain(key, context, items)`` once per key with everything buffered."""
        shard = self._shard(key)
        with self._lock:
            _, items = self._buffers.setdefault(shard, {}).setdefault(key, (context, []))
            items.append(item)
            if shard not in self._draining:
                self._draining.add(shard)
                self.submit(self._drain, shard, drain, key=key)

    def _drain(self, shard: int, drain: Callable[[str, Any, list], None]) -> None:
        with self._lock:
            batch = self._buffers.pop(shard, {})
            self._draining.discard(shard)
        for key, (context, items) in batch.items():
            drain(key, context, items)

    def _shard(self, key: str) -> int:
        return zlib.crc32(key.encode()) % self.writers if key else 0

    def backlog(self) -> tuple[int, int]:
        """(writes queued and not done, items buffered): what a benchmark samples."""
        with self._lock:
            buffered = sum(len(items) for shard in self._buffers.values()
                           for _, items in shard.values())
        return len([f for f in self._pending if not f.done()]), buffered

    def flush(self, busy: Callable[[], bool] = lambda: False,
              on_interrupt: Callable[[], None] = lambda: None) -> list[BaseException]:
        """Wait until no write is queued and ``busy()`` is false (work elsewhere that will
        queue more writes); return the errors of the writes that failed.  A Ctrl-C while
        waiting calls ``on_interrupt`` and keeps flushing."""
        errors: list[BaseException | None] = []
        while True:
            pending: list[Future] = []
            try:
                pending, self._pending = self._pending, []
                errors += [f.exception() for f in pending]
                if not self._pending and not busy():
                    return [e for e in errors if e is not None]
                time.sleep(0.02)
            except KeyboardInterrupt:
                self._pending = pending + self._pending
                on_interrupt()

    def shutdown(self) -> None:
        for thread in self._threads:
            thread.shutdown()
        self._threads = []


def _guarded(fn: Callable[..., None], *args: Any) -> None:
    try:
        fn(*args)
    except Exception:
        log.exception("MLflow write %s failed", fn.__name__)
        raise
