"""The docs stay in step with the code: the README diagram's streams with shared/keys.py, the
architecture page's service table with every key's writers, and every requirement tag with
docs/requirements.md (or, for the venue's own rules, docs/venue.md)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from shared.keys import KEY_SPECS, KeySpec

ROOT = Path(__file__).resolve().parents[2]
STREAMS = {f"pf:{s.pattern}": s for s in KEY_SPECS if s.kind == "stream"}
SPECS = {f"pf:{s.pattern}": s for s in KEY_SPECS}
# who appears in the docs as a writer or reader: the service packages, and the operator's CLI
SERVICES = frozenset({p.name for p in (ROOT / "services").iterdir() if (p / "__main__.py").exists()} | {"cli"})
# "every service" in a key's spec: every process that talks to Redis (the sim and the CLI do not beat)
EVERY = SERVICES - {"sim_exchange", "cli"}
EDGE = re.compile(r"^\s*(?P<writers>.+?) ── (?P<key>pf:\S+) ──▶ (?P<readers>.+)$")


def names(text: str) -> set[str]:
    """The services a writers/readers text names: parentheses dropped, [consumer group] too."""
    plain = re.sub(r"\([^)]*\)|\[[^\]]*\]|×N", "", text)
    if "every service" in plain:
        return set(EVERY)
    return {w.strip() for w in re.split(r"[,;]", plain) if w.strip() in SERVICES}


def groups(text: str) -> set[tuple[str, str]]:
    """(service, consumer group) pairs: ``reader [group]`` in the diagram, ``reader (group g)`` in a spec."""
    found = re.findall(r"(\w+) \[(\w+)\]", text) + re.findall(r"(\w+) \(group (\w+)", text)
    return set(found)


def placeholders_free(key: str) -> str:
    return re.sub(r"\{[^}]*\}", "{}", key)


def readme_diagram() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = re.search(r"## The flow\n\n```\n(.*?)```", text, re.S)
    assert block, "README.md has no diagram under '## The flow'"
    return block.group(1).splitlines()


def edges(lines: list[str]) -> dict[str, list[tuple[str, str]]]:
    out: dict[str, list[tuple[str, str]]] = {}
    for line in lines:
        m = EDGE.match(line)
        if m:
            out.setdefault(placeholders_free(m["key"]), []).append((m["writers"], m["readers"]))
    return out


def test_the_readme_diagram_draws_every_stream_once_from_its_writers_to_its_readers() -> None:
    drawn = edges(readme_diagram())
    streams = {placeholders_free(k): spec for k, spec in STREAMS.items()}
    assert sorted(k for k in drawn if k in streams) == sorted(streams), "the diagram's streams differ from shared/keys.py"
    for key, spec in streams.items():
        [(writers, readers)] = drawn[key]
        assert names(writers) == names(spec.writers), f"{key}: writers {writers!r} vs keys.py {spec.writers!r}"
        assert names(readers) == names(spec.readers), f"{key}: readers {readers!r} vs keys.py {spec.readers!r}"
        assert groups(readers) == groups(spec.readers), f"{key}: consumer groups differ from keys.py"


def test_every_key_the_readme_diagram_names_exists_with_those_writers_and_readers() -> None:
    known = {placeholders_free(k): spec for k, spec in SPECS.items()}
    for line in readme_diagram():
        for key in re.findall(r"pf:[\w:{}]+", line):
            assert placeholders_free(key) in known, f"README diagram names {key}, which shared/keys.py does not build"
    for key, drawn in edges(readme_diagram()).items():
        spec = known[key]
        for writers, readers in drawn:  # a hash may show some of its readers; never one it does not have
            assert names(writers) <= names(spec.writers), f"{key}: writers {writers!r} vs keys.py {spec.writers!r}"
            assert names(readers) <= names(spec.readers), f"{key}: readers {readers!r} vs keys.py {spec.readers!r}"


@pytest.mark.parametrize("line", [
    "   signal_collector ── pf:signals ──▶ orchestrator [orchestrator]",  # api and cli left out
    "   orchestrator ── pf:orders ──▶ api",  # the wrong writer
    "   maker_worker ── pf:fills ──▶ orchestrator, api",  # the group left out
])
def test_the_diagram_check_catches_a_wrong_edge(line: str) -> None:
    key = placeholders_free(EDGE.match(line)["key"])  # type: ignore[index]
    spec = {placeholders_free(k): s for k, s in STREAMS.items()}[key]
    m = EDGE.match(line)
    assert m
    assert (names(m["writers"]), names(m["readers"]), groups(m["readers"])) != (
        names(spec.writers), names(spec.readers), groups(spec.readers))


def service_table() -> dict[str, tuple[str, str]]:
    """service -> (reads, writes) cells of docs/architecture.md's service table."""
    rows = {}
    for line in (ROOT / "docs" / "architecture.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")] if line.startswith("|") else []
        if len(cells) == 5:
            service = cells[0].split()[0]
            if service in SERVICES:
                rows[service] = (cells[3], cells[4])
    return rows


def lists(cell: str, spec: KeySpec) -> bool:
    """The cell names the key: ``*`` (or a concrete value, or {name}) stands for one placeholder."""
    pattern = re.escape(f"pf:{spec.pattern}")
    pattern = re.sub(r"\\\{[^}]*\\\}", r"(?:\\*|\\{\\w+\\}|[\\w]+)", pattern)
    return any(re.fullmatch(pattern, key) for key in re.findall(r"`(pf:[^`]+)`", cell))


def test_the_architecture_table_has_a_row_for_every_service() -> None:
    assert set(service_table()) == SERVICES


@pytest.mark.parametrize("spec", KEY_SPECS, ids=lambda s: s.pattern)
def test_the_architecture_table_lists_each_key_under_every_service_that_writes_it(spec: KeySpec) -> None:
    table = service_table()
    missing = sorted(s for s in names(spec.writers) if not lists(table[s][1], spec))
    assert missing == [], f"docs/architecture.md: pf:{spec.pattern} is not in the writes of {missing}"
    if spec.kind == "stream":  # and each stream under the services that consume it
        missing = sorted(s for s in names(spec.readers) if s != "api" and not lists(table[s][0], spec))
        assert missing == [], f"docs/architecture.md: pf:{spec.pattern} is not in the reads of {missing}"


# --- requirement tags ------------------------------------------------------------------------------

TAG = re.compile(r"\b([A-Z])(\d{1,2})\b")


def defined_tags(path: Path, pattern: str) -> set[str]:
    return set(re.findall(pattern, path.read_text(), re.M))


def tag_uses() -> dict[str, list[str]]:
    files = subprocess.run(["git", "ls-files", "*.py", "*.md"], cwd=ROOT, capture_output=True, text=True,
                           check=True).stdout.split()
    uses: dict[str, list[str]] = {}
    for name in files:
        path = ROOT / name
        if not path.exists():
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            for letter, number in TAG.findall(line):
                uses.setdefault(f"{letter}{number}", []).append(f"{name}:{n}")
    return uses


def test_every_requirement_tag_used_resolves() -> None:
    requirements = defined_tags(ROOT / "docs" / "requirements.md", r"^- \*\*([A-J]\d{1,2})\*\*")
    venue_rules = defined_tags(ROOT / "docs" / "venue.md", r"^\*\*([A-Z]\d{1,2}) —")
    assert len(requirements) == 70, "docs/requirements.md restates A1-A8 ... J1-J7"
    assert {"C1", "C11", "D10", "H5", "J7"} <= requirements
    unresolved = {tag: where[:3] for tag, where in tag_uses().items()
                  if tag not in requirements and tag not in venue_rules}
    assert unresolved == {}, "tags defined neither in docs/requirements.md nor in docs/venue.md"
