"""Config reload (C9): re-read the config file while running; a bad edit never replaces a good one.

``ConfigReloader.poll()`` is called by a service every ``config_reload_sec``. It re-validates only
when the file's content changed (so an invalid file is reported once per edit, not once per
interval), and hands back the new Settings or the error. The service decides what to do with them
(apply, log, emit an audit event); the last good Settings stay in force on any error.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from shared.config import ConfigError, Settings, config_path, load_settings


@dataclass(frozen=True)
class ReloadResult:
    settings: Settings | None = None  # new settings, when the file changed and is valid
    error: str = ""  # why the changed file was refused
    changed_sections: tuple[str, ...] = ()  # top-level keys whose values differ

    @property
    def changed(self) -> bool:
        return self.settings is not None


def changed_sections(old: Settings, new: Settings) -> tuple[str, ...]:
    before, after = old.model_dump(), new.model_dump()
    return tuple(sorted(k for k in after if before.get(k) != after.get(k)))


class ConfigReloader:
    def __init__(self, settings: Settings, path: Path | str | None = None,
                 environ: dict[str, str] | None = None,
                 loader: Callable[[Path, dict[str, str]], Settings] | None = None) -> None:
        self.environ = dict(os.environ if environ is None else environ)
        self.path = Path(path) if path is not None else config_path(self.environ)
        self.settings = settings
        self._loader = loader or (lambda p, env: load_settings(p, env))
        self._digest = self._read_digest()
        self._next_due = 0.0

    def _read_digest(self) -> str:
        try:
            return hashlib.sha256(self.path.read_bytes()).hexdigest()
        except OSError:
            return ""  # no file: defaults and env only; a file appearing later counts as an edit

    def due(self, now: float) -> bool:
        """True once every ``config_reload_sec`` (``now`` is a monotonic clock reading)."""
        if now < self._next_due:
            return False
        self._next_due = now + self.settings.config_reload_sec
        return True

    def poll(self) -> ReloadResult:
        digest = self._read_digest()
        if digest == self._digest:
            return ReloadResult()
        self._digest = digest
        try:
            new = self._loader(self.path, self.environ)
        except ConfigError as exc:
            return ReloadResult(error=str(exc))
        sections = changed_sections(self.settings, new)
        self.settings = new
        return ReloadResult(settings=new, changed_sections=sections)
