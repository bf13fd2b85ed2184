"""The driver's judge processes end with the driver, also when it is killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

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
