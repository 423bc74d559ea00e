"""A process killed (SIGKILL) while saving never leaves a half-written checkpoint."""
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np

import torchlite

WRITER = textwrap.dedent("""
    import sys, numpy as np, torchlite
    path = sys.argv[1]
    big = np.empty((4_000_000,), np.float32)       # 16 MB per save
    version = 1
    print("ready", flush=True)
    while True:
        big.fill(version)
        torchlite.save({"version": version, "weights": {"w": big}, "note": "v%d" % version}, path)
        version += 1
""")


def check_consistent(path):
    state = torchlite.load(path)
    v = state["version"]
    assert state["note"] == f"v{v}"
    w = state["weights"]["w"]
    assert w.shape == (4_000_000,) and w[0] == v and w[-1] == v and np.all(w == v)
    return v


def test_kill_during_save_leaves_previous_file_loadable(tmp_path):
    path = tmp_path / "ckpt.npz"
    torchlite.save({"version": 0, "weights": {"w": np.zeros(4_000_000, np.float32)}, "note": "v0"}, path)
    rng = np.random.default_rng(0)
    seen = []
    for _ in range(6):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE)
        assert proc.stdout.readline().strip() == b"ready"
        time.sleep(rng.uniform(0.05, 0.6))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        seen.append(check_consistent(path))
    assert max(seen) > 0  # the writer did replace the file at least once
    torchlite.save({"version": -1, "weights": {"w": np.full(4_000_000, -1, np.float32)}, "note": "v-1"}, path)
    assert os.listdir(tmp_path) == ["ckpt.npz"]  # stray temp files of killed saves are gone
    assert check_consistent(path) == -1
