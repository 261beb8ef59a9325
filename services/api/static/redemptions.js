// Resolved markets' redemptions not booked yet (GET /api/redemptions; docs/orchestrator.md
// "Redemption"): state, tries, next try and why, with a Retry button for a failed, unknown or stuck
// one (POST /api/redemptions/{condition}/retry, a control request). Loaded before app.js, whose
// start() calls refreshRedemptions(); uses its helpers (api, el, short, time, confirmButton).
"use strict";

const RETRYABLE = ["sent", "unknown", "failed", "setup_error"];

function nextTry(v, now) {
  if (!RETRYABLE.includes(v.state)) return "";
  if (v.retry_asked_at > v.tried_at) return "now (asked)";
  const sec = Math.round((v.next_at - now) / 1000);
  return sec <= 0 ? "now" : sec < 120 ? `in ${sec}s` : `in ${Math.round(sec / 60)}m`;
}

function renderRedemptions(report) {
  const rows = report.redemptions.map((v) => {
    const tokens = v.tokens.map((t) => `${short(t.token_id)} ${t.won ? "won" : "lost"}` +
      (t.shares === null || t.shares === undefined ? "" : ` ${fmt(t.shares, 2)} sh`)).join("; ");
    const retry = RETRYABLE.includes(v.state) ? confirmButton("Retry", "redeem-retry-" + v.condition_id, async () => {
      const r = await api(`/api/redemptions/${encodeURIComponent(v.condition_id)}/retry`,
        { method: "POST", body: JSON.stringify({ reason: "retried from the dashboard" }) });
      notice(r.applied ? `retry applied: ${short(v.condition_id)}` : `retry requested: ${short(v.condition_id)}`);
      refreshRedemptions();
    }) : "";
    return el("tr", { "data-condition": v.condition_id, "data-state": v.state },
      el("td", { title: v.condition_id }, short(v.condition_id)),
      el("td", { class: "redeem-" + v.state }, v.state), el("td", { class: "num" }, String(v.attempts ?? "")),
      el("td", {}, nextTry(v, report.now_ms)), el("td", { title: v.reason || "" }, (v.reason || "").slice(0, 80)),
      el("td", {}, tokens), el("td", { title: v.wallet || "" }, short(v.wallet || "")),
      el("td", {}, time(v.updated_at)), el("td", {}, retry));
  });
  document.querySelector("#redemptions tbody").replaceChildren(...rows);
  document.getElementById("redemptions-none").hidden = rows.length > 0;
}

async function refreshRedemptions() {
  try { renderRedemptions(await api("/api/redemptions")); } catch (e) { /* refresh() reports errors */ }
}
