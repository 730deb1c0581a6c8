"""Sweeps on real Ray, loopback only: a local cluster from the CLI, then a head and a worker started as separate
processes (``ray start``), shared by the other tests (one cluster start-up for them all).

The local clusters (``nodegraph sweep`` with no address) bind 127.0.0.1 only. For the head and worker, Ray
itself replaces ``--node-ip-address 127.0.0.1`` with the machine's own address (a multi-node cluster cannot be
loopback-only in Ray), so that cluster uses Ray's token authentication with a token made here. Every Ray
process a test starts is ended by the test, by pid (the processes whose command line names this cluster's
temporary folder, and their children), never with a machine-wide ``ray stop``.
"""
from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

# Ray's own token authentication, with a token made for these tests, for every Ray process they start and
# for this driver; Ray reads it when it is imported.
os.environ.update({"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)})
ray = pytest.importorskip("ray")

from nodegraph import history, sweep as sweeps  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TEAPOT = ROOT / "graphs" / "camera_pose_teapot.json"
RAY = Path(sys.executable).with_name("ray")
TINY = {"settings.image_size": 24, "settings.faces_per_pixel": 8, "optimize.iterations": 4,
        "optimize.stop_below": None}


def _env(tmp: Path) -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT), "XDG_DATA_HOME": str(tmp), "RAY_USAGE_STATS_ENABLED": "0",
            "OMP_NUM_THREADS": "1"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _processes() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, command line) of every process."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if fields[0] != "Z":  # a zombie has ended already
                    found[int(entry.name)] = (int(fields[1]), cmdline)
            except (OSError, IndexError, ValueError):
                pass
    return found


def _gone_within(before: set[int], seconds: float) -> bool:
    """Whether every raylet (and its descendants) not in ``before`` has exited within ``seconds``: Ray's
    processes finish shutting down a moment after the command that stopped them (longer on a busy machine)."""
    deadline = time.monotonic() + seconds
    while set(_pids_naming("raylet")) - before:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.25)
    return True


def _pids_naming(marker: str) -> set[int]:
    """The processes whose command line names ``marker``, and their descendants (Ray renames its agents'
    command lines, ``ray::DashboardAgent``, so they are found through their parents)."""
    procs = _processes()
    pids = {pid for pid, (_, cmd) in procs.items() if marker in cmd and pid != os.getpid()}
    grew = True
    while grew:
        more = {pid for pid, (parent, _) in procs.items() if parent in pids} - pids
        pids |= more
        grew = bool(more)
    return pids


def _end(markers: list[str]) -> None:
    """End the processes of the cluster we started, by pid: politely, then for good."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        pids = {p for m in markers for p in _pids_naming(m)}
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 5
        while pids and time.monotonic() < deadline:
            pids &= set(_processes())
            time.sleep(0.1)


def test_the_cli_sweep_starts_a_local_cluster_and_writes_a_sorted_table(tmp_path):
    """4 trials (2 lr x 2 sizes) on a local cluster the command starts and stops."""
    env = _env(tmp_path)
    before = set(_pids_naming("raylet"))
    done = subprocess.run(
        [sys.executable, "-m", "nodegraph", "sweep", str(TEAPOT), "--device", "cpu", "--metric", "silhouette.loss",
         "--grid", "optimize.lr=0.05,0.1", "--grid", "settings.image_size=24,32",
         *[a for k, v in TINY.items() if k != "settings.image_size" for a in ("--grid", f"{k}={json.dumps(v)}")],
         "--max-concurrent", "2"], env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    folder = next((tmp_path / "nodegraph" / "sweeps").iterdir())
    table = json.loads((folder / "results.json").read_text())
    rows = table["rows"]
    assert len(rows) == 4 and all(r["status"] == "ok" for r in rows)
    values = [r["metric"] for r in rows]
    assert values == sorted(values) and table["best"]["trial"] == rows[0]["trial"]
    assert sorted(tuple(sorted(r["overrides"].items())) for r in rows) == sorted(
        tuple(sorted({**TINY, "optimize.lr": lr, "settings.image_size": size}.items()))
        for lr in (0.05, 0.1) for size in (24, 32))
    csv_lines = (folder / "results.csv").read_text().splitlines()
    assert len(csv_lines) == 5 and csv_lines[0].startswith("trial,")
    assert [int(line.split(",")[0]) for line in csv_lines[1:]] == [r["trial"] for r in rows]
    recorded = {r["id"]: r for r in history.list_runs(root=tmp_path / "nodegraph" / "runs")}
    assert {r["run_id"] for r in rows} == set(recorded)
    assert all(recorded[r["run_id"]]["source"] == "sweep" and recorded[r["run_id"]]["metrics"]["silhouette.loss"]
               == pytest.approx(r["metric"]) for r in rows)
    assert (folder / "best" / "run.json").is_file() and (folder / "best" / "previews").is_dir()
    assert json.loads((folder / "best" / "run.json").read_text())["id"] == rows[0]["run_id"]
    assert _gone_within(before, 20.0)  # the local cluster went with the command


def test_ctrl_c_cancels_every_trial_of_a_cli_sweep(tmp_path):
    env = _env(tmp_path)
    before = _pids_naming("raylet")
    long = {**TINY, "optimize.iterations": 100000}
    cmd = [sys.executable, "-m", "nodegraph", "sweep", str(TEAPOT), "--device", "cpu", "--metric", "silhouette.loss",
           "--grid", "optimize.lr=0.01,0.02,0.03",
           *[a for k, v in long.items() for a in ("--grid", f"{k}={json.dumps(v)}")]]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not any("ray::run_trial" in cmd for _, cmd in _processes().values()):
            assert time.monotonic() < deadline and proc.poll() is None, "no trial started"
            time.sleep(0.2)
        time.sleep(1.0)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err[-2000:]
    assert "cancelling every trial" in err
    folder = next((tmp_path / "nodegraph" / "sweeps").iterdir())
    table = json.loads((folder / "results.json").read_text())
    assert table["status"] == "cancelled" and [r["status"] for r in table["rows"]] == ["cancelled"] * 3
    assert _gone_within(before, 20.0)  # the cluster went with the command


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A head (1 CPU) and a worker (1 CPU and a resource "second"), separate processes on loopback."""
    tmp = tmp_path_factory.mktemp("ray")
    env = _env(tmp)
    port = _free_port()
    temp_dir = tempfile.mkdtemp(prefix="ngray", dir="/tmp")  # short: Ray's socket paths live below it
    markers = [temp_dir]
    started = time.perf_counter()
    try:
        subprocess.run([str(RAY), "start", "--head", f"--port={port}", "--node-ip-address=127.0.0.1",
                        "--num-cpus=1", "--num-gpus=0", "--include-dashboard=false", "--disable-usage-stats",
                        f"--temp-dir={temp_dir}"],
                       env=env, check=True, capture_output=True, timeout=90)
        subprocess.run([str(RAY), "start", f"--address=127.0.0.1:{port}", "--node-ip-address=127.0.0.1",
                        "--num-cpus=1", "--num-gpus=0", '--resources={"second": 1}', "--disable-usage-stats"],
                       env=env, check=True, capture_output=True, timeout=90)
        sweeps.connect(f"127.0.0.1:{port}")
        deadline = time.monotonic() + 30
        while len([n for n in ray.nodes() if n["Alive"]]) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        print(f"two-node cluster up in {time.perf_counter() - started:.1f} s")
        yield {"address": f"127.0.0.1:{port}", "tmp": tmp}
    finally:
        if ray.is_initialized():
            ray.shutdown()
        _end(markers)
    assert not any(_pids_naming(m) for m in markers)


def test_trials_run_on_both_nodes_of_a_head_and_worker_cluster(cluster, tmp_path):
    nodes = {n["NodeID"]: n for n in ray.nodes() if n["Alive"]}
    worker = [i for i, n in nodes.items() if n["Resources"].get("second")]
    assert len(nodes) == 2 and len(worker) == 1
    trials = sweeps.variants({"optimize.lr": [0.05, 0.08, 0.1, 0.12]})
    result = sweeps.run_sweep(TEAPOT, [{**TINY, **t} for t in trials], metric="silhouette.loss",
                              address=cluster["address"], device="cpu", history_root=tmp_path / "runs")
    rows = result.sorted_rows()
    assert [r["status"] for r in rows] == ["ok"] * 4
    assert {r["node_id"] for r in rows} == set(nodes)  # trials on the head and on the worker
    assert [r["metric"] for r in rows] == sorted(r["metric"] for r in rows)
    assert len(history.list_runs(root=tmp_path / "runs")) == 4


def test_a_failing_trial_is_reported_while_the_others_finish(cluster, tmp_path):
    trials = [{**TINY, "optimize.lr": 0.05}, {**TINY, "settings.image_size": "huge"}, {**TINY, "optimize.lr": 0.1}]
    seen = []
    result = sweeps.run_sweep(TEAPOT, trials, metric="silhouette.loss", address=cluster["address"], device="cpu",
                              history_root=tmp_path / "runs", on_row=seen.append)
    by_trial = {r["trial"]: r for r in result.rows}
    assert by_trial[1]["status"] == "error" and "settings.image_size" in by_trial[1]["error"]
    assert by_trial[0]["status"] == by_trial[2]["status"] == "ok"
    assert result.sorted_rows()[-1]["trial"] == 1 and len(seen) == 3
    failed = history.load_run(by_trial[1]["run_id"], root=tmp_path / "runs")
    assert failed["status"] == "error" and failed["source"] == "sweep"


def test_cancel_stops_every_trial(cluster, tmp_path):
    long = {**TINY, "optimize.iterations": 100000}
    trials = [{**long, "optimize.lr": lr} for lr in (0.01, 0.02, 0.03, 0.04)]
    sweep = sweeps.new_sweep("camera_pose_teapot", trials, "silhouette.loss")
    thread = threading.Thread(target=sweeps.run_sweep, args=(TEAPOT, trials),
                              kwargs=dict(metric="silhouette.loss", address=cluster["address"], device="cpu",
                                          history_root=tmp_path / "runs", sweep=sweep))
    thread.start()
    deadline = time.monotonic() + 30
    while ray.available_resources().get("CPU", 0) > 0 and time.monotonic() < deadline:
        time.sleep(0.2)  # until both nodes' CPUs are taken by running trials
    time.sleep(1.0)
    cancelled_at = time.monotonic()
    sweep.cancel()
    thread.join(timeout=sweeps.CANCEL_GRACE_S + 20)
    assert not thread.is_alive()
    assert time.monotonic() - cancelled_at < sweeps.CANCEL_GRACE_S + 15
    assert sweep.status == "cancelled" and len(sweep.rows) == 4
    assert {r["status"] for r in sweep.rows} == {"cancelled"}
    deadline = time.monotonic() + 15
    while ray.available_resources().get("CPU", 0) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert ray.available_resources().get("CPU", 0) == 2  # nothing is left running on either node
