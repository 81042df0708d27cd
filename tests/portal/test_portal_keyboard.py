"""Keyboard and accessibility: the main flow (sign in, the calendar and a site, Find, offers, accept, the
lease, cancel, the list) with the keyboard only, every stop showing where the focus is; and on every
page, each control has a name and each table has column headers."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

from .conftest import Portal, shot, sign_in

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.browser

# The focused element: its tag, accessible name (label, aria-label or text) and whether a focus ring
# (an outline of 2 px or more, or a box shadow) is drawn.
FOCUSED = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  const cs = getComputedStyle(el);
  const ring = (cs.outlineStyle !== 'none' && parseFloat(cs.outlineWidth) >= 2) || cs.boxShadow !== 'none';
  const label = el.labels && el.labels.length ? [...el.labels].map((l) => l.textContent).join(' ') : '';
  const name = el.getAttribute('aria-label') || label || el.textContent || '';
  return {tag: el.tagName, name: name.trim().replace(/\\s+/g, ' '), ring};
}"""

# What a page gets wrong: a rendered control without a name, a table without scoped column headers.
UNNAMED = """() => {
  const bad = [];
  const name = (el) => {
    const by = (el.getAttribute('aria-labelledby') || '').split(' ').filter(Boolean);
    const labelled = by.map((i) => document.getElementById(i)?.textContent || '');
    return [el.getAttribute('aria-label') || '', ...labelled,
      ...(el.labels ? [...el.labels].map((l) => l.textContent) : []),
      ['BUTTON', 'A', 'SUMMARY'].includes(el.tagName) ? el.textContent : ''].join(' ').trim();
  };
  const controls = 'input:not([type=hidden]), select, textarea, button, a[href], summary, progress, '
    + '[tabindex]:not([tabindex="-1"])';
  for (const el of document.querySelectorAll(controls)) {
    if (el.getClientRects().length && !name(el)) bad.push(el.outerHTML.slice(0, 120));
  }
  for (const t of document.querySelectorAll('table')) {
    const heads = [...t.querySelectorAll('thead th')];
    if (!heads.length || heads.some((th) => th.getAttribute('scope') !== 'col')) {
      bad.push('table without scoped column headers: ' + (t.getAttribute('aria-label') || t.className));
    }
  }
  return bad;
}"""


def focused(page: Page) -> dict[str, Any] | None:
    info: dict[str, Any] | None = page.evaluate(FOCUSED)
    return info


def tab_until(
    page: Page, want: Callable[[dict[str, Any]], bool], *, back: bool = False, limit: int = 200
) -> None:
    """Press Tab (Shift+Tab) until the focused element is ``want``ed; every stop must show its focus."""
    seen = []
    for _ in range(limit):
        page.keyboard.press("Shift+Tab" if back else "Tab")
        info = focused(page)
        if info is None:
            continue
        assert info["ring"], f"focus not visible on {info}"
        if want(info):
            return
        seen.append(info["name"][:40])
    raise AssertionError(f"never reached; stops were {seen}")


def tab_to(page: Page, name: str, *, back: bool = False) -> None:
    tab_until(page, lambda f: f["name"] == name, back=back)


def assert_named(page: Page) -> None:
    assert page.evaluate(UNNAMED) == []


def test_main_flow_with_the_keyboard_only(page: Page, portal: Portal) -> None:
    page.goto(portal.url + "/")
    page.get_by_label("API token").wait_for()
    assert_named(page)
    assert focused(page) == {"tag": "INPUT", "name": "API token", "ring": True}  # focused on arrival
    page.keyboard.type(portal.token)
    page.keyboard.press("Enter")
    page.wait_for_selector("main[data-ready=calendar] table.heat")

    # the skip link comes first, is visible when focused, and moves focus without changing the address
    address = page.evaluate("location.href")
    tab_to(page, "Skip to content")
    assert page.locator("a.skip").bounding_box()["x"] >= 0  # type: ignore[index]
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    assert page.evaluate("location.href") == address

    # the heat map is one stop; arrows move, Enter opens the row's site with its hosts, links and ports
    tab_until(page, lambda f: f["tag"] == "TD")
    first = focused(page)
    page.keyboard.press("ArrowDown")
    second = focused(page)
    assert first is not None
    assert second is not None
    assert second["name"] != first["name"]
    assert second["ring"]
    page.keyboard.press("Enter")
    page.wait_for_selector("section.site-panel .site-over-time table.heat")
    assert page.evaluate("document.activeElement.classList.contains('site-panel')")
    assert_named(page)
    shot(page, "keyboard-calendar")

    # to Find by the navigation
    tab_to(page, "Find Available Window", back=True)
    page.keyboard.press("Enter")
    page.wait_for_selector("main[data-ready=find]")
    assert_named(page)
    tab_to(page, "Duration (hours)")
    page.keyboard.press("Control+A")
    page.keyboard.type("2")
    tab_to(page, "Find windows")
    page.keyboard.press("Enter")
    page.locator("li.window").first.wait_for()
    assert focused(page) == {"tag": "BUTTON", "name": "Find windows", "ring": True}  # kept while it ran
    tab_to(page, "Get offers")
    page.keyboard.press("Enter")
    page.locator("article.offer").first.wait_for()
    tab_to(page, "Accept offer 1")
    page.keyboard.press("Enter")
    page.locator(".accepted[data-lease]").wait_for()
    assert_named(page)
    shot(page, "keyboard-offers")
    assert focused(page) == {"tag": "A", "name": "Open the lease", "ring": True}  # not lost with the buttons
    lease_id = page.locator(".accepted").get_attribute("data-lease")
    assert lease_id
    page.keyboard.press("Enter")
    page.wait_for_selector("main[data-ready=leases] #lease-status")
    assert lease_id in page.url
    assert_named(page)

    # cancel: asks first, with the focus on the safe answer
    tab_to(page, "Cancel lease")
    page.keyboard.press("Enter")
    assert focused(page) == {"tag": "BUTTON", "name": "Keep it", "ring": True}
    tab_to(page, "Yes, cancel it", back=True)
    page.keyboard.press("Enter")
    page.get_by_text("Cancelled: its capacity is free again.").wait_for()
    assert portal.api("GET", f"/v1/leases/{lease_id}").json()["status"] == "CANCELLED"

    # the list, filtered from the keyboard
    page.keyboard.press("Shift+Tab")  # the re-drawn page starts the walk from its top
    tab_to(page, "All leases")
    page.keyboard.press("Enter")
    page.wait_for_selector("main[data-ready=leases]")
    tab_to(page, "Status")
    page.keyboard.press("End")  # the last status: cancelled
    page.wait_for_selector(f'table.leases tr[data-lease="{lease_id}"]')
    assert_named(page)
    shot(page, "keyboard-leases")


def test_every_page_names_its_controls_and_heads_its_tables(page: Page, portal: Portal) -> None:
    sign_in(page, portal, portal.admin)
    page.get_by_label("Resource class").select_option("VLAN")
    page.wait_for_selector("table.heat tr[data-kind=facility_port]")
    assert_named(page)
    page.goto(portal.url + "/#/find")
    page.wait_for_selector("main[data-ready=find]")
    for add in ("Add component", "Add link", "Add facility port"):
        page.get_by_role("button", name=add).click()
    assert_named(page)
    page.goto(portal.url + "/#/jobs")
    page.wait_for_selector("main[data-ready=jobs]")
    assert_named(page)
    page.goto(portal.url + "/#/inventory")
    page.wait_for_selector("main[data-ready=inventory] table")
    page.locator("details summary").click()  # the hosts' table
    assert page.get_by_label("Topology document (JSON or YAML)").count() == 1
    assert_named(page)
