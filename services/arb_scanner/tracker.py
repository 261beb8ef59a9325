"""De-duplication of opportunities while they persist (E3): emit on appear, material change, disappear (pure).

One episode per (set, kind). ``observe`` returns what to publish, or None:

* nothing open and the verdict is an opportunity or a near miss -> ``open`` (new ``opp_id``);
* open and the verdict is none -> ``close``;
* open and the verdict changed, the size was confirmed from the full book, or the edge moved by ``edge_step`` or more, or the size by
  ``size_step`` (a fraction) or more -> ``update``;
* otherwise nothing: a book that flickers without changing the trade is not news.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.arb_scanner.detect import Evaluation, Verdict
from shared.messages import stable_id


@dataclass
class Episode:
    opp_id: str
    verdict: Verdict
    edge: float
    size: float
    opened_ms: int
    depth_known: bool = True


@dataclass(frozen=True, slots=True)
class Emit:
    status: str  # open | update | close
    opp_id: str
    evaluation: Evaluation


class Tracker:
    def __init__(self, edge_step: float, size_step: float) -> None:
        self.edge_step = edge_step
        self.size_step = size_step
        self.open: dict[tuple[str, str], Episode] = {}

    def observe(self, set_id: str, ev: Evaluation, now_ms: int) -> Emit | None:
        key = (set_id, str(ev.kind))
        ep = self.open.get(key)
        if ev.verdict is Verdict.NONE:
            if ep is None:
                return None
            del self.open[key]
            return Emit("close", ep.opp_id, ev)
        if ep is None:
            ep = Episode(stable_id(set_id, ev.kind, now_ms), ev.verdict, ev.top_edge, ev.size, now_ms,
                         ev.depth_known)
            self.open[key] = ep
            return Emit("open", ep.opp_id, ev)
        moved_size = abs(ev.size - ep.size) >= self.size_step * max(ep.size, 1e-9) and ev.size != ep.size
        confirmed = ev.depth_known and not ep.depth_known
        if (ev.verdict is not ep.verdict or abs(ev.top_edge - ep.edge) >= self.edge_step - 1e-12 or moved_size
                or confirmed):
            ep.verdict, ep.edge, ep.size, ep.depth_known = ev.verdict, ev.top_edge, ev.size, ev.depth_known
            return Emit("update", ep.opp_id, ev)
        return None

    def episodes(self) -> list[tuple[str, str]]:
        return list(self.open)
