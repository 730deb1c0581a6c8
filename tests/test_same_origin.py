"""No other web page can drive the editor's server: not another site, not another port of this host, not a
file:// page, not a DNS-rebound name. A real server, real HTTP and websocket clients, and a real Chromium page
served from another loopback origin."""
from __future__ import annotations

import asyncio
import http.server
import json
import threading
from pathlib import Path

import pytest
import websockets

from editor_server import free_port, library_server


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    yield from library_server(tmp_path_factory, "origin")


def test_state_changing_requests_from_another_origin_are_refused(server):
    saved = server.graph.parent / "toy.json"
    before = saved.read_text()
    own = {"Origin": server.url}
    other_port = {"Origin": f"http://127.0.0.1:{free_port()}"}
    for headers in ({"Origin": "http://evil.example"}, other_port, {"Origin": "null"}):
        r = server.api("POST", "/save", json={"name": "toy"}, headers=headers)
        assert r.status_code == 403, (headers, r.status_code)
    assert saved.read_text() == before
    # the curl of the issue: text/plain, any origin -> refused before the body is read
    r = server.api("POST", "/save", content=b'{"name": "toy"}', headers={"Content-Type": "text/plain"})
    assert r.status_code == 415
    assert server.api("POST", "/save", json={"name": "toy"}, headers=own).status_code == 200  # the page itself
    assert server.api("GET", "/document", headers={"Origin": "http://evil.example"}).status_code == 200  # reads: CORS


def test_request_bodies_are_limited(server):
    from nodegraph.server.auth import MAX_BODY_BYTES

    big = b'{"doc": "' + b"x" * (MAX_BODY_BYTES + 1) + b'"}'
    r = server.api("PUT", "/document", content=big, headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and "16 MiB" in r.text
    assert len(server.api("GET", "/document").content) < 1_000_000  # the document was not replaced


def test_a_rebound_host_name_gets_no_answer(server):
    for host in ("evil.example", f"evil.example:{server.port}", "127.evil.example"):
        assert server.api("GET", "/document", headers={"Host": host}).status_code == 421
    assert server.api("GET", "/status", headers={"Host": f"localhost:{server.port}"}).status_code == 200


async def _ws_closed(server, origin: str | None) -> bool:
    url = f"ws://127.0.0.1:{server.port}/api/events"
    try:
        async with websockets.connect(url, origin=origin, open_timeout=10) as ws:
            await asyncio.wait_for(ws.recv(), 5)  # the hello
            return False
    except (websockets.exceptions.ConnectionClosed, websockets.exceptions.InvalidStatus, TimeoutError):
        return True


async def test_the_event_websocket_refuses_other_origins(server):
    assert await _ws_closed(server, "http://evil.example")
    assert await _ws_closed(server, f"http://127.0.0.1:{free_port()}")
    assert not await _ws_closed(server, server.url)
    assert not await _ws_closed(server, None)  # a program, not a page


EVIL = """<!doctype html><script>
window.results = {};
async function attack(editor) {
  for (const [name, init] of [["plain", {method: "POST", mode: "no-cors", headers: {"Content-Type": "text/plain"},
                                        body: JSON.stringify({name: "toy"})}],
                              ["json", {method: "POST", headers: {"Content-Type": "application/json"},
                                        body: JSON.stringify({name: "toy"})}]]) {
    try { const r = await fetch(editor + "/api/save", init); window.results[name] = r.type + ":" + r.status; }
    catch (e) { window.results[name] = "blocked"; }
  }
  await new Promise(done => {
    const ws = new WebSocket(editor.replace("http", "ws") + "/api/events");
    ws.onmessage = () => { window.results.ws = "message"; ws.close(); done(); };
    ws.onclose = () => { window.results.ws = window.results.ws || "closed"; done(); };
    setTimeout(done, 5000);
  });
}
</script>"""


@pytest.mark.browser
def test_a_chromium_page_on_another_port_cannot_drive_the_editor(server, tmp_path):
    from playwright.sync_api import sync_playwright

    (tmp_path / "evil.html").write_text(EVIL)
    handler = lambda *a, **kw: http.server.SimpleHTTPRequestHandler(*a, directory=str(tmp_path), **kw)  # noqa: E731
    evil = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=evil.serve_forever, daemon=True).start()
    saved = server.graph.parent / "toy.json"
    doc = json.loads(saved.read_text())
    doc["name"] = "changed by the editor"
    server.api("PUT", "/document", json={"doc": doc}).raise_for_status()  # what a hijacked Save would write
    before = saved.read_text()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
            page = browser.new_page()
            page.goto(f"http://127.0.0.1:{evil.server_address[1]}/evil.html")
            page.evaluate(f"attack({json.dumps(server.url)})")
            results = page.evaluate("window.results")
            browser.close()
    finally:
        evil.shutdown()
    assert saved.read_text() == before  # nothing saved
    assert results["ws"] == "closed"  # no events, no replayed previews
    assert results["json"] == "blocked"  # the preflight-free POST is refused; the JSON one never gets sent
    assert Path(saved).is_file()
