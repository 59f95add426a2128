"""Proxy training keeps the memory a step frees: once a first run has mapped its memory, further runs in the
same process fault in almost no pages, where glibc's defaults (EFFSCALE_KEEP_FREED_MEMORY=0) give freed
activations back to the OS and fault them in again."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys

import pytest

TRAIN_FIVE_TIMES = """
import json, resource, statistics
from effscale.search import trainer
from effscale.search.task import adapt, load_task
from effscale.search.proxy import proxy_spec
from effscale.search.train_config import TrainConfig

config = TrainConfig(max_steps=3, batch_size=64, val_size=64, threads=1)
task = load_task("synthetic:256", 64, config)
spec = adapt(proxy_spec(64), task)
trainer.proxy_train(spec, task, config)
faults = []
for _ in range(4):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    trainer.proxy_train(spec, task, config)
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(json.dumps(statistics.median(faults)))
"""


def median_page_faults_of_a_later_run(keep_freed_memory: str) -> float:
    env = {**os.environ, "EFFSCALE_KEEP_FREED_MEMORY": keep_freed_memory}
    run = subprocess.run([sys.executable, "-c", TRAIN_FIVE_TIMES], capture_output=True, text=True, check=True, env=env)
    return json.loads(run.stdout.splitlines()[-1])


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the setting is glibc's")
def test_later_training_runs_fault_in_almost_no_pages() -> None:
    default, kept = median_page_faults_of_a_later_run("0"), median_page_faults_of_a_later_run("1")
    assert kept < 1_000 and default > 5_000  # by default 3 steps of batch 64 at 64 px fault in 20 MB or more
