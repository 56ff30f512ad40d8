from __future__ import annotations

from shipshape.csp import HTML_POLICY, NONCE, Policy


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


def test_page_rendering_adds_reporting_and_upgrades() -> None:
    policy = Policy.of({"default-src": ["'none'"]})
    assert policy.render_for_page(report_path=None, upgrade=False) == "default-src 'none'"
    assert policy.render_for_page(report_path="/csp-report", upgrade=True) == (
        "default-src 'none'; upgrade-insecure-requests; report-uri /csp-report; report-to csp"
    )
