"""Synthesize Stripe-shaped values from the shape trees in ``shapes.json``.

A shape node is a small dict: ``t`` is the JSON kind (str, int, num, bool, null, obj, map,
arr, list), ``g`` the generator for scalars (enum, const, id, email, url, name, phone,
digits, token, text, time, money, year, month, small), ``n`` marks nullable fields and
``p`` the probability of filling a field the example left null.
"""

from __future__ import annotations

import base64
import json
import random
import string
from functools import cache
from pathlib import Path
from typing import Any

SHAPES_PATH = Path(__file__).with_name("shapes.json")
ALNUM = string.ascii_letters + string.digits
UPPER = string.ascii_uppercase + string.digits
WORDS = (
    "annual",
    "basic",
    "bundle",
    "cloud",
    "coffee",
    "credit",
    "deluxe",
    "digital",
    "express",
    "garden",
    "gift",
    "growth",
    "hosting",
    "license",
    "monthly",
    "office",
    "order",
    "plan",
    "premium",
    "pro",
    "renewal",
    "seat",
    "service",
    "shipping",
    "standard",
    "starter",
    "storage",
    "support",
    "team",
    "ticket",
    "training",
    "upgrade",
    "usage",
    "workshop",
    "yearly",
)
FIRST = (
    "Ada",
    "Alan",
    "Amara",
    "Bo",
    "Carla",
    "Dev",
    "Emil",
    "Farah",
    "Gus",
    "Hana",
    "Ines",
    "Jon",
    "Kai",
    "Lena",
    "Mina",
    "Noor",
    "Omar",
    "Pia",
)
LAST = (
    "Abe",
    "Berg",
    "Chen",
    "Diaz",
    "Eze",
    "Fox",
    "Gray",
    "Haas",
    "Ito",
    "Jha",
    "Kim",
    "Lund",
    "Mora",
    "Nash",
    "Ortiz",
    "Park",
    "Quinn",
)
METADATA_KEYS = ("order_id", "plan_tier", "region", "source", "campaign", "sales_rep", "cohort")
DAY = 86_400
B64_TO_ALNUM = bytes.maketrans(b"+/", b"Zq")


@cache
def load_shapes() -> dict[str, Any]:
    """The committed shapes document (derived by ``scripts/derive_shapes.py``)."""
    return json.loads(SHAPES_PATH.read_text())


def resource_shape(resource: str) -> dict[str, Any]:
    """Shape entry of one Stripe resource: ``fields``, ``newer_fields``, ``expandable``."""
    return load_shapes()["resources"][resource]


class Synth:
    """Seeded value factory; every call draws from the same RNG so output is reproducible."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def token(self, length: int, alphabet: str = ALNUM) -> str:
        """Random characters; the common alphabets take fast paths (ids are hot)."""
        if alphabet == ALNUM:
            raw = base64.b64encode(self.rng.randbytes(length * 3 // 4 + 3))
            return raw.translate(B64_TO_ALNUM)[:length].decode()
        if alphabet == UPPER:
            return base64.b32encode(self.rng.randbytes(length * 5 // 8 + 5))[:length].decode()
        if alphabet == string.digits:
            return str(self.rng.randrange(10**length)).zfill(length)
        return "".join(self.rng.choices(alphabet, k=length))

    def stripe_id(self, prefix: str, length: int) -> str:
        return f"{prefix}_{self.token(length)}"

    def words(self, count: int) -> str:
        return " ".join(self.rng.choices(WORDS, k=count)).capitalize()

    def person(self) -> str:
        return f"{self.rng.choice(FIRST)} {self.rng.choice(LAST)}"

    def email(self) -> str:
        return f"{self.rng.choice(FIRST).lower()}.{self.token(6).lower()}@example.com"

    def money(self) -> int:
        return self.rng.choice((500, 1000, 1500, 2000, 4900, 9900)) + self.rng.randrange(0, 90_000)

    def metadata(self) -> dict[str, str]:
        keys = self.rng.sample(METADATA_KEYS, self.rng.randrange(0, 6))
        return {key: self.token(10) for key in keys}

    def value(self, name: str, shape: dict[str, Any], created: int, parent_id: str = "") -> Any:
        """One value for ``shape``; ``created`` anchors timestamps, ``parent_id`` list urls."""
        if "p" in shape and self.rng.random() >= shape["p"]:
            return None
        kind = shape["t"]
        if kind == "str":
            return self.string(shape, created)
        if kind == "int":
            return self.integer(shape, created)
        if kind == "bool":
            return name != "livemode" and self.rng.random() < 0.2
        if kind == "num":
            return round(self.rng.uniform(1, 100), 1)
        if kind == "map":
            return self.metadata()
        if kind == "obj":
            return {k: self.value(k, sub, created, parent_id) for k, sub in shape["f"].items()}
        if kind == "arr":
            item = shape.get("i")
            if item is None:
                return []
            return [
                self.value(name, item, created, parent_id) for _ in range(self.rng.randrange(3))
            ]
        if kind == "list":
            return {
                "object": "list",
                "data": [],
                "has_more": False,
                "url": shape["url"].replace("{id}", parent_id),
            }
        return None

    def string(self, shape: dict[str, Any], created: int) -> str:
        kind = shape["g"]
        if kind == "const":
            return shape["v"]
        if kind == "enum":
            return self.rng.choice(shape["v"])
        if kind == "id":
            return self.stripe_id(shape["prefix"], shape["len"])
        if kind == "email":
            return self.email()
        if kind == "name":
            return self.person()
        if kind == "url":
            return f"https://pay.sim.example/{self.token(24)}"
        if kind == "phone":
            return f"+1555{self.token(7, string.digits)}"
        if kind == "digits":
            return self.token(shape["len"], string.digits)
        if kind == "token":
            return self.token(shape["len"], UPPER if shape.get("upper") else ALNUM)
        return self.words(min(shape.get("words", 2), 8))

    def integer(self, shape: dict[str, Any], created: int) -> int:
        kind = shape["g"]
        if kind == "time":
            return created + self.rng.randrange(0, 30 * DAY)
        if kind == "money":
            return self.money()
        if kind == "year":
            return self.rng.randrange(2026, 2032)
        if kind == "month":
            return self.rng.randrange(1, 13)
        return self.rng.randrange(0, shape.get("max", 3) + 1)
