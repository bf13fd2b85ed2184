"""The driver's judge processes end with the driver, also when it is killed; a judge that
dies costs no judgement and never leaves the driver waiting."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import time
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool

import pytest
import torch

from tests.study.helpers import ROOT, alive, descendants

DRIVER = """
import time
from study.judges import Judges
from trainables.data import load_dataset

if __name__ == "__main__":
    judges = Judges(2, load_dataset("digits"), [str(k) for k in range(10)])
    judges.start()
    judges._pool.submit(time.sleep, 0).result()  # the pool is up
    print("ready", flush=True)
    time.sleep(600)
"""


def test_judges_end_when_their_driver_is_killed(tmp_path) -> None:
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, str(script)], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        deadline = time.time() + 60
        while len(children := descendants({proc.pid}) - {proc.pid}) < 2:
            assert time.time() < deadline, "the judge pool did not start"
            time.sleep(0.2)
        time.sleep(1)
        children = descendants({proc.pid}) - {proc.pid}  # judges and the resource tracker
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    deadline = time.time() + 30
    while (left := {pid for pid in children if alive(pid)}) and time.time() < deadline:
        time.sleep(0.5)
    for pid in left:  # what this test started, found through its driver's process tree
        os.kill(pid, signal.SIGKILL)
    assert not left, f"processes of the killed driver still alive: {sorted(left)}"


def _kill_judges(pool) -> None:
    """SIGKILL the judge processes of ``pool`` (this test's own pool), once it has them."""
    deadline = time.time() + 60
    while not (processes := list((pool._processes or {}).values())):
        assert time.time() < deadline, "the judge pool started no process"
        time.sleep(0.05)
    for process in processes:
        os.kill(process.pid, signal.SIGKILL)


def test_a_judge_that_dies_costs_no_judgement_and_leaves_no_run_open() -> None:
    # once, a broken pool refused every later judgement while the driver counted them as
    # in flight: the study's end waited for ever
    from study.judges import Judges
    from trainables.config import TrialConfig
    from trainables.data import load_dataset
    from trainables.encoders import build_encoder
    from trainables.final import conclude, embed_splits
    from trainables.metrics import TEST_METRICS

    cfg = TrialConfig(eval_train=300, tsne_samples=60, embedding_dim=8)
    state = build_encoder(cfg.encoder, 1, cfg.embedding_dim, cfg.width).state_dict()
    data, classes, threads = load_dataset("digits"), [str(k) for k in range(10)], torch.get_num_threads()
    judges = Judges(1, data, classes)
    back: queue.Queue[Future] = queue.Queue()

    def on_done(job: Future) -> None:
        back.put(job)
        judges.closed()  # as the recorder does once the run is closed

    try:
        # a judge killed while it judges: the judgement is made again in a new pool
        judges.submit("a", state, cfg, on_done)
        first = judges._pool
        _kill_judges(first)
        remade = back.get(timeout=180)
        # that pool's judge killed while idle: the next judgement gets a new pool, and lost
        # there too (twice in all) it fails, and still comes back
        second = judges._pool
        assert second is not first
        _kill_judges(second)
        deadline = time.time() + 60
        while not second._broken:
            assert time.time() < deadline, "the pool did not see its judge die"
            time.sleep(0.05)
        judges.submit("b", state, cfg, on_done)
        third = judges._pool
        assert third not in (second, None)
        _kill_judges(third)
        deadline = time.time() + 60
        while judges._pool in (third, None):
            assert time.time() < deadline, "the lost judgement was not sent again"
            time.sleep(0.05)
        _kill_judges(judges._pool)
        failed = back.get(timeout=180)
    finally:
        judges.shutdown()
    assert isinstance(failed.exception(), BrokenProcessPool)
    assert not judges.busy() and back.empty()
    # the judgement made again is the one made here, in this process, without a pool
    torch.set_num_threads(1)  # as a judge's
    try:
        here = conclude(embed_splits(state, cfg, data, torch.device("cpu")), classes, "t",
                        knn_k=cfg.knn_k, tsne_samples=cfg.tsne_samples, seed=cfg.seed)
    finally:
        torch.set_num_threads(threads)
    assert {k: remade.result().metrics[k] for k in TEST_METRICS} == pytest.approx(
        {k: here.metrics[k] for k in TEST_METRICS}, abs=1e-6)
    assert remade.result().tsne is not None
