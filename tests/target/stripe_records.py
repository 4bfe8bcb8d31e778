"""Generator of Stripe-sized Singer messages (charge-like, ~3 KB nested records).

Used by the target tests and, from the command line, to produce a benchmark input:

    python -m tests.target.stripe_records 100000 > /tmp/charges.singer
"""

from __future__ import annotations

import random
import sys
from collections.abc import Iterator

import msgspec

STREAM = "charge"

_NULLABLE_STRING = {"type": ["string", "null"]}
_NULLABLE_INT = {"type": ["integer", "null"]}
_NULLABLE_BOOL = {"type": ["boolean", "null"]}
_FREE_OBJECT = {"type": ["object", "null"]}
_EXPANDABLE = {"type": ["string", "object", "null"]}


def _address() -> dict:
    keys = ("city", "country", "line1", "line2", "postal_code", "state")
    return {"type": ["object", "null"], "properties": {k: _NULLABLE_STRING for k in keys}}


def _list_of(item: dict) -> dict:
    return {
        "type": ["object", "null"],
        "properties": {
            "object": {"type": "string"},
            "data": {"type": "array", "items": item},
            "has_more": {"type": "boolean"},
            "total_count": _NULLABLE_INT,
            "url": {"type": "string"},
        },
    }


_REFUND = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "object": {"type": "string"},
        "amount": {"type": "integer"},
        "balance_transaction": _EXPANDABLE,
        "charge": _EXPANDABLE,
        "created": {"type": "integer"},
        "currency": {"type": "string"},
        "metadata": _FREE_OBJECT,
        "reason": _NULLABLE_STRING,
        "status": _NULLABLE_STRING,
    },
}

SCHEMA: dict = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "object": {"type": "string"},
        "amount": {"type": "integer"},
        "amount_captured": {"type": "integer"},
        "amount_refunded": {"type": "integer"},
        "application": _EXPANDABLE,
        "application_fee": _EXPANDABLE,
        "application_fee_amount": _NULLABLE_INT,
        "balance_transaction": _EXPANDABLE,
        "billing_details": {
            "type": "object",
            "properties": {
                "address": _address(),
                "email": _NULLABLE_STRING,
                "name": _NULLABLE_STRING,
                "phone": _NULLABLE_STRING,
            },
        },
        "calculated_statement_descriptor": _NULLABLE_STRING,
        "captured": {"type": "boolean"},
        "created": {"type": "integer"},
        "currency": {"type": "string"},
        "customer": _EXPANDABLE,
        "description": _NULLABLE_STRING,
        "disputed": {"type": "boolean"},
        "failure_code": _NULLABLE_STRING,
        "failure_message": _NULLABLE_STRING,
        "fraud_details": _FREE_OBJECT,
        "invoice": _EXPANDABLE,
        "livemode": {"type": "boolean"},
        "metadata": {"type": "object"},
        "outcome": {
            "type": ["object", "null"],
            "properties": {
                "network_status": _NULLABLE_STRING,
                "reason": _NULLABLE_STRING,
                "risk_level": {"type": "string"},
                "risk_score": {"type": "integer"},
                "seller_message": _NULLABLE_STRING,
                "type": {"type": "string"},
            },
        },
        "paid": {"type": "boolean"},
        "payment_intent": _EXPANDABLE,
        "payment_method": _NULLABLE_STRING,
        "payment_method_details": _FREE_OBJECT,
        "receipt_email": _NULLABLE_STRING,
        "receipt_number": _NULLABLE_STRING,
        "receipt_url": _NULLABLE_STRING,
        "refunded": {"type": "boolean"},
        "refunds": _list_of(_REFUND),
        "review": _EXPANDABLE,
        "source": _FREE_OBJECT,
        "shipping": {
            "type": ["object", "null"],
            "properties": {"address": _address(), "name": _NULLABLE_STRING},
        },
        "statement_descriptor": _NULLABLE_STRING,
        "status": {"type": "string"},
        "transfer_data": _FREE_OBJECT,
        "transfer_group": _NULLABLE_STRING,
        "captured_at": _NULLABLE_INT,
        "risk_score_float": {"type": ["number", "null"]},
        "is_test": _NULLABLE_BOOL,
    },
}

_WORDS = [
    "alpha",
    "bravo",
    "charlie",
    "delta",
    "echo",
    "foxtrot",
    "golf",
    "hotel",
    "india",
    "juliet",
    "kilo",
    "lima",
]


def _token(rng: random.Random, n: int = 24) -> str:
    return "".join(
        rng.choices("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", k=n)
    )


def record(i: int, rng: random.Random | None = None) -> dict:
    """A charge-like record of about 3 KB, deterministic for a given `i`."""
    rng = rng or random.Random(i)
    charge_id = f"ch_{i:08d}{_token(rng, 16)}"
    created = 1_600_000_000 + i * 60
    customer: str | dict = f"cus_{_token(rng, 14)}"
    if i % 5 == 0:
        customer = {"id": customer, "object": "customer", "email": f"c{i}@example.com"}
    address = {
        "city": rng.choice(_WORDS).title(),
        "country": "US",
        "line1": f"{rng.randint(1, 999)} {rng.choice(_WORDS).title()} St",
        "line2": None,
        "postal_code": f"{rng.randint(10000, 99999)}",
        "state": "CA",
    }
    refunds = [
        {
            "id": f"re_{_token(rng)}",
            "object": "refund",
            "amount": rng.randint(1, 500),
            "balance_transaction": f"txn_{_token(rng)}",
            "charge": charge_id,
            "created": created + 3600,
            "currency": "usd",
            "metadata": {},
            "reason": None,
            "status": "succeeded",
        }
        for _ in range(i % 3)
    ]
    return {
        "id": charge_id,
        "object": "charge",
        "amount": rng.randint(100, 100_000),
        "amount_captured": rng.randint(0, 100_000),
        "amount_refunded": sum(r["amount"] for r in refunds),
        "application": None,
        "application_fee": None,
        "application_fee_amount": None,
        "balance_transaction": f"txn_{_token(rng)}",
        "billing_details": {
            "address": address,
            "email": f"person{i}@example.com",
            "name": f"{rng.choice(_WORDS).title()} {rng.choice(_WORDS).title()}",
            "phone": None,
        },
        "calculated_statement_descriptor": "EXAMPLE.COM",
        "captured": True,
        "created": created,
        "currency": "usd",
        "customer": customer,
        "description": " ".join(rng.choices(_WORDS, k=8)),
        "disputed": False,
        "failure_code": None,
        "failure_message": None,
        "fraud_details": {},
        "invoice": f"in_{_token(rng)}" if i % 2 else None,
        "livemode": False,
        "metadata": {"order_id": str(i), "note": "héllo wörld ✓", "json_text": '{"a": [1, 2]}'},
        "outcome": {
            "network_status": "approved_by_network",
            "reason": None,
            "risk_level": "normal",
            "risk_score": rng.randint(0, 99),
            "seller_message": "Payment complete.",
            "type": "authorized",
        },
        "paid": True,
        "payment_intent": f"pi_{_token(rng)}",
        "payment_method": f"pm_{_token(rng)}",
        "payment_method_details": {
            "card": {
                "brand": "visa",
                "checks": {
                    "address_line1_check": "pass",
                    "address_postal_code_check": "pass",
                    "cvc_check": "pass",
                },
                "country": "US",
                "exp_month": rng.randint(1, 12),
                "exp_year": rng.randint(2025, 2035),
                "fingerprint": _token(rng, 16),
                "funding": "credit",
                "installments": None,
                "last4": f"{rng.randint(0, 9999):04d}",
                "mandate": None,
                "network": "visa",
                "three_d_secure": None,
                "wallet": None,
            },
            "type": "card",
        },
        "receipt_email": None,
        "receipt_number": None,
        "receipt_url": f"https://pay.example.com/receipts/payment/{_token(rng, 120)}",
        "refunded": bool(refunds),
        "refunds": {
            "object": "list",
            "data": refunds,
            "has_more": False,
            "total_count": len(refunds),
            "url": f"/v1/charges/{charge_id}/refunds",
        },
        "review": None,
        "source": {
            "id": f"card_{_token(rng)}",
            "object": "card",
            "address_city": address["city"],
            "address_country": "US",
            "address_line1": address["line1"],
            "address_line1_check": "pass",
            "address_zip": address["postal_code"],
            "address_zip_check": "pass",
            "brand": "Visa",
            "country": "US",
            "customer": customer if isinstance(customer, str) else customer["id"],
            "cvc_check": "pass",
            "dynamic_last4": None,
            "exp_month": 8,
            "exp_year": 2030,
            "fingerprint": _token(rng, 16),
            "funding": "credit",
            "last4": "4242",
            "metadata": {},
            "name": None,
            "tokenization_method": None,
        },
        "shipping": {"address": address, "name": "Jenny Rosen"} if i % 4 == 0 else None,
        "statement_descriptor": None,
        "status": "succeeded",
        "transfer_data": None,
        "transfer_group": None,
        "captured_at": created + 5,
        "risk_score_float": rng.random(),
        "is_test": None,
    }


def messages(count: int, *, state_every: int = 1000, stream: str = STREAM) -> Iterator[dict]:
    """SCHEMA, then `count` RECORDs with a STATE after every `state_every` records."""
    yield {"type": "SCHEMA", "stream": stream, "schema": SCHEMA, "key_properties": ["id"]}
    rng = random.Random(42)
    for i in range(count):
        yield {"type": "RECORD", "stream": stream, "record": record(i, rng)}
        if (i + 1) % state_every == 0 or i + 1 == count:
            yield {"type": "STATE", "value": {"bookmarks": {stream: {"created": i}}}}


def singer_lines(count: int, **kwargs: int | str) -> Iterator[bytes]:
    """The messages of `messages()` as newline-terminated JSON lines."""
    for message in messages(count, **kwargs):  # type: ignore[arg-type]
        yield msgspec.json.encode(message) + b"\n"


def main() -> None:
    """Write `argv[1]` records (default 100,000) as a Singer stream to stdout."""
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    out = sys.stdout.buffer
    for line in singer_lines(count):
        out.write(line)


if __name__ == "__main__":
    main()
