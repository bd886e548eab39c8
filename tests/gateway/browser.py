"""Headless Chromium for the dashboard test, driven through chromium-driver with selenium.

Debian's `chromium` and `chromium-driver` (scripts/apt-packages.txt), never a browser
downloaded at run time: the driver path is given, so Selenium Manager is not asked.
Every network feature that would call home is off; a fresh profile per test.
"""
from __future__ import annotations

import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--hide-scrollbars")


def need_chromium() -> tuple[str, str]:
    """(chromium, chromedriver) paths; missing ones fail in CI and skip, named, elsewhere."""
    browser = shutil.which("chromium")
    driver = shutil.which("chromedriver")
    if browser is None or driver is None:
        message = ("CHROMIUM MISSING: the dashboard page is NOT tested in a browser. Install Debian packages "
                   "`chromium` and `chromium-driver` (scripts/_bootstrap.sh does it, from scripts/apt-packages.txt).")
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return browser, driver


@contextmanager
def chromium(profile: Path, width: int = 900, height: int = 900) -> Iterator:
    """A selenium WebDriver on headless Chromium with a fresh profile in `profile`; quit afterwards."""
    browser, driver_path = need_chromium()
    os.environ.setdefault("SE_OFFLINE", "true")          # Selenium Manager must never download anything
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in FLAGS + (f"--user-data-dir={profile}", f"--window-size={width},{height}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=driver_path, log_output=str(profile) + ".log"),
                              options=options)
    try:
        driver.set_page_load_timeout(30)
        yield driver
    finally:
        driver.quit()


def viewport(driver, width: int, height: int, mobile: bool = False) -> None:
    """Emulate a screen of `width` x `height` CSS pixels (a phone with `mobile`): a desktop window
    cannot be made narrower than about 500 px, a DevTools device override can."""
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": width, "height": height, "deviceScaleFactor": 2 if mobile else 1,
                            "mobile": mobile})


def full_page_screenshot(driver, path: Path, width: int) -> None:
    """The whole page at `width` CSS pixels: the viewport grows to the document's height first."""
    viewport(driver, width, 600)
    height = driver.execute_script("return document.documentElement.scrollHeight")
    viewport(driver, width, min(int(height), 4000))
    driver.save_screenshot(str(path))
