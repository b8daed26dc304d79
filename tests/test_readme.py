"""The README's code runs as printed: its Python examples are executed as scripts, and its
test command is the one `.ci/run` runs."""
from __future__ import annotations

import ast
import csv
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import List

import pytest

import fastnn

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def _blocks(language: str) -> List[str]:
    return re.findall(rf"```{language}\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


def _run(script: str, cwd: Path, timeout: float = 600) -> str:
    """Run `script` as __main__ in a fresh interpreter that imports the fastnn under test."""
    path = cwd / "readme_example.py"
    path.write_text(script, encoding="utf-8")
    env = dict(os.environ, PYTHONPATH=str(Path(fastnn.__file__).parents[1]))
    out = subprocess.run([sys.executable, str(path)], cwd=cwd, env=env, capture_output=True,
                         text=True, timeout=timeout)
    assert out.returncode == 0, f"README example failed:\n{out.stdout[-2000:]}\n{out.stderr[-4000:]}"
    return out.stdout


def test_readme_starts_with_the_two_commands_and_ci_runs_the_test_command():
    first = _blocks("bash")[0]
    commands = [line.split("#")[0].strip() for line in first.splitlines() if line.strip()]
    assert commands[0].startswith('pip install ".[examples]" && fastnn train'), commands
    assert commands[1] == 'pip install ".[test]" && python -m pytest', commands
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert commands[1] in [line.strip() for line in ci]


def test_quick_start_trains_to_the_accuracy_it_states(mnist_dir, tmp_path):
    code = _blocks("python")[0]
    assert '"../shared/data/mnist"' in code
    out = _run(code.replace('"../shared/data/mnist"', repr(str(mnist_dir))), tmp_path)
    result = ast.literal_eval(out.strip().splitlines()[-1])  # print(trainer.evaluate(...))
    assert set(result) == {"loss", "accuracy"}
    assert result["accuracy"] > 0.95  # the README says ~0.96 after 5 epochs
    assert 0 < result["loss"] < 0.3


@pytest.mark.skipif(any(importlib.util.find_spec(m) is None
                        for m in ("sklearn", "joblib", "distributed", "matplotlib")),
                    reason="needs scikit-learn, joblib, dask.distributed and matplotlib")
def test_search_examples_run_locally_and_on_dask_with_the_same_result(tmp_path):
    local, dask = _blocks("python")[1:3]
    assert "coarse_to_fine" in local and 'parallel_backend("dask")' in dask
    # The Dask example uses the objective and space of the first; run them as one script.
    out = _run(local + "\n" + dask, tmp_path).strip().splitlines()
    best_local, best_dask = out[-2], out[-1]
    config = ast.literal_eval(best_local.rsplit("}", 1)[0] + "}")
    assert set(config) == {"lr", "weight_decay"}
    assert 1e-6 <= config["lr"] <= 1e-1 and 1e-7 <= config["weight_decay"] <= 1e-2
    assert float(best_local.rsplit("}", 1)[1]) > 0.85
    # Each trial's seed comes from rng=0, not from the backend: the same trials, the same best.
    assert best_dask == best_local
    with open(tmp_path / "trials.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 20 + 10 + 6
    assert all(r["status"] == "ok" for r in rows)
    assert (tmp_path / "search.png").stat().st_size > 1000
