"""Regenerate docs/redis-schema.md from shared/keys.py (KEY_SPECS is the source of truth).

    uv run python scripts/gen_redis_schema.py           # rewrite the doc
    uv run python scripts/gen_redis_schema.py --check   # exit 1 if the doc is out of date
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from shared.keys import (  # noqa: E402 - after the sys.path tweak, so the script runs from anywhere
    DEFAULT_NAMESPACE,
    GROUP_ALERTER,
    GROUP_API,
    GROUP_ORCHESTRATOR,
    KEY_SPECS,
    STREAM_MAXLEN,
    TOKEN_LEDGER_FIELDS,
    KeySpec,
)
from shared.messages import MESSAGE_TYPES  # noqa: E402

EXAMPLES = (
    ("XRANGE {NS}:signals - + COUNT 10", "the first signals"),
    ("XREVRANGE {NS}:events + - COUNT 20", "the latest audit events"),
    ("XINFO GROUPS {NS}:signals", "consumer groups, lag and pending counts"),
    ("XPENDING {NS}:signals {group}", "entries delivered but not acked yet"),
    ("HGETALL {NS}:token:<id>", "one token's lifecycle, owner, epoch, position"),
    ("HGETALL {NS}:ledger:<id>", "its fills not folded yet and their trades' settlement status"),
    ("SMEMBERS {NS}:tokens:running", "tokens by state"),
    ("SMEMBERS {NS}:gw:want:orchestrator", "what the orchestrator wants the gateway to stream"),
    ("HGETALL {NS}:book:<id>", "the latest tick of a token"),
    ("SUBSCRIBE {NS}:tick:<id>", "live ticks of a token"),
    ("PTTL {NS}:worker:<worker_id>:lease", "-2 means the worker is considered dead"),
    ("SCAN 0 MATCH {NS}:health:* COUNT 1000", "every heartbeat"),
    ("GET {NS}:halt", "kill switch: (nil), reduce_only or halt"),
)

DOC = ROOT / "docs" / "redis-schema.md"
NS = DEFAULT_NAMESPACE

KINDS = ("stream", "channel", "hash", "set", "zset", "string")


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ") or "—"


def _default_retention(spec: KeySpec) -> str:
    return "not stored (pub/sub)" if spec.kind == "channel" else "kept until deleted"


def key_table(specs: tuple[KeySpec, ...] = KEY_SPECS) -> str:
    rows = ["| key | type | writers | readers | meaning | retention |", "|---|---|---|---|---|---|"]
    ordered = sorted(specs, key=lambda s: KINDS.index(s.kind) if s.kind in KINDS else len(KINDS))
    for s in ordered:
        rows.append(f"| `{NS}:{s.pattern}` | {s.kind} | {_cell(s.writers)} | {_cell(s.readers)} | "
                    f"{_cell(s.meaning)} | {_cell(s.retention or _default_retention(s))} |")
    return "\n".join(rows)


def token_fields_table() -> str:
    rows = ["| field | meaning |", "|---|---|"]
    rows += [f"| `{name}` | {_cell(meaning)} |" for name, meaning in TOKEN_LEDGER_FIELDS]
    return "\n".join(rows)


def _groups(group: str) -> str:
    streams = [f"`{NS}:{s.pattern}`" for s in KEY_SPECS if s.kind == "stream" and f"group {group})" in s.readers]
    return ", ".join(streams) or "—"


def group_table() -> str:
    rows = ["| group | streams |", "|---|---|"]
    rows += [f"| `{g}` | {_groups(g)} |" for g in (GROUP_ORCHESTRATOR, GROUP_API, GROUP_ALERTER) if _groups(g) != "—"]
    return "\n".join(rows)


def examples() -> str:
    cmds = [(cmd.format(NS=NS, group=GROUP_ORCHESTRATOR), note) for cmd, note in EXAMPLES]
    width = max(len(cmd) for cmd, _ in cmds) + 2
    return "\n".join(f"{cmd.ljust(width)}# {note}" for cmd, note in cmds)


def render() -> str:
    examples_text = examples()
    types = ", ".join(f"`{cls.TYPE}`" for cls in MESSAGE_TYPES)
    maxlen = ", ".join(f"`{name}` ~{n:,}" for name, n in STREAM_MAXLEN.items())
    return f"""# Redis schema

Every key polyfleet uses, generated from `shared/keys.py` (`KEY_SPECS`) by
`scripts/gen_redis_schema.py`; `tests/unit/test_redis_schema_doc.py` fails when the two disagree.
Keys are shown with the default namespace `{NS}:`; `PF_NAMESPACE` changes the prefix for every key
at once. Placeholders in braces (`{{token_id}}`) are filled in by the `Keys` methods.

## Keys

{key_table()}

### Position fields of `{NS}:token:{{token_id}}`

Written together by the orchestrator from the token's ledger (`{NS}:ledger:{{token_id}}`) each time a
fill or a trade status is booked. Matched counts every fill whose trade did not fail; confirmed only
fills whose trade is CONFIRMED; a FAILED trade's fills count nowhere (docs/orchestrator.md, Settlement).

{token_fields_table()}

## Stream entries

Every stream entry is a flat map of human-readable strings (`shared/messages.py`), so
`redis-cli XRANGE` shows it as it is. Every entry has:

| field | meaning |
|---|---|
| `type` | message type: {types} |
| `v` | schema version of that type; a change of shape is a new version (`fill` is v2: v1 entries still decode, as CONFIRMED fills) |
| `id` | idempotency key (deterministic, e.g. `stable_id(...)`); effects are idempotent by it |
| `ts_event` | when it happened at the venue, ms since the epoch |
| `ts_init` | when we created the message, ms since the epoch |
| `producer` | `service:instance` that wrote it |

The other fields belong to the type. Nested values (START parameters, event details) are JSON text
in one field; booleans are `true` / `false`. An entry of an unknown type or version, or one whose
fields do not validate, is logged, counted, acked and skipped by the consumer, never retried
forever. Streams are trimmed approximately (`XADD ... MAXLEN ~`): {maxlen}.

## Market systems (v1 CTF and v2 Protocol V2 markets)

Polymarket runs two market systems side by side, named by each market's Gamma `version`
(docs/venue.md V1). Their outcome ids (v1 `tokenId`s, v2 `positionId`s) are uint256 decimal strings
in disjoint namespaces, so every key stays keyed by the id string alone (`{NS}:book:{{token_id}}`,
`{NS}:token:{{token_id}}`, `{NS}:tick:{{token_id}}`, ...): the keys are **compatible, nothing is
migrated**. The system travels beside the id:

- the hash `{NS}:meta:{{token_id}}`: field `version`, Gamma's version of the token's market
  (absent: v1);
- `signal` entries: field `market_version` (message version 2; version-1 entries still decode,
  without it: v1);
- the hash `{NS}:token:{{token_id}}`: field `market_version`, set when the token is queued (absent: v1);
- `cmd` START `params`: `market_version`, `min_order_size` (Gamma `orderMinSize`), `neg_risk`,
  `condition_id` (absent: v1, the worker's default of 5.0, false, ""), and `fee_rate`,
  `fee_exponent` (Gamma `feeSchedule`; absent: the worker reads `/clob-markets` `fd`);
- the sets in `{NS}:arb:catalogue`: `market_version` (absent: v1).

Everything written before market systems existed was a v1 (CTF) market, which is what "absent"
means. A Gamma version polyfleet does not know is carried as Gamma spelled it, and the orchestrator
rejects the token (`token.rejected`, `UnknownMarketVersion`, naming the fix): nothing is started.

## Consumer groups

Delivery is at-least-once: a consumer acks an entry only after its effect is stored, so a crash
means the entry is delivered again (effects are idempotent by `id`). A restarted consumer (same
name) first re-reads its own pending entries; entries left pending by a dead consumer for longer
than `claim_idle_ms` are taken over with `XAUTOCLAIM`.

{group_table()}

Each worker reads its own `{NS}:cmd:{{worker_id}}` stream. Pub/sub channels (`{NS}:tick:*`,
`{NS}:gw:notify`) are lossy by design and carry only what can be re-read (`{NS}:book:*`, the
`{NS}:gw:want:*` sets).

## Looking around with redis-cli

```sh
redis-cli -u "${{PF_REDIS_URL:-redis://127.0.0.1:6379/0}}"   # then:

{examples_text}
```
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="exit 1 if docs/redis-schema.md is out of date")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = DOC.read_text() if DOC.exists() else ""
        if current != text:
            print(f"{DOC.relative_to(ROOT)} is out of date: run python scripts/gen_redis_schema.py",  # noqa: T201
                  file=sys.stderr)
            return 1
        return 0
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text(text)
    print(f"wrote {DOC.relative_to(ROOT)}")  # noqa: T201
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
