"""`python -m benchmarks` works from the repository alone (its own harness,
no file outside it): one sample of every scenario, on ociruntime and runc
when it is installed, prints the table with the ratio column, keeps the
samples with --json, and leaves no container, state root or cgroup.
CI runs no benchmark otherwise; timings are not checked (they depend on
the machine)."""
import json
import os
import shutil
import subprocess
import sys

from conftest import REPO, RUNTIME

SCENARIOS = ["lifecycle", "run", "exec", "parallel", "memory"]
ROWS = ["full cycle create→start→stopped→delete", "| create |", "| start |", "| state |", "| delete |",
        "CPU of the full cycle", "run /bin/true", "exec /bin/true", "| 2 parallel workers", "| 3 parallel workers",
        "CPU per container, 2 workers", "CPU per container, 3 workers", "create peak RSS"]


def cgroups_of(pid):
    prefix = f"ocibench-{pid}-"
    return [os.path.join(top, d) for top, dirs, _ in os.walk("/sys/fs/cgroup") for d in dirs
            if d.startswith(prefix)]


def test_benchmarks_run_one_sample_of_each_scenario(tmp_path):
    runtimes = [("ociruntime", RUNTIME)]
    runc = shutil.which("runc")
    if runc:
        runtimes.append(("runc", runc))
    work = tmp_path / "work"
    out = tmp_path / "bench.json"
    argv = [sys.executable, "-m", "benchmarks", "-n", "1", "--warmup", "0", "--rounds", "1", "--workers", "2,3",
            "--json", str(out), "--workdir", str(work)]
    for name, path in runtimes:
        argv += ["--runtime", f"{name}={path}"]
    p = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         stdin=subprocess.DEVNULL)
    try:
        stdout, stderr = p.communicate(timeout=300)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 0, stderr + stdout
    assert "Traceback" not in stderr

    table = stdout[stdout.index("| scenario |"):]
    header = table.splitlines()[0]
    for name, _ in runtimes:
        assert f" {name} |" in header, header
    if runc:
        assert "ociruntime/runc" in header
    for row in ROWS:
        line = next((l for l in table.splitlines() if row in l), None)
        assert line, f"no row {row!r} in\n{table}"
        assert "FAIL" not in line and "–" not in line.split("|")[3], line
        if runc:
            assert line.rstrip(" |").endswith("×"), line   # the ratio

    doc = json.loads(out.read_text())
    for name, _ in runtimes:
        got = doc["samples"][name]
        # one sample of each, the parallel one for each worker count
        assert {s: len(got[s]) for s in SCENARIOS} == dict(dict.fromkeys(SCENARIOS, 1), parallel=2), got
        assert got["lifecycle"][0]["create_ms"] > 0 and got["memory"][0]["rss_mib"] > 1
        assert [p["workers"] for p in got["parallel"]] == [2, 3]
        assert all(p["cpu_ms"] > 0 and 0 <= p["idle"] <= 1 for p in got["parallel"]), got["parallel"]
    assert "CPU idle during the parallel rounds" in stdout
    assert doc["failures"] == []
    assert doc["meta"]["runtimes"][0]["name"] == "ociruntime"

    # Nothing left behind: the bundles and state roots go, and no cgroup
    # of the bench's containers (named ocibench-<its pid>-N) stays.
    assert sorted(os.listdir(work)) == [], os.listdir(work)
    assert cgroups_of(p.pid) == []


def test_benchmarks_bad_arguments_are_one_line():
    for args, what in ((["--runtime", "nope"], "NAME=PATH"), (["--scenarios", "lifecycle,bogus"], "bogus"),
                       (["--workers", "2,x"], "--workers"), (["--workers", "0"], "at least 1"),
                       (["--runtime", "x=/nonexistent/rt"], "not executable")):
        r = subprocess.run([sys.executable, "-m", "benchmarks", *args], cwd=REPO, capture_output=True,
                           text=True, timeout=60)
        assert r.returncode != 0 and what in r.stderr and "Traceback" not in r.stderr, r.stderr


SCALING = ["mounts", "seccomp", "list", "state", "memory", "exec"]
SCALING_ROWS = ["create with N extra mounts", "create with N seccomp syscall names", "`list` with N created",
                "CPU (user+sys) of that `list`", "`state ID` with N", "PSS left per created container",
                "PSS left per running container", "`exec /bin/true` into a container of N processes"]


def test_scaling_runs_a_small_sample_of_each_scenario(tmp_path):
    """`python -m benchmarks.scaling` at two small sizes of everything: the
    value at each size, the slope between them, the ratio to runc; the
    samples in --json; nothing left behind (containers, their processes
    under the benchmark, cgroups, state roots)."""
    runtimes = [("ociruntime", RUNTIME)]
    runc = shutil.which("runc")
    if runc:
        runtimes.append(("runc", runc))
    work, out = tmp_path / "work", tmp_path / "scaling.json"
    argv = [sys.executable, "-m", "benchmarks.scaling", "-n", "1", "--warmup", "0", "--mounts", "0,2",
            "--seccomp-names", "0,5", "--containers", "1,3", "--running", "1,2", "--processes", "1,3",
            "--json", str(out), "--workdir", str(work)]
    for name, path in runtimes:
        argv += ["--runtime", f"{name}={path}"]
    p = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         stdin=subprocess.DEVNULL)
    try:
        stdout, stderr = p.communicate(timeout=300)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 0, stderr + stdout
    assert "Traceback" not in stderr

    table = stdout[stdout.index("| scenario |"):].splitlines()
    for name, _ in runtimes:
        assert f" {name} |" in table[0], table[0]
    for row in SCALING_ROWS:
        lines = [l for l in table if row in l]
        assert len(lines) == 2, f"{row!r}: not one line per size in\n" + "\n".join(table)
        for line in lines:
            cells = [c.strip() for c in line.split("|")[4:-1]]
            assert "FAIL" not in cells and "–" not in cells[:len(runtimes)], line
            if runc:
                assert cells[-1].endswith("×"), line
    assert sum("↳ slope" in l for l in table) == 6, "\n".join(table)   # every row but memory's
    assert "processes left per container" in stdout

    doc = json.loads(out.read_text())
    for name, _ in runtimes:
        got = doc["samples"][name]
        assert {s: len(got[s]) for s in SCALING} == {"mounts": 2, "seccomp": 2, "list": 2, "state": 2,
                                                      "memory": 2, "exec": 2}, got
        mem = got["memory"][-1]
        assert mem["created_kib"] > 0 and mem["running_procs"].get("sleep") == 2, mem
    assert doc["failures"] == []
    assert sorted(os.listdir(work)) == [], os.listdir(work)
    assert cgroups_of(p.pid) == []


def test_scaling_bad_arguments_are_one_line():
    for args, what in ((["--containers", "3,1"], "--containers"), (["--mounts", "a"], "--mounts"),
                       (["--scenarios", "list,bogus"], "bogus"), (["--running", "0"], "--running")):
        r = subprocess.run([sys.executable, "-m", "benchmarks.scaling", *args], cwd=REPO, capture_output=True,
                           text=True, timeout=60)
        assert r.returncode != 0 and what in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_python_then_crun_starts_python_then_becomes_crun(tmp_path):
    """benchmarks/python_then_crun, the bound runtime: its process first
    runs the interpreter as the front end starts it (-S, utf8 mode), then
    is crun (CRUN names it), with the same arguments and exit status."""
    fake = tmp_path / "crun"
    fake.write_text("#!/bin/sh\necho \"crun $*\"\nexit 3\n")
    fake.chmod(0o755)
    script = os.path.join(REPO, "benchmarks", "python_then_crun")
    with open(script) as f:
        assert f.readline().split()[1:] == ["-SXutf8"]
    r = subprocess.run([script, "--root", "/x", "state", "c1"], env={**os.environ, "CRUN": str(fake)},
                       capture_output=True, text=True, timeout=30)
    assert (r.returncode, r.stdout, r.stderr) == (3, "crun --root /x state c1\n", "")
