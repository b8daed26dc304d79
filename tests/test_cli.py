"""The command line: `fastnn train` on digits and MNIST prints progress and a final report."""
import re
import subprocess
import sys

import pytest


def _fastnn(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "fastnn", *args], capture_output=True, text=True, timeout=timeout)


def test_train_digits_default():
    pytest.importorskip("sklearn")
    out = _fastnn("train", "--epochs", "3", "--quiet")
    assert out.returncode == 0, out.stderr
    m = re.search(r"held-out accuracy: ([\d.]+)%", out.stdout)
    assert m and float(m.group(1)) > 90.0, out.stdout
    assert "epoch   3/3" in out.stdout and "per epoch" in out.stdout


def test_train_mnist(mnist_dir):
    out = _fastnn("train", "--dataset", "mnist", "--data", str(mnist_dir), "--epochs", "1", "--quiet")
    assert out.returncode == 0, out.stderr
    m = re.search(r"held-out accuracy: ([\d.]+)%", out.stdout)
    assert m and float(m.group(1)) > 90.0, out.stdout
    assert "8000 train / 2000 held out" in out.stdout


def test_bad_arguments_exit_cleanly(tmp_path):
    out = _fastnn("train", "--dataset", "mnist", "--data", str(tmp_path / "missing"), "--epochs", "1")
    assert out.returncode != 0 and "Traceback" not in out.stderr
    assert "missing" in out.stderr
    out = _fastnn("train", "--model", "nope", "--epochs", "1")
    assert out.returncode != 0 and "model" in out.stderr and "Traceback" not in out.stderr
