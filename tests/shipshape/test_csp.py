from __future__ import annotations

import json
import logging

import pytest
from quart import Quart

from shipshape.csp import HTML_POLICY, NONCE, Policy
from tests.shipshape.conftest import MakeApp


def test_policy_render_and_operations() -> None:
    policy = Policy.of({"default_src": ["'none'"], "script-src": ["'self'"]})
    assert policy.render() == "default-src 'none'; script-src 'self'"
    extended = policy.extend(script_src=["'self'", "https://cdn.example"], img_src=["data:"])
    assert extended.as_dict() == {
        "default-src": ("'none'",),
        "script-src": ("'self'", "https://cdn.example"),
        "img-src": ("data:",),
    }
    assert Policy.of({"frame-src": ["'none'"]}).extend(
        frame_src=["https://v.example"]
    ).as_dict() == {"frame-src": ("https://v.example",)}, "extending 'none' replaces it"
    assert policy.replace(script_src=None, upgrade_insecure_requests=[]).render() == (
        "default-src 'none'; upgrade-insecure-requests"
    )
    assert policy == Policy.of(policy.as_dict()), "immutable values compare equal"


def test_default_html_policy_is_strict() -> None:
    policy = HTML_POLICY.as_dict()
    assert policy["default-src"] == ("'none'",)
    assert policy["script-src"] == ("'self'", NONCE) and policy["style-src"] == ("'self'", NONCE)
    assert [name for name, sources in policy.items() if NONCE in sources] == [
        "script-src",
        "style-src",
    ]
    assert HTML_POLICY.unsafe_sources() == []
    assert HTML_POLICY.uses_nonce
    loose = HTML_POLICY.extend(style_src=["'unsafe-inline'"], script_src=["'unsafe-eval'"])
    assert loose.unsafe_sources() == ["script-src 'unsafe-eval'", "style-src 'unsafe-inline'"]


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
