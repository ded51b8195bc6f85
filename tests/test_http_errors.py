"""Error answers of the webhook service (app/http_errors.py): JSON in one shape everywhere, HTML
pages under /ops, and never a traceback in an answer."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import replace

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.config import Config
from app.service import create_app
from app.webhook import sign

SECRET_TEXT = "s3cr3t-internal-detail"


def json_error(resp) -> dict:
    assert resp.mimetype == "application/json", resp.get_data(as_text=True)[:200]
    body = resp.get_json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "hint"}, body
    return body["error"]


@pytest.fixture()
def broken(config: Config) -> Iterator[Flask]:
    """The service with routes that fail unexpectedly, one in the API and one in the console."""
    flask_app = create_app(replace(config, max_body_bytes=1024))
    flask_app.testing = True

    def boom() -> str:
        raise RuntimeError(SECRET_TEXT)

    flask_app.add_url_rule("/webhooks/boom", "api_boom", boom, methods=["GET", "POST"])
    flask_app.add_url_rule("/ops/boom", "ops_boom", boom)
    yield flask_app
    flask_app.extensions["zr_pool"].close(timeout=0)


@pytest.fixture()
def broken_client(broken: Flask) -> FlaskClient:
    return broken.test_client()


@pytest.mark.parametrize("path", ["/webhooks/nope", "/webhooks/whatsapp/extra", "/nope", "/healthz/x"])
def test_unknown_api_path_is_json_404(client: FlaskClient, path: str) -> None:
    resp = client.get(path)
    assert resp.status_code == 404
    err = json_error(resp)
    assert err["code"] == "not_found" and err["message"]


def test_wrong_method_is_json_405_with_allow(client: FlaskClient) -> None:
    resp = client.put("/webhooks/whatsapp", data=b"{}")
    assert resp.status_code == 405
    assert json_error(resp)["code"] == "method_not_allowed"
    assert {"GET", "POST"} <= {m.strip() for m in resp.headers["Allow"].split(",")}


def test_body_too_large_is_json_413(broken_client: FlaskClient, config: Config) -> None:
    body = b'{"object": "whatsapp_business_account", "entry": [], "padding": "' + b"x" * 2048 + b'"}'
    resp = broken_client.post(
        "/webhooks/whatsapp",
        data=body,
        headers={"Content-Type": "application/json", "X-Hub-Signature-256": sign(body, config.app_secret)},
    )
    assert resp.status_code == 413
    assert json_error(resp)["code"] == "request_entity_too_large"


def test_unexpected_exception_is_json_500_without_a_traceback(broken_client: FlaskClient, caplog) -> None:
    with caplog.at_level(logging.ERROR, logger="app.http_errors"):
        resp = broken_client.post("/webhooks/boom", data=b"{}")
    assert resp.status_code == 500
    err = json_error(resp)
    assert err == {"code": "internal_error", "message": "internal server error", "hint": None}
    text = resp.get_data(as_text=True)
    for leak in ("Traceback", SECRET_TEXT, "RuntimeError", "boom", __file__):
        assert leak not in text
    # The traceback is in the log, for operators.
    [record] = [r for r in caplog.records if "event=http.unexpected_error" in r.getMessage()]
    assert "path=/webhooks/boom" in record.getMessage() and "exception=RuntimeError" in record.getMessage()
    assert record.exc_info is not None and record.exc_info[0] is RuntimeError


def test_unknown_ops_path_is_an_html_404(client: FlaskClient) -> None:
    resp = client.get("/ops/nope")
    assert resp.status_code == 404
    assert resp.mimetype == "text/html"
    page = resp.get_data(as_text=True)
    assert "<html" in page and "404" in page and "Not Found" in page and "ZenRent support" in page


def test_ops_refusal_is_an_html_page(client: FlaskClient) -> None:
    resp = client.post("/ops/logout")  # no CSRF token
    assert resp.status_code == 400
    assert resp.mimetype == "text/html" and "CSRF" in resp.get_data(as_text=True)


def test_unexpected_exception_under_ops_is_an_html_500_without_a_traceback(broken_client: FlaskClient) -> None:
    resp = broken_client.get("/ops/boom")
    assert resp.status_code == 500
    assert resp.mimetype == "text/html"
    page = resp.get_data(as_text=True)
    assert "500" in page and "Traceback" not in page and SECRET_TEXT not in page
