"""The web console (/ui) in headless Chromium (Debian's chromium and its
chromedriver, driven over WebDriver by selenium), against the real server and
both sandboxes (the `bridge` fixture): sign in, start an extraction from the
form and watch it succeed, a failed job's `<script>` error shown as text, a
failed sync event's reason, another token seeing none of the first's jobs,
and the headers that keep the page from being framed or running foreign
code. Screenshots of each page go to target/console-screenshots/ (not
committed).
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import httpx
import pytest

from .conftest import COLOMBIA_TOKEN, MEXICO_TOKEN, REPO_ROOT

from selenium import webdriver  # noqa: E402
from selenium.common.exceptions import NoAlertPresentException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions as EC  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

SHOTS = REPO_ROOT / "target" / "console-screenshots"
WAIT = 60


def _binary(*names: str) -> str:
    for n in names:
        found = shutil.which(n) or (n if os.path.exists(n) else None)
        if found:
            return found
    pytest.fail(f"none of {names} found: scripts/setup-test-env.sh installs chromium and chromium-driver",
                pytrace=False)


@pytest.fixture(scope="module")
def browser():
    opts = webdriver.ChromeOptions()
    opts.binary_location = _binary("chromium", "/usr/bin/chromium")
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--window-size=1366,900", "--lang=es"):
        opts.add_argument(a)
    service = webdriver.ChromeService(executable_path=_binary("chromedriver", "/usr/bin/chromedriver"))
    d = webdriver.Chrome(options=opts, service=service)
    SHOTS.mkdir(parents=True, exist_ok=True)
    yield d
    d.quit()


def shot(d, name: str) -> None:
    d.save_screenshot(str(SHOTS / f"{name}.png"))


def sign_in(d, url: str, token: str) -> None:
    d.get(f"{url}/ui")
    d.execute_script("sessionStorage.clear()")
    d.get(f"{url}/ui#/jobs")
    field = WebDriverWait(d, WAIT).until(EC.visibility_of_element_located((By.ID, "token")))
    field.send_keys(token)
    d.find_element(By.CSS_SELECTOR, "#signin-form button[type=submit]").click()
    WebDriverWait(d, WAIT).until(EC.visibility_of_element_located((By.ID, "nav")))


def wait_text(d, by, what, text: str):
    WebDriverWait(d, WAIT).until(EC.text_to_be_present_in_element((by, what), text))
    return d.find_element(by, what)


def job_id_from(d) -> str:
    WebDriverWait(d, WAIT).until(lambda d: d.current_url.split("#/jobs/")[-1] != d.current_url)
    return d.current_url.split("#/jobs/")[-1]


def test_headers_refuse_framing_and_foreign_code(bridge):
    r = httpx.get(f"{bridge.url}/ui")
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    csp = r.headers["content-security-policy"]
    for d in ("default-src 'none'", "script-src 'self'", "frame-ancestors 'none'", "form-action 'none'"):
        assert d in csp, csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert "token" not in r.text.lower().split("<body", 1)[0]  # nothing secret in the page
    assert httpx.get(f"{bridge.url}/ui/app.js").headers["content-type"].startswith("text/javascript")


def test_sign_in_start_an_extraction_and_watch_it_succeed(bridge, browser):
    d = browser
    d.get(f"{bridge.url}/ui")
    WebDriverWait(d, WAIT).until(EC.visibility_of_element_located((By.ID, "token")))
    from selenium.webdriver.support.ui import Select
    Select(d.find_element(By.ID, "lang")).select_by_value("es")
    wait_text(d, By.ID, "signin-title", "Iniciar sesión")
    shot(d, "sign-in")
    # A wrong token is refused with a message; the page stays on sign-in.
    d.find_element(By.ID, "token").send_keys("not-a-token")
    d.find_element(By.CSS_SELECTOR, "#signin-form button[type=submit]").click()
    wait_text(d, By.ID, "signin-error", "no es válido")
    assert "not-a-token" not in d.current_url

    sign_in(d, bridge.url, COLOMBIA_TOKEN)
    assert COLOMBIA_TOKEN not in d.current_url
    d.get(f"{bridge.url}/ui#/new")
    # Countries are picked from the config directory's <Country>.yaml files.
    from selenium.webdriver.support.ui import Select
    countries = Select(WebDriverWait(d, WAIT).until(EC.element_to_be_clickable((By.ID, "country"))))
    WebDriverWait(d, WAIT).until(lambda _: len(countries.options) >= 2)
    assert {"Colombia", "Mexico"} <= {o.text for o in countries.options}
    countries.select_by_value("Colombia")
    box = WebDriverWait(d, WAIT).until(EC.element_to_be_clickable((By.ID, "q-productos")))
    box.click()
    dest = d.find_element(By.ID, "destination")
    dest.clear()
    dest.send_keys("/Volumes/main/demo/landing")
    d.find_element(By.ID, "overwrite").click()
    d.find_element(By.ID, "preview-button").click()
    wait_text(d, By.ID, "preview", "country_code")
    assert "SELECT" in d.find_element(By.ID, "preview").text
    shot(d, "new-extraction")
    d.find_element(By.ID, "start").click()
    job = job_id_from(d)
    state = wait_text(d, By.ID, "job-state-value", "succeeded")
    assert state.text == "succeeded"
    rows = int(d.find_element(By.ID, "job-rows").text.replace(".", "").replace(",", "").replace("\u202f", ""))
    assert rows > 0
    assert "productos" in d.find_element(By.TAG_NAME, "table").text
    # The output's manifest: its parts with rows and sha256.
    d.find_element(By.CSS_SELECTOR, "details.manifest summary").click()
    manifest = d.find_element(By.CSS_SELECTOR, "details.manifest").text
    assert "_manifest.json" in manifest and "part-" in manifest
    assert any(len(w) == 64 and all(c in "0123456789abcdef" for c in w) for w in manifest.split())
    shot(d, "job")
    d.get(f"{bridge.url}/ui#/jobs?state=succeeded")
    wait_text(d, By.ID, "view", job)
    shot(d, "jobs")
    # English labels.
    Select(d.find_element(By.ID, "lang")).select_by_value("en")
    wait_text(d, By.TAG_NAME, "nav", "Sync events")
    Select(d.find_element(By.ID, "lang")).select_by_value("es")


def test_script_in_a_jobs_error_renders_as_text(bridge, browser):
    d = browser
    qdir = bridge.workdir / "console_queries"
    qdir.mkdir(exist_ok=True)
    (qdir / "xss.sql").write_text(
        "SELECT id_transaccion FROM {database}.{schema}.J_Ventas_CO "
        "WHERE id_transaccion = CAST('<script>alert(1)</script>' AS int)\n")
    # A query whose very name is markup (a file name may hold it).
    evil = '<img src=x onerror="document.title=1">'
    (qdir / f"{evil}.sql").write_text("SELECT 1 AS uno\n")
    sign_in(d, bridge.url, COLOMBIA_TOKEN)
    d.get(f"{bridge.url}/ui#/new")
    path = WebDriverWait(d, WAIT).until(EC.visibility_of_element_located((By.ID, "queries-path")))
    path.clear()
    path.send_keys("./console_queries")
    d.find_element(By.ID, "destination").click()  # change event: the list reloads
    WebDriverWait(d, WAIT).until(EC.element_to_be_clickable((By.ID, "q-xss"))).click()
    assert evil in d.find_element(By.ID, "queries").text
    assert not d.find_elements(By.CSS_SELECTOR, "#queries img")
    assert d.title == "SQL-Databricks Bridge"
    dest = d.find_element(By.ID, "destination")
    dest.clear()
    dest.send_keys("/Volumes/main/demo/landing")
    d.find_element(By.ID, "start").click()
    job_id_from(d)
    wait_text(d, By.ID, "job-state-value", "failed")
    err = d.find_element(By.ID, "job-error")
    assert "<script>alert(1)</script>" in err.text
    assert not d.find_elements(By.CSS_SELECTOR, "#view script")
    assert "null" not in d.find_element(By.ID, "view").text.split()
    with pytest.raises(NoAlertPresentException):
        d.switch_to.alert.text  # noqa: B018
    shot(d, "job-failed")


def test_a_failed_sync_event_shows_its_reason(bridge, browser):
    d = browser
    headers = {"Authorization": f"Bearer {COLOMBIA_TOKEN}"}
    r = httpx.post(f"{bridge.url}/sync/events", headers=headers, json={
        "operation": "UPSERT", "source_table": "main.demo.calibrated_panel",
        "target_table": "KWP_Colombia.dbo.CalibratedPanel", "primary_keys": ["panel_id"]})
    assert r.status_code == 202, r.text
    event = r.json()["event_id"]
    deadline = time.monotonic() + WAIT
    while httpx.get(f"{bridge.url}/sync/events/{event}", headers=headers).json()["status"] != "failed":
        assert time.monotonic() < deadline, "the event did not fail"
        time.sleep(0.5)
    sign_in(d, bridge.url, COLOMBIA_TOKEN)
    d.get(f"{bridge.url}/ui#/events?status=failed")
    WebDriverWait(d, WAIT).until(EC.element_to_be_clickable((By.LINK_TEXT, event))).click()
    err = wait_text(d, By.ID, "event-error", "tags")
    assert "tags" in err.text
    assert "failed" in d.find_element(By.TAG_NAME, "dl").text
    shot(d, "sync-event")


def test_another_token_sees_none_of_the_first_ones_jobs(bridge, browser):
    d = browser
    theirs = httpx.get(f"{bridge.url}/jobs?limit=100", headers={"Authorization": f"Bearer {COLOMBIA_TOKEN}"})
    colombia = [j["job_id"] for j in theirs.json()["jobs"]]
    assert colombia
    sign_in(d, bridge.url, MEXICO_TOKEN)
    d.get(f"{bridge.url}/ui#/jobs")
    WebDriverWait(d, WAIT).until(EC.presence_of_element_located((By.CSS_SELECTOR, "#view h2")))
    time.sleep(0.5)
    page = d.find_element(By.ID, "view").text
    assert not any(j in page for j in colombia)
    # Opening one of them directly is "not found", as in the API.
    d.get(f"{bridge.url}/ui#/jobs/{colombia[0]}")
    wait_text(d, By.ID, "view", "no job")
    shot(d, "other-token")
    d.find_element(By.ID, "signout").click()
    WebDriverWait(d, WAIT).until(EC.visibility_of_element_located((By.ID, "token")))
    assert d.execute_script("return sessionStorage.getItem('token')") is None


def test_audit_search_finds_a_refusal_and_only_ones_own_lines(bridge, browser):
    d = browser
    headers = {"Authorization": f"Bearer {COLOMBIA_TOKEN}"}
    # Colombia asks for Mexico's tables: refused, and audited.
    r = httpx.post(f"{bridge.url}/extract", headers=headers, json={
        "queries_path": "./queries", "config_path": "./config", "country": "Mexico",
        "destination": "/Volumes/main/demo/landing"})
    assert r.status_code == 403, r.text
    sign_in(d, bridge.url, COLOMBIA_TOKEN)
    d.get(f"{bridge.url}/ui#/audit")
    field = WebDriverWait(d, WAIT).until(EC.visibility_of_element_located((By.ID, "audit-event_type")))
    field.send_keys("permission_denied")
    d.find_element(By.ID, "audit-search").click()
    results = wait_text(d, By.ID, "audit-results", "permission_denied")
    assert "kwp_mexico" in results.text.lower()
    assert "proyecto-colombia" in results.text
    assert "proyecto-mexico" not in results.text
    shot(d, "audit")
    # Another user's lines need `audit: all`: refused, with the reason shown.
    d.get(f"{bridge.url}/ui#/audit?user=proyecto-mexico")
    wait_text(d, By.ID, "audit-results", "audit: all")
    api = httpx.get(f"{bridge.url}/audit", params={"user": "proyecto-mexico"}, headers=headers)
    assert api.status_code == 403
    mine = httpx.get(f"{bridge.url}/audit", params={"limit": 1000}, headers=headers).json()["lines"]
    assert mine and all(l["user_name"] == "proyecto-colombia" for l in mine)


def test_overview_shows_health_failures_and_rows(bridge, browser):
    d = browser
    sign_in(d, bridge.url, COLOMBIA_TOKEN)
    d.get(f"{bridge.url}/ui#/overview")
    health = wait_text(d, By.ID, "health", "sqlserver")
    assert "databricks" in health.text and "ok" in health.text
    assert "productos" in wait_text(d, By.ID, "per-table", "productos").text
    assert d.find_elements(By.CSS_SELECTOR, "svg.chart rect")
    # The failed job and event of the tests above are in the last 24 h.
    failures = d.find_element(By.ID, "failures").text
    assert "tags" in failures or "<script>" in failures
    shot(d, "overview")


def test_cancel_a_long_extraction_from_its_page(bridge, browser):
    d = browser
    qdir = bridge.workdir / "console_slow"
    qdir.mkdir(exist_ok=True)
    digits = "(VALUES (0),(1),(2),(3),(4),(5),(6),(7),(8),(9))"
    joins = " CROSS JOIN ".join(f"{digits} {c}(v)" for c in "abcdefgh")
    # 100 million generated rows: far longer than the test waits.
    (qdir / "lento.sql").write_text(f"SELECT a.v * 10 + b.v AS n FROM {joins}\n")
    sign_in(d, bridge.url, COLOMBIA_TOKEN)
    d.get(f"{bridge.url}/ui#/new")
    path = WebDriverWait(d, WAIT).until(EC.visibility_of_element_located((By.ID, "queries-path")))
    path.clear()
    path.send_keys("./console_slow")
    d.find_element(By.ID, "destination").click()
    WebDriverWait(d, WAIT).until(EC.element_to_be_clickable((By.ID, "q-lento"))).click()
    dest = d.find_element(By.ID, "destination")
    dest.clear()
    dest.send_keys("/Volumes/main/demo/landing")
    d.find_element(By.ID, "start").click()
    job = job_id_from(d)
    wait_text(d, By.ID, "job-state-value", "running")
    WebDriverWait(d, WAIT).until(EC.element_to_be_clickable((By.ID, "cancel"))).click()
    # The confirmation first: dismissed, nothing happens.
    WebDriverWait(d, WAIT).until(EC.alert_is_present())
    d.switch_to.alert.dismiss()
    time.sleep(1.5)
    assert d.find_element(By.ID, "job-state-value").text == "running"
    WebDriverWait(d, WAIT).until(EC.element_to_be_clickable((By.ID, "cancel"))).click()
    WebDriverWait(d, WAIT).until(EC.alert_is_present())
    d.switch_to.alert.accept()
    wait_text(d, By.ID, "job-state-value", "cancelled")
    shot(d, "job-cancelled")
    status = httpx.get(f"{bridge.url}/jobs/{job}", headers={"Authorization": f"Bearer {COLOMBIA_TOKEN}"}).json()
    assert status["state"] == "cancelled" and not any(q.get("files") for q in status["queries"])
