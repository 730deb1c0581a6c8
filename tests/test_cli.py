"""The command line as a user runs it: a real subprocess, real files, exit codes and outputs."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from test_engine import chain_graph, training_graph

TESTS = Path(__file__).resolve().parent


def nodegraph_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, NODEGRAPH_PLUGINS="toy_nodes",
               PYTHONPATH=os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]))
    return subprocess.run([sys.executable, "-m", "nodegraph", *args], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=300)


def test_run_writes_event_log_and_manifest_and_applies_overrides(tmp_path):
    path = training_graph(iterations=100).save(tmp_path / "toy.json")
    out = tmp_path / "out"
    result = nodegraph_cli("run", str(path), "--out", str(out), "--device", "cpu", "--set", "opt.iterations=7",
                           "--set", "target.value=[3, 3, 3]")
    assert result.returncode == 0, result.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "ok" and manifest["device"] == "cpu" and manifest["graph"] == "toy-training"
    assert manifest["versions"]["torch"].startswith("2.11")
    assert set(manifest["nodes"]) >= {"target", "opt", "reader"}
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    assert events[0]["type"] == "run_started" and events[-1]["type"] == "run_finished"
    last_progress = [e for e in events if e["type"] == "progress"][-1]
    assert last_progress["total"] == 7 and last_progress["iteration"] == 7
    assert json.loads(path.read_text())["nodes"][0]["params"].get("value") != [3, 3, 3]  # file untouched


def test_bad_graph_exits_2_with_one_line_per_problem_and_no_traceback(tmp_path):
    g = chain_graph()
    g.nodes["b"].params["factor"] = "big"
    g.add_node("Nope", "ghost")
    path = g.save(tmp_path / "bad.json")
    result = nodegraph_cli("run", str(path), "--out", str(tmp_path / "o"))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert any("b.factor" in l for l in lines) and any("ghost.type" in l for l in lines)
    assert "Traceback" not in result.stderr
    (tmp_path / "broken.json").write_text("{ not json")
    result = nodegraph_cli("validate", str(tmp_path))
    assert result.returncode == 2 and "not valid JSON" in result.stderr and "Traceback" not in result.stderr


def test_runtime_failure_names_the_node_and_exits_1(tmp_path):
    g = chain_graph()
    g.add_node("ToyMSE", "mse")
    g.add_node("ToyConst", "three", value=[1.0, 2.0, 3.0])
    g.connect("a", "out", "mse", "a")
    g.connect("three", "out", "mse", "b")
    path = g.save(tmp_path / "fails.json")
    result = nodegraph_cli("run", str(path), "--out", str(tmp_path / "o"), "--device", "cpu")
    assert result.returncode == 1
    assert "mse.b" in result.stderr and "Traceback" not in result.stderr
    assert json.loads((tmp_path / "o" / "manifest.json").read_text())["error"]["node"] == "mse"


def test_missing_graph_file_and_bad_set_syntax(tmp_path):
    result = nodegraph_cli("run", str(tmp_path / "nowhere.json"))
    assert result.returncode == 2 and "cannot read" in result.stderr
    result = nodegraph_cli("run", str(tmp_path / "x.json"), "--set", "novalue")
    assert result.returncode == 2 and "NODE_ID.PARAM=VALUE" in result.stderr


def test_nodes_catalogue_text_and_json():
    result = nodegraph_cli("nodes")
    assert result.returncode == 0 and "[training]" in result.stdout and "Optimize" in result.stdout
    catalogue = json.loads(nodegraph_cli("nodes", "--json").stdout)
    optimize = next(n for n in catalogue["nodes"] if n["name"] == "Optimize")
    assert {p["name"] for p in optimize["params"]} >= {"lr", "iterations", "optimizer"}
    assert any(t["name"] == "Meshes" for t in catalogue["types"])


def test_fmt_lays_out_and_canonicalises(tmp_path):
    path = tmp_path / "g.json"
    path.write_text(json.dumps(chain_graph().to_json()))
    assert nodegraph_cli("fmt", "--check", str(path)).returncode == 1
    assert nodegraph_cli("fmt", str(path)).returncode == 0
    doc = json.loads(path.read_text())
    assert all("pos" in n["ui"] for n in doc["nodes"])
    assert nodegraph_cli("fmt", "--check", str(path)).returncode == 0
