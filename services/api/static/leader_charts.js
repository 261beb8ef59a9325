// The chart per leader in the scorecard table (docs/api.md, GET /api/leaders `pnl_curve`): the
// copied PnL added up over its copies, oldest first, from $0 before the first. A small SVG, drawn
// from the report the page already reads (no request of its own). Loaded before app.js, whose
// renderLeaders calls leaderChart(card).
"use strict";

function leaderChart(card) {
  const W = 160, H = 32, P = 2, ns = "http://www.w3.org/2000/svg";
  const mk = (tag, attrs) => {
    const n = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, v);
    return n;
  };
  const curve = card.pnl_curve || [];
  const svg = mk("svg", { class: "spark", viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: "none",
                          "data-testid": "leader-chart", "data-points": curve.length });
  if (!curve.length) {
    const t = mk("text", { x: 2, y: H - 10 }); t.textContent = "no copies yet";
    svg.append(t);
    return svg;
  }
  const pts = [[curve[0][0], 0], ...curve];  // $0 before its first copy
  const xs = pts.map((p) => p[0]), ys = pts.map((p) => p[1]);
  const x0 = Math.min(...xs), x1 = Math.max(...xs), y0 = Math.min(0, ...ys), y1 = Math.max(0, ...ys);
  // x by copy order when the copies came within one ms of each other (a batch), else by time
  const sx = (x, i) => P + (W - 2 * P) * (x1 > x0 ? (x - x0) / (x1 - x0) : i / (pts.length - 1));
  const sy = (y) => H - P - (H - 2 * P) * (y1 > y0 ? (y - y0) / (y1 - y0) : 0.5);
  const last = ys[ys.length - 1];
  svg.append(mk("line", { class: "zero", x1: P, x2: W - P, y1: sy(0), y2: sy(0) }));
  svg.append(mk("polyline", { class: "line " + (last > 0 ? "up" : last < 0 ? "down" : ""),
                              points: pts.map((p, i) => `${sx(p[0], i).toFixed(1)},${sy(p[1]).toFixed(1)}`).join(" ") }));
  const title = mk("title", {});
  title.textContent = `copied PnL over ${curve.length} copies: ${last.toFixed(2)}`;
  svg.append(title);
  return svg;
}
