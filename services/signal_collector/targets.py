"""What a config reload changed in the followed wallets (A1; pure)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from shared.config import Target


@dataclass(frozen=True, slots=True)
class TargetChanges:
    added: tuple[str, ...] = ()  # new and enabled
    removed: tuple[str, ...] = ()  # gone from the file (were enabled)
    disabled: tuple[str, ...] = ()  # still listed, now enabled: false
    enabled: tuple[str, ...] = ()  # listed before as disabled (or not at all), now enabled
    changed: tuple[str, ...] = ()  # still enabled, another min_size

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.disabled or self.enabled or self.changed)

    def as_detail(self) -> dict[str, list[str]]:
        return {k: list(v) for k, v in (("added", self.added), ("removed", self.removed),
                                         ("disabled", self.disabled), ("enabled", self.enabled),
                                         ("changed", self.changed)) if v}


def active(targets: Iterable[Target]) -> dict[str, Target]:
    """Enabled targets by lower-cased account (a wallet listed twice: the last entry wins)."""
    return {t.account.lower(): t for t in targets if t.enabled}


def diff_targets(old: Iterable[Target], new: Iterable[Target]) -> TargetChanges:
    old_all = {t.account.lower(): t for t in old}
    new_all = {t.account.lower(): t for t in new}
    was, now = active(old_all.values()), active(new_all.values())
    return TargetChanges(
        added=tuple(sorted(a for a in now if a not in old_all)),
        removed=tuple(sorted(a for a in was if a not in new_all)),
        disabled=tuple(sorted(a for a in was if a in new_all and a not in now)),
        enabled=tuple(sorted(a for a in now if a in old_all and a not in was)),
        changed=tuple(sorted(a for a in now if a in was and now[a].min_size != was[a].min_size)),
    )
