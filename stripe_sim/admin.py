"""Admin endpoints under ``/_sim`` (no API key): stats, truth per table, mutation, knobs."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import orjson

from stripe_sim import ledger, per_parent
from stripe_sim.api import expanded
from stripe_sim.children import CHILD_OF, row_count, truth
from stripe_sim.config import MAIN_ACCOUNT, unavailable_problem
from stripe_sim.dataset import EVENT_RETENTION
from stripe_sim.limits import LIMIT_KNOBS
from stripe_sim.mutate import MutationError, mutate
from stripe_sim.tables import SPECS, STREAMS, TableKind

if TYPE_CHECKING:
    from stripe_sim.server import SimServer

# Knobs of ``state.Knobs``, of the limiters' ``LimitKnobs``, and ``strict_params``, read
# from the config per request.
STATE_KNOBS = ("latency_ms", "rate_limit", "fault_rate", "other_api_version_rate", "unavailable")
KNOBS = (*STATE_KNOBS, *LIMIT_KNOBS, "strict_params")
FLAGS = frozenset({"limits", "strict_params"})
COUNTS = frozenset({"concurrency_limit", "endpoint_concurrency_limit"})


def reply(status: int, obj: Any) -> tuple[int, bytes]:
    return status, orjson.dumps(obj)


def handle_admin(
    server: SimServer, method: str, path: str, query: dict[str, list[str]], payload: bytes
) -> tuple[int, bytes]:
    """Route one admin request; returns ``(status, body)``."""

    def flag(name: str) -> bool:
        return query.get(name, ["0"])[0] not in ("0", "", "false")

    parts = path.strip("/").split("/")[1:]
    if parts == ["health"]:
        return reply(200, {"ok": True})
    if parts == ["info"]:
        return reply(200, info(server))
    if parts == ["stats"]:
        return reply(200, server.stats.snapshot(with_log=flag("log"), reset=flag("reset")))
    if parts == ["stats", "reset"] and method == "POST":
        server.stats.reset()
        return reply(200, {"ok": True})
    if len(parts) == 2 and parts[0] == "objects":
        return objects(server, parts[1], query.get("account", [MAIN_ACCOUNT])[0], flag("ids_only"))
    if parts == ["mutate"] and method == "POST":
        try:
            return reply(200, mutate(server.state, parse_json(payload)))
        except MutationError as exc:
            return reply(400, {"error": str(exc)})
    if parts == ["knobs"] and method == "POST":
        return set_knobs(server, payload)
    return reply(404, {"error": f"unknown admin endpoint {method} {path}"})


def parse_json(payload: bytes) -> dict[str, Any]:
    try:
        body = orjson.loads(payload or b"{}")
    except orjson.JSONDecodeError as exc:
        raise MutationError(f"body is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise MutationError("body must be a JSON object")
    return body


def info(server: SimServer) -> dict[str, Any]:
    state = server.state
    return {
        "url": server.url,
        # The accounts with data of their own: the platform, then the connected ones.
        "accounts": list(state.accounts),
        "now": state.clock(),
        "knobs": knobs(server),
        "counts": {
            account_id: {
                **{stream: len(table) for stream, table in data.tables.items()},
                **{
                    child: row_count(data, child)
                    for children in CHILD_OF.values()
                    for child in children
                },
                **{child: per_parent.row_count(data, child) for child in per_parent.KIN_TABLES},
            }
            for account_id, data in state.accounts.items()
        },
    }


def objects(server: SimServer, stream: str, account: str, ids_only: bool) -> tuple[int, bytes]:
    """Current truth of one table, newest first (events: only those still retained), as
    the tap reads it: with the registry's expansions (a quote's ``line_items``). A child
    table answers its live rows and, in ``deleted``, the rows removed from their parents;
    the balance its one object (no ids)."""
    state = server.state
    data = state.account(account)
    if data is None:
        return reply(404, {"error": f"unknown account {account}"})
    if stream not in STREAMS:
        return reply(404, {"error": f"unknown stream {stream}; known: {', '.join(STREAMS)}"})
    extra = b""
    if stream == "account":
        rows_ids, bodies = [data.account_id], [data.account]
    elif stream == "balance":  # one object without an id
        rows_ids, bodies = [], [ledger.balance(data)]
    elif SPECS[stream].parent is not None:
        if SPECS[stream].kind is TableKind.EMBEDDED_CHILD:
            rows_ids, bodies = truth(data, stream)
        else:
            rows_ids, bodies = per_parent.truth(data, stream)
        extra = b',"deleted":' + orjson.dumps(data.removed.get(stream, []))
    else:
        rows = data.tables[stream].rows
        if stream == "event":
            oldest = state.clock() - EVENT_RETENTION
            rows = tuple(row for row in rows if row.created >= oldest)
        rows_ids, bodies = [row.id for row in rows], [row.body for row in rows]
        if SPECS[stream].expand and not ids_only:
            bodies = expanded(data, stream, bodies, list(SPECS[stream].expand), prefix="")
    head = orjson.dumps({"stream": stream, "account": account, "ids": rows_ids})[:-1] + extra
    if ids_only:
        return 200, head + b"}"
    return 200, head + b',"objects":[' + b",".join(bodies) + b"]}"


def knobs(server: SimServer) -> dict[str, Any]:
    """Every knob's current value."""
    return {
        **vars(server.state.knobs),
        **dataclasses.asdict(server.limits.knobs),
        "strict_params": server.state.config.strict_params,
    }


def knob_problem(name: str, value: Any) -> str | None:
    """What is wrong with ``value`` for the knob ``name``, or None."""
    if name == "unavailable":
        return unavailable_problem(value)
    if name in FLAGS:
        return None if isinstance(value, bool) else f"{name} must be true or false"
    kind = int if name in COUNTS else int | float
    if isinstance(value, bool) or not isinstance(value, kind) or value < 0:
        return f"{name} must be {'an integer' if name in COUNTS else 'a number'} >= 0"
    return None


def set_knob(server: SimServer, name: str, value: Any) -> None:
    state = server.state
    if name == "strict_params":
        # Not a field of ``state.Knobs``: the API reads it from the config, replaced.
        state.config = dataclasses.replace(state.config, strict_params=value)
    elif name in LIMIT_KNOBS:
        setattr(server.limits.knobs, name, value if name in FLAGS | COUNTS else float(value))
    else:
        setattr(state.knobs, name, dict(value) if name == "unavailable" else float(value))


def set_knobs(server: SimServer, payload: bytes) -> tuple[int, bytes]:
    try:
        changes = parse_json(payload)
    except MutationError as exc:
        return reply(400, {"error": str(exc)})
    unknown = sorted(set(changes) - set(KNOBS))
    if unknown:
        return reply(400, {"error": f"unknown knob(s): {', '.join(unknown)}; known: {KNOBS}"})
    for name, value in changes.items():
        problem = knob_problem(name, value)
        if problem:
            return reply(400, {"error": problem})
    for name, value in changes.items():
        set_knob(server, name, value)
    return reply(200, knobs(server))
