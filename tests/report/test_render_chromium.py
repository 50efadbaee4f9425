"""Both reports in headless Chromium: no console error, no request beyond the file, the report card on
the first screen, and no table wider than the page (no sideways scrolling), even with every table open.

Screenshots land in the test's temporary folder (``<name>_first_screen.png``, ``<name>_full.png``).
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.browser import CHROMIUM_ARGS, chromium_path

pytestmark = pytest.mark.browser

VIEWPORT = {"width": 1280, "height": 900}

#: For every table: its block, its width and the width its container gives it (visible tables only).
MEASURE_TABLES = """() => Array.from(document.querySelectorAll('table'))
  .filter(t => t.offsetParent !== null)
  .map(t => ({block: (t.closest('[id]') || {}).id || '', width: t.scrollWidth,
              room: t.parentElement.clientWidth}))"""


def _inspect(path, screenshots) -> dict:
    """Open ``path`` in Chromium; return errors, outside requests, the card's bottom and table widths."""
    executable = chromium_path()
    from playwright.sync_api import sync_playwright

    seen: dict = {"errors": [], "requests": []}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport=VIEWPORT)
            page.on(
                "console", lambda m: seen["errors"].append(f"console.{m.type}: {m.text}") if m.type == "error" else None
            )
            page.on("pageerror", lambda e: seen["errors"].append(f"pageerror: {e}"))
            page.on("requestfailed", lambda r: seen["errors"].append(f"requestfailed: {r.url}"))
            page.on(
                "request",
                lambda r: seen["requests"].append(r.url) if not r.url.startswith(("data:", path.as_uri())) else None,
            )
            page.goto(path.as_uri(), wait_until="load")
            page.screenshot(path=str(screenshots / f"{path.stem}_first_screen.png"))
            seen["card_bottom"] = page.evaluate("() => document.getElementById('card').getBoundingClientRect().bottom")
            seen["page_width"] = page.evaluate("() => document.documentElement.scrollWidth")
            seen["tables"] = page.evaluate(MEASURE_TABLES)
            seen["csv_links"] = page.evaluate("() => document.querySelectorAll('a[download]').length")
            seen["table_blocks"] = page.evaluate("() => document.querySelectorAll('.table-block').length")
            page.screenshot(path=str(screenshots / f"{path.stem}_full.png"), full_page=True)
            page.evaluate("() => document.querySelectorAll('details').forEach(d => d.open = true)")
            seen["all_tables"] = page.evaluate(MEASURE_TABLES)
            seen["page_width_open"] = page.evaluate("() => document.documentElement.scrollWidth")
        finally:
            browser.close()
    return seen


def _small_groups_document(outputs: dict) -> str:
    """The audit with every race and gender group below the minimum n: the card's widest form."""
    from dex_bias.report.context import render_audit_report
    from tests.report.conftest import audit_context

    return render_audit_report(audit_context(outputs, params=replace(outputs["params"], min_n=1000)))


@pytest.mark.parametrize("document", ["audit_report", "audit_report_small_groups", "model_comparison_report"])
def test_report_renders_in_chromium_and_reads_at_a_glance(
    document, audit_outputs, audit_html, comparison_html, tmp_path
):
    path = tmp_path / f"{document}.html"
    page = {"audit_report": audit_html, "model_comparison_report": comparison_html}.get(document)
    path.write_text(page or _small_groups_document(audit_outputs), encoding="utf-8")
    if document == "audit_report_small_groups":
        assert path.read_text().count('class="small-mark"') == 7  # five races, two genders
    seen = _inspect(path, tmp_path)
    assert seen["errors"] == [] and seen["requests"] == []
    assert (tmp_path / f"{document}_full.png").stat().st_size > 50_000
    assert 0 < seen["card_bottom"] <= VIEWPORT["height"], "the report card is more than one screen"
    assert seen["page_width"] <= VIEWPORT["width"] and seen["page_width_open"] <= VIEWPORT["width"]
    for table in seen["all_tables"]:
        assert table["width"] <= table["room"] + 1, table
    assert seen["csv_links"] == seen["table_blocks"] > 5
