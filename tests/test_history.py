"""Run history: real runs of the example graphs (CPU-sized) are recorded, listed, compared, pruned, deleted."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import nodegraph
from nodegraph import history

ROOT = Path(__file__).resolve().parent.parent
COW = ROOT / "graphs" / "render_textured_cow.json"
TEAPOT = ROOT / "graphs" / "camera_pose_teapot.json"
TINY_FIT = {"settings.image_size": 24, "settings.faces_per_pixel": 8, "optimize.iterations": 6,
            "optimize.stop_below": None}


@pytest.fixture(autouse=True)
def data_home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("NODEGRAPH_HISTORY_MAX_MB", raising=False)
    return tmp_path / "xdg" / "nodegraph"


def test_a_python_run_is_recorded_with_its_graph_manifest_previews_and_files(data_home, tmp_path):
    s = nodegraph.load(COW)
    s.run(device="cpu", overrides={"raster.image_size": 32}, out_dir=tmp_path / "out")
    run = history.load_run(s.last_run_id)
    assert run["status"] == "ok" and run["source"] == "python" and run["graph"] == "render_textured_cow"
    assert run["overrides"] == {"raster.image_size": 32}
    raster = next(n for n in run["document"]["nodes"] if n["id"] == "raster")
    assert raster["params"]["image_size"] == 32  # the graph as it ran
    assert run["manifest"]["device"] == "cpu" and run["manifest"]["versions"]["torch"]
    assert set(run["manifest"]["nodes"]) >= {"cow", "raster", "render"}
    assert "render.images" in run["previews"]
    png = history.preview_path(s.last_run_id, "render.images")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert run["files"] == ["cow.png"]
    assert (history.run_path(s.last_run_id) / "files" / "cow.png").stat().st_size > 100
    assert history.run_path(s.last_run_id).parent == data_home / "runs"


def test_a_fit_records_per_term_curves_and_final_metrics_and_a_failure_its_error(one_torch_thread):
    s = nodegraph.load(TEAPOT)
    s.run(device="cpu", overrides=TINY_FIT, out_dir=None)
    run = history.load_run(s.last_run_id)
    curves = run["curves"]["optimize"]
    assert len(curves["total"]) == 6 and len(curves["silhouette"]) == 6
    assert run["metrics"]["silhouette.loss"] == pytest.approx(curves["silhouette"][-1])
    assert run["metrics"]["optimize.final_loss"] == pytest.approx(curves["total"][-1])

    with pytest.raises(nodegraph.errors.GraphError):
        s.run(device="cpu", overrides={"settings.image_size": -3})
    failed = history.load_run(s.last_run_id)
    assert failed["status"] == "error" and "image_size" in json.dumps(failed["error"])
    assert [r["id"] for r in history.list_runs("camera_pose_teapot")] == [failed["id"], run["id"]]
    assert history.list_runs("render_textured_cow") == []
    assert history.list_runs(str(TEAPOT))[0]["id"] == failed["id"]  # a graph file names its graph


def test_compare_shows_the_params_that_differ_both_curves_and_the_shared_previews(one_torch_thread):
    s = nodegraph.load(TEAPOT)
    s.run(device="cpu", overrides=TINY_FIT)
    a = s.last_run_id
    s.run(device="cpu", overrides={"optimize.lr": 0.1})
    b = s.last_run_id
    diff = history.compare(a, b)
    assert diff["params"] == {"optimize.lr": [0.05, 0.1]}
    assert len(diff["curves"]["a"]["optimize"]["total"]) == 6 == len(diff["curves"]["b"]["optimize"]["total"])
    assert diff["curves"]["a"]["optimize"]["total"][-1] != diff["curves"]["b"]["optimize"]["total"][-1]
    assert "final_render.images" in diff["previews"]
    assert set(diff["metrics"]["silhouette.loss"]) and None not in diff["metrics"]["silhouette.loss"]


def test_the_cap_prunes_the_oldest_runs_first(monkeypatch, tmp_path):
    s = nodegraph.load(COW)
    ids = []
    for size in (32, 33, 34, 35):
        s.run(device="cpu", overrides={"raster.image_size": size}, out_dir=tmp_path / "out")
        ids.append(s.last_run_id)
    sizes = {r["id"]: r["bytes"] for r in history.list_runs()}
    assert set(sizes) == set(ids)
    cap = sizes[ids[-1]] + sizes[ids[-2]] + sizes[ids[-3]] // 2  # room for the newest two and a half
    monkeypatch.setenv("NODEGRAPH_HISTORY_MAX_MB", str(cap / 2**20))
    s.run(device="cpu", overrides={"raster.image_size": 36}, out_dir=tmp_path / "out")
    left = [r["id"] for r in history.list_runs()]
    assert left == [s.last_run_id, ids[-1]]  # the three oldest went, oldest first; the new one stays
    assert history.total_bytes() <= cap


def test_the_cli_records_lists_shows_and_deletes_runs(tmp_path, data_home):
    env = {"XDG_DATA_HOME": str(data_home.parent), "PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin",
           "OMP_NUM_THREADS": "2"}
    cli = [sys.executable, "-m", "nodegraph"]
    done = subprocess.run([*cli, "run", str(COW), "--device", "cpu", "--set", "raster.image_size=32",
                           "--out", str(tmp_path / "out")], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    listed = subprocess.run([*cli, "runs", str(COW), "--json"], env=env, capture_output=True, text=True, timeout=60)
    runs = json.loads(listed.stdout)
    assert len(runs) == 1 and runs[0]["source"] == "cli" and runs[0]["overrides"] == {"raster.image_size": 32}
    run_id = runs[0]["id"]
    assert run_id in done.stdout
    shown = subprocess.run([*cli, "runs", "show", run_id], env=env, capture_output=True, text=True, timeout=60)
    assert json.loads(shown.stdout)["manifest"]["nodes"]["render"]["type"] == "MeshRenderer"
    text = subprocess.run([*cli, "runs"], env=env, capture_output=True, text=True, timeout=60)
    assert run_id in text.stdout and "render_textured_cow" in text.stdout and "1 run(s)" in text.stderr
    rm = subprocess.run([*cli, "runs", "rm", run_id], env=env, capture_output=True, text=True, timeout=60)
    assert rm.returncode == 0 and history.list_runs() == []
    missing = subprocess.run([*cli, "runs", "show", run_id], env=env, capture_output=True, text=True, timeout=60)
    assert missing.returncode == 1 and "no run" in missing.stderr
