// The what-if panel: a leader backtest of any wallet (GET /api/leaders/{address}/backtest;
// docs/copytrading.md "Backtest"). Uses app.js's api(), el(), fmt() and signed().
"use strict";

function renderWhatIf(res) {
  const tr = res.trades, ex = res.exits;
  const rate = res.win_rate === null ? "—" : `${fmt(100 * res.win_rate, 0)} % (${res.wins} won, ${res.losses} lost)`;
  const rows = [
    ["trades replayed", `${tr.replayed} (${tr.buys} buys, ${tr.sells} sells; ${tr.below_min_size} below min_size)`],
    ["copies made", String(res.copies)],
    ["copies skipped", String(res.skipped)],
    ["exits", `${ex.full} full, ${ex.partial} partial; ${ex.sells_without_a_copy} leader sells without a copy`],
    ["invested $", fmt(res.invested_usd)],
    ["realised PnL", signed(res.realized_pnl)],
    ["unrealised PnL", signed(res.unrealized_pnl)],
    ["total PnL", signed(res.total_pnl)],
    ["win rate", rate],
    ["max drawdown $", fmt(res.max_drawdown_usd)],
  ];
  if (res.truncated) rows.push(["note", "only the newest copytrade.backtest.max_trades trades were read"]);
  document.querySelector("#whatif-result tbody").replaceChildren(...rows.map(([k, v]) =>
    el("tr", { "data-figure": k }, el("th", {}, k), el("td", { class: "num" }, v))));
  document.getElementById("whatif-skips").textContent = Object.keys(res.skip_reasons).length
    ? "skipped: " + Object.entries(res.skip_reasons).map(([r, n]) => `${n} ${r}`).join("; ") : "";
  document.getElementById("whatif-model").textContent = "fill model: " + res.model.text;
}

document.getElementById("whatif-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const address = document.getElementById("whatif-address").value.trim();
  const days = Number(document.getElementById("whatif-days").value || 7);
  const status = document.getElementById("whatif-status");
  status.textContent = "running…";
  document.querySelector("#whatif-result tbody").replaceChildren();
  try {
    renderWhatIf(await api(`/api/leaders/${encodeURIComponent(address)}/backtest?days=${days}`));
    status.textContent = `${address.slice(0, 6)}…${address.slice(-4)}, last ${days} day(s)`;
  } catch (e) { status.textContent = e.message; }
});
