"""docs/redis-schema.md stays in step with shared/keys.py (KEY_SPECS is the source of truth)."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

from shared.keys import KEY_SPECS

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "redis-schema.md"
FIX = "regenerate it: uv run python scripts/gen_redis_schema.py"


def _table_rows() -> dict[str, list[str]]:
    """First-column key (without backticks) -> the row's cells, for every table row naming a pf: key."""
    rows = {}
    for line in DOC.read_text().splitlines():
        if not line.startswith("|"):
            continue
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
        m = re.fullmatch(r"`(pf:[^`]+)`", cells[0]) if cells else None
        if m:
            rows[m.group(1)] = cells
    return rows


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_redis_schema", ROOT / "scripts" / "gen_redis_schema.py")
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_key_spec_is_documented() -> None:
    text = DOC.read_text()
    missing = [f"pf:{s.pattern}" for s in KEY_SPECS if f"`pf:{s.pattern}`" not in text]
    assert missing == [], f"not in {DOC.name}: {missing}; {FIX}"


def test_every_documented_key_exists() -> None:
    specs = {f"pf:{s.pattern}" for s in KEY_SPECS}
    rows = _table_rows()
    assert rows, "no key table found"
    unknown = sorted(set(rows) - specs)
    assert unknown == [], f"{DOC.name} documents keys that shared/keys.py does not have: {unknown}"


def test_documented_types_match_the_specs() -> None:
    rows = _table_rows()
    wrong = [(f"pf:{s.pattern}", rows[f"pf:{s.pattern}"][1], s.kind) for s in KEY_SPECS
             if f"pf:{s.pattern}" in rows and rows[f"pf:{s.pattern}"][1] != s.kind]
    assert wrong == [], f"{wrong}; {FIX}"


def test_the_doc_is_what_the_generator_writes() -> None:
    assert DOC.read_text() == _generator().render(), f"{DOC.name} is out of date; {FIX}"


def test_the_doc_explains_stream_fields_and_groups() -> None:
    text = DOC.read_text()
    for field in ("type", "v", "id", "ts_event", "ts_init", "producer"):
        assert f"`{field}`" in text
    for example in ("XRANGE pf:signals - + COUNT 10", "XINFO GROUPS pf:signals", "HGETALL pf:token:<id>",
                    "SMEMBERS pf:gw:want:orchestrator", "SUBSCRIBE pf:tick:<id>"):
        assert example in text
    assert "## Consumer groups" in text
