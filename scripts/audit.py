"""Audit the locked dependency set for known vulnerabilities (pip-audit), honestly.

pip-audit exits 0 with "No known vulnerabilities found" even when it could not look a single
package up (no route to the vulnerability service, a mirror without the JSON API): every package
is then only "skipped". This wrapper counts what was really checked:

* a known vulnerability in any locked package: exit 1, with the package, the id and the fix;
* packages that could not be checked: ``--strict`` (``make audit``) exits 2; otherwise (``make
  check``, CI) it prints a loud NOT AUDITED line naming how many and why, and exits 0, so a box
  without the service still runs the rest of the checks;
* everything checked and clean: exit 0 with the count.

Usage: uv run python scripts/audit.py [--strict] [--service pypi|osv]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any


def locked_requirements(out: Path) -> None:
    """The lock file's exact pins (every group), without the project itself."""
    subprocess.run(["uv", "export", "--frozen", "--all-groups", "--no-hashes", "--no-emit-project",
                    "--format", "requirements-txt", "-o", str(out)], check=True, capture_output=True)


def run_audit(requirements: Path, service: str, report: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pip_audit", "-r", str(requirements), "--no-deps", "--disable-pip",
                           "--progress-spinner", "off", "-s", service, "-f", "json", "-o", str(report)],
                          capture_output=True, text=True, timeout=600)


def summarize(report: dict[str, Any]) -> tuple[list[str], list[str], int]:
    """-> (vulnerability lines, skip reasons, packages checked)."""
    vulns: list[str] = []
    skipped: list[str] = []
    checked = 0
    for dep in report.get("dependencies", []):
        if "skip_reason" in dep:
            skipped.append(str(dep["skip_reason"]))
            continue
        checked += 1
        for v in dep.get("vulns", []):
            fix = ", ".join(v.get("fix_versions", [])) or "no fixed version yet"
            vulns.append(f"{dep['name']} {dep['version']}: {v['id']} (fixed in {fix})")
    return vulns, skipped, checked


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--strict", action="store_true", help="fail when any package could not be checked")
    ap.add_argument("--service", default="pypi", choices=["pypi", "osv"], help="pip-audit's vulnerability service")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        req, out = Path(tmp) / "requirements.txt", Path(tmp) / "audit.json"
        locked_requirements(req)
        proc = run_audit(req, args.service, out)
        if not out.exists():  # pip-audit itself failed (no route to the service at all, ...)
            last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            print(f"dependency audit: NOT AUDITED: pip-audit failed ({last})")
            return 2 if args.strict else 0
        vulns, skipped, checked = summarize(json.loads(out.read_text()))
    for line in vulns:
        print(f"dependency audit: VULNERABLE {line}")
    total = checked + len(skipped)
    if vulns:
        print(f"dependency audit: {len(vulns)} known vulnerabilities in {total} locked packages")
        return 1
    if skipped:
        print(f"dependency audit: NOT AUDITED: {len(skipped)} of {total} locked packages could not be checked "
              f"against the {args.service} service (first: {skipped[0]})")
        return 2 if args.strict else 0
    print(f"dependency audit: {checked} locked packages checked ({args.service}): no known vulnerabilities")
    return 0


if __name__ == "__main__":
    sys.exit(main())
