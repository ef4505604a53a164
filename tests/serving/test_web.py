"""The web page in a real browser: headless Debian chromium (driven by Playwright) at phone (390 px) and desktop
(1280 px) widths and in print media. The form opens empty; the numbers, sentences and icon array shown are the API's
for the same patient, labelled and rounded as serving/labels.py does; warnings come first; editing or a failed submit
removes a result; axe-core (vendored, tests/serving/vendor/axe-core) finds no serious or critical violation.
Screenshots go to the test's tmp dir and, when CNSLRISK_ARTIFACTS is set, there too; CNSLRISK_UPDATE_DOCS=1
rewrites docs/web_page.png (the README's picture). Without chromium the tests are skipped, or fail under CI
(chromium_gate.py)."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
import requests
from chromium_gate import require_chromium
from test_api import JSON, serve_subprocess

from cnslrisk.serving.labels import band_text, duration, field_label, percent
from cnslrisk.serving.plain_language import survival_sentence

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run", "--disable-sync"]
AXE = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"
DOCS_PICTURE = Path(__file__).parents[2] / "docs" / "web_page.png"
PHONE, DESKTOP = 390, 1280
ENTERED = {"patient_id": "WEB-007", "pce": "true", "lmd": "true", "steroids": "false", "ldh_elevated": "true",
           "cnsl_type": "secondary", "age": "71.5", "ecog": "2", "prior_lines": "4"}
PATIENT = {"patient_id": "WEB-007", "pce": True, "lmd": True, "steroids": False, "ldh_elevated": True,
           "cnsl_type": "secondary", "age": 71.5, "ecog": 2, "prior_lines": 4}  # ENTERED, as JSON
EXAMPLE = {"patient_id": "EXAMPLE-001", "age": 62, "ecog": 1, "cnsl_type": "primary", "prior_lines": 2,
           "steroids": True, "ldh_elevated": False, "pce": True, "lmd": False, "best_response": "CR"}
RAW_NAMES = ("ldh_elevated", "cnsl_type", "prior_lines", "local_and_distant", "best_response", "one of {",
             "1 months", "pfs1_")


def text(locator) -> str:
    """Visible text with no-break spaces as spaces (the page keeps "43 %" on one line)."""
    return locator.inner_text().replace("\u00a0", " ")


def fill(page, values: dict[str, str]) -> None:
    for name, value in values.items():
        if page.locator(f"#f-{name}").evaluate("n => n.tagName") == "SELECT":
            page.select_option(f"#f-{name}", value)
        else:
            page.fill(f"#f-{name}", value)


def predict(page, values: dict[str, str]) -> None:
    fill(page, values)
    page.evaluate("document.body.dataset.state = 'busy'")
    page.click("#submit")
    page.wait_for_selector("body[data-state=done]", timeout=20_000)


@pytest.fixture(scope="module")
def page_server(registered, tmp_path_factory):
    with serve_subprocess(registered, tmp_path_factory.mktemp("web") / "server.log") as base:
        yield base


@pytest.fixture(scope="module")
def browser():
    executable = require_chromium()  # skipped without chromium, failed without it under CI
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=executable, args=FLAGS)
        yield instance
        instance.close()


@pytest.fixture
def open_page(browser, page_server):
    pages = []

    def make(width: int, height: int = 844):
        page = browser.new_page(viewport={"width": width, "height": height})
        page.problems = []  # page errors and any request leaving the server (a CDN, a font)
        page.on("pageerror", lambda e: page.problems.append(str(e)))
        page.on("request", lambda r: page.problems.append(r.url) if not r.url.startswith(page_server) else None)
        page.goto(f"{page_server}/")
        page.wait_for_selector("body[data-state=ready]", timeout=20_000)
        pages.append(page)
        return page

    yield make
    for page in pages:
        assert page.problems == []
        page.close()


def api(page_server, patient: dict) -> dict:
    response = requests.post(f"{page_server}/v1/predict", json=patient, params={"curve": "true"}, headers=JSON,
                             timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def sideways(page) -> int:
    """How far the page scrolls sideways (0: everything fits the width)."""
    return page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")


def serious_violations(page) -> list[str]:
    page.add_script_tag(content=AXE.read_text(encoding="utf-8"))
    found = page.evaluate("async () => (await axe.run(document)).violations"
                          ".map(v => ({id: v.id, impact: v.impact, nodes: v.nodes.map(n => n.target.join(' '))}))")
    return [f"{v['id']} ({v['impact']}): {v['nodes'][:3]}" for v in found if v["impact"] in ("serious", "critical")]


def save(page, path: Path) -> None:
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000
    target = os.environ.get("CNSLRISK_ARTIFACTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(target) / path.name)


@pytest.mark.parametrize("width", [PHONE, DESKTOP])
def test_the_form_opens_empty_and_predicts_nothing_untouched(open_page, registered, width):
    page = open_page(width)
    posted = []
    page.on("request", lambda r: posted.append(r.url) if "v1/predict" in r.url else None)
    model = registered.model
    required = [*model.feature_columns]
    for name in [*required, "patient_id", "best_response"]:  # the field names stay, for autofill and other systems
        assert page.locator(f"#f-{name}").get_attribute("name") == name
    for name in required:
        assert page.locator(f"#f-{name}").input_value() == "", name
        if page.locator(f"#u-{name}").count():
            assert not page.locator(f"#u-{name}").is_checked()
    assert page.locator("#f-pce option").all_inner_texts() == ["— choose —", "yes", "no", "unknown"]
    assert sideways(page) == 0
    assert serious_violations(page) == []
    if width == PHONE:  # negative control: the check does find a form control that has lost its label
        page.evaluate("document.querySelector('label[for=f-pce]').remove()")
        assert any("#f-pce" in v for v in serious_violations(page))
        page.reload()
        page.wait_for_selector("body[data-state=ready]", timeout=20_000)
    predict(page, {})
    assert posted == [] and page.locator("#results").is_hidden()
    errors = page.locator("#form-errors li").all_inner_texts()
    inputs = {spec.name: spec for spec in model.input_schema.fields}
    assert len(errors) == len(required)
    for name in required:
        assert any(e.startswith(field_label(inputs[name])) for e in errors), name


@pytest.mark.parametrize("width", [PHONE, DESKTOP])
def test_the_page_shows_the_apis_prediction_in_words_labels_and_whole_percent(open_page, page_server, registered,
                                                                              tmp_path, width):
    page = open_page(width)
    predict(page, ENTERED)
    page.wait_for_selector("body[data-result=shown]")
    result = api(page_server, PATIENT)
    row, unit = result["predictions"][0], result["provenance"]["time_unit"]
    plain = row["plain_language"]

    # warnings first: visible in the first screen of the result, before the sentence and the numbers
    box, first = page.locator("#warnings-box").bounding_box(), page.locator("#results").bounding_box()
    assert 0 <= box["y"] and box["y"] + min(box["height"], 200) <= 844 and box["y"] >= first["y"]
    assert box["y"] < page.locator("#summary").bounding_box()["y"] < page.locator("#survival-table").bounding_box()["y"]
    shown = [text(item) for item in page.locator("#warnings li").all()]
    assert shown[:len(plain["warnings"])] == plain["warnings"]
    if plain["wide_bands"]:
        assert plain["wide_bands"] in shown

    # the sentence and its icon array: parts add up to 100 and match the API's counts and the table's percent
    assert text(page.locator("#summary")) == plain["summary"]
    headline = next(h for h in plain["horizons"] if h["horizon"] == plain["headline_horizon"])
    icons = page.locator("#icon-array rect.icon")
    assert icons.count() == 100
    for part in headline["per_100"]:
        assert page.locator(f"#icon-array rect[data-outcome={part['outcome']}]").count() == part["count"]
    assert [text(li) for li in page.locator("#icon-legend li").all()] == [
        f"{p['count']} {p['label']}" for p in headline["per_100"]]
    for entry in plain["horizons"]:  # every horizon has its own sentence and array
        page.click(f"#horizon-choice button[data-horizon='{entry['horizon']:g}']")
        assert text(page.locator("#summary")) == entry["sentence"]
        assert page.locator("#icon-array rect[data-outcome=free]").count() == entry["per_100"][0]["count"]
        assert entry["sentence"] == survival_sentence(row[f"survival_{entry['horizon']:g}"], entry["time"])

    # the figures: rounded and labelled as serving/labels.py does, each the API's number
    for h in result["horizons"]:
        label = f"{h:g}"
        assert text(page.locator(f"#surv-{label}")) == percent(row[f"survival_{label}"])
        assert float(page.locator(f"#surv-{label}").get_attribute("data-value")) == row[f"survival_{label}"]
        assert text(page.locator(f"#band-{label}")).startswith(
            band_text(row[f"survival_{label}_lower"], row[f"survival_{label}_upper"]))
        for cause in plain["cause_labels"]:
            assert text(page.locator(f"#cif-{cause}-{label}")) == percent(row[f"cif_{cause}_{label}"])
    assert text(page.locator("#median")) == duration(row["median_time"], unit)
    assert page.locator("#risk-group").inner_text() == row["risk_group"]
    assert text(page.locator("#likely-pattern-text")) == plain["likely_pattern"]
    assert page.locator("#post-response-panel").is_hidden()  # no best response entered
    assert registered.model.pattern_split  # a model trained now splits 1 - CNS-PFS1 between the patterns
    for h in result["horizons"]:
        shown = [float(page.locator(f"#{key}").get_attribute("data-value"))
                 for key in (f"surv-{h:g}", *(f"cif-{c}-{h:g}" for c in plain["cause_labels"]))]
        assert sum(shown) == pytest.approx(1.0, abs=1e-9)
    assert page.locator("#pattern-chart rect[data-outcome=free]").count() == len(result["horizons"])
    body = text(page.locator("body"))
    for raw in RAW_NAMES:
        assert raw not in body, raw
    assert re.search(r"\d\.\d+ %|\d+\.\d\d+ months", body) is None  # whole percent; months to one decimal at most
    assert "log hazard ratio" in page.locator("#risk-score-label").inner_text()  # a Cox model's score is one
    assert page.locator("#curve-chart path.patient").count() == 1 and page.locator("#curve-chart path.km").count() == 1

    # the phone: nothing scrolls sideways, legends and the band column are on screen
    assert sideways(page) == 0
    for locator in [*page.locator(".legend li:visible").all(), page.locator("#band-3")]:
        right = locator.bounding_box()
        assert right is not None and right["x"] + right["width"] <= width + 0.5
    assert serious_violations(page) == []
    save(page, tmp_path / f"web_prediction_{width}.png")


def test_editing_or_a_failed_submit_removes_the_result(open_page, registered):
    page = open_page(DESKTOP, 900)
    predict(page, ENTERED)
    assert page.locator("#results").is_visible()
    page.select_option("#f-lmd", "false")  # an edit: the result no longer belongs to the values shown
    assert page.locator("#results").is_hidden() and page.locator("#stale").is_visible()
    predict(page, {})
    assert page.locator("#results").is_visible() and page.locator("#stale").is_hidden()
    lmd = field_label(registered.model.input_schema["lmd"])
    assert f"{lmd}: no;" in text(page.locator("#entered"))
    page.fill("#f-age", "150")
    assert page.locator("#results").is_hidden()
    predict(page, {})  # refused by the server: no result, the field named by its label
    assert page.locator("#results").is_hidden()
    age = field_label(registered.model.input_schema["age"])
    assert any(e.startswith(f"{age}: ") for e in page.locator("#form-errors li").all_inner_texts())
    assert page.locator("#w-age.invalid").count() == 1 and page.locator("#f-age").get_attribute("aria-invalid")
    page.fill("#f-age", "")
    page.check("#u-age")  # "unknown": this model was not trained to impute it, so it is refused, saying why
    predict(page, {})
    assert page.locator("#results").is_hidden()
    message = " ".join(page.locator("#form-errors li").all_inner_texts())
    assert message.startswith(f"{age}: ") and "trained without imputation" in message


def test_a_best_response_adds_the_post_response_view_from_the_landmark(open_page, page_server, registered, tmp_path):
    page = open_page(DESKTOP, 900)
    predict(page, {name: str(value).lower() if isinstance(value, bool) else str(value)
                   for name, value in EXAMPLE.items()})
    page.wait_for_selector("#post-response-panel:not([hidden])")
    assert serious_violations(page) == []
    save(page, tmp_path / "web_page.png")  # the README's picture: data/example_patient.json's covariates
    if os.environ.get("CNSLRISK_UPDATE_DOCS") == "1":
        shutil.copy(tmp_path / "web_page.png", DOCS_PICTURE)
    row = api(page_server, EXAMPLE)["predictions"][0]
    post = row["plain_language"]["post_response"]
    landmark = registered.model.landmark.time
    assert text(page.locator("#post-response-title")).endswith(f"({duration(landmark, 'months')})")
    assert text(page.locator("#post-response-condition")) == post["condition"]
    assert text(page.locator("#post-response-summary")) == post["summary"]
    for entry in post["horizons"]:
        cell = page.locator(f"#post-surv-{entry['horizon']:g}")
        assert float(cell.get_attribute("data-value")) == row[f"post_response_survival_{entry['horizon']:g}"]
    # both curves start at 100 % at the landmark: the same first point
    starts = [page.locator(f"#post-response-chart path.{c}").get_attribute("d").split(" L")[0]
              for c in ("post-response", "conditional")]
    assert starts[0] == starts[1]
    assert page.locator("#post-response-pattern-chart rect.bar").count() >= len(post["horizons"])
    assert text(page.locator("#post-response-likely")) == post["likely_pattern"]


def test_print_has_the_time_the_model_and_readable_unbroken_numbers(open_page, tmp_path):
    page = open_page(720, 1000)  # about an A4 page's printable width at 96 dpi
    predict(page, ENTERED)
    page.emulate_media(media="print")
    assert page.locator("#entry").is_hidden() and page.locator("#results").is_visible()
    made = text(page.locator("#made"))
    assert re.search(r"Made \d{4}-\d\d-\d\d \d\d:\d\d with model cnslrisk-pfs1 version 1", made), made
    assert page.locator("#entered").is_visible() and page.locator("#notice").is_visible()
    lines = page.evaluate("""() => [...document.querySelectorAll('#results td, .stat .value')].map(cell => {
        const number = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT).nextNode();  // not a note below it
        const range = document.createRange();
        range.selectNodeContents(number || cell);
        return [cell.textContent, new Set([...range.getClientRects()].map(r => Math.round(r.top))).size];
    })""")
    assert [cell for cell, n in lines if n > 1] == []
    smallest = page.evaluate("""() => Math.min(...[...document.querySelectorAll('#results .chart svg')].flatMap(svg =>
        [...svg.querySelectorAll('text')].map(t => t.getBoundingClientRect().height)))""")
    assert smallest >= 10.5, smallest  # 8 pt and up
    assert sideways(page) == 0
    save(page, tmp_path / "web_prediction_print.png")
