"""The end-of-trial judges: a pool of driver processes that embed a finished trial's test
split from its checkpoint's model, score it once, and draw its t-SNE map
(``trainables.final.judge_trial``), while the trials go on.

Spawned, not forked (the driver runs Ray's threads), one thread each, at most
``--judge-workers`` of them.  A Ctrl-C abandons the judgements left (:meth:`Judges.abandon`):
a ``--resume`` makes them.
"""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from trainables.config import DIMENSIONS, TrialConfig
from trainables.data import Dataset
from trainables.final import judge_trial, start_judge


def plot_title(trial_id: str, cfg: TrialConfig) -> str:
    """A t-SNE plot's title: the trial and the searched settings that apply to it (a loss's
    own hyperparameters: the margin of a margin loss, the temperature of NT-Xent)."""
    applied = cfg.applied()
    shown = ", ".join(f"{k}={_short(v)}" for k, v in applied.items()
                      if DIMENSIONS[k].searched and k not in ("mode", "loss"))
    return f"trial {trial_id}: {cfg.mode}/{cfg.loss}, {shown}"


def _short(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _ready() -> None:
    """A task that only makes the pool start a process (``Judges.start``)."""


class Judges:
    """The judges' pool (started by :meth:`start`, else at the first judgement) and the
    judgements in flight."""

    def __init__(self, workers: int, data: Dataset | None, class_names: Sequence[str]) -> None:
        self.workers = workers
        self.data = data  # what the judges embed the test split of
        self.class_names = tuple(class_names)
        self.abandoned = False  # interrupted: no new judgement starts, none is waited for
        self._pool: ProcessPoolExecutor | None = None
        self._jobs: list[Future] = []
        self._unclosed = 0  # judgements submitted whose run is not closed yet
        self._lock = threading.Lock()

    def start(self) -> None:
        """Start the pool's processes now (each imports torch and scikit-learn, seconds on a
        small machine) while Tune starts the trials, so the first judgements and the study's
        end do not wait for them."""
        pool = self._ensure_pool()
        for _ in range(self.workers):  # the pool adds a process per task it cannot place
            pool.submit(_ready)

    def _ensure_pool(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                if self.data is None:
                    raise RuntimeError("the recorder holds no dataset to judge trials with")
                self._pool = ProcessPoolExecutor(
                    max_workers=self.workers, mp_context=multiprocessing.get_context("spawn"),
                    initializer=start_judge, initargs=(self.data,))
            return self._pool

    def _replace(self, broken: ProcessPoolExecutor) -> None:
        """A judge process died (killed, out of memory, a crash): its pool is broken for
        good; the next judgement starts a new one."""
        with self._lock:
            if self._pool is broken:
                self._pool = None
        broken.shutdown(wait=False)

    def submit(self, trial_id: str, model_state: dict[str, Any], cfg: TrialConfig,
               on_done: Callable[[Future], None]) -> None:
        """Judge a trial's model; ``on_done(future)`` runs when the judgement is back (or
        failed, or was cancelled), and must call :meth:`closed` once its run is closed.

        A judgement lost with a judge process that died is made once more in a new pool (a
        process's death fails every judgement of its pool, also those not started); lost
        twice, it fails.  ``on_done`` runs in every case, so no run is left open."""
        with self._lock:
            self._unclosed += 1
        self._send((judge_trial, model_state, cfg.to_dict(), self.class_names,
                    plot_title(trial_id, cfg)), on_done, again=1)

    def _send(self, task: tuple, on_done: Callable[[Future], None], again: int) -> None:
        try:
            pool = self._ensure_pool()
            try:
                job = pool.submit(*task)
            except BrokenProcessPool:  # it broke since the last judgement
                self._replace(pool)
                pool = self._ensure_pool()
                job = pool.submit(*task)
        except Exception as err:  # noqa: BLE001 - no pool to judge in: the run still closes
            job = Future()
            job.set_exception(err)
            on_done(job)
            return

        def done(job: Future) -> None:
            if again and not job.cancelled() and isinstance(job.exception(), BrokenProcessPool) \
                    and not self.abandoned:
                self._replace(pool)
                self._send(task, on_done, again - 1)
            else:
                on_done(job)

        with self._lock:
            self._jobs = [j for j in self._jobs if not j.done()] + [job]
        job.add_done_callback(done)

    def closed(self) -> None:
        """A judged trial's run is closed."""
        with self._lock:
            self._unclosed -= 1

    def busy(self) -> bool:
        """Some judged trial's run is not closed yet."""
        return self._unclosed > 0

    def abandon(self) -> None:
        """Stop judging (a Ctrl-C): judgements not started are cancelled, running ones
        stopped (their futures fail), and no new judgement starts."""
        self.abandoned = True
        for job in self._jobs:
            job.cancel()
        pool, self._pool = self._pool, None
        if pool is not None:
            # no public way to stop a running task: end the workers (the pool breaks, and
            # the tasks they ran fail, which closes their runs)
            for process in list((getattr(pool, "_processes", None) or {}).values()):
                process.terminate()
            pool.shutdown(wait=False, cancel_futures=True)

    def shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None
