"""Proxy training keeps the memory a step frees: once a first run has mapped its memory, further runs in the
same process fault in almost no pages, where glibc's defaults (EFFSCALE_KEEP_FREED_MEMORY=0) give freed
activations back to the OS and fault them in again.

Now and then a run faults in a few thousand pages more without any mmap, munmap, brk or madvise call of
its own in between (strace shows none): faults the process does not cause, that only add. So the quietest
of five later runs shows what the allocator does, and the busiest what glibc's defaults can cost."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys

import pytest

TRAIN_SIX_TIMES = """
import json, resource
from effscale.search import trainer
from effscale.search.task import adapt, load_task
from effscale.search.proxy import proxy_spec
from effscale.search.train_config import TrainConfig

config = TrainConfig(max_steps=3, batch_size=64, val_size=64, threads=1)
task = load_task("synthetic:256", 64, config)
spec = adapt(proxy_spec(64), task)
trainer.proxy_train(spec, task, config)
faults = []
for _ in range(5):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    trainer.proxy_train(spec, task, config)
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(json.dumps(faults))
"""


def page_faults_of_later_runs(keep_freed_memory: str) -> list[int]:
    """Minor page faults of each of five training runs that follow a first one in the same process."""
    env = {**os.environ, "EFFSCALE_KEEP_FREED_MEMORY": keep_freed_memory}
    run = subprocess.run([sys.executable, "-c", TRAIN_SIX_TIMES], capture_output=True, text=True, check=True, env=env)
    return json.loads(run.stdout.splitlines()[-1])


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the setting is glibc's")
def test_later_training_runs_fault_in_almost_no_pages() -> None:
    default, kept = page_faults_of_later_runs("0"), page_faults_of_later_runs("1")
    assert min(kept) < 100, kept  # under 400 kB
    assert max(default) > 5_000, default  # 3 steps of batch 64 at 64 px fault in 20 MB or more
