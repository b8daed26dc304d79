"""Static typing: fastnn ships py.typed, so its hints must hold for users who run mypy.

(a) ordinary user code against the public API type-checks cleanly (mypy --strict);
(b) the package itself has no mypy errors (--ignore-missing-imports).
Both are skipped when mypy is not installed. mypy runs in-process (mypy.api.run) from a
temporary folder, with a config file of its own (no user or project configuration is read) and
no cache (--cache-dir=/dev/null): cold runs take ~4 s for (a) and ~8 s for (b), the same as with a
fresh cache folder, which (a) and (b) could not share since their options differ.
"""
from __future__ import annotations

import importlib
import os
import shutil
import site
import sys
import textwrap
from pathlib import Path
from typing import List, Tuple

import numpy as np
import pytest

import fastnn
from fastnn.augment import RandomAffine
from fastnn.search import Choice, IntUniform, Uniform

PKG_DIR = Path(fastnn.__file__).resolve().parent

# Ordinary user code: no casts, no ignores; annotated where a wrong hint would show.
USER_SCRIPT = '''
"""Build, train, save and reload a small CNN with fastnn."""
from typing import Dict, List, Tuple

import numpy as np

import fastnn
import fastnn.data
import fastnn.init
import fastnn.losses
import fastnn.optim
import fastnn.schedules
import fastnn.train

rng = np.random.default_rng(0)
x = rng.standard_normal((64, 1, 28, 28)).astype(np.float32)
y = rng.integers(0, 10, size=64)

model = fastnn.Sequential(
    fastnn.Conv2d(1, 8, 3, padding=1), fastnn.BatchNorm2d(8), fastnn.ReLU(), fastnn.MaxPool2d(2),
    fastnn.Flatten(), fastnn.Dropout(0.3), fastnn.Linear(8 * 14 * 14, 10))
training: bool = model.training
same_model: fastnn.Sequential = model.eval().train()
running_mean = model[1].running_mean
print(training, running_mean)
state: Dict[str, np.ndarray] = model.state_dict()
first_weight: np.ndarray = state["0.weight"]
head: fastnn.Sequential = model[:4]
n_layers: int = len(model) + len(head)

schedule = fastnn.schedules.CosineAnnealingLR(0.1, T_max=100)
sgd = fastnn.optim.SGD(model.parameters(), lr=schedule, momentum=0.9)
adam = fastnn.optim.Adam(model.parameters(), lr=fastnn.schedules.Warmup(schedule, 10))

loss_fn = fastnn.losses.SoftmaxCrossEntropy()
out: np.ndarray = model(x)
loss, dout = loss_fn(out, y)
total: float = loss + 1.0
dx: np.ndarray = model.backward(dout)
sgd.step()
sgd.zero_grad()

records: List[Tuple[str, float, float]] = fastnn.init.lsuv(model, x, rng=rng)
for name, var_before, var_after in records:
    print(f"{name}: {var_before:.3f} -> {var_after:.3f}")

loader = fastnn.data.DataLoader(x, y, batch_size=16, rng=rng)
for xb, yb in loader:
    batch: np.ndarray = xb
    print(batch.shape, yb)

trainer = fastnn.train.Trainer(model, loss_fn, adam)
history: fastnn.train.History = trainer.fit(loader, val_data=(x, y), epochs=1, progress=False)
val_acc: List[float] = history.val_acc
best: float = max(val_acc)
metrics: Dict[str, float] = trainer.evaluate(x, y)

fastnn.save("checkpoint.npz", model, adam, epoch=1)
restored = fastnn.load("checkpoint.npz", model=model, optimizer=adam)
print(restored["epoch"], best, metrics, total, first_weight.shape, n_layers, dx.shape)
'''


def _in_site_packages(folder: Path) -> bool:
    """Whether `folder` is (inside) a site-packages folder of this interpreter, i.e. fastnn
    was installed with pip rather than imported from the source tree (PYTHONPATH=python)."""
    dirs = list(site.getsitepackages()) if hasattr(site, "getsitepackages") else []
    if site.ENABLE_USER_SITE:
        dirs.append(site.getusersitepackages())
    for d in dirs:
        d_res = Path(d).resolve()
        if folder == d_res or d_res in folder.parents:
            return True
    return False


@pytest.fixture(scope="module")
def mypy_run(tmp_path_factory: pytest.TempPathFactory):
    """run(args) -> (exit status, report): mypy in-process with this interpreter's packages
    (numpy's stubs) and a config file of our own."""
    api = pytest.importorskip("mypy.api")
    config = tmp_path_factory.mktemp("mypy") / "mypy.ini"
    lines = ["[mypy]", f"cache_dir = {os.devnull}"]
    if not _in_site_packages(PKG_DIR.parent):
        # Source tree: point mypy at the folder holding fastnn/ (mypy refuses a site-packages
        # folder there; an installed fastnn is found through --python-executable instead).
        lines.append(f"mypy_path = {PKG_DIR.parent}")
    # As for an installed package: fastnn is analysed for the user's code, its own errors are
    # not reported there (the package test checks them).
    lines += ["[mypy-fastnn,fastnn.*]", "follow_imports = silent"]
    config.write_text("\n".join(lines) + "\n")

    def run(args: List[str]) -> Tuple[int, str]:
        stdout, stderr, status = api.run(["--config-file", str(config), "--python-executable",
                                          sys.executable, "--no-pretty", "--show-error-codes",
                                          *args])
        return status, f"mypy {' '.join(args)}\n{stdout}{stderr}"

    return run


def test_user_code_type_checks(mypy_run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # mypy also searches the current folder
    monkeypatch.delenv("MYPYPATH", raising=False)
    script = tmp_path / "user_script.py"
    script.write_text(textwrap.dedent(USER_SCRIPT))
    status, report = mypy_run(["--strict", str(script)])
    assert status == 0 and "Success: no issues found in 1 source file" in report, report


def test_package_type_checks(mypy_run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A copy of the package's Python sources is checked, not the package where it lies: inside
    # site-packages (an installed fastnn, as in CI) mypy takes that folder for the source root
    # and stops at the first module there that shadows a library (mypy_extensions.py).
    api = pytest.importorskip("mypy.api")
    src = tmp_path / "src"
    shutil.copytree(PKG_DIR, src / "fastnn",
                    ignore=lambda d, names: [n for n in names if n == "__pycache__"
                                             or not (n.endswith((".py", ".pyi")) or n == "py.typed"
                                                     or (Path(d) / n).is_dir())])
    # The wheel ships the benchmarks as fastnn/benchmarks (for `fastnn bench`); from the source
    # tree, put the repository's benchmarks/ where the wheel has them, so both check the same.
    repo_benchmarks = PKG_DIR.parent.parent / "benchmarks"
    if not (src / "fastnn" / "benchmarks").is_dir() and repo_benchmarks.is_dir():
        shutil.copytree(repo_benchmarks, src / "fastnn" / "benchmarks",
                        ignore=shutil.ignore_patterns("__pycache__", "*.txt", "*.png"))
    config = tmp_path / "mypy.ini"
    config.write_text(f"[mypy]\ncache_dir = {os.devnull}\nmypy_path = {src}\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MYPYPATH", raising=False)
    stdout, stderr, status = api.run(["--config-file", str(config), "--python-executable",
                                      sys.executable, "--no-pretty", "--show-error-codes",
                                      "--ignore-missing-imports", str(src / "fastnn")])
    report = f"mypy --ignore-missing-imports fastnn (a copy in {src})\n{stdout}{stderr}"
    assert status == 0 and "Success: no issues found" in report, report


def test_spelled_out_all_lists_match_submodules() -> None:
    # The packages' __all__ are literal lists (so that type checkers see the names); they must
    # keep listing every submodule's names, in order.
    def names(mod: str) -> List[str]:
        return list(importlib.import_module(mod).__all__)

    functional = names("fastnn.functional.core") + names("fastnn.functional.conv") \
        + names("fastnn.functional.norm")
    assert fastnn.functional.__all__ == functional
    tail = sum((names(f"fastnn.layers.{m}") for m in ("conv", "pool", "norm", "dropout")), [])
    layers = fastnn.layers.__all__
    assert layers[len(layers) - len(tail):] == tail
    tail = layers + names("fastnn.schedules")
    assert fastnn.__all__[len(fastnn.__all__) - len(tail):] == tail
    for mod in (fastnn, fastnn.layers, fastnn.functional):
        assert len(set(mod.__all__)) == len(mod.__all__), mod.__name__
        assert [n for n in mod.__all__ if not hasattr(mod, n)] == [], mod.__name__


# Bad input the type checker pointed at (found while fixing the package's hints).
def test_int_uniform_narrow_within_checks_the_range() -> None:
    with pytest.raises(TypeError, match="within: expected a numeric range, got Choice"):
        IntUniform(1, 10).narrow([3], Choice([1, 2]))  # was AttributeError: no attribute 'lo'
    # A real range is clipped to the integers inside it (was a TypeError for 0.5).
    assert IntUniform(1, 10).narrow([1], Uniform(0.5, 10.5)) == IntUniform(1, 2)


def test_random_affine_rejects_bool_shear() -> None:
    with pytest.raises(TypeError, match="shear: expected a number, 2 or 4 values"):
        RandomAffine(shear=True)  # was "'bool' object is not iterable"
    with pytest.raises(TypeError, match="shear: expected a number, 2 or 4 values"):
        RandomAffine(shear=np.True_)
