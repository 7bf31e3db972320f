"""The labelling app in a real browser: Playwright driving Debian's chromium.

Skipped, with the reason, only outside CI when chromium or Playwright is missing; under
``CI`` a missing browser fails. Screenshots go to ``$BLOBSIFT_SCREENSHOTS`` (default: a
pytest temporary folder).
"""

import os
import socket
import statistics
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from blobsift.project import Project
from web_helpers import FAST_TRAINING, make_project, running_server

pytest_plugins = ["pytester"]

CHROMIUM = Path("/usr/bin/chromium")
KEY_LABELS = {"s": 1, "n": 0, "u": -1}


def _missing() -> list[str]:
    missing = []
    if not CHROMIUM.exists():
        missing.append(f"Debian's chromium at {CHROMIUM} (apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("playwright (pip install playwright)")
    return missing


@pytest.fixture(scope="module")
def browser():
    missing = _missing()
    if missing:
        reason = "the browser tests need " + " and ".join(missing)
        if os.environ.get("CI", "").lower() not in ("", "0", "false", "no"):
            pytest.fail(f"{reason}; under CI they must run, not skip.")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=["--no-sandbox", "--disable-dev-shm-usage"],
        )
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    folder = os.environ.get("BLOBSIFT_SCREENSHOTS")
    path = Path(folder) if folder else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1360, "height": 900})
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert errors == [], errors


def open_app(page, url):
    page.goto(url)
    page.wait_for_selector("body[data-ready='1']")


def shown(page) -> str:
    return page.get_attribute("#crop", "data-id")


def wait_shown(page, cid: str, *, changed: bool = False) -> None:
    test = (
        "id => document.querySelector('#crop').dataset.id !== id"
        if changed
        else ("id => document.querySelector('#crop').dataset.id === id")
    )
    page.wait_for_function(test, arg=cid)


def positions(url: str, ids: list[str]) -> dict[str, tuple[int, float, float]]:
    with httpx.Client(base_url=url, timeout=10) as http:
        items = [http.get(f"/api/candidate/{cid}").json() for cid in ids]
    return {item["id"]: (item["image_id"], item["row"], item["col"]) for item in items}


def test_keyboard_labelling_undo_reload_and_grid(page, tmp_path, shots):
    project = make_project(tmp_path)
    with running_server(project, who="browser") as server:
        open_app(page, server.url)
        before = "Phase 1 (Siamese gallery) from 2 signal and 2 noise labels: 0 signal, 0 noise"
        assert before in page.inner_text("#model")
        labelled, seconds = [], []
        for key in "snnsnnnsnnun":
            cid = shown(page)
            start = time.perf_counter()
            page.keyboard.press(key)
            wait_shown(page, cid, changed=True)
            seconds.append(time.perf_counter() - start)
            labelled.append((cid, key))
        # Prefetched crops: a keystroke shows the next crop within a local round trip,
        # and each crop was fetched once (ahead of time), not again when shown.
        assert statistics.median(seconds) < 0.5, seconds
        fetched = page.evaluate(
            "() => performance.getEntriesByType('resource').map(e => e.name)"
            ".filter(name => name.includes('/api/crop/'))"
        )
        assert len(fetched) == len(set(fetched)) > 12
        page.keyboard.press("z")
        wait_shown(page, labelled[-1][0])
        recent = [img.get_attribute("src") for img in page.query_selector_all("#recent img")]
        assert len(recent) == 9  # the last 10, less the one undone
        assert not any(f"/{labelled[-1][0]}.png" in src for src in recent)
        page.keyboard.press("+")
        assert page.eval_on_selector("#crop", "image => image.style.transform") == "scale(2)"
        page.keyboard.press("-")
        page.keyboard.press("]")  # more contrast: white at the 99th percentile
        assert "?high=99&mark=true&s=" in page.get_attribute("#crop", "src")  # centre ticks
        page.wait_for_function("() => document.querySelector('#crop').naturalWidth === 64")
        counts = "signal 3noise 7unsure 1unlabelled "
        page.wait_for_function(
            "t => document.querySelector('#counts').textContent.startsWith(t)", arg=counts
        )
        page.wait_for_function(
            "t => document.querySelector('#model').textContent.includes(t)",
            arg="Phase 1 (Siamese gallery): available (3 signal, 7 noise)",
        )
        page.screenshot(path=shots / "label-view.png")
        where = positions(server.url, [cid for cid, _ in labelled])

        page.keyboard.press("?")
        assert page.is_visible("#help")
        assert "undo the last label" in page.inner_text("#help")
        page.keyboard.press("Escape")
        assert not page.is_visible("#help")

        page.reload()
        page.wait_for_selector("body[data-ready='1']")
        assert shown(page) == labelled[-1][0]  # a reload resumes on the undone crop

        page.keyboard.press("2")
        page.wait_for_function("() => document.querySelectorAll('#grid .thumb').length > 30")
        thumbs = page.query_selector_all("#grid .thumb")
        grid_ids = [thumb.get_attribute("data-id") for thumb in thumbs]
        # every thumbnail is the crop with ticks around the candidate, as in the single view
        assert all("&mark=true&" in thumb.query_selector("img").get_attribute("src")
                   for thumb in thumbs)  # fmt: skip
        assert labelled[-1][0] in grid_ids
        assert not {c for c, _ in labelled[:-1]} & set(grid_ids)
        page.click(f"#grid .thumb[data-id='{grid_ids[0]}']")
        page.click(f"#grid .thumb[data-id='{grid_ids[5]}']")
        page.keyboard.press("ArrowRight")
        page.keyboard.press("ArrowRight")
        page.keyboard.press("u")
        assert page.query_selector_all("#grid .thumb.is-signal").__len__() == 2
        page.screenshot(path=shots / "grid-view.png")
        page.keyboard.press("Enter")
        page.wait_for_function(
            "() => document.querySelector('#toast').textContent.startsWith('saved')"
        )
        grid_where = positions(server.url, grid_ids)

    with Project(project) as opened:
        stored = opened.labels()
        log = opened.label_events()
    by_position = {
        (i, r, c): label
        for i, r, c, label in zip(stored["image_id"], stored["row"], stored["col"], stored["label"],
                                  strict=True)
    }  # fmt: skip
    for cid, key in labelled[:-1]:
        assert by_position[where[cid]] == KEY_LABELS[key]
    expected_grid = {grid_ids[0]: 1, grid_ids[5]: 1, grid_ids[7]: -1}  # cursor 5, right twice
    for cid in grid_ids:
        assert by_position[grid_where[cid]] == expected_grid.get(cid, 0)
    assert len(stored) == 11 + len(grid_ids)
    assert (log["source"] == "undo").sum() == 1
    assert set(log["who"]) == {"browser"}


def test_training_progress_streams_to_the_page(page, tmp_path, shots):
    project = make_project(tmp_path, truth_labels=48)
    with running_server(project, train_options=FAST_TRAINING) as server:
        open_app(page, server.url)
        assert "no model yet" in page.inner_text("#model")
        page.keyboard.press("t")
        page.wait_for_function("() => /already training|training started/.test("
                               "document.querySelector('#toast').textContent)")  # fmt: skip
        page.keyboard.press("t")
        page.wait_for_function(
            "() => document.querySelector('#toast').textContent === 'already training'"
        )
        # progress (stage, step, loss) arrives: the live chart draws it, and keeps it
        page.wait_for_selector("#epochs path.loss", timeout=120_000)
        page.wait_for_function(
            "() => document.querySelector('#training').textContent.startsWith('done')",
            timeout=120_000,
        )
        page.wait_for_function(
            "() => /F1 \\d\\.\\d{3}/.test(document.querySelector('#model').textContent)"
        )
        page.wait_for_selector("#curve circle")
        page.wait_for_selector("#score .bar")  # the queue was re-scored by the new model
        model = page.inner_text("#model")
        assert "model #1" in model
        assert "Phase 1 (Siamese gallery) · 48 labels" in model
        assert "Phase 2 (direct CNN) from 100 signal/noise labels: 52 to go" in model
        # the reason for the score: the nearest labelled crops of Phase 1's gallery
        page.wait_for_function("() => document.querySelectorAll('#neighbours img').length === 6")
        page.wait_for_function(
            "() => [...document.querySelectorAll('#neighbours img')]"
            ".every(image => image.complete && image.naturalWidth === 64)"
        )
        page.screenshot(path=shots / "trained.png")
        page.keyboard.press("3")
        page.select_option("#review-filter", "signal")
        page.wait_for_function(
            "() => document.querySelector('#review-total').textContent.startsWith('12 label')"
        )
        assert len(page.query_selector_all("#review .item.is-signal")) == 12
        assert len(page.query_selector_all("#review .item")) == 12
        page.wait_for_function(
            "() => [...document.querySelectorAll('#review img')]"
            ".every(image => image.complete && image.naturalWidth === 64)"
        )
        page.screenshot(path=shots / "review-view.png")
        page.select_option("#review-filter", "mislabels")
        page.wait_for_function(
            "() => / the model #1 confidently disputes$/"
            ".test(document.querySelector('#review-total').textContent)"
        )
        disputed = page.query_selector_all("#review .item")
        assert len(disputed) == int(page.inner_text("#review-total").split(" ")[0])
        page.screenshot(path=shots / "mislabels-view.png")


def test_the_token_is_enforced_on_a_non_local_bind(page, tmp_path):
    project = make_project(tmp_path)
    with running_server(project, host="0.0.0.0") as server:
        url = urlsplit(server.url)
        assert url.hostname == socket.gethostname()  # a URL other machines can use
        assert url.query.startswith("token=")
        bare = f"http://127.0.0.1:{url.port}/"
        local = f"{bare}?{url.query}"
        assert page.goto(bare).status == 401
        assert page.goto(bare + "api/status").status == 401
        assert page.goto(bare + "?token=wrong").status == 401
        open_app(page, local)
        assert page.url == bare  # the token left the address bar for a cookie
        assert page.goto(bare + "api/status").status == 200
        with httpx.Client(timeout=10) as http:
            assert http.get(bare + "api/status").status_code == 401


HOSTILE = "<img src=x onerror=window.__pwned=1><svg onload=window.__pwned=2>&amp;"
WATCH = """
window.__violations = [];
document.addEventListener("securitypolicyviolation",
  (event) => window.__violations.push(event.violatedDirective));
"""


def test_server_text_shows_as_text_and_never_runs(page, tmp_path):
    project = make_project(tmp_path, truth_labels=24, prefix=HOSTILE)
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.add_init_script(WATCH)
    with running_server(project) as server:
        open_app(page, server.url)
        name = page.evaluate(
            "id => fetch(`/api/candidate/${id}`).then(r => r.json()).then(i => i.image)",
            shown(page),
        )
        assert name.startswith(HOSTILE)
        assert page.inner_text("#meta").startswith(f"{name} · row ")
        assert page.query_selector_all("#meta img, #meta svg") == []
        page.keyboard.press("3")
        page.wait_for_function("() => document.querySelectorAll('#review .item').length === 24")
        items = page.query_selector_all("#review .item")
        assert all(item.inner_text().startswith(HOSTILE) for item in items)
        assert len(page.query_selector_all("#review img")) == 24  # the crops, nothing else
        page.keyboard.press("1")
        for image in (tmp_path / "data").glob("*.tif"):
            image.unlink()  # training now fails, naming an image in its error
        page.keyboard.press("t")
        page.wait_for_function(
            "() => document.querySelector('#training').textContent.startsWith('failed')",
            timeout=60_000,
        )
        failed = page.inner_text("#training")
        assert HOSTILE in failed
        assert "is missing from" in failed
        assert page.query_selector_all("#training img, #training svg") == []
        assert page.evaluate("() => [window.__pwned, window.__violations]") == [None, []]
    assert dialogs == []


FAKE_BROWSER_TESTS = """
import pytest

@pytest.fixture
def browser():
    pytest.skip("the browser tests need Debian's chromium at /usr/bin/chromium")

def test_one(browser):
    pass

def test_two(browser):
    pass

def test_without_a_browser():
    pass
"""


@pytest.mark.parametrize("skips", [True, False])
def test_a_run_that_skipped_the_browser_tests_says_so_at_the_end(pytester, monkeypatch, skips):
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    pytester.makeconftest(Path(__file__).with_name("conftest.py").read_text())
    source = FAKE_BROWSER_TESTS if skips else FAKE_BROWSER_TESTS.replace("pytest.skip", "print")
    pytester.mkdir("fake")  # a module name of its own: this module has the real one
    pytester.makepyfile(**{"fake/test_web_browser": source})
    result = pytester.runpytest("-p", "no:cacheprovider", "--import-mode=importlib")
    note = [line for line in result.outlines if "browser test(s) skipped" in line]
    if skips:
        result.assert_outcomes(passed=1, skipped=2)
        assert note == [
            "NOTE: 2 browser test(s) skipped: the browser tests need Debian's chromium at "
            "/usr/bin/chromium. Install chromium with `apt-get install chromium` to run them."
        ]
        assert result.outlines[-1].startswith("=")  # the note comes before the final line
    else:
        result.assert_outcomes(passed=3)
        assert note == []


def test_two_tabs_undo_their_own_labels_and_see_an_import(browser, tmp_path):
    project = make_project(tmp_path)
    context = browser.new_context(viewport={"width": 1360, "height": 900})
    errors = []
    tab_a, tab_b = context.new_page(), context.new_page()
    for tab in (tab_a, tab_b):
        tab.on("pageerror", lambda error: errors.append(str(error)))
    with running_server(project, who="same-login") as server:
        open_app(tab_a, server.url)
        first = shown(tab_a)
        tab_a.keyboard.press("s")
        wait_shown(tab_a, first, changed=True)
        open_app(tab_b, server.url)
        second = shown(tab_b)
        assert second != first
        tab_b.keyboard.press("n")
        wait_shown(tab_b, second, changed=True)
        tab_a.keyboard.press("z")  # tab B labelled last: tab A still undoes its own label
        wait_shown(tab_a, first)
        where = positions(server.url, [first, second])
        with Project(project) as other:  # another process labels two more crops
            table = other.candidates(with_labels=True)
            fresh = table[table["label"] == -2].iloc[5:7]
            other.add_labels(fresh["image"].tolist(), fresh["row"].tolist(),
                             fresh["col"].tolist(), [1, 1], who="importer")  # fmt: skip
        for tab in (tab_a, tab_b):  # both pages hear of it and count it
            tab.wait_for_function(
                "t => document.querySelector('#counts').textContent.startsWith(t)",
                arg="signal 2noise 1unsure 0",
            )
    context.close()
    assert errors == []
    with Project(project) as opened:
        stored = opened.labels()
    current = set(zip(stored["image_id"], stored["row"], stored["col"], strict=True))
    assert where[second] in current
    assert where[first] not in current
    assert sorted(stored["who"]) == ["importer", "importer", "same-login"]


def test_three_channels_show_side_by_side(page, tmp_path, shots):
    from blobsift.simulate import write_simulated_images

    images = write_simulated_images(
        tmp_path / "data", 2, domain="difference", triplets=True, shape=(128, 128)
    )
    with Project.create(tmp_path / "project", detect_channel=2) as project:
        project.add_images(list(images))
        project.detect(threshold=5.0)
    with running_server(tmp_path / "project", who="browser") as server:
        open_app(page, server.url)
        page.wait_for_function("() => document.querySelector('#crop').naturalWidth > 0")
        size = page.evaluate(
            "() => { const c = document.querySelector('#crop');"
            " const r = c.getBoundingClientRect();"
            " return [c.naturalWidth, c.naturalHeight, r.width, r.height]; }"
        )
        assert size == [3 * 64, 64, 3 * 256, 256]  # three crops wide, square pixels
        page.screenshot(path=shots / "label-view-3-channels.png")
        page.keyboard.press("2")
        page.wait_for_function("() => document.querySelectorAll('#grid .thumb img').length > 5")
        page.wait_for_function(
            "() => [...document.querySelectorAll('#grid .thumb img')].every(i => i.naturalWidth)"
        )
        widths = page.evaluate(
            "() => [...document.querySelectorAll('#grid .thumb img')]"
            ".map(i => [i.naturalWidth, i.getBoundingClientRect().width])"
        )
        assert {tuple(w) for w in widths} == {(3 * 64, 3 * 64)}
        page.screenshot(path=shots / "grid-view-3-channels.png")
