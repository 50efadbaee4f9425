"""Headless Chromium for browser tests (the HTML audit report, Kedro-Viz).

Drives Debian's ``chromium`` package through Playwright, never a downloaded browser. Where
chromium is absent the calling test is skipped with the reason, except under CI (env ``CI``
set), where a missing browser is a failure: CI installs it (``.ci/run``).

Usage::

    from tests.browser import open_in_chromium
    errors = open_in_chromium(report_path.as_uri(), tmp_path / "report.png")
    assert errors == []
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]


def chromium_path() -> str:
    """The chromium executable; skip (locally) or fail (CI) when it is not installed."""
    path = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    if path is None:
        reason = "Debian's chromium is not installed (apt-get install -y chromium)"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI must install it (.ci/run)")
        pytest.skip(reason)
    return path


def open_in_chromium(
    url: str,
    screenshot_path: str | Path,
    *,
    wait_for: str | None = None,
    timeout_ms: int = 30_000,
    viewport: tuple[int, int] = (1280, 900),
) -> list[str]:
    """Open ``url`` in headless Chromium, save a full-page screenshot, return console errors.

    Errors are the page's ``console.error`` messages, uncaught exceptions (``pageerror``) and
    failed requests, each as a readable string. ``wait_for``: a CSS selector to wait for before
    the screenshot (e.g. the Kedro-Viz graph); otherwise the page's ``load`` event is enough.
    """
    executable = chromium_path()
    from playwright.sync_api import sync_playwright

    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
            page.on(
                "console",
                lambda message: (
                    errors.append(f"console.{message.type}: {message.text}") if message.type == "error" else None
                ),
            )
            page.on("pageerror", lambda exception: errors.append(f"pageerror: {exception}"))
            page.on("requestfailed", lambda request: errors.append(f"requestfailed: {request.url} ({request.failure})"))
            page.goto(url, wait_until="load", timeout=timeout_ms)
            if wait_for:
                page.wait_for_selector(wait_for, timeout=timeout_ms)
            page.screenshot(path=str(screenshot_path), full_page=True)
        finally:
            browser.close()
    return errors
