"""The built site in a real browser: Debian's headless Chromium, driven through ChromeDriver.

It runs when /usr/bin/chromium and /usr/bin/chromedriver are present (`.ci/run` installs
them from Debian's packages when it can) and skips, saying why, when they are not. The site
is the session's clean build (the ``site`` fixture), served from 127.0.0.1 on a free port.
Screenshots of the index and of one rule page go into the build output
(``_build/html/_screenshots/``) and are copied to ``_build/screenshots/`` of the repository.
"""

from __future__ import annotations

import functools
import shutil
import tempfile
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
RULE = "ENTRY_GUEST_PDE_BS_REQUIRED_TF"
RULE_PAGE = "sdm/guest_non_register.html"

pytestmark = pytest.mark.skipif(
    not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
    reason="no Chromium: install Debian's chromium and chromium-driver (.ci/run does, as root)",
)


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib's name
        pass


@pytest.fixture(scope="module")
def served(site) -> Iterator[tuple[str, Path]]:
    tree, result = site
    assert result.returncode == 0, result.stderr
    html = tree / "_build" / "html"
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(html)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", html
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="vmxkb-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--window-size=1280,1600",
                 f"--user-data-dir={profile}"):
        options.add_argument(flag)
    # The Debian driver, never a downloaded one (Selenium Manager is not consulted when a
    # driver path is given).
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(20)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _wait(driver, condition, timeout: float = 10.0):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(condition)


def _screenshot(driver, html: Path, name: str) -> None:
    out = html / "_screenshots"
    out.mkdir(exist_ok=True)
    assert driver.save_screenshot(str(out / name))
    copy = ROOT / "_build" / "screenshots"
    copy.mkdir(parents=True, exist_ok=True)
    shutil.copy(out / name, copy / name)


def test_index_renders(served, browser) -> None:
    from selenium.webdriver.common.by import By

    base, html = served
    browser.get(base + "index.html")
    heading = browser.find_element(By.CSS_SELECTOR, "article h1")
    assert heading.text.strip(), "the index page has an empty title"
    assert "vmxkb" in browser.title
    body = browser.find_element(By.TAG_NAME, "article").text
    assert "pending debug exceptions" in body.lower()
    # The navigation lists the SDM area pages.
    nav = browser.find_element(By.CSS_SELECTOR, ".sidebar-tree").text
    assert "Checks on Guest Non-Register State" in nav or "non-register" in nav.lower(), nav
    _screenshot(browser, html, "index.png")


def test_rule_page_shows_editions_and_scenarios(served, browser) -> None:
    from selenium.webdriver.common.by import By

    base, html = served
    browser.get(base + RULE_PAGE + "#" + RULE)
    need = browser.find_element(By.ID, RULE)
    # The need's box: the per-edition sections, with confidence marks.
    assert "vmx-need" in (need.get_attribute("class") or ""), need.get_attribute("outerHTML")[:200]
    text = need.text
    for entry in ("E3a 26.3.1.5 (v)", "E6 29."):
        assert entry in text, f"{entry!r} not shown for {RULE}: {text[:400]}"
    # Its scenarios are rendered on the page, each with its own anchor.
    page = browser.find_element(By.TAG_NAME, "article").text
    for scenario in ("SCN_PDE_BS_MISSING_STI_DB",):
        assert browser.find_elements(By.ID, scenario), f"{scenario} has no anchor on {RULE_PAGE}"
        assert scenario in page
    browser.execute_script("arguments[0].scrollIntoView({block: 'start'});", need)
    _screenshot(browser, html, "rule.png")


def test_traceability_table_filters(served, browser) -> None:
    from selenium.webdriver.common.by import By

    base, _ = served
    browser.get(base + "traceability.html")
    box = _wait(browser, lambda d: d.find_element(By.CSS_SELECTOR, ".needstable-search input"))
    info = browser.find_element(By.CSS_SELECTOR, ".needstable-info")
    before = info.text
    assert before, "the clause table shows no row count"
    box.send_keys("PDE_BS_REQUIRED")
    _wait(browser, lambda d: d.find_element(By.CSS_SELECTOR, ".needstable-info").text != before)
    rows = browser.find_elements(By.CSS_SELECTOR, "table.NEEDS_DATATABLES tbody tr")
    ids = [row.find_element(By.CSS_SELECTOR, "td").text.strip() for row in rows]
    assert ids == [RULE], ids


def test_permalink_resolves_to_its_rule(served, browser) -> None:
    base, _ = served
    browser.get(base + f"id/{RULE}.html")
    _wait(browser, lambda d: RULE_PAGE in d.current_url)
    assert browser.current_url.endswith(f"{RULE_PAGE}#{RULE}")
    assert browser.execute_script("return document.getElementById(arguments[0]) !== null", RULE)


def test_search_finds_a_rule_id(served, browser) -> None:
    from selenium.webdriver.common.by import By

    base, _ = served
    browser.get(base + f"search.html?q={RULE}")
    _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#search-results ul.search li"), 15)
    links = [a.get_attribute("href") for a in browser.find_elements(By.CSS_SELECTOR, "#search-results ul.search li a")]
    assert any(RULE_PAGE in (href or "") for href in links), links
