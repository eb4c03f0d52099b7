"""Data-parallel training with torchrun: two CPU processes over gloo."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import modelworks
from modelworks.store.tensorio import load_weights


def test_two_process_ddp_matches_one_process_with_the_combined_batch(make_config, blobs_csv, tmp_path):
    data = {"source": str(blobs_csv), "target": "label", "split": {"column": "split"}}
    train = {"epochs": 3, "optimizer": {"type": "sgd"}, "lr": 0.1}
    # each of 2 ranks takes batch 16 from the same shuffled order: together, one batch of 32
    ddp_cfg = make_config(data, train={**train, "batch_size": 16})
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with socket.socket() as probe:  # a free port for the rendezvous
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            "2",
            "--master_addr",
            "127.0.0.1",
            "--master_port",
            str(port),
            "-m",
            "modelworks",
            "train",
            str(ddp_cfg),
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    runs = [p for p in (tmp_path / "runs").iterdir() if p.name.startswith(ddp_cfg.stem + "-")]
    assert len(runs) == 1  # rank 1 wrote nothing of its own
    ddp_run = modelworks.load_run(runs[0])
    env_info = __import__("json").loads((runs[0] / "environment.json").read_text())
    assert env_info["world_size"] == 2

    single = modelworks.train(make_config(data, train={**train, "batch_size": 32}))
    a, b = load_weights(runs[0] / "model.safetensors"), load_weights(single.path / "model.safetensors")
    for k in a:
        assert (a[k] - b[k]).abs().max() < 1e-5, k
    assert ddp_run.report["summary"]["accuracy"] == single.report["summary"]["accuracy"]
