"""The ``unavailable`` knob refuses a table as Stripe refuses an account or key without it."""

from __future__ import annotations

import pytest

from stripe_sim.runner import SimHandle
from tests.stripe_sim.conftest import small_sim


@pytest.mark.parametrize(
    ("answer", "status", "words"),
    [
        ("permission", 403, "does not have the required permissions"),
        ("not_set_up", 400, "Your account is not set up to use Coupons"),
        ("missing", 404, "Unrecognized request URL (GET: /v1/coupons)"),
    ],
)
def test_a_table_turned_off_is_refused_and_the_others_answer(
    answer: str, status: int, words: str
) -> None:
    with small_sim(unavailable={"coupon": answer}) as sim:
        listed = sim.request("/v1/coupons")
        assert listed.status == status
        assert words in listed.json()["error"]["message"]
        assert sim.request("/v1/coupons/any").status == status
        assert sim.request("/v1/charges").status == 200


def test_the_knob_turns_tables_off_and_on_while_running(fresh_sim: SimHandle) -> None:
    assert fresh_sim.request("/v1/products").status == 200
    fresh_sim.set_knobs(unavailable={"product": "permission"})
    assert fresh_sim.request("/v1/products").status == 403
    fresh_sim.set_knobs(unavailable={})
    assert fresh_sim.request("/v1/products").status == 200


def test_an_unknown_table_or_answer_is_refused() -> None:
    with pytest.raises(ValueError, match="unavailable: widget=permission"):
        small_sim(unavailable={"widget": "permission"}).__enter__()
    with pytest.raises(ValueError, match="unavailable: coupon=sometimes"):
        small_sim(unavailable={"coupon": "sometimes"}).__enter__()


def test_a_parent_or_child_turned_off_refuses_the_nested_list(fresh_sim: SimHandle) -> None:
    transfer = fresh_sim.objects("transfer")[0]
    url = transfer["reversals"]["url"]
    assert fresh_sim.request(url).status == 200
    for table in ("transfer", "transferreversal"):
        fresh_sim.set_knobs(unavailable={table: "permission"})
        assert fresh_sim.request(url).status == 403, table
    fresh_sim.set_knobs(unavailable={})
    assert fresh_sim.request(url).status == 200
