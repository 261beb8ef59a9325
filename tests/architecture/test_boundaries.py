"""The architecture's boundaries, checked by walking the AST of every module (no extra deps).

(a) services never import each other (services/<a>/ never imports services.<b>), and shared/
    never imports services at all;
(b) no Redis key literal outside shared/keys.py: no string constant (f-string parts included)
    that spells the namespace prefix ``pf:`` or glues a known key head after a formatted
    namespace (``f"{ns}:token:{tid}"``);
(c) pure decision modules (book.py, strategy.py, ...) under services/ import no Redis, websocket,
    HTTP or socket library and use no asyncio networking;
(d) only the venue room (shared/venue) imports a venue SDK (``polymarket``; the archived client
    too, as far as this rule goes): services, the CLI and the benchmarks talk to the venue through it;
(e) nothing imports an archived venue client (``py_clob_client_v2``, ``py_clob_client``): not
    the venue room, not the tests, not the scripts (issue 15: the official SDK replaced them).

Each rule is a plain function from (module name, source) to a list of violations; the
``*_can_fail`` tests feed it synthetic sources so a rule that silently stopped matching is noticed.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.keys import KEY_SPECS

ROOT = Path(__file__).resolve().parents[2]
SCANNED_PACKAGES = ("shared", "services", "cli")
KEY_MODULE = "shared.keys"

PURE_MODULE_NAMES = frozenset({
    "book.py", "strategy.py", "assignment.py", "admission.py", "risk.py", "decisions.py", "trades.py",
    "scheduling.py", "positions.py", "volatility.py", "deadline.py", "paper.py",
    "detect.py", "catalogue.py", "tracker.py", "negrisk.py",
})
# Modules a pure decision module must not import (the module itself or anything below it).
NETWORK_MODULES = (
    "redis", "websockets", "httpx", "aiohttp", "requests", "socket", "urllib.request", "http.client",
    "polymarket", "shared.redisio",
)
# asyncio's networking entry points (attribute access or ``from asyncio import ...``).
ASYNCIO_NETWORKING = frozenset({
    "open_connection", "start_server", "open_unix_connection", "start_unix_server", "create_connection",
    "create_server", "create_datagram_endpoint", "create_unix_connection", "create_unix_server",
    "sock_connect", "sock_accept", "sock_recv", "sock_sendall",
})

# (d): the venue SDKs, and the one package allowed to import them
VENUE_SDKS = ("polymarket",)  # the archived clients are refused everywhere by rule (e)
VENUE_ROOM = "shared.venue"
SDK_SCANNED_PACKAGES = (*SCANNED_PACKAGES, "bench", "harness")
# (e): the archived clients, imported by no module at all
ARCHIVED_CLIENTS = ("py_clob_client_v2", "py_clob_client")
EVERY_PACKAGE = (*SDK_SCANNED_PACKAGES, "tests", "scripts")

NAMESPACE_LITERAL = re.compile(r"(?<![A-Za-z0-9_])pf:")
KEY_HEADS = sorted({spec.pattern.split(":", 1)[0].split("{", 1)[0] for spec in KEY_SPECS} - {""})
GLUED_KEY_HEAD = re.compile(r"^:(?:" + "|".join(map(re.escape, KEY_HEADS)) + r")(?::|$)")


# ------------------------------------------------------------------------------------ helpers


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def python_files(packages: tuple[str, ...] = SCANNED_PACKAGES) -> Iterator[Path]:
    for package in packages:
        base = ROOT / package
        if base.is_dir():
            yield from sorted(p for p in base.rglob("*.py") if "__pycache__" not in p.parts)


def imported_modules(module: str, tree: ast.AST, is_package: bool = False) -> list[tuple[str, int]]:
    """Absolute names of every module ``module`` imports (relative imports resolved), with lines.

    ``from X import y`` yields both ``X`` and ``X.y`` (y may be a submodule)."""
    package = module.split(".") if is_package else module.split(".")[:-1]
    out: list[tuple[str, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.extend((alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package[: len(package) - (node.level - 1)] if node.level > 1 else package
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            if base:
                out.append((base, node.lineno))
            out.extend((f"{base}.{alias.name}" if base else alias.name, node.lineno)
                       for alias in node.names if alias.name != "*")
    return out


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def _docstring_nodes(tree: ast.AST) -> set[int]:
    """ids of string constants that are bare expression statements (docstrings, comments-as-strings)."""
    out: set[int] = set()
    for node in ast.walk(tree):
        if (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
                and isinstance(node.value.value, str)):
            out.add(id(node.value))
    return out


# ---------------------------------------------------------------------------------- the rules


def harness_imports(module: str, source: str, is_package: bool = False) -> list[str]:
    """(f) production code (shared, services, cli) importing the test harness or the tests."""
    return [f"{module}:{line} imports {name}" for name, line in imported_modules(module, ast.parse(source), is_package)
            if _within(name, "harness") or _within(name, "tests")]


def cross_service_imports(module: str, source: str, is_package: bool = False) -> list[str]:
    """(a) services.<a>.* importing services.<b> (b != a), or shared.* importing services."""
    parts = module.split(".")
    tree = ast.parse(source)
    found: list[str] = []
    for name, line in imported_modules(module, tree, is_package):
        if not _within(name, "services"):
            continue
        target = name.split(".")
        if parts[0] == "shared":
            found.append(f"{module}:{line} imports {name} (shared/ must not import services)")
        elif parts[0] == "services" and len(parts) > 1 and len(target) > 1 and target[1] != parts[1]:
            found.append(f"{module}:{line} imports {name} (services talk through Redis, not imports)")
    return found


def key_literals(module: str, source: str) -> list[str]:
    """(b) string constants that spell a Redis key outside shared/keys.py."""
    if module == KEY_MODULE:
        return []
    tree = ast.parse(source)
    skip = _docstring_nodes(tree)
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
            if NAMESPACE_LITERAL.search(node.value):
                found.append(f"{module}:{node.lineno} key literal {node.value!r} (use shared.keys.Keys)")
        elif isinstance(node, ast.JoinedStr):
            for prev, part in zip([None, *node.values], node.values, strict=False):
                if not (isinstance(part, ast.Constant) and isinstance(part.value, str)):
                    continue
                if isinstance(prev, ast.FormattedValue) and GLUED_KEY_HEAD.match(part.value):
                    found.append(f"{module}:{node.lineno} key built by hand "
                                 f"(...{part.value!r}; use shared.keys.Keys)")
    # f-string constant parts are ast.Constant nodes too, so "pf:" inside an f-string is caught above.
    return found


def impure_imports(module: str, source: str, is_package: bool = False) -> list[str]:
    """(c) a pure decision module importing networking libraries or using asyncio networking."""
    tree = ast.parse(source)
    found: list[str] = []
    for name, line in imported_modules(module, tree, is_package):
        bad = next((net for net in NETWORK_MODULES if _within(name, net)), None)
        if bad:
            found.append(f"{module}:{line} imports {name} (pure decision modules do no I/O)")
        if name.startswith("asyncio.") and name.split(".", 1)[1] in ASYNCIO_NETWORKING:
            found.append(f"{module}:{line} imports {name} (asyncio networking)")
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in ASYNCIO_NETWORKING:
            found.append(f"{module}:{node.lineno} uses .{node.attr} (asyncio networking)")
    return found


def venue_sdk_imports(module: str, source: str, is_package: bool = False) -> list[str]:
    """(d) a venue SDK imported outside the venue room."""
    if _within(module, VENUE_ROOM):
        return []
    return [f"{module}:{line} imports {name} (only {VENUE_ROOM} talks to the venue SDK)"
            for name, line in imported_modules(module, ast.parse(source), is_package)
            if any(_within(name, sdk) for sdk in VENUE_SDKS)]


def archived_client_imports(module: str, source: str, is_package: bool = False) -> list[str]:
    """(e) an archived venue client imported anywhere."""
    return [f"{module}:{line} imports {name} (archived: use the official SDK through {VENUE_ROOM})"
            for name, line in imported_modules(module, ast.parse(source), is_package)
            if any(_within(name, client) for client in ARCHIVED_CLIENTS)]


# --------------------------------------------------------------------------- the real codebase


def _sources() -> list[tuple[Path, str, str]]:
    return [(p, module_name(p), p.read_text()) for p in python_files()]


def test_the_scan_sees_the_foundation() -> None:
    modules = {m for _, m, _ in _sources()}
    assert {"shared.keys", "shared.messages", "shared.redisio.streams"} <= modules


def test_services_never_import_each_other_and_shared_never_imports_services() -> None:
    violations = [v for path, mod, src in _sources()
                  for v in cross_service_imports(mod, src, path.name == "__init__.py")]
    assert violations == [], "\n".join(violations)


def test_no_redis_key_literal_outside_the_key_module() -> None:
    violations = [v for _, mod, src in _sources() for v in key_literals(mod, src)]
    assert violations == [], "\n".join(violations)


def test_pure_decision_modules_do_no_io() -> None:
    pure = [(p, m, s) for p, m, s in _sources() if m.startswith("services.") and p.name in PURE_MODULE_NAMES]
    violations = [v for path, mod, src in pure for v in impure_imports(mod, src, path.name == "__init__.py")]
    assert violations == [], "\n".join(violations)


def test_only_the_venue_room_imports_a_venue_sdk() -> None:
    violations = [v for p in python_files(SDK_SCANNED_PACKAGES)
                  for v in venue_sdk_imports(module_name(p), p.read_text(), p.name == "__init__.py")]
    assert violations == [], "\n".join(violations)


def test_no_module_imports_an_archived_venue_client() -> None:
    violations = [v for p in python_files(EVERY_PACKAGE)
                  for v in archived_client_imports(module_name(p), p.read_text(), p.name == "__init__.py")]
    assert violations == [], "\n".join(violations)


def test_production_code_never_imports_the_harness_or_the_tests() -> None:
    violations = [v for path, mod, src in _sources() for v in harness_imports(mod, src, path.name == "__init__.py")]
    assert violations == [], "\n".join(violations)


# ------------------------------------------------------------------- every rule can fail


@pytest.mark.parametrize(("module", "source"), [
    ("services.orchestrator.service", "from harness import RedisServer\n"),
    ("shared.config", "import tests.conftest\n"),
    ("cli.main", "from harness.soak import invariants\n"),
])
def test_harness_rule_catches(module: str, source: str) -> None:
    assert harness_imports(module, source)


def test_harness_rule_allows() -> None:
    assert harness_imports("services.api.app", "from shared.keys import Keys\nimport harnessing\n") == []


@pytest.mark.parametrize(("module", "source"), [
    ("services.orchestrator.service", "import services.maker_worker.session\n"),
    ("services.orchestrator.service", "from services.ws_gateway import book\n"),
    ("services.orchestrator.service", "from services import maker_worker\n"),
    ("services.orchestrator.service", "from ..maker_worker.session import Session\n"),
    ("services.orchestrator.sub.deep", "from ...ws_gateway import x\n"),
    ("shared.config", "import services.orchestrator\n"),
    ("shared.redisio.streams", "from services.orchestrator.risk import check\n"),
    ("shared.redisio.streams", "def f():\n    from services import api\n"),
])
def test_cross_service_rule_catches(module: str, source: str) -> None:
    assert cross_service_imports(module, source)


@pytest.mark.parametrize(("module", "source"), [
    ("services.orchestrator.service", "from services.orchestrator import risk\n"),
    ("services.orchestrator.service", "from . import risk\nfrom .decisions import decide\n"),
    ("services.orchestrator.service", "import shared.keys\nfrom shared.messages import Signal\n"),
    ("services.orchestrator.sub.deep", "from ..risk import check\n"),
    ("cli.main", "import json\n"),
])
def test_cross_service_rule_allows(module: str, source: str) -> None:
    assert cross_service_imports(module, source) == []


def test_relative_import_in_a_service_package_init_resolves_within_the_service() -> None:
    assert cross_service_imports("services.orchestrator", "from .service import Orchestrator\n",
                                 is_package=True) == []
    assert cross_service_imports("services.orchestrator", "from ..maker_worker import x\n", is_package=True)


@pytest.mark.parametrize("source", [
    'K = "pf:signals"\n',
    'def f(t):\n    return f"pf:token:{t}"\n',
    'r.xadd("pf:events", {})\n',
    'PATTERN = "scan pf:gw:want:*"\n',
    'def f(ns, t):\n    return f"{ns}:token:{t}"\n',
    'def f(ns, w):\n    return f"{ns}:worker:{w}:lease"\n',
    'def f(ns):\n    return f"{ns}:halt"\n',
])
def test_key_literal_rule_catches(source: str) -> None:
    assert key_literals("services.orchestrator.service", source)


@pytest.mark.parametrize("source", [
    '"""Reads pf:signals (docstrings may name keys)."""\n',
    'def f():\n    """Writes pf:token:{id}."""\n',
    'URL = "http://127.0.0.1:8700"\nX = "hpf:1"\n',
    'def f(a, b):\n    return f"{a}:{b}"\n',
    'def f(t):\n    return f"token {t}: ok"\n',
])
def test_key_literal_rule_allows(source: str) -> None:
    assert key_literals("services.orchestrator.service", source) == []


def test_the_key_module_itself_may_spell_keys() -> None:
    assert key_literals("shared.keys", 'K = "pf:signals"\n') == []
    assert key_literals("shared.keyz", 'K = "pf:signals"\n')


@pytest.mark.parametrize("source", [
    "import redis\n",
    "import redis.asyncio as aioredis\n",
    "from redis.asyncio import Redis\n",
    "import websockets\n",
    "import httpx\n",
    "from shared.redisio import streams\n",
    "from shared.redisio.streams import StreamConsumer\n",
    "from asyncio import open_connection\n",
    "import asyncio\nasync def f():\n    await asyncio.open_connection('h', 1)\n",
    "import asyncio\nasync def f():\n    await asyncio.start_server(None, 'h', 1)\n",
    "def f():\n    import socket\n",
])
def test_pure_module_rule_catches(source: str) -> None:
    assert impure_imports("services.orchestrator.risk", source)


@pytest.mark.parametrize("source", [
    "import asyncio\nasync def f():\n    await asyncio.sleep(0)\n",
    "from dataclasses import dataclass\nfrom shared.config import RiskSection\nfrom shared.messages import Signal\n",
    "from shared.keys import TOKEN_STATES\n",
    "import math, json\n",
])
def test_pure_module_rule_allows(source: str) -> None:
    assert impure_imports("services.orchestrator.risk", source) == []


@pytest.mark.parametrize(("module", "source"), [
    ("services.maker_worker.executor", "import polymarket\n"),
    ("services.maker_worker.executor", "from polymarket.errors import RateLimitError\n"),
    ("cli.doctor", "def f():\n    from polymarket import AsyncSecureClient\n"),
    ("bench.bench_worker", "from polymarket.models import OrderArgs\n"),
    ("shared.venues", "import polymarket\n"),
])
def test_venue_sdk_rule_catches(module: str, source: str) -> None:
    assert venue_sdk_imports(module, source)


@pytest.mark.parametrize(("module", "source"), [
    ("shared.venue.orders", "from polymarket import AsyncSecureClient\n"),
    ("shared.venue", "import polymarket\n"),
    ("services.maker_worker.executor", "from shared.venue.orders import VenueOrders\nimport polymarketing\n"),
])
def test_venue_sdk_rule_allows(module: str, source: str) -> None:
    assert venue_sdk_imports(module, source) == []


@pytest.mark.parametrize(("module", "source"), [
    ("shared.venue.orders", "from py_clob_client_v2 import ClobClient\n"),
    ("tests.integration.test_sim_exchange", "from py_clob_client_v2.exceptions import PolyApiException\n"),
    ("bench.bench_worker", "def f():\n    import py_clob_client.client\n"),
])
def test_archived_client_rule_catches(module: str, source: str) -> None:
    assert archived_client_imports(module, source)


@pytest.mark.parametrize(("module", "source"), [
    ("shared.venue.orders", "from polymarket import AsyncSecureClient\n"),
    ("tests.unit.test_x", "import py_clob_client_v3\nfrom shared.venue import orders\n"),
])
def test_archived_client_rule_allows(module: str, source: str) -> None:
    assert archived_client_imports(module, source) == []


# ------------------------------------------------------------------- rooms stay small

ROOM_LIMITS = {"services/orchestrator": 300, "services/maker_worker": 400, "services/arb_scanner": 400}


@pytest.mark.parametrize(("room", "limit"), sorted(ROOM_LIMITS.items()))
def test_no_module_of_a_room_outgrows_its_limit(room: str, limit: int) -> None:
    """Issue 17: no orchestrator module over 300 lines; issue 15: the worker's session and desk and
    the arbitrage scanner's modules none over 400."""
    long = {p.name: n for p in sorted((ROOT / room).glob("*.py")) if (n := len(p.read_text().splitlines())) > limit}
    assert long == {}, f"{room}: split these modules ({limit} lines at most): {long}"
