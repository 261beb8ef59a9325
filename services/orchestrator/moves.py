"""Moving an active token to another worker under a new epoch.

Both a worker's report (``handed_back``) and upkeep (a dead worker, an overdue hand-back) move
tokens; the move itself lives here so neither room depends on the other.
"""

from __future__ import annotations

import json

from services.orchestrator.assignment import pick_taker
from services.orchestrator.store import Pipe, TokenStore
from services.orchestrator.views import FleetViews
from shared.fleet import WorkerView


class Moves:
    def __init__(self, store: TokenStore, views: FleetViews) -> None:
        self.store = store
        self.views = views

    async def reassign(self, pipe: Pipe, token_id: str, state: str, old_owner: str, reason: str, cause: str,
                       views: list[WorkerView] | None = None, fields: dict[str, str] | None = None,
                       may_keep: bool = False) -> str | None:
        """Move an active token to another live worker under a new epoch (the old one is fenced);
        ``may_keep``: a hand-back may go to its own (live, not draining) sender when no other worker
        can take it. Returns the worker that takes it, or None when no live worker can."""
        if views is None:
            views = await self.views.workers()
        worker = pick_taker(views, old_owner, may_keep)
        if worker is None:
            self.store.event(pipe, "token.orphaned", token_id, f"{reason}; no live worker to take it",
                             level="warning", cause=cause)
            return None
        if fields is None:
            _, fields = await self.store.view(token_id)
        epoch = int(fields.get("epoch", "0") or 0) + 1
        params = json.loads(fields.get("params") or "{}")
        new_state = "exiting" if state == "exiting" else "starting"
        self.store.transition(pipe, token_id, new_state, owner=worker, prev_owner=old_owner, epoch=epoch,
                              handback_requested_at=0)
        self.store.command(pipe, worker, "START", token_id, epoch, params, reason=reason)
        if new_state == "exiting":
            self.store.command(pipe, worker, "EXIT", token_id, epoch, reason=fields.get("exit_reason") or reason)
        self.store.event(pipe, "token.reassigned", token_id, reason, level="warning", cause=cause,
                         old_owner=old_owner, owner=worker, epoch=epoch)
        return worker
