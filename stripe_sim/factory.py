"""Build whole Stripe objects of one resource quickly from its shape.

Synthesizing every nested field of every object would make 200,000 charges take minutes,
so each factory draws a handful of nested-field variants once and gives every object fresh
top-level scalars (ids, amounts, texts, timestamps) plus one of those variants.
"""

from __future__ import annotations

from typing import Any

from stripe_sim.synth import Synth, resource_shape

NESTED = ("obj", "arr")
VARIANTS = 24


class ObjectFactory:
    """Objects of one Stripe resource, key order ``id``, ``object``, then alphabetical."""

    def __init__(self, synth: Synth, resource: str, anchor: int, newer_rate: float) -> None:
        self.synth = synth
        self.resource = resource
        self.newer_rate = newer_rate
        shape = resource_shape(resource)
        self.fields: dict[str, Any] = {
            k: v for k, v in shape["fields"].items() if k not in ("id", "object")
        }
        self.newer: dict[str, Any] = shape["newer_fields"]
        self.id_shape: dict[str, Any] = shape["fields"]["id"]
        nested = [k for k, v in self.fields.items() if v["t"] in NESTED]
        self.variants = [
            {k: synth.value(k, self.fields[k], anchor) for k in nested} for _ in range(VARIANTS)
        ]

    def new_id(self) -> str:
        shape = self.id_shape
        if shape.get("g") == "id":
            return self.synth.stripe_id(shape["prefix"], shape["len"])
        return self.synth.token(8, "ABCDEFGHJKLMNPQRSTUVWXYZ23456789")

    def build(
        self, created: int, object_id: str | None = None, fixed: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """A fresh object created at ``created``; ``fixed`` values are used as given.

        Passing the fields a caller sets anyway (related ids, amounts, statuses) as ``fixed``
        skips synthesizing them, which matters for the 200,000-charge benchmark data.
        """
        synth = self.synth
        fixed = fixed or {}
        object_id = object_id or self.new_id()
        variant = synth.rng.choice(self.variants)
        obj: dict[str, Any] = {"id": object_id, "object": self.resource}
        for name, shape in self.fields.items():
            if name in fixed:
                obj[name] = fixed[name]
            elif name in variant:
                obj[name] = variant[name]
            else:
                obj[name] = synth.value(name, shape, created, object_id)
        obj["created"] = created
        obj.update((k, v) for k, v in fixed.items() if k not in obj)
        if self.newer and synth.rng.random() < self.newer_rate:
            for name, shape in self.newer.items():
                obj[name] = synth.value(name, shape, created, object_id)
        return obj
