"""Runs execute in a worker process: the server answers while a node computes, Stop ends a stuck node, a dead
worker is reported as an error naming its node, and the worker's one executor keeps re-runs incremental."""
from __future__ import annotations

import asyncio
import json
import os
import signal
import statistics
import time

import pytest
import websockets

from editor_server import ROOT, EditorServer, library_server
from nodegraph.server import protocol
from nodegraph.server.worker import STOP_GRACE_S


def toy_doc(name: str, nodes: list[tuple], links: list[tuple]) -> dict:
    return {"format": "nodegraph/1", "name": name, "description": "", "seed": 0,
            "nodes": [{"id": i, "type": t, "params": p, "ui": {"pos": [40 + 260 * k, 40]}}
                      for k, (i, t, p) in enumerate(nodes)],
            "links": [{"from": list(a), "to": list(b)} for a, b in links]}


BRANCHES = toy_doc("two branches", [("a", "ToyConst", {}), ("b", "ToyScale", {"factor": 2.0}),
                                    ("c", "ToyConst", {"value": [4.0]}), ("d", "ToyScale", {"factor": 3.0})],
                   [(("a", "out"), ("b", "x")), (("c", "out"), ("d", "x"))])


def waiting(seconds: float, then: tuple | None = None) -> dict:
    nodes = [("a", "ToyConst", {}), ("wait", "ToyWait", {"seconds": seconds})]
    links = [(("a", "out"), ("wait", "x"))]
    if then:
        nodes.append(("crash", "ToyCrash", {"how": then[1]}))
        links.append((("wait", "out"), ("crash", "x")))
    return toy_doc("waiting", nodes, links)


def cow_doc(image_size: int) -> dict:
    """The textured cow, rasterized by PyTorch3D's naive C++ with 4 faces per pixel: ~9 s at 512 px on one CPU
    thread (the compiled CPU rasterizer, the default on a CPU, would finish before the test looks)."""
    doc = json.loads((ROOT / "graphs" / "render_textured_cow.json").read_text())
    for node in doc["nodes"]:
        if node["id"] == "raster":
            node["params"].update(image_size=image_size, bin_size=0, faces_per_pixel=4, blur_radius=1e-4)
        if node["id"] == "rasterizer":
            node["params"]["backend"] = "pytorch3d"
    return doc


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    yield from library_server(tmp_path_factory, "worker")


class Watch:
    """A websocket client that records every event of the runs it sees."""

    def __init__(self, srv: EditorServer) -> None:
        self.srv, self.events = srv, []

    async def __aenter__(self) -> "Watch":
        self.ws = await websockets.connect(f"ws://127.0.0.1:{self.srv.port}/api/events", max_size=2**24)
        assert protocol.decode(await asyncio.wait_for(self.ws.recv(), 10))["type"] == "hello"
        while True:  # the replay of earlier previews
            try:
                await asyncio.wait_for(self.ws.recv(), 0.3)
            except asyncio.TimeoutError:
                return self

    async def __aexit__(self, *exc) -> None:
        await self.ws.close()

    async def until(self, pred, limit: float = 60.0) -> dict:
        async with asyncio.timeout(limit):
            while True:
                event = protocol.decode(await self.ws.recv())
                self.events.append(event)
                if pred(event):
                    return event

    async def run(self, doc: dict, limit: float = 90.0, **body) -> list[dict]:
        """Replace the document, run it, and return its events up to run_finished."""
        start = len(self.events)
        r = await asyncio.to_thread(self.srv.api, "POST", "/run", json={"doc": doc, **body})
        assert r.status_code == 200, r.text
        await self.until(lambda e: e["type"] == "run_finished", limit)
        return self.events[start:]


def finished(events: list[dict]) -> dict:
    return {e["node"]: e["cached"] for e in events if e["type"] == "node_finished"}


async def test_the_worker_keeps_its_cache_between_runs(server):
    async with Watch(server) as w:
        first = await w.run(BRANCHES)
        assert first[-1]["status"] == "ok" and not any(finished(first).values())
        again = await w.run(BRANCHES)
        assert finished(again) == {"a": True, "b": True, "c": True, "d": True}
        edited = json.loads(json.dumps(BRANCHES))
        edited["nodes"][3]["params"]["factor"] = 5.0
        third = await w.run(edited)
        assert finished(third) == {"a": True, "b": True, "c": True, "d": False}
        d = next(e for e in third if e["type"] == "node_finished" and e["node"] == "d")
        assert d["outputs"]["out"]["max"] == 20.0


async def test_stop_between_steps_keeps_the_worker_and_its_cache(server):
    async with Watch(server) as w:
        await w.run(waiting(0.0))  # "a" computed by this worker
        pid = server.api("GET", "/status").json()["worker_pid"]
        r = await asyncio.to_thread(server.api, "POST", "/run", json={"doc": waiting(30.0)})
        assert r.status_code == 200
        await w.until(lambda e: e["type"] == "node_started" and e["node"] == "wait")
        assert (await asyncio.to_thread(server.api, "POST", "/run", json={})).status_code == 409
        refused = await asyncio.to_thread(server.api, "POST", "/run", json={"doc": BRANCHES})
        assert refused.status_code == 409  # and the refused run left the working document alone:
        assert server.api("GET", "/document").json()["doc"]["name"] == "waiting"
        t0 = time.monotonic()
        assert (await asyncio.to_thread(server.api, "POST", "/stop")).json() == {"stopping": True}
        end = await w.until(lambda e: e["type"] == "run_finished", 10)
        assert end["status"] == "cancelled" and not end.get("cache_dropped")
        assert time.monotonic() - t0 < STOP_GRACE_S
        status = server.api("GET", "/status").json()
        assert status["running"] is False and status["worker_pid"] == pid
        assert status["nodes"]["wait"]["state"] == "idle" and status["nodes"]["a"]["state"] == "cached"
        after = await w.run(waiting(0.05))
        assert finished(after) == {"a": True, "wait": False} and after[-1]["status"] == "ok"


async def test_a_killed_worker_is_an_error_naming_the_node_and_the_next_run_starts_a_fresh_one(server):
    async with Watch(server) as w:
        r = await asyncio.to_thread(server.api, "POST", "/run", json={"doc": waiting(60.0)})
        assert r.status_code == 200
        await w.until(lambda e: e["type"] == "node_started" and e["node"] == "wait")
        pid = server.api("GET", "/status").json()["worker_pid"]
        os.kill(pid, signal.SIGKILL)
        end = await w.until(lambda e: e["type"] == "run_finished", 10)
        error = next(e for e in w.events if e["type"] == "node_error")
        assert error["node"] == "wait" and "SIGKILL" in error["message"] and "wait" in error["message"]
        assert end["status"] == "error" and end["error"]["node"] == "wait" and end["cache_dropped"] is True
        status = server.api("GET", "/status").json()
        assert status["running"] is False and status["nodes"]["wait"]["state"] == "error"
        assert server.api("GET", "/document").json()["doc"]["name"] == "waiting"  # the document survives
        again = await w.run(waiting(0.05))
        assert again[-1]["status"] == "ok" and finished(again) == {"a": False, "wait": False}  # a fresh worker
        assert server.api("GET", "/status").json()["worker_pid"] not in (None, pid)


@pytest.mark.parametrize("how, signal_name", [(0, "SIGABRT"), (1, "SIGSEGV")])
async def test_a_node_that_crashes_its_process_is_reported_by_name(server, how, signal_name):
    async with Watch(server) as w:
        events = await w.run(waiting(0.0, then=("crash", how)))
        error = next(e for e in events if e["type"] == "node_error")
        assert error["node"] == "crash" and signal_name in error["message"]
        assert events[-1]["status"] == "error" and events[-1]["error"]["node"] == "crash"
        assert set(finished(events)) == {"a", "wait"}  # what ran before the crash was reported
        assert (await w.run(BRANCHES))[-1]["status"] == "ok"


async def test_the_server_answers_during_a_long_cpp_node_and_stop_ends_it(server):
    """PyTorch3D's CPU rasterizer holds the GIL for its whole call: in the server process it stalled every
    request; in the worker process the server keeps answering, and Stop ends the node after the grace period."""
    async with Watch(server) as w:
        r = await asyncio.to_thread(server.api, "POST", "/run", json={"doc": cow_doc(512)})
        assert r.status_code == 200 and r.json()["out_dir"].endswith(os.path.join("nodegraph", "out", "render_textured_cow"))
        await w.until(lambda e: e["type"] == "node_started" and e["node"] == "render", 60)
        await asyncio.sleep(0.3)  # inside the rasterizer by now

        def poll(seconds: float) -> list[float]:
            import httpx
            times = []
            with httpx.Client(base_url=server.url) as client:
                deadline = time.monotonic() + seconds
                while time.monotonic() < deadline:
                    t = time.perf_counter()
                    assert client.get("/api/status", timeout=10).json()["running"] is True
                    times.append(time.perf_counter() - t)
                    time.sleep(0.02)
            return times

        poller = asyncio.create_task(asyncio.to_thread(poll, 2.0))
        pings = []
        while not poller.done():
            t = time.perf_counter()
            await asyncio.wait_for(await w.ws.ping(), 5)
            pings.append(time.perf_counter() - t)
            await asyncio.sleep(0.1)
        times = sorted(await poller)
        p99 = times[int(0.99 * (len(times) - 1))]
        assert len(times) > 40 and p99 < 0.2 and max(pings) < 0.5, (statistics.median(times), p99, max(pings))
        assert not any(e["type"] == "node_finished" and e["node"] == "render" for e in w.events)  # still inside

        t0 = time.monotonic()
        assert (await asyncio.to_thread(server.api, "POST", "/stop")).json() == {"stopping": True}
        end = await w.until(lambda e: e["type"] == "run_finished", STOP_GRACE_S + 10)
        assert end["status"] == "cancelled" and end["cache_dropped"] is True
        assert STOP_GRACE_S - 0.5 < time.monotonic() - t0 < STOP_GRACE_S + 3
        status = server.api("GET", "/status").json()
        assert status["running"] is False and status["last"]["cache_dropped"] is True
        again = await w.run(cow_doc(32))
        assert again[-1]["status"] == "ok" and finished(again)["cow"] is False  # a fresh worker, an empty cache
