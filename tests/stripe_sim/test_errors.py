"""Stripe's errors: authentication, unknown parameters and URLs, Request-Id everywhere."""

from __future__ import annotations

import http.client

from stripe_sim.config import API_KEY


def test_missing_key_is_401_with_stripe_body(sim):
    result = sim.request("/v1/charges", auth=False)
    assert result.status == 401
    assert result.json()["error"]["type"] == "invalid_request_error"
    assert "API key" in result.json()["error"]["message"]


def test_wrong_key_is_401_and_never_echoed(sim):
    result = sim.request("/v1/charges", auth=False, headers={"Authorization": "Bearer sk_bad_1"})
    assert result.status == 401
    assert b"sk_bad_1" not in result.body
    assert API_KEY not in result.body.decode()


def test_basic_auth_with_the_key_as_user_is_accepted(sim):
    import base64

    token = base64.b64encode(f"{API_KEY}:".encode()).decode()
    result = sim.request("/v1/coupons", auth=False, headers={"Authorization": f"Basic {token}"})
    assert result.status == 200


def test_unknown_parameter_is_400_invalid_request_error(sim):
    result = sim.request("/v1/customers", {"colour": "red"})
    assert result.status == 400
    error = result.json()["error"]
    assert error == {
        "message": "Received unknown parameter: colour",
        "type": "invalid_request_error",
        "param": "colour",
    }


def test_unknown_id_is_404_resource_missing(sim):
    result = sim.request("/v1/invoices/in_nothing")
    assert result.status == 404
    assert result.json()["error"]["code"] == "resource_missing"


def test_unknown_url_is_404(sim):
    result = sim.request("/v1/widgets")
    assert result.status == 404
    assert "Unrecognized request URL" in result.json()["error"]["message"]


def test_every_response_carries_a_request_id(sim):
    for path, auth in (("/v1/charges", True), ("/v1/charges", False), ("/v1/nope", True)):
        assert sim.request(path, auth=auth).headers["Request-Id"].startswith("req_")
    assert sim.request("/_sim/health", auth=False).headers["Request-Id"].startswith("req_")


def test_connections_are_kept_alive(sim):
    host, port = sim.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        for _ in range(3):
            connection.request("GET", "/v1/coupons", headers={"Authorization": f"Bearer {API_KEY}"})
            response = connection.getresponse()
            assert response.status == 200
            response.read()
            assert not response.will_close
    finally:
        connection.close()
