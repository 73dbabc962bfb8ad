"""A real browser against a real stack: Debian's headless Chromium, driven by Selenium,
on the same running haul (uvicorn, `dramatiq actors`, PostgreSQL, RabbitMQ, the local
media server) as the end-to-end tests.

Chromium missing skips the browser tests locally and fails them under ``CI=true``.
``HAUL_SCREENSHOT_DIR`` set keeps a screenshot of each page :func:`shoot` is given.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.e2e.conftest import _show_logs_on_failure, stack  # noqa: F401  (fixtures)
from tests.support.skips import unavailable

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from selenium.webdriver.remote.webelement import WebElement

    from tests.support.stack import Stack

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


@pytest.fixture(scope="module")
def chrome() -> Iterator[webdriver.Chrome]:
    if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
        unavailable("chromium and chromium-driver are not installed (apt-get install them)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    options.add_argument("--autoplay-policy=no-user-gesture-required")
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.set_window_size(1280, 900)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def browser(chrome: webdriver.Chrome, stack: Stack) -> Iterator[Browser]:  # noqa: F811
    """A browser with no cookies, pointed at the stack."""
    chrome.get(f"{stack.base_url}/signin")
    chrome.delete_all_cookies()
    yield Browser(chrome, stack.base_url)
    chrome.set_window_size(1280, 900)


class Browser:
    """What a person does: open pages, fill forms, click, read; each wait has a deadline."""

    def __init__(self, driver: webdriver.Chrome, base_url: str) -> None:
        self.driver = driver
        self.base_url = base_url

    def open(self, path: str) -> None:
        self.driver.get(f"{self.base_url}{path}")

    def find(self, css: str) -> WebElement:
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def all(self, css: str) -> list[WebElement]:
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def text(self) -> str:
        return str(self.find("main").text)

    def path(self) -> str:
        return str(self.driver.current_url).removeprefix(self.base_url)

    def js(self, script: str, *args: Any) -> Any:
        return self.driver.execute_script(script, *args)

    def until(self, what: str, check: Callable[[], Any], timeout: float = 60) -> Any:
        def probe(_: object) -> Any:
            try:
                return check()
            except Exception:  # an element replaced by htmx mid-read; look again
                return None

        return WebDriverWait(self.driver, timeout, poll_frequency=0.1).until(probe, message=what)

    def sign_in(self, key: str) -> None:
        self.open("/signin")
        self.find("#key").send_keys(key)
        self.find("form[action='/signin'] button[type=submit]").click()
        self.until("the jobs page after sign-in", lambda: self.path().startswith("/jobs"))

    def click(self, label: str, scope: str = "main") -> None:
        """Press the button or link whose visible text is ``label``."""
        for element in self.all(f"{scope} button, {scope} a"):
            if element.text.strip() == label:
                element.click()
                return
        raise AssertionError(f"no button or link {label!r} on {self.path()}")

    def mark(self) -> None:
        """Tag this page; :meth:`same_page` tells later whether it was reloaded meanwhile."""
        self.js("window.__haulMark = 1")

    def same_page(self) -> bool:
        return bool(self.js("return window.__haulMark === 1"))

    def session(self) -> httpx.Client:
        """An HTTP client carrying this browser's cookies (no Authorization header)."""
        cookies = {c["name"]: c["value"] for c in self.driver.get_cookies()}
        return httpx.Client(base_url=self.base_url, cookies=cookies, timeout=10)

    def shoot(self, name: str) -> None:
        """Screenshots of the page at 360 and 1280 px wide, when HAUL_SCREENSHOT_DIR is set."""
        folder = os.environ.get("HAUL_SCREENSHOT_DIR")
        if not folder:
            return
        Path(folder).mkdir(parents=True, exist_ok=True)
        for width in (360, 1280):
            self.driver.set_window_size(width, 900)
            height = self.js("return document.documentElement.scrollHeight")
            self.driver.set_window_size(width, min(max(int(height) + 140, 600), 3000))
            self.driver.save_screenshot(str(Path(folder) / f"{name}-{width}.png"))
        self.driver.set_window_size(1280, 900)
