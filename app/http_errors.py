"""Error answers of the webhook service, defined once.

Every 4xx/5xx of the service's HTTP API (the webhook, /healthz, /metrics, and Flask's own 404,
405 and 413) is JSON in one shape::

    {"error": {"code": "<snake_case or SQLSTATE>", "message": "<what happened>", "hint": <str or null>}}

The support console (/ops) gets HTML pages instead: `register_error_handlers` is given a renderer
per path prefix. An unexpected exception is logged with its traceback and answered with a generic
500 (code ``internal_error``) that never contains the exception's text or traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from flask import Flask, Response, jsonify, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException, InternalServerError

from .logging_setup import kv

log = logging.getLogger(__name__)

#: Renders an HTML error page: (status, title, message) -> a response.
HtmlErrorPage = Callable[[int, str, str], ResponseReturnValue]

INTERNAL_ERROR = "internal_error"
INTERNAL_MESSAGE = "internal server error"


def error_body(code: str, message: str, hint: str | None = None) -> dict[str, Any]:
    """The one JSON error shape of the service."""
    return {"error": {"code": code, "message": message, "hint": hint}}


def error_response(status: int, code: str, message: str, hint: str | None = None) -> tuple[Response, int]:
    return jsonify(error_body(code, message, hint)), status


def http_error_code(exc: HTTPException) -> str:
    """werkzeug's name as a code: "Not Found" -> not_found, "Request Entity Too Large" -> request_entity_too_large."""
    return (exc.name or "error").lower().replace(" ", "_")


def _html_page_for(path: str, html_pages: Mapping[str, HtmlErrorPage]) -> HtmlErrorPage | None:
    for prefix, page in html_pages.items():
        if path == prefix or path.startswith(prefix.rstrip("/") + "/"):
            return page
    return None


def register_error_handlers(app: Flask, html_pages: Mapping[str, HtmlErrorPage] | None = None) -> None:
    """JSON errors for the whole app, except HTML pages under the given path prefixes (e.g. /ops)."""
    pages = dict(html_pages or {})

    def answer(
        status: int, code: str, title: str, message: str, headers: Mapping[str, str] | None = None
    ) -> ResponseReturnValue:
        page = _html_page_for(request.path, pages)
        body = page(status, title, message) if page is not None else error_response(status, code, message)
        resp = app.make_response(body)
        resp.status_code = status
        for name, value in (headers or {}).items():
            resp.headers[name] = value
        return resp

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> ResponseReturnValue:
        if exc.response is not None:  # abort(<a ready response>): keep it
            return exc.response
        if isinstance(exc, InternalServerError) and exc.original_exception is not None:
            return unexpected_error(exc.original_exception)
        status = exc.code or 500
        # Keep protocol headers such as 405's Allow; the body (and its Content-Type) is ours.
        headers = {k: v for k, v in exc.get_headers() if k.lower() != "content-type"}
        title = exc.name or "Error"
        return answer(status, http_error_code(exc), title, exc.description or title, headers)

    @app.errorhandler(Exception)
    def unexpected_error(exc: BaseException) -> ResponseReturnValue:
        if isinstance(exc, HTTPException):
            return http_error(exc)
        # The traceback goes to the log only, never into the answer.
        log.error(
            "%s",
            kv("http.unexpected_error", method=request.method, path=request.path, exception=type(exc).__name__),
            exc_info=exc,
        )
        return answer(500, INTERNAL_ERROR, "Internal Server Error", INTERNAL_MESSAGE)
