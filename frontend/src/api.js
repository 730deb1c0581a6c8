// HTTP API and event websocket client (the message formats are in docs/protocol.md).
//
// The page holds no secret in its HTML: the access token (token mode) is the HttpOnly cookie the printed URL
// set, and the per-server CSRF secret comes from GET /api/session (an answer no other origin can read). It is
// sent on every state-changing request (X-Nodegraph-CSRF) and on the websocket and beacon (?csrf=).

const SAFE = new Set(["GET", "HEAD", "OPTIONS"]);

export class Api {
  constructor(token) {
    this.token = token || "";  // only for callers that hold one; the editor's page relies on the cookie
    this.prefix = window.path_prefix || "";
    this.csrf = "";
    this.session();
  }
  url(path) {
    return `${this.prefix}/api${path}`;
  }
  // The CSRF secret, fetched once (and again after the server restarted with a new one).
  session(renew = false) {
    if (!this.sessionPromise || renew) {
      this.sessionPromise = fetch(this.url("/session"), { headers: this.headers(), cache: "no-store" })
        .then((res) => (res.ok ? res.json() : {}))
        .then((data) => (this.csrf = data.csrf || ""))
        .catch(() => { this.sessionPromise = null; return ""; });
    }
    return this.sessionPromise;
  }
  headers(extra = {}) {
    const out = this.token ? { ...extra, "X-Nodegraph-Token": this.token } : { ...extra };
    if (this.csrf) out["X-Nodegraph-CSRF"] = this.csrf;
    return out;
  }
  withCsrf(url) {
    return this.csrf ? `${url}${url.includes("?") ? "&" : "?"}csrf=${encodeURIComponent(this.csrf)}` : url;
  }
  async call(method, path, body, retried = false) {
    if (!SAFE.has(method)) await this.session();
    const init = { method, headers: this.headers(body !== undefined ? { "Content-Type": "application/json" } : {}) };
    if (body !== undefined) init.body = JSON.stringify(body);
    const res = await fetch(this.url(path), init);
    if (res.status === 403 && !SAFE.has(method) && !retried) {
      const before = this.csrf;
      if ((await this.session(true)) !== before) return this.call(method, path, body, true);
    }
    let data = {};
    try { data = await res.json(); } catch (e) { data = { error: `${res.status} ${res.statusText}` }; }
    if (!res.ok) {
      const err = new Error(data.error || `${res.status}`);
      err.status = res.status;
      err.problems = data.problems || [];
      throw err;
    }
    return data;
  }
  get(path) { return this.call("GET", path); }
  post(path, body = {}) { return this.call("POST", path, body); }
  put(path, body) { return this.call("PUT", path, body); }
  beacon(path, body) {
    // last-chance save when the tab closes (fetch may be cancelled by then)
    const blob = new Blob([JSON.stringify(body)], { type: "application/json" });
    return navigator.sendBeacon && navigator.sendBeacon(this.withCsrf(this.url(path)), blob);
  }
}

// Decode one websocket frame: text = JSON event; binary = u32 LE header length, JSON header, payload.
export function decodeFrame(data) {
  if (typeof data === "string") return JSON.parse(data);
  const view = new DataView(data);
  const n = view.getUint32(0, true);
  const header = JSON.parse(new TextDecoder().decode(new Uint8Array(data, 4, n)));
  header.data = data.slice(4 + n);
  return header;
}

export class EventSocket {
  constructor(api, onEvent, onState) {
    this.api = api;
    this.onEvent = onEvent;
    this.onState = onState || (() => {});
    this.delay = 250;
    this.closed = false;
    this.open();
  }
  async open() {
    await this.api.session(this.ws !== undefined);  // a reconnect may follow a server restart: a new secret
    if (this.closed) return;
    const proto = location.protocol === "https:" ? "wss" : "ws";
    const q = this.api.token ? `?token=${encodeURIComponent(this.api.token)}` : "";
    const ws = new WebSocket(this.api.withCsrf(`${proto}://${location.host}${this.api.url("/events")}${q}`));
    ws.binaryType = "arraybuffer";
    ws.onopen = () => { this.delay = 250; this.onState("open"); };
    ws.onmessage = (m) => {
      let event;
      try { event = decodeFrame(m.data); } catch (e) { console.warn("bad frame", e); return; }
      this.onEvent(event);
    };
    ws.onclose = () => {
      this.onState("closed");
      if (!this.closed) setTimeout(() => this.open(), (this.delay = Math.min(this.delay * 2, 4000)));
    };
    this.ws = ws;
  }
  close() {
    this.closed = true;
    if (this.ws) this.ws.close();
  }
}
