"""A real headless Chromium for the dashboard's tests: Debian's chromium driven by its chromedriver
through Selenium (Selenium Manager kept offline: it downloads nothing), and where its screenshots go."""

from __future__ import annotations

import os
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service

from tests.conftest import REPO

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


def artifacts_dir() -> Path:
    """$REDIS_ADDONS_ARTIFACTS/dashboard, else artifacts/dashboard at the repository's root (git-ignored)."""
    base = Path(os.environ.get("REDIS_ADDONS_ARTIFACTS") or REPO / "artifacts")
    path = base / "dashboard"
    path.mkdir(parents=True, exist_ok=True)
    return path


def chromium(downloads: Path, profile: Path) -> webdriver.Chrome:
    os.environ["SE_OFFLINE"] = "true"
    options = Options()
    options.binary_location = CHROMIUM
    # As root: no sandbox. The network flags keep Chromium from calling out (the machine allows loopback only).
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-quic", "--disable-features=Translate,OptimizationHints,MediaRouter",
                "--window-size=1280,1000", f"--user-data-dir={profile}"):
        options.add_argument(arg)
    options.add_experimental_option("prefs", {
        "download.default_directory": str(downloads), "download.prompt_for_download": False,
        "download.directory_upgrade": True, "safebrowsing.enabled": False})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    return driver
