"""The event websocket, as any client sees it: connect with `websockets`, start a run over HTTP, read events."""
from __future__ import annotations

import asyncio
import json
import struct

import pytest
import websockets

from editor_server import EditorServer, library_server
from nodegraph.server import protocol


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    yield from library_server(tmp_path_factory, "protocol")


async def collect_run(srv: EditorServer, body: dict, limit: float = 90.0) -> list[dict]:
    """Connect, start a run over HTTP, and read every event until run_finished."""
    events: list[dict] = []
    async with websockets.connect(f"ws://127.0.0.1:{srv.port}/api/events", max_size=2**24) as ws:
        hello = protocol.decode(await asyncio.wait_for(ws.recv(), 10))
        assert hello["type"] == "hello" and hello["running"] is False
        while True:  # drain the replay of earlier previews, if any
            try:
                protocol.decode(await asyncio.wait_for(ws.recv(), 0.3))
            except asyncio.TimeoutError:
                break
        r = await asyncio.to_thread(srv.api, "POST", "/run", json=body)
        assert r.status_code == 200, r.text
        async with asyncio.timeout(limit):
            while True:
                frame = await ws.recv()
                event = protocol.decode(frame)
                event["_binary"] = isinstance(frame, bytes)
                events.append(event)
                if event["type"] == "run_finished":
                    return events


async def test_training_run_streams_node_progress_plot_and_finish_events_in_order(server):
    server.api("POST", "/open", json={"collection": "library", "path": "toy.json"}).raise_for_status()
    events = await collect_run(server, {})
    types = [e["type"] for e in events]
    assert types[0] == "run_started" and types[-1] == "run_finished"
    assert events[-1]["status"] == "ok"
    assert events[0]["order"][-1] == "opt"
    started = types.index("node_started")
    finished = [i for i, e in enumerate(events) if e["type"] == "node_finished" and e["node"] == "opt"]
    assert started < finished[0]
    progress = [e for e in events if e["type"] == "progress"]
    assert progress and progress[-1]["iteration"] == progress[-1]["total"] == 150
    assert all(a["iteration"] <= b["iteration"] for a, b in zip(progress, progress[1:]))
    assert progress[-1]["loss"] < progress[0]["loss"]
    plots = [e for e in events if e["type"] == "preview" and e["kind"] == "plot"]
    assert plots and not any(p["_binary"] for p in plots)
    total = plots[-1]["series"]["total"]
    assert total[0][0] == 1 and total[-1][0] == 150 and len(total) <= protocol.MAX_PLOT_POINTS
    opt_done = events[finished[-1]]
    assert opt_done["outputs"]["final_loss"]["kind"] == "float"
    # the loop reports its own time in preview taps (the toy graph has a loss-plot only: no taps)
    assert progress[-1]["elapsed_s"] > 0 and progress[-1]["preview_s"] == 0.0
    kept = server.api("GET", "/status").json()["nodes"]["opt"]
    assert kept["state"] == "done" and kept["progress"]["iteration"] == 150  # a finished trainer keeps it


async def test_render_run_sends_png_previews_as_binary_frames_and_reuses_cache(server):
    doc = json.loads((server.graph.parent / "render_textured_cow.json").read_text())
    for node in doc["nodes"]:
        if node["id"] == "raster":
            node["params"]["image_size"] = 48
    info = server.api("POST", "/upload", json={"text": json.dumps(doc), "filename": "cow.json"}).json()
    assert info["problems"] == []
    events = await collect_run(server, {})
    assert events[-1]["status"] == "ok", events[-1]
    previews = [e for e in events if e["type"] == "preview" and e.get("kind") == "image"]
    assert previews, [e["type"] for e in events]
    shot = previews[-1]
    assert shot["_binary"] and shot["data"][:8] == b"\x89PNG\r\n\x1a\n"
    assert shot["bytes"] == len(shot["data"]) and (shot["width"], shot["height"]) == (48, 48)
    summary = next(e for e in events if e["type"] == "node_finished" and e["node"] == "render")["outputs"]["images"]
    assert summary["shape"] == [1, 48, 48, 4] and summary["dtype"] == "float32"

    doc["nodes"] = [n if n["id"] != "light" else {**n, "params": {"location": [0.0, 1.0, -3.0]}}
                    for n in doc["nodes"]]
    server.api("PUT", "/document", json={"doc": doc}).raise_for_status()
    again = await collect_run(server, {})
    finished = {e["node"]: e["cached"] for e in again if e["type"] == "node_finished"}
    assert finished["cow"] is True and finished["raster"] is True
    assert finished["light"] is False and finished["render"] is False


async def test_run_up_to_a_node_runs_only_what_it_needs(server):
    server.api("POST", "/open", json={"collection": "library", "path": "toy.json"}).raise_for_status()
    events = await collect_run(server, {"targets": ["scaled"]})
    assert events[0]["order"] == ["target", "scaled"]
    assert {e["node"] for e in events if e["type"] == "node_finished"} == {"target", "scaled"}


async def test_invalid_graph_is_refused_over_http_and_announced_on_the_socket(server):
    doc = json.loads(server.graph.read_text())
    doc["nodes"][1]["params"]["factor"] = "big"
    doc["links"] = doc["links"][1:]  # scaled.x is no longer connected
    server.api("PUT", "/document", json={"doc": doc}).raise_for_status()
    async with websockets.connect(f"ws://127.0.0.1:{server.port}/api/events") as ws:
        assert protocol.decode(await ws.recv())["type"] == "hello"
        r = await asyncio.to_thread(server.api, "POST", "/run", json={})
        assert r.status_code == 400
        where = {(p["node"], p["field"]) for p in r.json()["problems"]}
        assert ("scaled", "factor") in where and ("scaled", "x") in where
        async with asyncio.timeout(10):
            while (event := protocol.decode(await ws.recv()))["type"] != "problems":
                pass
        assert {(p["node"], p["field"]) for p in event["problems"]} == where


def test_binary_frame_layout_matches_the_documentation():
    frame = protocol.encode({"type": "preview", "node": "n", "port": "p", "kind": "image", "data": b"\x01\x02\x03",
                             "loss": float("nan")})
    (n,) = struct.unpack_from("<I", frame)
    header = json.loads(frame[4:4 + n])
    assert header == {"type": "preview", "node": "n", "port": "p", "kind": "image", "bytes": 3, "loss": None}
    assert frame[4 + n:] == b"\x01\x02\x03"
    text = protocol.encode({"type": "progress", "loss": float("inf"), "losses": {"a": 1.5}})
    assert json.loads(text) == {"type": "progress", "loss": None, "losses": {"a": 1.5}}
    assert protocol.thin(list(range(2000)))[-1] == [2000, 1999]
