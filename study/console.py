"""What a study prints while it runs: one line when a trial starts, one when it ends, and a
compact status block at a steady rate (trials running / done / stopped / failed, the best so
far with its settings, elapsed time and an estimate of what is left).

A Tune callback; Ray's own progress tables, warnings and hints stay quiet unless
``--verbose`` (``study.run.quiet_ray``).  Dimensions are named as the configuration names them, never
by Optuna's conditional parameter names.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from ray import tune

from study.schema import OBJECTIVE, OBJECTIVE_MODE, VAL
from study.space import trial_config
from trainables.config import DIMENSIONS

STATUS_EVERY_S = 30.0


def settings(config: dict[str, Any]) -> str:
    """The searched settings that apply to a trial, as ``name=value``."""
    cfg = trial_config(config)
    return ", ".join(f"{k}={f'{v:.3g}' if isinstance(v, float) else v}"
                     for k, v in cfg.applied().items() if DIMENSIONS[k].searched)


def duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


class ConsoleReporter(tune.Callback):
    """Prints the study's progress; ``trials`` is how many the study runs in all."""

    def __init__(self, trials: int, stream: TextIO | None = None,
                 every_s: float = STATUS_EVERY_S) -> None:
        self.trials = trials
        self.stream = stream
        self.every_s = every_s
        self._start = time.time()
        self._last_status = self._start
        self._ended: dict[str, str] = {}  # trial id -> finished | stopped | failed
        self._running: set[str] = set()
        self._latest: dict[str, tuple[float, str]] = {}  # trial id -> (objective, settings)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "stream": None}

    def _print(self, text: str) -> None:
        print(text, file=self.stream or sys.stdout, flush=True)

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._running.add(trial.trial_id)
        self._print(f"[{duration(time.time() - self._start)}] trial {trial.trial_id} started: "
                    f"{settings(trial.config)}")

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict,
                        **info: Any) -> None:
        value = result.get(OBJECTIVE)
        if value is not None:  # a trial counts with its latest epoch, as the study's choice
            self._latest[trial.trial_id] = (float(value), settings(trial.config))

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        last = trial.last_result or {}
        epochs = int(last.get("epoch", 0))
        kind = "finished" if epochs >= int(trial_config(trial.config).epochs) else "stopped"
        self._end(trial, kind, f"after {epochs} epoch(s): {VAL}probe "
                               f"{last.get(OBJECTIVE, float('nan')):.4f}")

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        message = str(getattr(trial, "error_msg", "") or "").strip().splitlines()
        self._end(trial, "failed", message[-1][:200] if message else "")

    def _end(self, trial: Any, kind: str, text: str) -> None:
        self._running.discard(trial.trial_id)
        self._ended[trial.trial_id] = kind
        self._print(f"[{duration(time.time() - self._start)}] trial {trial.trial_id} {kind} "
                    f"{text}".rstrip())

    def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
        if time.time() - self._last_status >= self.every_s:
            self._last_status = time.time()
            self._print(self.status())

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        self._print(self.status())

    def status(self) -> str:
        """The status block: counts, the best so far, elapsed time and an estimate."""
        elapsed = time.time() - self._start
        done = len(self._ended)
        counts = {k: sum(v == k for v in self._ended.values())
                  for k in ("finished", "stopped", "failed")}
        left = max(0, self.trials - done)
        eta = f"~{duration(elapsed / done * left)} left" if done and left else (
            "done" if not left else "estimate after the first trial")
        lines = [f"--- {done}/{self.trials} trials done ({counts['finished']} finished, "
                 f"{counts['stopped']} stopped early, {counts['failed']} failed), "
                 f"{len(self._running)} running; {duration(elapsed)} elapsed, {eta}"]
        if self._latest:
            pick = max if OBJECTIVE_MODE == "max" else min
            trial_id = pick(self._latest, key=lambda t: self._latest[t][0])
            value, text = self._latest[trial_id]
            lines.append(f"    best so far: {OBJECTIVE} {value:.4f} (latest epoch), trial "
                         f"{trial_id}: {text}")
        return "\n".join(lines)
