"""The console in a real browser: Debian's Chromium, driven through Debian's chromedriver by
Selenium, against a live `cometgate serve` with the bundled local model.

No browser or driver is downloaded: both paths are given to Selenium, so its driver manager has
nothing to look up. A machine without them fails here (scripts/test installs them through
scripts/bootstrap with COMETGATE_NEEDS_BROWSER=1); the test is never skipped.

Screenshots of every page land in tests/e2e/artifacts/console/ (git-ignored).
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import openai
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.wait import WebDriverWait

from tests.e2e.conftest import (
    MODEL,
    LiveGateway,
    clean_env,
    cometgate_argv,
    free_port,
    stop,
    wait_ready,
)

pytestmark = [pytest.mark.model, pytest.mark.slow]

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ADMIN_KEY = "browser-admin-key-0123456789"
ARTIFACTS = Path(__file__).parent / "artifacts" / "console"
WAIT_SECONDS = 60.0
# Key lookups are trusted briefly (server.auth_cache_seconds); a short trust makes a revocation
# take effect within the test's patience.
CONFIG = "server: {auth_cache_seconds: 0.2}\n"


@pytest.fixture(scope="module")
def console_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveGateway]:
    root = tmp_path_factory.mktemp("console")
    (root / "cometgate.yaml").write_text(CONFIG, encoding="utf-8")
    port = free_port()
    log_path = root / "serve.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            cometgate_argv("serve", "--data-dir", str(root / "data"), "--port", str(port),
                           "--host", "127.0.0.1", "--config", str(root / "cometgate.yaml")),
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            env=clean_env() | {"COMETGATE_ADMIN_KEY": ADMIN_KEY})
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base_url, process, log_path)
        yield LiveGateway(base_url, "", root / "data", process.pid, log_path)
    finally:
        stop(process)


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        pytest.fail(f"{', '.join(missing)} missing: apt-get install chromium chromium-driver "
                    "(scripts/test does, through scripts/bootstrap)")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # to see CSP violations
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--window-size=1280,1100", "--disable-gpu"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)),
                              options=options)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def screenshot() -> Callable[[WebDriver, str], None]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    def save(driver: WebDriver, name: str) -> None:
        height = driver.execute_script("return document.body.scrollHeight")
        driver.set_window_size(1280, max(1100, min(int(height) + 40, 4000)))
        assert driver.save_screenshot(str(ARTIFACTS / f"{name}.png"))

    return save


def wait(driver: WebDriver) -> WebDriverWait[WebDriver]:
    return WebDriverWait(driver, WAIT_SECONDS)


def chart_total(driver: WebDriver, base: str) -> Decimal:
    driver.get(f"{base}/console/usage?period=24h&metric=requests&group_by=model")
    svg = driver.find_element(By.CSS_SELECTOR, "#usage-chart svg.chart")
    return Decimal(svg.get_attribute("data-total") or "NaN")


def sign_in(driver: WebDriver, base: str) -> None:
    driver.get(f"{base}/console")
    wait(driver).until(expected_conditions.url_contains("/console/signin"))
    driver.find_element(By.ID, "admin_key").send_keys(ADMIN_KEY)
    driver.find_element(By.ID, "sign-in").click()
    wait(driver).until(expected_conditions.url_to_be(f"{base}/console/keys"))


def chat(base: str, key: str) -> None:
    with openai.OpenAI(base_url=f"{base}/v1", api_key=key, max_retries=0) as client:
        answer = client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "Say hi."}], max_tokens=8)
    assert answer.usage is not None and answer.usage.completion_tokens > 0


def test_an_operator_runs_the_gateway_from_the_console(
        console_gateway: LiveGateway, browser: WebDriver,
        screenshot: Callable[[WebDriver, str], None]) -> None:
    base, driver = console_gateway.base_url, browser
    driver.get(f"{base}/console/signin")
    screenshot(driver, "01-signin")
    sign_in(driver, base)
    before = chart_total(driver, base)

    # Create a key: shown once, then used from the openai SDK.
    driver.get(f"{base}/console/keys")
    form = driver.find_element(By.ID, "create-key")
    form.find_element(By.NAME, "name").send_keys("browser")
    form.find_element(By.NAME, "rpm").send_keys("120")
    form.find_element(By.NAME, "owner").send_keys("e2e")
    form.submit()
    key = wait(driver).until(
        expected_conditions.visibility_of_element_located((By.ID, "new-key"))).text
    assert key.startswith("cg-") and len(key) == 46
    screenshot(driver, "02-key-created")
    driver.find_element(By.LINK_TEXT, "Go to the key").click()
    key_url = driver.current_url
    key_id = key_url.rsplit("/", 1)[1]
    screenshot(driver, "03-key")
    chat(base, key)

    # The request is listed, and the chart counts it.
    driver.get(f"{base}/console/requests?key_id={key_id}")
    rows = driver.find_elements(By.CSS_SELECTOR, "tr.request-row")
    assert len(rows) == 1 and MODEL in rows[0].text and "200" in rows[0].text
    assert key not in driver.page_source and key[11:] not in driver.page_source
    screenshot(driver, "04-requests")
    assert chart_total(driver, base) == before + 1
    assert driver.find_elements(By.CSS_SELECTOR, "#usage-chart rect.bar")
    # A filter applies on change (htmx), and the view lands in the URL.
    Select(driver.find_element(By.NAME, "metric")).select_by_visible_text("tokens")
    wait(driver).until(expected_conditions.url_contains("metric=tokens"))
    wait(driver).until(lambda d: d.find_element(By.CSS_SELECTOR, "#usage-chart svg.chart")
                       .get_attribute("data-metric") == "tokens")
    screenshot(driver, "05-usage")

    # The list, searched as the operator types (htmx swaps the rows and updates the URL).
    driver.get(f"{base}/console/keys")
    rows = driver.find_elements(By.CSS_SELECTOR, "tr.key-row")
    assert len(rows) == 2 and "browser" in rows[1].text  # `serve` made a first key itself
    driver.find_element(By.NAME, "q").send_keys("no-such-key")
    wait(driver).until(lambda d: not d.find_elements(By.CSS_SELECTOR, "tr.key-row"))
    wait(driver).until(expected_conditions.url_contains("q=no-such-key"))
    driver.find_element(By.NAME, "q").clear()
    driver.find_element(By.NAME, "q").send_keys("brow")
    wait(driver).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "tr.key-row")) == 1)
    assert "browser" in driver.find_element(By.CSS_SELECTOR, "tr.key-row").text
    screenshot(driver, "06-keys")

    # Revoke it (confirming the dialog): the next call is refused.
    driver.get(key_url)
    driver.find_element(By.ID, "revoke").click()
    wait(driver).until(expected_conditions.alert_is_present()).accept()
    wait(driver).until(expected_conditions.text_to_be_present_in_element(
        (By.ID, "key-status"), "revoked"))
    screenshot(driver, "07-key-revoked")
    time.sleep(0.3)  # past the gateway's 0.2 s trust in its last lookup of the key
    with pytest.raises(openai.APIStatusError) as refused:
        chat(base, key)
    assert refused.value.status_code in (400, 401)

    driver.get(f"{base}/console/models")
    assert driver.find_element(By.ID, f"model-{MODEL}").text.count("closed") >= 1
    screenshot(driver, "08-models")

    # A streamed chat from the playground, with a temporary key, in each dialect.
    driver.get(f"{base}/console/playground")
    driver.find_element(By.ID, "pg-temp-key").click()
    wait(driver).until(lambda d: d.find_element(By.ID, "pg-key").get_attribute("value"))
    Select(driver.find_element(By.ID, "pg-model")).select_by_visible_text(MODEL)
    for dialect, path, marker in (("openai", "/v1/chat/completions", "chat.completion.chunk"),
                                  ("gemini", ":streamGenerateContent?alt=sse", "candidates"),
                                  ("anthropic", "/v1/messages", "content_block_delta")):
        Select(driver.find_element(By.ID, "pg-dialect")).select_by_visible_text(dialect)
        driver.execute_script("document.getElementById('pg-status').dataset.done = ''")
        driver.find_element(By.ID, "pg-send").click()
        wait(driver).until(lambda d: d.find_element(By.ID, "pg-status")
                           .get_attribute("data-done") == "true")
        assert "HTTP 200" in driver.find_element(By.ID, "pg-status").text
        assert path in driver.find_element(By.ID, "pg-raw-request").text
        raw = driver.find_element(By.ID, "pg-raw-answer").text
        assert ("data:" in raw.splitlines()[0] or raw.startswith("event:")) and marker in raw
        assert driver.find_element(By.ID, "pg-answer").text.strip()
        screenshot(driver, f"09-playground-{dialect}")

    # No page broke its own Content-Security-Policy (no inline script or style anywhere).
    violations = [entry["message"] for entry in driver.get_log("browser")
                  if "Content Security Policy" in entry["message"]]
    assert violations == []
