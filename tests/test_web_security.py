"""The labelling app's gate: headers, cross-origin writes, tokens and the debug-only API docs."""

import re

import pytest
from fastapi.testclient import TestClient

from blobsift.app import create_app
from blobsift.app.guard import CSP, SECURITY_HEADERS
from web_helpers import make_project

LOCAL = "http://127.0.0.1:8000"
TOKEN = "a-token-of-24-characters"


@pytest.fixture(scope="module")
def blank(tmp_path_factory):
    return make_project(tmp_path_factory.mktemp("web-security"), n_images=1)


@pytest.fixture
def fresh(tmp_path):
    return make_project(tmp_path, n_images=1)


def test_every_response_carries_the_security_headers(blank):
    with TestClient(create_app(blank), base_url=LOCAL) as client:
        cid = client.post("/api/queue", json={"n": 1}).json()["items"][0]["id"]
        responses = [
            client.get("/"),
            client.get("/static/app.js"),
            client.get("/api/status"),
            client.get(f"/api/crop/{cid}.png"),
            client.get("/api/crop/99-0.png"),  # 404
            client.post("/api/label", content=b"x", headers={"Content-Type": "text/plain"}),
        ]
    with TestClient(create_app(blank), base_url="http://evil.example") as client:
        responses.append(client.get("/"))  # 421, refused by the gate itself
    assert [r.status_code for r in responses] == [200, 200, 200, 200, 404, 415, 421]
    for response in responses:
        for name, value in SECURITY_HEADERS.items():
            assert response.headers.get(name) == value, (response.url, name)
    policy = dict(part.strip().split(" ", 1) for part in CSP.split(";"))
    assert policy["default-src"] == policy["script-src"] == policy["style-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'"
    assert "unsafe-inline" not in CSP


def test_the_page_has_no_inline_script_or_style(blank):
    with TestClient(create_app(blank), base_url=LOCAL) as client:
        page = client.get("/").text
        script = client.get("/static/app.js").text
    assert re.findall(r"<script[^>]*>", page) == ['<script src="/static/app.js">']
    assert "<style" not in page
    assert not re.search(r"\sstyle\s*=", page)  # the CSP blocks inline style attributes
    assert not re.search(r"\son[a-z]+\s*=", page)  # no inline event handlers
    assert "innerHTML" not in script
    assert "outerHTML" not in script
    assert "insertAdjacentHTML" not in script


def test_cross_origin_writes_are_refused(fresh):
    with TestClient(create_app(fresh), base_url=LOCAL) as client:
        cid = client.post("/api/queue", json={"n": 1}).json()["items"][0]["id"]
        body = {"id": cid, "label": "signal"}
        refused = [
            {"Origin": "http://evil.example"},
            {"Origin": "http://127.0.0.1:9999"},  # another app on this host
            {"Origin": "null"},
            {"Sec-Fetch-Site": "cross-site"},
            {"Sec-Fetch-Site": "same-site"},
            {"Origin": "http://127.0.0.1:8000", "Sec-Fetch-Site": "cross-site"},
        ]
        for headers in refused:
            response = client.post("/api/label", json=body, headers=headers)
            assert response.status_code == 403, headers
            assert "this app's own page" in response.json()["detail"]
        assert client.post("/api/undo", json={}, headers=refused[0]).status_code == 403
        assert client.post("/api/train", json={}, headers=refused[3]).status_code == 403
        assert client.get("/api/labels").status_code == 405  # not a write route
        assert client.app.state.web.labels.current().mark == 0  # nothing was written
        reads = client.get("/api/status", headers={"Origin": "http://evil.example"})
        assert reads.status_code == 200  # reads: the CORS rules keep their answers private
        own = {"Origin": "http://127.0.0.1:8000", "Sec-Fetch-Site": "same-origin"}
        assert client.post("/api/label", json=body, headers=own).status_code == 200
        assert client.post("/api/undo", json={}).status_code == 200  # no browser headers


def test_an_odd_cookie_of_the_same_host_does_not_hide_the_token(blank):
    app = create_app(blank, token=TOKEN)
    with TestClient(app, base_url="http://192.0.2.7:8000") as client:
        name = "blobsift_token_8000"  # TestClient's server port
        for other in ('prefs={"theme":"dark"}', 'a="unterminated', "b=x y", "c=back\\slash"):
            cookie = f"{other}; {name}={TOKEN}; tail=1"
            assert client.get("/api/status", headers={"Cookie": cookie}).status_code == 200, other
        wrong = f'prefs={{"k":1}}; {name}=not-the-token'
        assert client.get("/api/status", headers={"Cookie": wrong}).status_code == 401
        other_port = f"blobsift_token_9000={TOKEN}"
        assert client.get("/api/status", headers={"Cookie": other_port}).status_code == 401


def test_a_short_token_is_refused_with_one_clear_line(blank, capsys):
    from blobsift.app.serve import prepare
    from blobsift.cli import main
    from blobsift.exceptions import InvalidInputError

    with pytest.raises(InvalidInputError, match="at least 16 characters; got 5"):
        prepare(blank, token="short")
    assert main(["label", str(blank), "--no-browser", "--token", "x" * 15]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert "the access token (--token) must have at least 16 characters; got 15" in err


def test_the_api_description_is_served_only_in_debug_mode(blank):
    with TestClient(create_app(blank), base_url=LOCAL) as client:
        assert client.get("/openapi.json").status_code == 404
        assert client.get("/docs").status_code == 404
    with TestClient(create_app(blank, debug=True), base_url=LOCAL) as client:
        schema = client.get("/openapi.json")
        assert schema.status_code == 200
        assert "/api/label" in schema.json()["paths"]
        assert "content-security-policy" in schema.headers
        docs = client.get("/docs")
        assert docs.status_code == 200
        assert "content-security-policy" not in docs.headers  # its script is inline
        assert docs.headers["x-frame-options"] == "DENY"


def test_label_command_has_a_debug_option(capsys):
    from blobsift.cli import main

    with pytest.raises(SystemExit):
        main(["label", "--help"])
    out = capsys.readouterr().out
    assert "--debug" in out
    assert "at least 16 characters" in out
