from __future__ import annotations

import json
import logging

import pytest
from quart import Quart

from shipshape.logging import ReadableFormatter
from shipshape.typing import Message
from tests.shipshape.conftest import MakeApp, asgi_of, http_scope

CSP2 = {
    "csp-report": {
        "document-uri": "https://app.example/",
        "violated-directive": "script-src-elem",
        "blocked-uri": "https://evil.example/x.js",
        "line-number": 3,
    }
}
REPORTING_API = [
    {
        "type": "csp-violation",
        "age": 10,
        "url": "https://app.example/",
        "body": {
            "documentURL": "https://app.example/",
            "effectiveDirective": "style-src-elem",
            "blockedURL": "inline",
            "disposition": "enforce",
        },
    },
    {"type": "csp-violation", "body": {"documentURL": "https://app.example/b"}},
]


@pytest.fixture
def app(make_app: MakeApp) -> Quart:
    return make_app(SHIPSHAPE_ASSETS=False)


@pytest.mark.parametrize(
    ("content_type", "payload", "lines"),
    [
        ("application/csp-report", CSP2, 1),
        ("application/reports+json", REPORTING_API, 2),
        ("application/json", CSP2, 1),
    ],
)
async def test_good_reports_are_logged_once_each(
    app: Quart,
    caplog: pytest.LogCaptureFixture,
    content_type: str,
    payload: object,
    lines: int,
) -> None:
    caplog.set_level(logging.WARNING, "shipshape.csp")
    async with app.test_app():
        response = await app.test_client().post(
            "/csp-report", data=json.dumps(payload), headers={"Content-Type": content_type}
        )
    assert response.status_code == 204
    records = [r for r in caplog.records if r.name == "shipshape.csp"]
    assert len(records) == lines
    first = records[0].__dict__["csp"]
    assert first.get("document-uri", first.get("documentURL")) == "https://app.example/"


@pytest.mark.parametrize(
    ("content_type", "body", "status"),
    [
        ("application/csp-report", b"{not json", 400),
        ("application/csp-report", b'{"csp-report": "x"}', 400),
        ("application/reports+json", b"[]", 400),
        ("application/reports+json", b'[{"type": "x"}]', 400),
        ("application/reports+json", b"42", 400),
        ("text/plain", json.dumps(CSP2).encode(), 400),
        ("application/csp-report", b'{"csp-report": {"a": "' + b"x" * 70_000 + b'"}}', 413),
        # One body of many tiny reports would write a log line each.
        (
            "application/reports+json",
            json.dumps([{"type": "csp-violation", "body": {}}] * 101).encode(),
            400,
        ),
        # Regression: nested 30,000 deep (60 KB, under the cap) was a 500 (RecursionError).
        ("application/reports+json", b"[" * 30_000 + b"]" * 30_000, 400),
        # Regression (hostile-input probe): logged as "inf", and a key twice read as the last.
        ("application/csp-report", b'{"csp-report": {"document-uri": 1e999}}', 400),
        ("application/csp-report", b'{"csp-report": {"line-number": NaN}}', 400),
        ("application/csp-report", b'{"csp-report": {}, "csp-report": {"a": 1}}', 400),
    ],
)
async def test_bad_reports(app: Quart, content_type: str, body: bytes, status: int) -> None:
    async with app.test_app():
        response = await app.test_client().post(
            "/csp-report", data=body, headers={"Content-Type": content_type}
        )
    assert response.status_code == status
    assert (await response.get_json())["error"] == status


async def test_report_fields_are_truncated(app: Quart, caplog: pytest.LogCaptureFixture) -> None:
    payload = {"csp-report": {"blocked-uri": "x" * 5000}}
    async with app.test_app():
        await app.test_client().post(
            "/csp-report", json=payload, headers={"Content-Type": "application/csp-report"}
        )
    (record,) = [r for r in caplog.records if r.name == "shipshape.csp"]
    assert len(record.__dict__["csp"]["blocked-uri"]) == 512


async def test_reports_need_no_csrf_token_and_only_accept_post(app: Quart) -> None:
    async with app.test_app():
        client = app.test_client()
        assert (await client.get("/csp-report")).status_code == 405
        response = await client.post(
            "/csp-report",
            json=CSP2,
            headers={"Content-Type": "application/csp-report", "Sec-Fetch-Site": "same-origin"},
        )
        assert response.status_code == 204


async def test_the_204_has_no_content_type_and_the_api_headers(app: Quart) -> None:
    """Regression: it carried ``Content-Type: text/html`` and the HTML page's CSP.

    Read at the ASGI level: the test client's response object adds a default
    ``Content-Type`` of its own.
    """
    body = json.dumps(CSP2).encode()
    sent = [{"type": "http.request", "body": body, "more_body": False}]
    messages: list[Message] = []

    async def receive() -> Message:
        return sent.pop() if sent else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        messages.append(message)

    scope = http_scope(
        "POST",
        "/csp-report",
        [
            (b"content-type", b"application/csp-report"),
            (b"content-length", str(len(body)).encode()),
        ],
    )
    async with app.test_app():
        await asgi_of(app)(scope, receive, send)
    start = messages[0]
    headers = {k.decode(): v.decode() for k, v in start["headers"]}
    assert start["status"] == 204
    assert "content-type" not in headers
    assert headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"
    assert headers["x-frame-options"] == "DENY"
    assert "permissions-policy" not in headers


async def test_development_log_lines_keep_the_reports_details(
    app: Quart, caplog: pytest.LogCaptureFixture
) -> None:
    """Regression: the readable (development) line dropped the directive and blocked URI."""
    caplog.set_level(logging.WARNING, "shipshape.csp")
    async with app.test_app():
        response = await app.test_client().post(
            "/csp-report", json=CSP2, headers={"Content-Type": "application/csp-report"}
        )
    (record,) = [r for r in caplog.records if r.name == "shipshape.csp"]
    line = ReadableFormatter("%(levelname)s %(name)s %(message)s").format(record)
    assert line.startswith("WARNING shipshape.csp csp violation csp={")
    assert '"violated-directive": "script-src-elem"' in line
    assert '"blocked-uri": "https://evil.example/x.js"' in line
    assert line.endswith(f"id={response.headers['X-Request-ID']}")
