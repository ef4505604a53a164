"""The web page in a real browser: headless Debian chromium (driven by Playwright) fills the form from the data
dictionary, submits, and the numbers shown must equal the API's for the same patient. Screenshots (screen and
print) are saved under the test's tmp dir and, when CNSLRISK_ARTIFACTS is set, there too. Without chromium the
tests are skipped, or fail under CI (chromium_gate.py)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import requests
from chromium_gate import require_chromium
from test_api import JSON, serve_subprocess

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run", "--disable-sync"]
ENTERED = {"patient_id": "WEB-007", "pce": "true", "lmd": "true", "steroids": "false", "ldh_elevated": "true",
           "cnsl_type": "secondary", "age": "71.5", "ecog": "2", "prior_lines": "4"}

PATIENT = {"patient_id": "WEB-007", "pce": True, "lmd": True, "steroids": False, "ldh_elevated": True,
           "cnsl_type": "secondary", "age": 71.5, "ecog": 2, "prior_lines": 4}  # ENTERED, as JSON


def submit(page, values: dict[str, str]) -> None:
    """Enter ``values`` in the form (selects and text boxes alike) and submit it."""
    for name, value in values.items():
        if page.locator(f"#f-{name}").evaluate("n => n.tagName") == "SELECT":
            page.select_option(f"#f-{name}", value)
        else:
            page.fill(f"#f-{name}", value)
    page.click("#submit")


def pct(value: float) -> str:
    return f"{value * 100:.1f} %"


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


def _save(path: Path) -> None:
    target = os.environ.get("CNSLRISK_ARTIFACTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(target) / path.name)


def test_form_submit_shows_the_api_numbers(browser, page_server, registered, tmp_path):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    outside = []  # any request leaving the server (a CDN, a font) would be recorded here
    page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(page_server) else None)
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{page_server}/")
    page.wait_for_selector("body[data-state=ready]", timeout=20_000)

    # the form has every covariate of the model, with the dictionary's unit and allowed values
    for name in registered.model.feature_columns:
        assert page.locator(f"#f-{name}").count() == 1, name
    assert page.locator("label[for=f-age] .unit").inner_text() == "(years)"
    assert page.locator("#f-cnsl_type option").all_inner_texts() == ["primary", "secondary"]
    assert page.locator("#notice").inner_text() == "NOT FOR CLINICAL USE: trained on synthetic data"

    submit(page, ENTERED)
    page.wait_for_selector("#results:not([hidden])", timeout=20_000)

    patient = dict(PATIENT)
    api = requests.post(f"{page_server}/v1/predict", json=patient, params={"curve": "true"}, headers=JSON,
                        timeout=30).json()
    row = api["predictions"][0]
    for h in api["horizons"]:
        label = f"{h:g}"
        cell = page.locator(f"#surv-{label}")
        assert cell.inner_text() == pct(row[f"survival_{label}"])
        assert float(cell.get_attribute("data-value")) == row[f"survival_{label}"]
        assert page.locator(f"#band-{label}").inner_text() == (
            f"{pct(row[f'survival_{label}_lower'])} – {pct(row[f'survival_{label}_upper'])}")
        for key in (k for k in row if k.startswith("cif_") and k.endswith(f"_{label}")):
            cause = key[4:-len(label) - 1]
            assert page.locator(f"#cif-{cause}-{label}").inner_text() == pct(row[key])
    median = row["median_time"]
    assert page.locator("#median").inner_text() == ("not reached" if median is None else f"{median:.2f} months")
    assert page.locator("#risk-group").inner_text() == row["risk_group"]
    assert page.locator("#risk-score").inner_text() == f"{row['risk_score']:.3f}"
    assert page.locator("#likely-pattern").inner_text() == row["likely_pattern"]
    assert page.locator("#post-response-panel").is_hidden()  # no best response entered: no post-response panel
    for name, value in row["contributions"].items():
        assert page.get_by_text(f"{'+' if value >= 0 else '-'}{abs(value):.3f}", exact=True).count() >= 1, name
    assert page.locator("#prov-model_version").inner_text() == api["provenance"]["model_version"]
    shown_warnings = page.locator("#warnings li.warning").all_inner_texts()
    assert shown_warnings == row["warnings"]
    # the charts are drawn: the patient's curve, its band, the training KM and one bar per cause and horizon
    assert page.locator("#curve-chart path.patient").count() == 1
    assert page.locator("#curve-chart path.band").count() == 1
    assert page.locator("#curve-chart path.km").count() == 1
    causes = len([k for k in row if k.startswith("cif_") and k.endswith(f"_{api['horizons'][0]:g}")])
    assert page.locator("#pattern-chart rect").count() == causes * len(api["horizons"]) + causes  # bars + legend

    screen = tmp_path / "web_prediction.png"
    page.screenshot(path=str(screen), full_page=True)
    page.emulate_media(media="print")
    assert not page.locator("#entry").is_visible()  # the form is not printed; the results are
    assert page.locator("#results").is_visible() and page.locator("#notice").is_visible()
    printed = tmp_path / "web_prediction_print.png"
    page.screenshot(path=str(printed), full_page=True)
    for path in (screen, printed):
        assert path.stat().st_size > 10_000
        _save(path)
    assert outside == [] and errors == []
    page.close()


def test_a_best_response_adds_the_labelled_post_response_prediction(browser, page_server):
    page = browser.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{page_server}/")
    page.wait_for_selector("body[data-state=ready]", timeout=20_000)
    submit(page, {**ENTERED, "best_response": "SD"})
    page.wait_for_selector("#post-response-panel:not([hidden])", timeout=20_000)
    patient = {**PATIENT, "best_response": "SD"}
    api = requests.post(f"{page_server}/v1/predict", json=patient, headers=JSON, timeout=30).json()
    row, landmark = api["predictions"][0], api["provenance"]["post_response"]
    for h in (h for h in api["horizons"] if h > landmark["landmark_time"]):
        cell = page.locator(f"#post-surv-{h:g}")
        assert float(cell.get_attribute("data-value")) == row[f"post_response_survival_{h:g}"]
    assert f"still progression-free {landmark['landmark_time']:g} months after infusion" in page.locator(
        "#post-response-note").inner_text()
    assert page.locator("#post-response-pattern").inner_text() == row["post_response_likely_pattern"]
    assert errors == []
    page.close()


def test_invalid_entry_is_named_on_the_page(browser, page_server):
    page = browser.new_page()
    page.goto(f"{page_server}/")
    page.wait_for_selector("body[data-state=ready]", timeout=20_000)
    page.fill("#f-age", "150")
    page.fill("#f-ecog", "")
    page.click("#submit")
    page.wait_for_selector("body[data-state=done]", timeout=20_000)
    errors = page.locator("#form-errors li").all_inner_texts()
    assert any(e.startswith("field age: ") for e in errors) and any(e.startswith("field ecog: ") for e in errors)
    assert page.locator(".field.invalid").count() == 2
    assert page.locator("#results").is_hidden()
    page.close()
