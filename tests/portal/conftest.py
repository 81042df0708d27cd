"""Browser-test fixtures: a live demo server, headless Chromium (Debian's, via Playwright), a signed-in page
and a guard that fails the test if the portal sends any request to another origin.

Chromium missing (or Playwright not installed): the tests skip with the reason, except with CI=true,
where they fail (``.ci/run`` installs Chromium). Screenshots go to ``artifacts/portal/`` (gitignored;
``SLOTBROKER_ARTIFACTS`` moves it).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx
import pytest

from conftest import IN_CI
from live_server import serve, token
from slotbroker.api.app import create_app
from slotbroker.config import Settings
from slotbroker.demo.bookings import synthetic_bookings
from slotbroker.demo.fabric import fabric_like_topology
from slotbroker.services.access.tokens import Role
from slotbroker.services.inventory import demo_data
from slotbroker.services.planner import Planner
from slotbroker.services.planner.provisioners.simulated import SimulatedConfig, SimulatedProvisioner
from slotbroker.services.planner.settings import PlannerSettings
from slotbroker.store import migrate
from slotbroker.store.db import Database

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Locator, Page, Route

CHROMIUM = os.environ.get("SLOTBROKER_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = (
    Path(os.environ.get("SLOTBROKER_ARTIFACTS", Path(__file__).resolve().parents[2] / "artifacts")) / "portal"
)
PROJECT = "portal"
BOOKED_DAYS = 10  # of synthetic bookings, from two days ago
# The simulated provisioner takes a few seconds per phase, so a job's states are seen to change live.
JOB_PHASE_S = 3.0


def _why_no_browser() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright is not installed (pip install -e '.[dev]')"
    if not Path(CHROMIUM).exists():
        return f"Chromium is not installed at {CHROMIUM} (apt-get install -y chromium)"
    return None


@dataclass
class Portal:
    url: str
    token: str  # a user token of project PROJECT
    admin: str
    app: Any
    outside: list[str] = field(default_factory=list)

    def api(self, method: str, path: str, **kw: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token}"}
        return httpx.request(method, self.url + path, headers=headers, timeout=30, **kw)


@pytest.fixture(scope="module")
def portal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portal]:
    """The demo testbed (topology and ten days of synthetic bookings) served with its planner running."""
    why = _why_no_browser()
    if why is not None:
        if IN_CI:
            pytest.fail(f"browser tests must run when CI=true: {why}")
        pytest.skip(why)
    path = tmp_path_factory.mktemp("portal") / "demo.db"
    settings = Settings(
        database_url=f"sqlite:///{path}",
        rate_per_s=10_000.0,
        rate_burst=10_000,
        migrate_on_start=False,
        extension_window_s=30 * 86_400,  # so a lease booked past the bookings can be extended
    )
    db = Database(settings.database_url)
    migrate.upgrade(db.engine)
    sim = SimulatedProvisioner(SimulatedConfig(ready_after_s=JOB_PHASE_S, run_s=JOB_PHASE_S, logs=("hi",)))
    slow = SimulatedProvisioner(SimulatedConfig(run_s=600.0), name="slow")  # runs until cancelled
    planner = Planner(db, settings=PlannerSettings(workers=2), provisioners={"simulated": sim, "slow": slow})
    app = create_app(settings, db=db, planner=planner)
    svc = app.state.services
    doc = fabric_like_topology()
    svc.topology.import_(doc)
    now = int(time.time())
    start = now - now % 3600 - 2 * 86_400
    bookings = synthetic_bookings(doc, start_s=start, days=BOOKED_DAYS, seed=7)
    demo_data.load_bookings(db, bookings, now_s=now)
    with serve(app, lifespan="on") as url:
        yield Portal(url, token(app, Role.USER, PROJECT), token(app, Role.ADMIN, PROJECT), app)


@pytest.fixture(scope="module")
def browser(portal: Portal) -> Iterator[Browser]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser: Browser, portal: Portal, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A fresh tab (laptop width) on the portal; any request to another origin is refused and fails the
    test; uncaught script errors fail it too."""
    context = browser.new_context(viewport={"width": 1366, "height": 900}, locale="en-GB")
    origin = urlsplit(portal.url)
    outside: list[str] = []
    errors: list[str] = []

    def guard(route: Route) -> None:
        u = urlsplit(route.request.url)
        if u.scheme in ("data", "blob") or (u.scheme, u.netloc) == (origin.scheme, origin.netloc):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    context.route("**/*", guard)
    p = context.new_page()
    p.on("pageerror", lambda e: errors.append(str(e)))
    p.set_default_timeout(20_000)
    yield p
    context.close()
    assert outside == [], f"the portal sent requests to another origin: {outside}"
    assert errors == [], f"uncaught script errors: {errors}"


def sign_in(page: Page, portal: Portal, secret: str | None = None) -> None:
    page.goto(portal.url + "/")
    page.get_by_label("API token").fill(secret or portal.token)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_selector("main[data-ready=calendar]")


def shot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def field_of(page: Page, label: str, within: Locator | None = None) -> Locator:
    """The ``.field`` wrapper of the control labelled ``label`` (where its error message goes)."""
    root = within or page.locator("main")
    return root.locator(".field").filter(has=page.get_by_label(label, exact=True))
