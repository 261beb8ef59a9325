// polyfleet dashboard: plain JS, no build step, no external assets (it must work offline).
// Reads the REST API every few seconds and applies websocket pushes (events, fills, token state
// changes, opportunities) as they arrive. Every value from the API goes in with textContent.
"use strict";

const TOKEN_KEY = "polyfleet.apiToken";
const state = { tokens: new Map(), ticks: [], events: [], opps: [], ws: null, wsRetry: 1000 };

function apiToken() {
  const m = location.hash.match(/token=([^&]+)/);
  if (m) {
    sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(m[1]));
    history.replaceState(null, "", location.pathname);  // keep the token out of the address bar
  }
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

async function api(path, opts = {}) {
  const resp = await fetch(path, {
    ...opts,
    headers: { "Authorization": "Bearer " + apiToken(), "Content-Type": "application/json", ...(opts.headers || {}) },
  });
  if (resp.status === 401) { showLogin(); throw new Error("unauthorized"); }
  const body = await resp.json().catch(() => ({}));
  if (!resp.ok) throw new Error(typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail || body));
  return body;
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null) node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(c ?? ""));
  return node;
}

const fmt = (x, d = 2) => (x === null || x === undefined || x === "" || isNaN(x)) ? "" : Number(x).toFixed(d);
const short = (t) => !t ? "" : (t.length <= 14 ? t : t.slice(0, 6) + "…" + t.slice(-6));
const time = (ms) => ms ? new Date(Number(ms)).toLocaleTimeString() : "";
const signed = (x) => el("span", { class: x > 0 ? "pos" : x < 0 ? "neg" : "" }, fmt(x, 2));

function notice(text) {
  const n = document.getElementById("notice");
  n.textContent = text; n.hidden = !text;
  if (text) setTimeout(() => { if (n.textContent === text) n.hidden = true; }, 6000);
}

// A button that asks for a second click within 3 s before it acts. The tables are rebuilt on every
// update, so the armed state lives here, by test id, not in the button: a rebuild between the two
// clicks must not silently disarm the button the operator is about to confirm.
const armedUntil = new Map();
const ARM_MS = 3000;

function confirmButton(label, testid, action) {
  const b = el("button", { "data-testid": testid }, label);
  const isArmed = () => (armedUntil.get(testid) || 0) > Date.now();
  const showArmed = () => {
    b.textContent = "Confirm " + label.toLowerCase(); b.classList.add("confirm");
    setTimeout(() => { if (!isArmed() && !b.disabled) { b.textContent = label; b.classList.remove("confirm"); } },
      Math.max(0, (armedUntil.get(testid) || 0) - Date.now()) + 20);
  };
  if (isArmed()) showArmed();
  b.addEventListener("click", async () => {
    if (!isArmed()) { armedUntil.set(testid, Date.now() + ARM_MS); showArmed(); return; }
    armedUntil.delete(testid); b.disabled = true; b.textContent = "…";
    try { await action(); b.textContent = "sent"; } catch (e) { notice(e.message); b.textContent = label; b.disabled = false; }
    b.classList.remove("confirm");
  });
  return b;
}

// ---------------------------------------------------------------- rendering

function renderStats(s, workers, pnl) {
  const alive = workers.filter((w) => w.alive).length;
  const items = [
    ["workers alive", `${alive}/${workers.length}`], ["running", s.tokens.running], ["queued", s.tokens.queued],
    ["exiting", s.tokens.exiting], ["done", s.tokens.done], ["ticks/s", fmt(s.ticks_per_sec, 1)],
    ["signals", s.streams.signals], ["fills", s.streams.fills],
    ["PnL", pnl ? fmt(pnl.total_pnl, 2) : "…"], ["exposure", pnl ? fmt(pnl.exposure, 2) : "…"],
    ["pending $", pnl ? fmt(pnl.pending_notional, 2) : "…"],
  ];
  document.getElementById("stats").replaceChildren(
    ...items.map(([k, v]) => el("div", { "data-stat": k }, el("b", {}, String(v)), el("span", {}, k))));
  const hs = document.getElementById("halt-state");
  hs.textContent = s.halt; hs.className = "pill " + (s.halt === "off" ? "on" : s.halt === "halt" ? "off" : "warn");
}

function renderWorkers(workers) {
  document.querySelector("#workers tbody").replaceChildren(...workers.map((w) => {
    const pct = w.capacity ? Math.min(100, 100 * w.assigned / w.capacity) : 0;
    const drain = confirmButton(w.draining ? "Undrain" : "Drain", "drain-" + w.worker_id,
      () => api(`/api/workers/${encodeURIComponent(w.worker_id)}/drain`,
        { method: "POST", body: JSON.stringify({ undo: w.draining, reason: "dashboard" }) }));
    return el("tr", { "data-worker": w.worker_id },
      el("td", {}, w.worker_id), el("td", { class: w.alive ? "pos" : "neg" }, w.alive ? "yes" : "no"),
      el("td", { class: "num" }, String(w.assigned)),
      el("td", {}, el("div", { class: "bar" }, el("i", { style: `width:${pct}%` }))),
      el("td", { class: "num" }, String(w.capacity)), el("td", {}, w.draining ? "yes" : ""),
      el("td", {}, time(w.last_beat)), el("td", {}, drain));
  }));
}

// Shares matched but not settled yet (docs/orchestrator.md, Settlement): empty when every trade
// of the token is CONFIRMED (or voided), else the net shares with an hourglass and the detail.
function pendingCell(t) {
  if (!t.pending_trades) return el("td", { class: "num", "data-testid": "pending" }, "");
  const title = `${t.pending_trades} trade(s) not settled: buys ${fmt(t.pending_buy)}, sells ${fmt(t.pending_sell)}, ` +
    `$${fmt(t.pending_notional)}; confirmed position ${fmt(t.position_confirmed)}` +
    (t.failed_trades ? `; ${t.failed_trades} trade(s) failed and voided` : "");
  return el("td", { class: "num pending", "data-testid": "pending", title },
    `${t.pending > 0 ? "+" : ""}${fmt(t.pending, 2)} \u29D7`);
}

function renderTokens() {
  const order = { running: 0, exiting: 1, starting: 2, queued: 3, error: 4, rejected: 5, done: 6, cooldown: 7 };
  const rows = [...state.tokens.values()].sort((a, b) =>
    (order[a.state] ?? 9) - (order[b.state] ?? 9) || String(a.token_id).localeCompare(String(b.token_id)));
  document.querySelector("#tokens tbody").replaceChildren(...rows.slice(0, 300).map((t) => {
    const live = ["queued", "starting", "running", "exiting"].includes(t.state);
    const stop = live ? confirmButton("Stop", "stop-" + t.token_id, async () => {
      const r = await api(`/api/tokens/${encodeURIComponent(t.token_id)}/stop`,
        { method: "POST", body: JSON.stringify({ reason: "stopped from the dashboard" }) });
      notice(r.applied ? `stop applied: ${short(t.token_id)}` : `stop requested (not applied yet): ${short(t.token_id)}`);
    }) : "";
    return el("tr", { "data-token": t.token_id, "data-state": t.state },
      el("td", { title: t.token_id }, short(t.token_id)),
      el("td", { title: t.title || "" }, `${t.slug || ""} ${t.outcome || ""}`.trim().slice(0, 36),
        el("small", { class: "sys", title: "market system (Gamma version)" }, ` ${t.market_version || "v1"}`)),
      el("td", { class: "state-" + t.state }, t.state), el("td", {}, t.owner || ""),
      el("td", { class: "num", title: `confirmed ${fmt(t.position_confirmed)}` }, fmt(t.position, 2)), pendingCell(t),
      el("td", { class: "num" }, fmt(t.avg_cost, 3)),
      el("td", { class: "num" }, fmt(t.mark, 3)), el("td", { class: "num" }, signed(t.pnl)),
      el("td", { title: t.last_event || "" }, (t.last_event || "").slice(0, 50)), el("td", {}, stop));
  }));
}

function addEvent(e, front = true) {
  if (state.events.some((x) => x.entry_id === e.entry_id)) return;  // already loaded by loadStreams
  state.events[front ? "unshift" : "push"](e);
  state.events.length = Math.min(state.events.length, 200);
}

function renderEvents() {
  document.getElementById("events").replaceChildren(...state.events.map((e) =>
    el("div", { class: e.level || "info", title: e.reason || "" },
      `${time(e.ts_init)}  ${e.kind || ""}  ${short(e.token_id)}  ${e.reason || ""}`)));
}

function renderBlacklist(bl) {
  document.querySelector("#blacklist tbody").replaceChildren(...bl.runtime.map((b) => el("tr", { "data-key": b.key },
    el("td", {}, b.key), el("td", {}, b.reason), el("td", {}, b.expires_at ? new Date(b.expires_at).toLocaleString() : "never"),
    el("td", {}, el("button", { "data-testid": "bl-rm", onclick: async () => {
      try { await api(`/api/blacklist/${encodeURIComponent(b.key)}?reason=dashboard`, { method: "DELETE" }); refreshBlacklist(); }
      catch (e) { notice(e.message); }
    } }, "Remove")))));
  document.getElementById("bl-config").textContent =
    bl.config.length ? "from the config file (risk.blacklist_token_keys): " + bl.config.join(", ") : "";
}

function renderOpps() {
  document.querySelector("#opps tbody").replaceChildren(...state.opps.slice(0, 50).map((o) => {
    const shown = Object.entries(o).filter(([k]) => !["entry_id", "type", "v", "id", "producer", "ts_init", "ts_event"].includes(k));
    return el("tr", {}, el("td", {}, time(o.ts_init || String(o.entry_id).split("-")[0])),
      el("td", {}, shown.map(([k, v]) => `${k}=${typeof v === "object" ? JSON.stringify(v) : v}`).join("  ").slice(0, 200)));
  }));
}

// The leader scorecard (GET /api/leaders; docs/copytrading.md "Scorecard"), one row per leader,
// with whether it is paused and why ("Auto-demotion").
function renderLeaders(report) {
  const spread = (x) => x.n ? `${fmt(x.p50, 0)} / ${fmt(x.max, 0)}` : "";
  const flags = (f) => [f.market_maker ? `market maker (${f.two_sided_trades} two-sided)` : "",
                        f.high_frequency ? `high frequency (${f.busiest_hour}/h)` : ""].filter(Boolean).join(", ") || "copyable";
  document.querySelector("#leaders tbody").replaceChildren(...report.leaders.map((c) => {
    const why = Object.entries(c.skip_reasons).slice(0, 3).map(([r, n]) => `${n} ${r}`).join("; ");
    return el("tr", { "data-account": c.account },
      el("td", { title: c.account }, short(c.account)), el("td", {}, c.followed ? "yes" : "no"),
      el("td", {}, Object.entries(c.signals).map(([s, n]) => `${s} ${n}`).join(" ")),
      el("td", { class: "num" }, `${fmt(c.leader_volume_usd, 0)} / ${c.leader_value_usd === null ? "—" : fmt(c.leader_value_usd, 0)}`),
      venueCell(c.venue_stats),
      el("td", { class: "num" }, String(c.copies)), el("td", { title: why }, why ? `${c.skipped} (${why})` : String(c.skipped)),
      el("td", { class: "num" }, signed(c.realized_pnl)), el("td", { class: "num" }, signed(c.unrealized_pnl)),
      el("td", { class: "num" }, spread(c.slippage_bps)),
      el("td", {}, Object.entries(c.delay_ms).map(([s, d]) => `${s} ${spread(d)}`).join("; ")),
      el("td", { class: c.flags.market_maker || c.flags.high_frequency ? "flagged" : "" }, flags(c.flags)),
      el("td", { class: c.paused ? "flagged" : "", title: c.paused ? `by ${c.paused.by}` : "" },
        c.paused ? `paused: ${c.paused.reason}` : ""),
      el("td", {}, leaderChart(c)));
  }));
}

// The leader's own PnL and volume as the venue reports them (pf:leader:stats, read by the collector).
function venueCell(v) {
  if (!v) return el("td", { class: "num" }, "—");
  return el("td", { class: "num", title: `${v.trades} trades over the venue's ${v.window} window` },
    v.pnl_usd === null ? "—" : signed(v.pnl_usd), ` / ${fmt(v.volume_usd, 0)}`);
}

async function refreshLeaders() {
  try { renderLeaders(await api("/api/leaders")); } catch (e) { /* refresh() reports errors */ }
}

// A line chart in an SVG viewBox of 600x160: points are [x, y] pairs.
function drawLine(svg, points, label) {
  const W = 600, H = 160, P = 14;
  svg.replaceChildren();
  const ns = "http://www.w3.org/2000/svg";
  const mk = (tag, attrs) => { const n = document.createElementNS(ns, tag); for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, v); return n; };
  if (points.length < 2) {
    const t = mk("text", { x: 10, y: 20 }); t.textContent = points.length ? `${label}: ${fmt(points[0][1])}` : "no data yet";
    svg.append(t); return;
  }
  const xs = points.map((p) => p[0]), ys = points.map((p) => p[1]);
  const x0 = Math.min(...xs), x1 = Math.max(...xs), y0 = Math.min(0, ...ys), y1 = Math.max(0, ...ys);
  const sx = (x) => P + (W - 2 * P) * (x1 === x0 ? 0.5 : (x - x0) / (x1 - x0));
  const sy = (y) => H - P - (H - 2 * P) * (y1 === y0 ? 0.5 : (y - y0) / (y1 - y0));
  svg.append(mk("line", { class: "zero", x1: P, x2: W - P, y1: sy(0), y2: sy(0) }));
  svg.append(mk("polyline", { class: "line", points: points.map((p) => `${sx(p[0]).toFixed(1)},${sy(p[1]).toFixed(1)}`).join(" ") }));
  const hi = mk("text", { x: 2, y: 10 }); hi.textContent = fmt(y1);
  const lo = mk("text", { x: 2, y: H - 2 }); lo.textContent = fmt(y0);
  const last = mk("text", { x: W - 120, y: 10 }); last.textContent = `${label}: ${fmt(ys[ys.length - 1])}`;
  svg.append(hi, lo, last);
}

// ---------------------------------------------------------------- data

let lastPnl = null;

async function refresh() {
  try {
    const [stats, workers, tokens] = await Promise.all([api("/api/stats"), api("/api/workers"), api("/api/tokens?limit=500")]);
    state.tokens = new Map(tokens.map((t) => [t.token_id, t]));
    state.ticks.push([stats.now_ms, stats.ticks_per_sec]);
    state.ticks = state.ticks.filter((p) => p[0] > stats.now_ms - 240000);
    renderStats(stats, workers, lastPnl); renderWorkers(workers); renderTokens();
    drawLine(document.getElementById("ticks-chart"), state.ticks, "ticks/s");
  } catch (e) { if (e.message !== "unauthorized") notice("refresh failed: " + e.message); }
}

async function refreshPnl() {
  try {
    lastPnl = await api("/api/pnl");
    document.getElementById("pnl-now").textContent = fmt(lastPnl.total_pnl);
    const pts = lastPnl.series.map((p) => [p.ts, p.realized_pnl]);
    if (pts.length) pts.push([Date.now(), lastPnl.total_pnl]);
    drawLine(document.getElementById("pnl-chart"), pts, "PnL");
  } catch (e) { /* refresh() reports errors */ }
}

async function refreshBlacklist() {
  try { renderBlacklist(await api("/api/blacklist")); } catch (e) { /* reported elsewhere */ }
}

// Stream entry ids ("ms-seq") newest first.
const newestFirst = (a, b) => {
  const [am, as] = String(a.entry_id).split("-").map(Number), [bm, bs] = String(b.entry_id).split("-").map(Number);
  return bm - am || bs - as;
};

async function loadStreams() {
  const [events, opps] = await Promise.all([api("/api/events?count=100"), api("/api/opportunities?count=50")]);
  // merged with what was pushed meanwhile: a push may have come before this answer but after its read
  const loaded = new Set(events.map((e) => e.entry_id));
  state.events = [...events, ...state.events.filter((e) => !loaded.has(e.entry_id))].sort(newestFirst).slice(0, 200);
  state.opps = opps;
  renderEvents(); renderOpps();
}

function connectWs() {
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(`${proto}//${location.host}/api/ws`, ["polyfleet", "bearer." + apiToken()]);
  state.ws = ws;
  const conn = document.getElementById("conn");
  ws.onopen = () => { conn.textContent = "live"; conn.className = "pill on"; state.wsRetry = 1000; };
  ws.onclose = () => {
    conn.textContent = "offline"; conn.className = "pill off";
    setTimeout(connectWs, state.wsRetry); state.wsRetry = Math.min(state.wsRetry * 2, 15000);
  };
  ws.onmessage = (m) => {
    const msg = JSON.parse(m.data);
    // "hello" comes once the server follows the streams: it pushes only what is written after that,
    // so load them again now, or the events written since the first load (or while the socket was
    // down) would never show.
    if (msg.type === "hello") { loadStreams().catch((e) => notice(e.message)); }
    else if (msg.type === "event") { addEvent(msg.entry); renderEvents(); }
    else if (msg.type === "token") { state.tokens.set(msg.token.token_id, msg.token); renderTokens(); }
    else if (msg.type === "fill") { refreshPnl(); }
    else if (msg.type === "opportunity") { state.opps.unshift(msg.entry); state.opps.length = Math.min(state.opps.length, 100); renderOpps(); }
    else if (msg.type === "lagged") { loadStreams(); }
  };
}

function showLogin() {
  document.getElementById("login").hidden = false;
  document.getElementById("main").hidden = true;
}

async function start() {
  if (!apiToken()) { showLogin(); return; }
  document.getElementById("login").hidden = true;
  document.getElementById("main").hidden = false;
  try { const cfg = await api("/api/config"); document.getElementById("mode").textContent = "mode " + cfg.settings.mode; }
  catch (e) { if (e.message === "unauthorized") return; }
  await Promise.all([refresh(), refreshPnl(), refreshBlacklist(), refreshLeaders(), refreshRedemptions(),
                     loadStreams().catch((e) => notice(e.message))]);
  connectWs();
  setInterval(refresh, 2000);
  setInterval(refreshPnl, 5000);
  setInterval(refreshBlacklist, 10000);
  setInterval(refreshLeaders, 30000);  // the scorecard reads whole stream windows: not every 2 s
  setInterval(refreshRedemptions, 5000);
}

document.getElementById("login-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  sessionStorage.setItem(TOKEN_KEY, document.getElementById("login-token").value.trim());
  start();
});

document.getElementById("bl-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const body = { key: document.getElementById("bl-key").value, reason: document.getElementById("bl-reason").value || "dashboard",
                 ttl_sec: Number(document.getElementById("bl-ttl").value || 0) };
  try { await api("/api/blacklist", { method: "POST", body: JSON.stringify(body) }); ev.target.reset(); refreshBlacklist(); }
  catch (e) { notice(e.message); }
});

function killSwitch(id, path, body) {
  const b = document.getElementById(id);
  let armed = null;
  b.addEventListener("click", async () => {
    if (!armed) { const label = b.textContent; b.textContent = "Confirm?"; armed = setTimeout(() => { armed = null; b.textContent = label; }, 3000); b.dataset.label = label; return; }
    clearTimeout(armed); armed = null; b.textContent = b.dataset.label;
    try { const r = await api(path, { method: "POST", body: JSON.stringify({ ...body, reason: "dashboard" }) }); notice(r.applied ? "applied" : "requested, not applied yet"); refresh(); }
    catch (e) { notice(e.message); }
  });
}
killSwitch("halt-btn", "/api/halt", { mode: "halt" });
killSwitch("reduce-btn", "/api/halt", { mode: "reduce_only" });
killSwitch("resume-btn", "/api/resume", {});

start();
