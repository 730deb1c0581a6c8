"""No other web page can drive the editor's server: not another site, not another port of this host, not a
file:// page, not a DNS-rebound name. A real server, real HTTP and websocket clients, and a real Chromium page
served from another loopback origin."""
from __future__ import annotations

import asyncio
import http.server
import json
import threading
import time

import httpx
import pytest
import websockets

from editor_server import EditorServer, free_port, library_server, make_library


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
    csrf = {"X-Nodegraph-CSRF": server.api("GET", "/session").json()["csrf"]}
    assert server.api("POST", "/save", json={"name": "toy"}, headers=own).status_code == 403  # no secret
    assert server.api("POST", "/save", json={"name": "toy"}, headers={**own, **csrf}).status_code == 200  # the page
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


async def _ws_closed(server, origin: str | None, query: str = "") -> bool:
    url = f"ws://127.0.0.1:{server.port}/api/events{query}"
    try:
        async with websockets.connect(url, origin=origin, open_timeout=10) as ws:
            await asyncio.wait_for(ws.recv(), 5)  # the hello
            return False
    except (websockets.exceptions.ConnectionClosed, websockets.exceptions.InvalidStatus, TimeoutError):
        return True


async def test_the_event_websocket_refuses_other_origins(server):
    csrf = server.api("GET", "/session").json()["csrf"]
    assert await _ws_closed(server, "http://evil.example", f"?csrf={csrf}")
    assert await _ws_closed(server, f"http://127.0.0.1:{free_port()}", f"?csrf={csrf}")
    assert await _ws_closed(server, server.url)  # a page of its own origin without the secret
    assert await _ws_closed(server, server.url, "?csrf=wrong")
    assert not await _ws_closed(server, server.url, f"?csrf={csrf}")
    assert not await _ws_closed(server, None)  # a program, not a page


def test_a_browser_request_needs_the_csrf_secret_even_from_its_own_origin(server):
    session = server.api("GET", "/session")
    csrf = session.json()["csrf"]
    assert len(csrf) >= 32 and session.headers["cache-control"] == "no-store"
    own = {"Origin": server.url}
    assert server.api("POST", "/validate", json={"doc": {}}, headers=own).status_code == 403
    assert server.api("POST", "/validate", json={"doc": {}},
                      headers={**own, "X-Nodegraph-CSRF": "x" * len(csrf)}).status_code == 403
    # a cookie or Sec-Fetch-* header marks a browser even without an Origin
    assert server.api("POST", "/validate", json={"doc": {}}, headers={"Cookie": "a=b"}).status_code == 403
    assert server.api("POST", "/validate", json={"doc": {}},
                      headers={"Sec-Fetch-Site": "same-site"}).status_code == 403
    assert server.api("POST", "/validate", json={"doc": {}},
                      headers={**own, "X-Nodegraph-CSRF": csrf}).status_code == 200
    assert server.api("POST", f"/validate?csrf={csrf}", json={"doc": {}}, headers=own).status_code == 200
    assert server.api("POST", "/validate", json={"doc": {}}).status_code == 200  # a program
    # another site's fetch of the secret itself is refused before it is answered
    assert server.api("GET", "/session", headers={"Sec-Fetch-Site": "same-site"}).status_code == 403
    assert server.api("GET", "/session", headers={"Sec-Fetch-Site": "cross-site"}).status_code == 403


def test_the_page_html_holds_no_secret(tmp_path):
    srv = EditorServer(tmp_path, make_library(tmp_path) / "toy.json", token="tok-" + "s3cret" * 4).start()
    try:
        page = httpx.get(f"{srv.url}/?token={srv.token}", timeout=30)
        assert page.status_code == 200 and "nodegraph_token" in page.headers["set-cookie"]
        csrf = srv.api("GET", "/session").json()["csrf"]
        assert srv.token not in page.text and csrf not in page.text
        assert "ng-root" in page.text  # the editor element is there
    finally:
        srv.stop()


EVIL = """<!doctype html><script>
window.results = {};
async function attack(editor) {
  const tries = [["plain", {method: "POST", mode: "no-cors", headers: {"Content-Type": "text/plain"},
                            body: JSON.stringify({name: "toy"})}],
                 ["json", {method: "POST", headers: {"Content-Type": "application/json"},
                           body: JSON.stringify({name: "toy"})}],
                 ["beacon", null]];
  for (const [name, init] of tries) {
    if (!init) { window.results[name] = String(navigator.sendBeacon(editor + "/api/save",
                   new Blob([JSON.stringify({name: "toy"})], {type: "text/plain"}))); continue; }
    try { const r = await fetch(editor + "/api/save", {...init, credentials: "include"});
          window.results[name] = r.type + ":" + r.status; }
    catch (e) { window.results[name] = "blocked"; }
  }
  try { const r = await fetch(editor + "/api/session", {credentials: "include"});
        window.results.session = "read:" + (await r.text()); }
  catch (e) { window.results.session = "blocked"; }
  await new Promise(done => {
    const ws = new WebSocket(editor.replace("http", "ws") + "/api/events");
    ws.onmessage = () => { window.results.ws = "message"; ws.close(); done(); };
    ws.onclose = () => { window.results.ws = window.results.ws || "closed"; done(); };
    setTimeout(done, 5000);
  });
}
</script>"""


@pytest.fixture(scope="module")
def token_server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("origin-token")
    srv = EditorServer(tmp, make_library(tmp) / "toy.json", token="tok-" + "x" * 20).start()
    yield srv
    srv.stop()


@pytest.mark.browser
@pytest.mark.parametrize("mode", ["local", "token"])
def test_a_chromium_page_on_another_origin_or_port_cannot_drive_the_editor(mode, server, token_server, tmp_path):
    """In both modes a page on another port of 127.0.0.1 (same site: in token mode it is sent the SameSite
    cookie) and a page on another name (evil.example, resolved to 127.0.0.1 by Chromium) change nothing and
    read no event, while the editor's own page in the same browser still saves and stays live."""
    from playwright.sync_api import sync_playwright

    srv = server if mode == "local" else token_server
    (tmp_path / "evil.html").write_text(EVIL)
    handler = lambda *a, **kw: http.server.SimpleHTTPRequestHandler(*a, directory=str(tmp_path), **kw)  # noqa: E731
    evil = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=evil.serve_forever, daemon=True).start()
    saved = srv.graph.parent / "toy.json"
    doc = json.loads(saved.read_text())
    doc["name"] = "changed by the editor"
    srv.api("PUT", "/document", json={"doc": doc}).raise_for_status()  # what a hijacked Save would write
    before = saved.read_text()
    attackers = {"other port": f"http://127.0.0.1:{evil.server_address[1]}/evil.html",
                 "other origin": f"http://evil.example:{evil.server_address[1]}/evil.html"}
    results = {}
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=[
                "--no-sandbox", "--host-resolver-rules=MAP evil.example 127.0.0.1"])
            context = browser.new_context()
            editor = context.new_page()
            editor.goto(srv.url + (f"/?token={srv.token}" if srv.token else "/"))  # sets the cookie
            editor.get_by_text("● live").wait_for(timeout=30000)
            assert srv.token is None or srv.token not in editor.content()
            for who, url in attackers.items():
                page = context.new_page()
                page.goto(url)
                page.evaluate(f"attack({json.dumps(srv.url)})")
                results[who] = page.evaluate("window.results")
                page.close()
            assert saved.read_text() == before  # nothing saved by either page
            editor.keyboard.press("Control+s")  # the editor's own page still saves (with the CSRF secret)
            deadline = time.monotonic() + 15
            while saved.read_text() == before and time.monotonic() < deadline:
                time.sleep(0.1)
            browser.close()
    finally:
        evil.shutdown()
    print(mode, results)
    for who, got in results.items():
        assert got["ws"] == "closed", (who, got)  # no events, no replayed previews
        assert got["json"] == "blocked", (who, got)  # its preflight gets no CORS answer: never sent
        assert got["session"] == "blocked", (who, got)  # the CSRF secret cannot be read
    assert json.loads(saved.read_text())["name"] == "changed by the editor"  # saved by the editor itself
