"""The build: ISA dispatch, build_info, thread control (API, OMP_NUM_THREADS, threadpoolctl),
and a process forked after OpenMP ran does not hang."""
import os
import subprocess
import sys

import numpy as np
import pytest

import fastnn


def _run(code, **env):
    e = dict(os.environ)
    e.update(env)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=e, timeout=120)


def test_build_info_reports_the_loaded_level():
    info = fastnn.build_info()
    for key in ("isa_level", "eigen_version", "compiler", "openmp", "num_threads", "built_levels", "cpu_levels"):
        assert key in info
    assert info["isa_level"] in info["built_levels"]
    assert info["module"] == f"fastnn._C_{info['isa_level']}"
    assert fastnn._C.__name__ == info["module"]
    if info["cpu_levels"]:  # x86-64: the best built level this CPU runs is the one loaded
        runnable = [lvl for lvl in ("v4", "v3", "v2") if lvl in info["built_levels"] and lvl in info["cpu_levels"]]
        assert info["isa_level"] == runnable[0]
    assert info["eigen_version"].startswith("3.")


def test_every_built_level_loads_and_agrees():
    info = fastnn.build_info()
    levels = [lvl for lvl in info["built_levels"] if lvl in info["cpu_levels"] or lvl in ("native", "generic")]
    code = ("import fastnn, numpy as np; r = np.random.default_rng(0); x = r.standard_normal((33, 70)).astype(np.float32);"
            "w = r.standard_normal((20, 70)).astype(np.float32);"
            "print(fastnn.build_info()['isa_level'], float(fastnn.functional.linear(x, w).astype(np.float64).sum()))")
    sums = {}
    for lvl in levels:
        out = _run(code, FASTNN_ISA=lvl)
        assert out.returncode == 0, out.stderr
        got_level, s = out.stdout.split()
        assert got_level == lvl
        sums[lvl] = float(s)
    vals = list(sums.values())
    assert np.allclose(vals, vals[0], rtol=1e-5)


def test_forcing_an_unknown_level_is_a_clear_error():
    out = _run("import fastnn", FASTNN_ISA="v9")
    assert out.returncode != 0 and "FASTNN_ISA='v9'" in out.stderr and "built levels" in out.stderr


def test_set_and_get_num_threads(threads):
    threads(1)
    assert fastnn.get_num_threads() == 1
    threads(2)
    assert fastnn.get_num_threads() == 2
    with pytest.raises(ValueError, match="n: expected an int >= 1"):
        fastnn.set_num_threads(0)
    with pytest.raises(TypeError):
        fastnn.set_num_threads(1.5)


def test_omp_num_threads_is_honoured():
    out = _run("import fastnn; print(fastnn.get_num_threads())", OMP_NUM_THREADS="1")
    assert out.returncode == 0 and out.stdout.strip() == "1"


def test_threadpoolctl_controls_the_kernels():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    before = fastnn.get_num_threads()
    with threadpoolctl.threadpool_limits(limits=1, user_api="openmp"):
        assert fastnn.get_num_threads() == 1
    assert fastnn.get_num_threads() == before


def test_fork_after_openmp_does_not_hang():
    code = (
        "import os, sys, numpy as np, fastnn\n"
        "fastnn.set_num_threads(2)\n"
        "x = np.ones((512, 512), np.float32)\n"
        "fastnn.functional.linear(x, x)\n"  # the parent has run an OpenMP region
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    y = fastnn.functional.linear(x, x)\n"
        "    os._exit(0 if y[0, 0] == 512 else 3)\n"
        "_, status = os.waitpid(pid, 0)\n"
        "print(os.waitstatus_to_exitcode(status))\n"
    )
    out = _run(code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "0"


def test_package_ships_type_information():
    from pathlib import Path
    assert (Path(fastnn.__file__).parent / "py.typed").exists()
