"""A killed replica's scratch folder is removed when the next replica starts; a live one's is kept."""

from __future__ import annotations

import signal
import subprocess
import sys

from modelworks.serve.scratch import Scratch

HOLD = """
import sys, time
from modelworks.serve.scratch import Scratch
scratch = Scratch(sys.argv[1], "killed")
scratch.open()
(scratch.folder / "model.onnx").write_bytes(b"weights")
print("ready", flush=True)
time.sleep(600)
"""


def test_a_killed_replicas_scratch_is_swept_and_a_live_ones_kept(tmp_path):
    root = tmp_path / "serving"
    live = Scratch(root, "live")
    live.open()
    (live.folder / "model.onnx").write_bytes(b"weights")
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(root)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        assert Scratch(root, "early").open() == []  # the holder is alive: nothing swept
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert (root / "killed" / "model.onnx").is_file()  # kill -9 left it behind
    starting = Scratch(root, "next")
    swept = starting.open()
    assert [p.name for p in swept] == ["early", "killed"]  # "early" was never closed, and is not held any more
    assert not (root / "killed").exists() and (live.folder / "model.onnx").is_file()
    starting.close()
    live.close()
    assert sorted(p.name for p in root.iterdir()) == []
