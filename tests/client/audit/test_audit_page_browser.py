"""The audit page in a real browser, on the main job's network of each engine (the session's ``job``
fixture, tests/round_job.py): ``swarmfuse audit serve`` as a process, Debian's headless Chromium driven by
Selenium. The page is filtered to one round and shows exactly that round's exchanges (their SHA-256 as the
ledger records them), verification runs from the page and passes, and a screenshot of the whole page is
saved under ``$SWARMFUSE_TEST_OUTPUT`` (default ``<repo>/test-output/``).

The browser and its driver are Debian's packages at fixed paths (``chromium``, ``chromium-driver``; see
scripts/test_deps.sh): the test fails, naming them, when they are missing, and Selenium Manager is never
asked to find or download anything.
"""

from __future__ import annotations

import base64
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from round_job import agent_pids
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from swarmfuse.client.audit.queries import AuditView
from swarmfuse.client.demo import job as demo
from swarmfuse.client.demo.job import JobConfig, JobReport
from swarmfuse.client.site.wiring import open_site

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(1500)]

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[3]
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
TASK = "emoji"
AUDITOR = "Auditor"
OTHER_ROUND = "audit-page"  # a second round, so the round filter has something to leave out
WAIT_S = 300.0

Job = tuple[JobConfig, JobReport]


def output_dir() -> Path:
    """Where tests leave files for people to look at: ``$SWARMFUSE_TEST_OUTPUT``, else ``<repo>/test-output``."""
    folder = Path(os.environ.get("SWARMFUSE_TEST_OUTPUT") or ROOT / "test-output")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def require_browser() -> None:
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]
    if missing:
        pytest.fail(f"the audit page's browser test needs Debian's packages chromium and chromium-driver "
                    f"({', '.join(missing)} missing): apt-get install chromium chromium-driver "
                    f"(scripts/test_deps.sh installs them)", pytrace=False)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def audit_server(job: Job, tmp_path: Path) -> Iterator[str]:
    """``swarmfuse audit serve`` on the job's network, as a process on a free loopback port, verifying with the
    artefacts of the job round's leader (its shards received and the model); its base URL."""
    config, report = job
    artefacts = config.home / "sites" / report.round["leader"].removesuffix("MSP")
    port = free_port()
    log_path = tmp_path / "audit-serve.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "swarmfuse", "audit", "serve", "--home", str(config.home), "--task", TASK,
             "--org", AUDITOR, "--port", str(port), "--artefacts", str(artefacts)],
            stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, f"audit serve exited {server.returncode}:\n{log_path.read_text()}"
            try:
                if httpx.get(f"{base}/api/rounds", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"audit serve did not answer in 60 s:\n{log_path.read_text()}"
            time.sleep(0.3)
        yield base
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        logger.info("audit serve log:\n%s", log_path.read_text())


def second_round(config: JobConfig) -> None:
    """Run round :data:`OTHER_ROUND` to ``closed`` beside the job's round (once per network), restarting any
    site agent an earlier test stopped; agents started here are stopped with the job's at the session's end."""
    with open_site(config.home, "DC1", TASK) as parts:
        if OTHER_ROUND in {r.round_id for r in parts.ledger.rounds()}:
            state = parts.ledger.round(OTHER_ROUND).state
        else:
            for org in demo.ORGS:
                if not agent_pids(config.home, org):
                    demo.start_agent(config.home, org, TASK)
            demo.open_round(parts.ledger, OTHER_ROUND)
            state = "open"
        deadline = time.monotonic() + WAIT_S
        while state != "closed":
            assert state != "aborted", f"round {OTHER_ROUND} was aborted"
            assert time.monotonic() < deadline, f"round {OTHER_ROUND} did not close in {WAIT_S:.0f} s (state {state})"
            time.sleep(1.0)
            state = parts.ledger.round(OTHER_ROUND).state


def chromium() -> WebDriver:
    """Debian's Chromium, headless, through Debian's chromedriver (both by path: no Selenium Manager)."""
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)


def save_full_page(driver: WebDriver, path: Path) -> None:
    """A PNG of the whole page, beyond the window (Chromium's DevTools screenshot)."""
    size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip})
    path.write_bytes(base64.b64decode(shot["data"]))


def test_page_filters_to_one_round_and_verification_passes(job: Job, audit_server: str,
                                                           record_property: Callable[[str, object], None]) -> None:
    require_browser()
    config, report = job
    second_round(config)
    with AuditView.open(config.home, TASK, AUDITOR) as view:  # exchange tx ID -> its SHA-256, per round
        ledger = {r.round_id: {e.tx_id: e.sha256 for e in view.exchanges(r.round_id)} for r in view.rounds()}
    chosen = ledger[config.round_id]
    others = {tx for round_id, exchanges in ledger.items() if round_id != config.round_id for tx in exchanges}
    assert chosen and others, f"both rounds need exchanges on the ledger: {ledger}"

    screenshot = output_dir() / f"audit-page-{report.engine}.png"
    driver = chromium()
    try:
        wait = WebDriverWait(driver, WAIT_S)
        driver.get(f"{audit_server}/")
        assert OTHER_ROUND in driver.page_source and all(tx in driver.page_source for tx in chosen.keys() | others)

        Select(driver.find_element(By.ID, "filter-round")).select_by_value(config.round_id)
        wait.until(lambda d: f"round={config.round_id}" in d.current_url)
        wait.until(lambda d: d.find_elements(By.ID, f"round-{config.round_id}"))
        # Rounds may exchange identical files (same entities, same extractor), so exchanges are told apart by tx ID.
        rows = driver.find_elements(By.CSS_SELECTOR, "table.exchanges tr[data-tx-id]")
        shown = {row.get_attribute("data-tx-id"): row.get_attribute("data-sha256") for row in rows}
        assert shown == chosen, f"the page shows {shown}, the ledger records {chosen} for {config.round_id}"
        for row in rows:
            assert row.get_attribute("data-sha256") in row.text  # the full hash is on the page, not only an attribute
        assert not any(tx in driver.page_source for tx in others), "another round's exchange is on the filtered page"
        assert not driver.find_elements(By.ID, f"round-{OTHER_ROUND}")

        driver.find_element(By.ID, "run-verification").click()
        verdict = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#verification-verdict[data-verdict]"))
        failing = [row.text for row in driver.find_elements(By.CSS_SELECTOR, "table.checks tr.failed")]
        assert verdict.get_attribute("data-verdict") == "pass", f"verification failed: {failing}"
        assert "PASS" in verdict.text and not driver.find_element(By.ID, "verification-status").text
        errors = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
        assert not errors, f"the page logged errors: {errors}"
    finally:
        save_full_page(driver, screenshot)
        driver.quit()
        record_property("screenshot", str(screenshot))
        logger.info("screenshot of the audit page: %s", screenshot)
