"""fastnn.search: spaces, random/grid/coarse-to-fine search, robustness, joblib and Dask execution."""
from __future__ import annotations

import csv
import math
import os
import sys
from pathlib import Path

import numpy as np
import pytest

import fastnn
from fastnn.search import (Choice, IntUniform, LogUniform, Results, Uniform, coarse_to_fine,
                           grid_search, narrow_space, random_search)

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _search_objectives as O  # noqa: E402

SPACE = {"lr": LogUniform(1e-6, 1e-1), "units": IntUniform(1, 10)}


# -- spaces -----------------------------------------------------------------------------------
def test_loguniform_is_uniform_in_log_space():
    d = LogUniform(1e-6, 1e-1)
    rng = np.random.default_rng(0)
    x = np.array([d.sample(rng) for _ in range(20000)])
    assert x.min() >= 1e-6 and x.max() <= 1e-1
    counts, _ = np.histogram(np.log10(x), bins=5, range=(-6, -1))  # one bin per decade
    assert np.all(np.abs(counts / len(x) - 0.2) < 0.015), counts
    # a plain uniform draw would put ~90% in the top decade
    assert np.mean(x < 1e-2) > 0.75


def test_uniform_and_intuniform_bounds():
    rng = np.random.default_rng(1)
    u = np.array([Uniform(-2.0, 3.0).sample(rng) for _ in range(5000)])
    assert u.min() >= -2 and u.max() <= 3 and abs(u.mean() - 0.5) < 0.1
    ints = [IntUniform(3, 6).sample(rng) for _ in range(4000)]
    assert all(isinstance(v, int) for v in ints)
    assert sorted(set(ints)) == [3, 4, 5, 6]  # both ends inclusive
    counts = np.bincount(ints)[3:]
    assert np.all(np.abs(counts / 4000 - 0.25) < 0.03)
    logint = [IntUniform(1, 1000, log=True).sample(rng) for _ in range(4000)]
    assert min(logint) >= 1 and max(logint) <= 1000 and np.median(logint) < 100


def test_choice_samples_every_option():
    rng = np.random.default_rng(2)
    vals = [Choice(["relu", "tanh", 3]).sample(rng) for _ in range(600)]
    assert {v for v in vals} == {"relu", "tanh", 3}


@pytest.mark.parametrize("make, arg", [
    (lambda: Uniform(1.0, 1.0), "hi"),
    (lambda: Uniform(2.0, 1.0), "hi"),
    (lambda: LogUniform(0.0, 1.0), "lo"),
    (lambda: LogUniform(-1e-3, 1.0), "lo"),
    (lambda: IntUniform(5, 5), "hi"),
    (lambda: Choice([]), "options"),
    (lambda: Uniform(0.0, float("inf")), "hi"),
    (lambda: Uniform(float("nan"), 1.0), "lo"),
])
def test_bad_spaces_raise_value_error_naming_the_argument(make, arg):
    with pytest.raises(ValueError, match=arg):
        make()


def test_bad_arguments():
    with pytest.raises(TypeError, match="lo"):
        IntUniform(1.5, 3)
    with pytest.raises(TypeError, match="options"):
        Choice("abc")
    with pytest.raises(ValueError, match="mode"):
        random_search(O.log_peak, SPACE, 2, mode="maximum")
    with pytest.raises(ValueError, match="space"):
        random_search(O.log_peak, {}, 2)
    with pytest.raises(TypeError, match="space"):
        random_search(O.log_peak, {"lr": (1e-3, 1e-1)}, 2)
    with pytest.raises(ValueError, match="n_trials"):
        random_search(O.log_peak, SPACE, 0)
    with pytest.raises(ValueError, match="n_jobs"):
        random_search(O.log_peak, SPACE, 2, n_jobs=0)
    with pytest.raises(TypeError, match="objective"):
        random_search("f", SPACE, 2)
    with pytest.raises(ValueError, match="keep"):
        coarse_to_fine(O.log_peak, SPACE, stages=[(2, 1)], keep=0.0)
    with pytest.raises(ValueError, match="stages"):
        coarse_to_fine(O.log_peak, SPACE, stages=[])
    with pytest.raises(ValueError, match=r"stages\[1\]"):
        coarse_to_fine(O.log_peak, SPACE, stages=[(2, 1), 3])
    with pytest.raises(ValueError, match="grid"):
        grid_search(O.log_peak, {"lr": []})


def test_narrow_in_log_space_and_clipped():
    d = LogUniform(1e-6, 1e-1)
    n = d.narrow([1e-4, 1e-3])
    # [1e-4, 1e-3] widened by 10% of one decade on each side, in log space
    assert n.lo == pytest.approx(10 ** -4.1) and n.hi == pytest.approx(10 ** -2.9)
    assert d.narrow([1e-6, 1e-1]) == LogUniform(1e-6, 1e-1)  # clipped to the original range
    u = Uniform(0.0, 10.0).narrow([2.0, 4.0])
    assert (u.lo, u.hi) == pytest.approx((1.8, 4.2))
    one = Uniform(0.0, 10.0).narrow([5.0])  # a single value: 10% of the range each side
    assert (one.lo, one.hi) == pytest.approx((4.0, 6.0))
    i = IntUniform(1, 10).narrow([4, 4])
    assert i.lo <= 4 <= i.hi and i.hi - i.lo >= 1 and isinstance(i, IntUniform)
    assert IntUniform(1, 10).narrow([10]).hi == 10
    assert Choice(["a", "b", "c"]).narrow(["c", "a", "c"]).options == ["a", "c"]


# -- determinism and results ------------------------------------------------------------------
def test_same_seed_same_configs_and_trial_seeds():
    a = random_search(O.deterministic, SPACE, 8, rng=42)
    b = random_search(O.deterministic, SPACE, 8, rng=np.random.default_rng(42))
    c = random_search(O.deterministic, SPACE, 8, rng=43)
    assert [r["config"] for r in a] == [r["config"] for r in b]
    assert [r["seed"] for r in a] == [r["seed"] for r in b]
    assert [r["score"] for r in a] == [r["score"] for r in b]
    assert [r["config"] for r in a] != [r["config"] for r in c]
    assert len({r["seed"] for r in a}) == 8
    fastnn.seed(7)
    d = random_search(O.log_peak, SPACE, 4)
    fastnn.seed(7)
    e = random_search(O.log_peak, SPACE, 4)
    assert [r["config"] for r in d] == [r["config"] for r in e]


def test_trial_seeds_fastnn_global_generator_without_consuming_the_callers():
    fastnn.seed(3)
    before = fastnn.get_rng().bit_generator.state
    seen = []

    def obj(config, budget):
        seen.append(fastnn.get_rng().integers(1 << 30))
        return 0.0

    r = random_search(obj, SPACE, 3, rng=5)
    assert fastnn.get_rng().bit_generator.state == before
    expect = [np.random.default_rng(rec["seed"]).integers(1 << 30) for rec in r]
    assert seen == expect


def test_records_best_mode_and_min():
    r = random_search(O.log_peak, SPACE, 20, rng=0)
    assert isinstance(r, Results) and isinstance(r, list) and len(r) == 20
    for rec in r:
        assert set(rec) >= {"config", "score", "status", "error", "seconds", "stage"}
        assert rec["status"] == "ok" and rec["error"] is None and rec["seconds"] >= 0
        assert rec["stage"] == 0 and rec["budget"] is None
    assert r.best["score"] == max(x["score"] for x in r)
    rmin = random_search(O.log_peak, SPACE, 20, rng=0, mode="min")
    assert rmin.best["score"] == min(x["score"] for x in rmin)
    assert r.interrupted is False


def test_failed_trials_are_recorded_and_search_goes_on():
    r = random_search(O.sometimes_fails, {"lr": LogUniform(1e-7, 1.0)}, 40, rng=0)
    assert len(r) == 40
    raised = [x for x in r if x["config"]["lr"] > 1e-2]
    nans = [x for x in r if x["config"]["lr"] < 1e-5]
    assert raised and nans
    assert all(x["status"] == "failed" and "RuntimeError: diverged" in x["error"] for x in raised)
    assert all(x["status"] == "failed" and "nan" in x["error"] for x in nans)
    ok = [x for x in r if 1e-5 <= x["config"]["lr"] <= 1e-2]
    assert all(x["status"] == "ok" for x in ok) and len(r.ok) == len(ok)
    assert r.best["config"]["lr"] == max(x["config"]["lr"] for x in ok)
    assert all(math.isnan(x["score"]) for x in raised)


def test_non_numeric_score_fails_the_trial():
    r = random_search(lambda c, b: "high", SPACE, 2, rng=0)
    assert [x["status"] for x in r] == ["failed", "failed"] and "expected a number" in r[0]["error"]
    assert r.best is None


def test_interrupt_returns_partial_results():
    obj = O.InterruptAt(4)
    r = random_search(obj, SPACE, 10, rng=0)
    assert r.interrupted is True and len(r) == 3
    assert all(x["status"] == "ok" for x in r)
    full = random_search(O.log_peak, SPACE, 10, rng=0)
    assert [x["config"] for x in r] == [x["config"] for x in full[:3]]
    c = coarse_to_fine(O.InterruptAt(7), SPACE, stages=[(5, 1), (5, 2), (5, 3)], rng=0)
    assert c.interrupted and len(c) == 6 and [x["stage"] for x in c] == [0] * 5 + [1]


def test_grid_search_covers_the_grid():
    r = grid_search(O.deterministic, {"lr": [1e-3, 1e-2], "units": [1, 2, 3]}, rng=0)
    assert [tuple(x["config"].values()) for x in r] == [(1e-3, 1), (1e-3, 2), (1e-3, 3),
                                                       (1e-2, 1), (1e-2, 2), (1e-2, 3)]
    assert r.best["config"]["lr"] in (1e-3, 1e-2)


# -- coarse to fine ---------------------------------------------------------------------------
def test_coarse_to_fine_narrows_around_the_optimum():
    space = {"lr": LogUniform(1e-6, 1e-1), "act": Choice(["relu", "tanh"])}
    r = coarse_to_fine(O.log_peak, space, stages=[(40, 1), (20, 2), (20, 4)], keep=0.2, rng=0)
    assert len(r) == 80 and [x["stage"] for x in r] == [0] * 40 + [1] * 20 + [2] * 20
    assert len(r.spaces) == 3 and r.spaces[0] == space
    widths = [math.log10(s["lr"].hi / s["lr"].lo) for s in r.spaces]
    assert widths[0] == pytest.approx(5.0)
    assert widths[1] < widths[0] / 2 and widths[2] < widths[1]
    for s in r.spaces:
        assert s["lr"].lo <= 1e-3 <= s["lr"].hi  # the optimum stays inside
    for x in r:  # each stage samples from its own range
        assert r.spaces[x["stage"]]["lr"].lo <= x["config"]["lr"] <= r.spaces[x["stage"]]["lr"].hi
    assert abs(math.log10(r.best["config"]["lr"]) + 3) < 0.1


def test_coarse_to_fine_keeps_integers_and_narrows_choices():
    def obj(c, budget):
        return -(math.log10(c["lr"]) + 3) ** 2 - ((c["units"] - 20) / 10) ** 2 - (c["act"] != "relu")

    space = {"lr": LogUniform(1e-6, 1e-1), "units": IntUniform(1, 100),
             "act": Choice(["tanh", "relu", "sigmoid"])}
    r = coarse_to_fine(obj, space, stages=[(40, 1), (20, 2), (10, 3)], keep=0.2, rng=1)
    for sp in r.spaces[1:]:
        assert isinstance(sp["units"], IntUniform) and sp["units"].lo <= 20 <= sp["units"].hi
        assert sp["units"].hi - sp["units"].lo < 99
    assert all(type(x["config"]["units"]) is int for x in r)
    assert r.spaces[2]["act"].options == ["relu"]  # the best fifth all used relu
    assert all(x["config"]["act"] == "relu" for x in r if x["stage"] == 2)
    assert r.best["config"]["act"] == "relu" and abs(r.best["config"]["units"] - 20) <= 5


def test_narrowing_uses_the_best_fraction():
    records = [{"config": {"lr": lr}, "score": O.log_peak({"lr": lr}, None), "status": "ok"}
               for lr in (1e-6, 1e-5, 1e-4, 1e-3, 2e-3, 1e-2, 1e-1)]
    records.append({"config": {"lr": 5e-2}, "score": float("nan"), "status": "failed"})
    n = narrow_space({"lr": LogUniform(1e-6, 1e-1)}, records, keep=0.3, mode="max")["lr"]
    # best 3 of the 7 ok trials: 1e-3, 2e-3, 1e-4 -> log10 span [-4, log10(2e-3)], widened 10%
    a, b = -4.0, math.log10(2e-3)
    assert n.lo == pytest.approx(10 ** (a - 0.1 * (b - a))) and n.hi == pytest.approx(10 ** (b + 0.1 * (b - a)))
    n_min = narrow_space({"lr": LogUniform(1e-6, 1e-1)}, records, keep=0.15, mode="min")["lr"]
    # mode "min" keeps the lowest scores: 1e-6 (-9) then 1e-5 (-4, first of a tie with 1e-1)
    assert n_min.lo == pytest.approx(1e-6) and n_min.hi == pytest.approx(10 ** -4.9)


def test_budgets_passed_per_stage():
    obj = O.RecordBudget()
    r = coarse_to_fine(obj, {"lr": LogUniform(1e-5, 1e-1)}, stages=[(4, 1), (3, 5), (2, "long")], rng=0)
    assert obj.budgets == [1] * 4 + [5] * 3 + ["long"] * 2
    assert [x["budget"] for x in r] == obj.budgets


def test_to_csv_and_plot(tmp_path):
    r = coarse_to_fine(O.sometimes_fails, {"lr": LogUniform(1e-7, 1.0), "act": Choice(["a", "b"]),
                                           "w": Uniform(0, 1)}, stages=[(12, 1), (6, 2)], rng=0)
    path = tmp_path / "trials.csv"
    r.to_csv(str(path))
    rows = list(csv.DictReader(open(path)))
    assert len(rows) == len(r)
    assert rows[0].keys() >= {"stage", "trial", "status", "score", "seconds", "lr", "act", "w", "error"}
    for row, rec in zip(rows, r):
        assert float(row["lr"]) == rec["config"]["lr"] and row["status"] == rec["status"]
        if rec["status"] == "ok":
            assert float(row["score"]) == rec["score"]
        else:
            assert row["error"] == rec["error"]
    pytest.importorskip("matplotlib")
    fig = r.plot(str(tmp_path / "search.png"))
    assert (tmp_path / "search.png").stat().st_size > 1000
    assert fig.axes[0].get_xscale() == "log" and fig.axes[2].get_xscale() == "linear"
    text = r.table(sort=True)
    assert text.splitlines()[0].split()[:4] == ["stage", "trial", "budget", "lr"] and "*" in text


# -- parallel execution -----------------------------------------------------------------------
def test_n_jobs_2_loky_matches_n_jobs_1():
    pytest.importorskip("joblib")
    a = coarse_to_fine(O.deterministic, SPACE, stages=[(6, 1), (4, 2)], rng=11)
    b = coarse_to_fine(O.deterministic, SPACE, stages=[(6, 1), (4, 2)], rng=11, n_jobs=2)
    assert [x["config"] for x in a] == [x["config"] for x in b]
    assert [x["score"] for x in a] == [x["score"] for x in b]
    pids = random_search(O.worker_pid, SPACE, 4, n_jobs=2, rng=0)
    assert os.getpid() not in {x["score"] for x in pids}  # ran in worker processes


def test_thread_budget_is_applied_inside_each_worker_trial():
    pytest.importorskip("joblib")
    cores = len(os.sched_getaffinity(0))
    before = fastnn.get_num_threads()
    # grab_threads raises its worker's thread count by 3 after reading it: every later trial
    # in that worker still starts at cores // n_jobs only if the search sets it per trial
    r = random_search(O.grab_threads, SPACE, 8, n_jobs=2, rng=0)
    assert [x["score"] for x in r] == [float(max(1, cores // 2))] * 8
    assert len({x["seed"] for x in r}) == 8
    e = random_search(O.grab_threads, SPACE, 4, n_jobs=2, rng=0, threads_per_trial=3)
    assert [x["score"] for x in e] == [3.0] * 4
    # in-process with an explicit budget: applied per trial, the caller's count restored
    s = random_search(O.grab_threads, SPACE, 3, rng=0, threads_per_trial=1)
    assert [x["score"] for x in s] == [1.0] * 3 and fastnn.get_num_threads() == before
    with pytest.raises(ValueError, match="threads_per_trial"):
        random_search(O.grab_threads, SPACE, 2, threads_per_trial=0)


def test_n_jobs_2_records_failures():
    pytest.importorskip("joblib")
    r = random_search(O.sometimes_fails, {"lr": LogUniform(1e-7, 1.0)}, 8, rng=0, n_jobs=2)
    s = random_search(O.sometimes_fails, {"lr": LogUniform(1e-7, 1.0)}, 8, rng=0)
    assert [x["status"] for x in r] == [x["status"] for x in s] and r.failed
    assert [x["error"] for x in r] == [x["error"] for x in s]


_DASK_SCRIPT = """
import json, logging, os, sys
if __name__ == "__main__":
    import distributed, joblib
    from fastnn.search import LogUniform, coarse_to_fine, random_search
    import _search_objectives as O
    space = {"lr": LogUniform(1e-6, 1e-1), "units": LogUniform(1, 10)}
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None,
                                  silence_logs=logging.ERROR) as cluster, \\
            distributed.Client(cluster, timeout=60) as client:
        workers = sorted(client.run(os.getpid).values())
        print(json.dumps({"workers": workers}), flush=True)
        with joblib.parallel_backend("dask"):
            det = random_search(O.deterministic, space, 6, rng=3)
            pids = random_search(O.worker_pid, space, 6, rng=3)
            thr = random_search(O.grab_threads, space, 6, rng=3)
            bad = random_search(O.sometimes_fails, {"lr": LogUniform(1e-7, 1.0)}, 8, rng=0)
            c2f = coarse_to_fine(O.log_peak, {"lr": LogUniform(1e-6, 1e-1)}, stages=[(12, 1), (6, 2)], rng=3)
    out = {"det": [x["score"] for x in det], "pids": [x["score"] for x in pids],
           "threads": [x["score"] for x in thr], "bad": [[x["status"], x["error"]] for x in bad],
           "stages": [x["stage"] for x in c2f], "c2f_best0": max((x for x in c2f if x["stage"] == 0),
                                                               key=lambda x: x["score"])["config"]["lr"],
           "space1": [c2f.spaces[1]["lr"].lo, c2f.spaces[1]["lr"].hi], "main": os.getpid()}
    print(json.dumps(out), flush=True)
"""


def test_dask_distributed_cluster(tmp_path):
    """The same calls, unchanged, inside joblib.parallel_backend("dask") on a real
    dask.distributed.LocalCluster (two worker processes on loopback). It runs in its own
    process group with a timeout, so a stuck cluster fails the test instead of hanging it."""
    import json
    import signal
    import subprocess
    import time
    pytest.importorskip("joblib")
    pytest.importorskip("dask")
    pytest.importorskip("distributed")
    script = tmp_path / "dask_search.py"
    script.write_text(_DASK_SCRIPT)
    here = Path(__file__).resolve().parent
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(fastnn.__file__).parents[1]), str(here)]))
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=150)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the scheduler and worker processes with it
        proc.communicate()
        pytest.fail("the Dask search did not finish within 150 s")
    assert proc.returncode == 0, err[-3000:]
    lines = out.splitlines()
    workers = json.loads(lines[0])["workers"]
    res = json.loads(lines[1])
    assert len(workers) == 2 and res["main"] not in workers
    assert set(res["pids"]) <= {float(p) for p in workers}  # trials ran on the cluster's workers
    local = random_search(O.deterministic, {"lr": LogUniform(1e-6, 1e-1), "units": LogUniform(1, 10)}, 6, rng=3)
    assert res["det"] == [x["score"] for x in local]  # same seed, same configs and trial seeds
    # per host: 2 workers x 1 thread on this machine -> cores // 2 each, re-applied every trial
    assert res["threads"] == [float(max(1, len(os.sched_getaffinity(0)) // 2))] * 6
    expect = random_search(O.sometimes_fails, {"lr": LogUniform(1e-7, 1.0)}, 8, rng=0)
    assert res["bad"] == [[x["status"], x["error"]] for x in expect] and expect.failed
    assert res["stages"] == [0] * 12 + [1] * 6
    lo, hi = res["space1"]
    assert lo <= res["c2f_best0"] <= hi and hi / lo < 1e5
    deadline = time.monotonic() + 20  # the cluster closed: its worker processes are gone
    while time.monotonic() < deadline and any(_alive(p) for p in workers):
        time.sleep(0.2)
    assert not any(_alive(p) for p in workers)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def test_an_open_joblib_context_is_used_as_is():
    joblib = pytest.importorskip("joblib")
    with joblib.parallel_config(backend="loky", n_jobs=2):
        r = random_search(O.worker_pid, SPACE, 4, rng=0)  # n_jobs=1: the context decides
    assert os.getpid() not in {x["score"] for x in r}
    before = fastnn.get_num_threads()
    with joblib.parallel_config(backend="threading", n_jobs=2):
        t = random_search(O.worker_pid, SPACE, 4, rng=0, n_jobs=2)
    assert fastnn.get_num_threads() == before  # threads share the process: no thread budget
    assert {x["score"] for x in t} == {float(os.getpid())}  # threads: same process, not loky
    # threads share fastnn's global generator: the trials leave it alone (they get seed=),
    # so the results match a sequential run and the caller's generator is untouched
    fastnn.seed(5)
    state = fastnn.get_rng().bit_generator.state
    with joblib.parallel_config(backend="threading", n_jobs=2):
        d = random_search(O.deterministic, SPACE, 6, rng=1, threads_per_trial=1)
    assert fastnn.get_rng().bit_generator.state == state and fastnn.get_num_threads() == before
    assert [x["score"] for x in d] == [x["score"] for x in random_search(O.deterministic, SPACE, 6, rng=1)]
    assert "joblib" in sys.modules


_INTERRUPT_SCRIPT = """
import signal, sys
signal.signal(signal.SIGINT, signal.default_int_handler)
from fastnn.search import LogUniform, random_search
import _search_objectives as O
if __name__ == "__main__":
    print("start", flush=True)
    r = random_search(O.slow, {"lr": LogUniform(1e-3, 1.0)}, 60, n_jobs=2, rng=0)
    full = random_search(O.log_peak, {"lr": LogUniform(1e-3, 1.0)}, 60, rng=0)
    prefix = [x["config"] for x in r] == [x["config"] for x in full[:len(r)]]
    print("result", r.interrupted, len(r), all(x["status"] == "ok" for x in r), prefix, flush=True)
    again = random_search(O.slow, {"lr": LogUniform(1e-3, 1.0)}, 2, n_jobs=2, rng=0)
    print("again", len(again), flush=True)
"""


def test_ctrl_c_during_a_parallel_search_returns_partial_results(tmp_path):
    pytest.importorskip("joblib")
    import signal
    import subprocess
    import time
    script = tmp_path / "interrupt_me.py"
    script.write_text(_INTERRUPT_SCRIPT)
    here = Path(__file__).resolve().parent
    log = tmp_path / "trials.log"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(fastnn.__file__).parents[1]), str(here)]),
               SEARCH_TRIAL_LOG=str(log))
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)
    try:
        assert proc.stdout.readline().strip() == "start"
        deadline = time.monotonic() + 60  # however slow the pool is to start
        while time.monotonic() < deadline and (not log.exists() or len(log.read_text().split()) < 4):
            time.sleep(0.05)
        time.sleep(0.3)  # the search has collected some finished trials
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)  # with its worker processes
            proc.communicate()
    lines = out.splitlines()
    res = lines[0].split()
    assert res[0] == "result" and res[1] == "True" and 0 < int(res[2]) < 60 and res[3:] == ["True", "True"]
    assert lines[1] == "again 2"


def test_cli_search_subcommand(tmp_path, capsys, threads):
    pytest.importorskip("sklearn")
    threads(1)  # tiny runs: one thread is fastest, and immune to a busy machine
    from fastnn.cli import main
    csv_path = tmp_path / "t.csv"
    assert main(["search", "--dataset", "digits", "--stages", "4:1,2:2", "--seed", "1",
                 "--csv", str(csv_path)]) == 0
    out = capsys.readouterr().out
    assert "6 trials (0 failed)" in out and "best: lr" in out and "held-out accuracy, searched" in out
    rows = list(csv.DictReader(open(csv_path)))
    assert [r["budget"] for r in rows] == ["1"] * 4 + ["2"] * 2


def test_unshippable_objective_or_dead_worker_fails_trials_not_the_search():
    pytest.importorskip("joblib")
    import threading

    class Locked:
        lock = None

        def __init__(self):
            self.lock = threading.Lock()  # cannot be pickled to a worker

        def __call__(self, config, budget):
            return 1.0

    with pytest.warns(RuntimeWarning, match="remaining 3 trials failed"):
        r = random_search(Locked(), SPACE, 3, n_jobs=2, rng=0)
    assert len(r) == 3 and all(x["status"] == "failed" and "PicklingError" in x["error"] for x in r)
    with pytest.warns(RuntimeWarning, match="worker died"):
        g = grid_search(O.crash_at_3, {"units": [1, 2, 3, 4, 5, 6]}, n_jobs=2)
    assert len(g) == 6 and g[2]["status"] == "failed" and "worker died" in g[2]["error"]
    # the trials after it run on a fresh pool; one in flight beside it may be lost with it
    assert all(x["status"] == "ok" for x in g[3:])
    assert all(x["score"] == x["config"]["units"] for x in g.ok) and len(g.ok) >= 3
    again = random_search(O.log_peak, SPACE, 2, n_jobs=2, rng=0)  # the pool recovers
    assert [x["status"] for x in again] == ["ok", "ok"]


def test_example_search_mnist_quick(mnist_dir, tmp_path, monkeypatch, capsys, threads):
    import runpy
    threads(1)  # tiny runs: one thread is fastest, and immune to a busy machine
    example = Path(__file__).resolve().parents[1] / "examples" / "search_mnist.py"
    monkeypatch.setattr(sys, "argv", [str(example), "--quick", "--data", str(mnist_dir),
                                      "--out", str(tmp_path)])
    runpy.run_path(str(example), run_name="__main__")
    out = capsys.readouterr().out
    assert "6 trials (0 failed)" in out and "best: lr" in out
    assert "searched" in out and "hand-tuned" in out and "searched - hand-tuned" in out
    assert len(list(csv.DictReader(open(tmp_path / "trials.csv")))) == 6
