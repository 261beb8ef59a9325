"""scripts/audit.py reads pip-audit's JSON report: a package it could not look up is not "clean"."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "audit.py"


def audit() -> ModuleType:
    spec = importlib.util.spec_from_file_location("audit_script", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_vulnerabilities_skips_and_clean_packages_are_told_apart() -> None:
    report = {  # the shape of `pip-audit -f json`
        "dependencies": [
            {"name": "httpx", "version": "0.27.0", "vulns": []},
            {"name": "jinja2", "version": "3.1.2", "vulns": [
                {"id": "GHSA-h5c8-rqwp-cp95", "fix_versions": ["3.1.3"], "aliases": ["CVE-2024-22195"],
                 "description": "xmlattr filter allows keys with spaces"}]},
            {"name": "annotated-doc", "skip_reason": "Dependency not found on PyPI and could not be audited: "
                                                     "annotated-doc (0.0.7)"},
        ],
        "fixes": [],
    }
    vulns, skipped, checked = audit().summarize(report)
    assert vulns == ["jinja2 3.1.2: GHSA-h5c8-rqwp-cp95 (fixed in 3.1.3)"]
    assert skipped == ["Dependency not found on PyPI and could not be audited: annotated-doc (0.0.7)"]
    assert checked == 2


def test_a_report_where_everything_was_skipped_checks_nothing() -> None:
    """pip-audit itself says "No known vulnerabilities found" and exits 0 for this report."""
    report = {"dependencies": [{"name": "a", "skip_reason": "x"}, {"name": "b", "skip_reason": "y"}], "fixes": []}
    assert audit().summarize(report) == ([], ["x", "y"], 0)
