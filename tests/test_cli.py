"""The command line: `fastnn train` on digits and MNIST prints progress and a final report."""
import importlib.util
import re
import subprocess
import sys

import pytest


def _fastnn(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "fastnn", *args], capture_output=True, text=True, timeout=timeout)


def test_train_digits_default(tmp_path):
    pytest.importorskip("sklearn")
    out = _fastnn("train", "--epochs", "3", "--quiet", "--out", str(tmp_path / "run"))
    assert out.returncode == 0, out.stderr
    m = re.search(r"held-out accuracy: ([\d.]+)%", out.stdout)
    assert m and float(m.group(1)) > 90.0, out.stdout
    assert "epoch   3/3" in out.stdout and "per epoch" in out.stdout


def test_train_mnist_writes_curves_and_checkpoint_and_resumes(mnist_dir, tmp_path):
    import fastnn
    run = tmp_path / "run"
    out = _fastnn("train", "--dataset", "mnist", "--data", str(mnist_dir), "--epochs", "1", "--quiet",
                  "--out", str(run))
    assert out.returncode == 0, out.stderr
    m = re.search(r"held-out accuracy: ([\d.]+)%", out.stdout)
    assert m and float(m.group(1)) > 90.0, out.stdout
    assert "8000 train / 2000 held out" in out.stdout
    assert (run / "checkpoint.npz").stat().st_size > 0
    if importlib.util.find_spec("matplotlib"):
        assert (run / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # The checkpoint carries the epoch and the preprocessing fitted on the training split.
    rest = fastnn.load(run / "checkpoint.npz")
    assert rest["epoch"] == 1
    pre = rest["preprocess"]
    assert pre["mean"].shape == (1,) and 0.1 < float(pre["mean"][0]) < 0.2 and 0.2 < float(pre["std"][0]) < 0.4
    # A second run into the same folder refuses to replace the checkpoint.
    before = (run / "checkpoint.npz").read_bytes()
    out = _fastnn("train", "--dataset", "mnist", "--data", str(mnist_dir), "--epochs", "1", "--quiet",
                  "--out", str(run))
    assert out.returncode == 2 and "already exists" in out.stderr and "Traceback" not in out.stderr
    assert (run / "checkpoint.npz").read_bytes() == before
    # Resuming for a second epoch continues from epoch 1.
    out = _fastnn("train", "--dataset", "mnist", "--data", str(mnist_dir), "--epochs", "2", "--quiet",
                  "--out", str(run), "--resume", str(run / "checkpoint.npz"))
    assert out.returncode == 0, out.stderr
    assert "resumed from" in out.stdout and "epoch   2/2" in out.stdout and "epoch   1/2" not in out.stdout
    assert fastnn.load(run / "checkpoint.npz")["epoch"] == 2


def test_train_bncnn_runs(mnist_dir, tmp_path):
    out = _fastnn("train", "--dataset", "mnist", "--data", str(mnist_dir), "--model", "bncnn", "--epochs", "1",
                  "--n-train", "640", "--quiet", "--no-save", "--augment", "crop+affine")
    assert out.returncode == 0, out.stderr
    assert "model bncnn" in out.stdout and "Adam lr 0.003 (cosine)" in out.stdout
    m = re.search(r"held-out accuracy: ([\d.]+)%", out.stdout)
    assert m and float(m.group(1)) > 20.0, out.stdout  # ten steps: far above chance, far from done


def test_bad_arguments_exit_cleanly(tmp_path):
    out = _fastnn("train", "--dataset", "mnist", "--data", str(tmp_path / "missing"), "--epochs", "1")
    assert out.returncode != 0 and "Traceback" not in out.stderr
    assert "missing" in out.stderr
    out = _fastnn("train", "--model", "nope", "--epochs", "1")
    assert out.returncode != 0 and "model" in out.stderr and "Traceback" not in out.stderr


def test_bench_runs_the_named_benchmark_and_rejects_unknown_names():
    out = _fastnn("bench", "--only", "dropout", "--quick")
    assert out.returncode == 0, out.stderr
    assert "== bench_dropout.py" in out.stdout and "GB/s" in out.stdout
    rows = [line.split() for line in out.stdout.splitlines()
            if line.split()[:1] in (["dropout"], ["dropout2d"]) and "(" in line.split()[1]]
    assert len(rows) >= 5 and {r[0] for r in rows} == {"dropout", "dropout2d"}, out.stdout
    for row in rows:  # kind, shape, then fwd ms, GB/s, bwd ms, GB/s, ...: positive figures
        figures = [float(v) for v in row if re.fullmatch(r"[\d.]+", v)]
        assert len(figures) >= 4 and all(f > 0 for f in figures[:4]), row
    out = _fastnn("bench", "--only", "nope")
    assert out.returncode != 0 and "Traceback" not in out.stderr
    assert "'nope'" in out.stderr and "dropout" in out.stderr  # names the available ones
