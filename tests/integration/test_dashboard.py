"""The web dashboard driven by a real headless Chromium (Debian's chromium and chromedriver through
Selenium) against the engine's own aiohttp server on loopback, over real Redis nodes: sign-in, the
addon's tabs, live charts and live operation steps, a backup downloaded, a plan changed after its
confirmation, the upgrade button only where an upgrade is allowed; and requests without the session or
from another origin refused (an aiohttp client for those). One browser, one engine and two Starter
addons for the module; each page's screenshot is saved under artifacts/dashboard/."""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait

from adapters.http.app import make_app
from adapters.http.dashboard import render
from adapters.http.dashboard.sessions import COOKIE
from engine import build
from tests.integration.browser import artifacts_dir, chromium
from tests.integration.conftest import remove_everything_of, settings_for

pytestmark = pytest.mark.timeout(240)

NEWEST = "9.1.2"  # the catalogue's newest version: no upgrade past it


@dataclass
class Site:
    engine: object
    url: str
    token: str
    app: str
    addon: str  # on the default version (7.0.15): upgrades are offered
    newest: str  # on NEWEST: none is


@pytest.fixture(scope="module")
async def site(tmp_path_factory):
    app = f"it-{secrets.token_hex(4)}"
    home = tmp_path_factory.mktemp("dashboard") / "home"
    try:
        async with build(settings_for(home)) as engine:
            asked = [await engine.add_addon(app, "redis-starter-256"),
                     await engine.add_addon(app, "redis-starter-256", version=NEWEST)]
            for done in await asyncio.gather(*(engine.wait_for_operation(a["operation_id"], timeout=90) for a in asked)):
                assert done["status"] == "succeeded", done
            runner = web.AppRunner(make_app(engine), access_log=None)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", 0).start()
            port = runner.addresses[0][1]
            try:
                yield Site(engine, f"http://127.0.0.1:{port}", engine.settings.token_file.read_text().strip(),
                           app, asked[0]["addon"], asked[1]["addon"])
            finally:
                await runner.cleanup()
    finally:
        await remove_everything_of(app)


@pytest.fixture(scope="module")
def downloads(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("downloads")


@pytest.fixture(scope="module")
def browser(tmp_path_factory, downloads):
    driver = chromium(downloads, tmp_path_factory.mktemp("chromium-profile"))
    yield driver
    driver.quit()


@pytest.fixture
async def signed_out(site, browser):
    """The browser with no session (each test stands alone, whatever ran before it)."""
    def steps():
        browser.get(site.url + "/dashboard/signin")
        browser.delete_all_cookies()
    await in_browser(steps)
    return browser


@pytest.fixture
async def signed_in(site, browser):
    """The browser with a session, signed in through the form when it has none (once a module, unless a
    test signed out), so each test stands alone."""
    def steps():
        if browser.current_url.startswith(site.url) and browser.get_cookie(COOKIE):
            return  # the session of an earlier test: the server keeps it for the module
        browser.get(site.url + "/dashboard/apps")
        if "/dashboard/signin" in browser.current_url:
            browser.find_element(By.ID, "token").send_keys(site.token)
            browser.find_element(By.ID, "signin").click()
            wait(browser).until(EC.url_to_be(site.url + "/dashboard/apps"))
    await in_browser(steps)
    return browser


def in_browser(fn):
    """Selenium blocks: its calls run in a thread while the engine's server goes on on the loop."""
    return asyncio.to_thread(fn)


def shot(browser, name: str) -> None:
    browser.save_screenshot(str(artifacts_dir() / f"{name}.png"))


def wait(browser, seconds: float = 20) -> WebDriverWait:
    return WebDriverWait(browser, seconds, poll_frequency=0.2)


def sign_in(browser, site: Site, token: str) -> None:
    browser.get(site.url + "/dashboard/apps")
    wait(browser).until(EC.url_contains("/dashboard/signin"))
    browser.find_element(By.ID, "token").send_keys(token)
    browser.find_element(By.ID, "signin").click()


def addon_page(site: Site, addon: str, tab: str) -> str:
    return f"{site.url}/dashboard/apps/{site.app}/addons/{addon}/{tab}"


def operation_on_page(browser) -> str:
    """The operation the last action started (the Operations tab's ?op=), once its page is there."""
    wait(browser).until(EC.url_contains("/operations?op="))
    return browser.current_url.rsplit("op=", 1)[1]


def await_steps(browser, op: str, seconds: float = 90) -> list[tuple[str, str]]:
    """Waits, without reloading the page, until the operation's card says it succeeded; its steps."""
    card = f"#op-{op}"
    wait(browser, seconds).until(
        EC.text_to_be_present_in_element((By.CSS_SELECTOR, f"{card} .op-status"), "succeeded"))
    # Read in one script: the card may be drawn again meanwhile (a late event), which would leave
    # elements found one by one stale.
    return [tuple(step) for step in browser.execute_script(
        "return [...document.querySelectorAll(arguments[0] + ' li.step')]"
        ".map((li) => [li.dataset.step, li.querySelector('.step-status').textContent])", card)]


# -- signing in ---------------------------------------------------------------------


async def test_a_wrong_token_is_refused(site, signed_out):
    browser = signed_out

    def steps():
        sign_in(browser, site, "not-the-token")
        error = wait(browser).until(EC.visibility_of_element_located((By.ID, "error")))
        shot(browser, "signin-refused")
        assert "wrong API token" in error.text
        assert "/dashboard/signin" in browser.current_url
        assert browser.get_cookie(COOKIE) is None
    await in_browser(steps)


async def test_signing_in_shows_the_apps_and_their_addons(site, signed_out):
    browser = signed_out

    def steps():
        sign_in(browser, site, site.token)
        wait(browser).until(EC.url_to_be(site.url + "/dashboard/apps"))  # the sign-in page's ?next= says it too
        names = [a.text for a in browser.find_elements(By.CSS_SELECTOR, f"#app-{site.app} a.addon-link")]
        shot(browser, "apps")
        assert sorted(names) == sorted([site.addon, site.newest])
        cookie = browser.get_cookie(COOKIE)
        assert cookie["httpOnly"] is True and cookie["sameSite"] == "Strict" and cookie["path"] == "/"
        assert cookie["secure"] is False  # served over plain http here: Secure only over https
        assert site.token not in browser.page_source
    await in_browser(steps)


# -- the addon's tabs -------------------------------------------------------------------


async def test_the_overview_charts_the_sampled_stats(site, signed_in):
    browser = signed_in
    for _ in range(3):  # CPU needs two readings of a container; three points on the charts
        await site.engine.stats_sampler.sample_once()
        await asyncio.sleep(0.5)

    def steps():
        browser.get(addon_page(site, site.addon, "overview"))
        box = wait(browser).until(EC.presence_of_element_located((By.CSS_SELECTOR, ".chart[data-kind='memory'] canvas")))
        assert box is not None
        points = {c.get_attribute("data-kind"): int(c.get_attribute("data-points"))
                  for c in browser.find_elements(By.CSS_SELECTOR, ".chart")}
        memory = browser.find_element(By.CSS_SELECTOR, "[id^='memory-']").text
        swap = browser.find_element(By.CSS_SELECTOR, "[id^='swap-']").text
        disk = browser.find_element(By.CSS_SELECTOR, "[id^='disk-']").text
        shot(browser, "overview")
        # No swap chart: the node may not swap. At least the three samples taken here: a run under load once
        # charted four of each (the module's earlier pages may sample an addon the sampler had none of).
        assert points.keys() == {"cpu", "memory", "disk"} and min(points.values()) >= 3, points
        assert "highest" in memory and "free" in memory and "MiB" in memory
        assert "no swap allowed" in swap
        assert re.search(r"\d", disk), disk
        assert not browser.find_elements(By.ID, "charts-missing")
    await in_browser(steps)


async def test_without_the_chart_library_the_overview_says_so_and_shows_the_figures(site, signed_in, monkeypatch,
                                                                                     tmp_path):
    browser = signed_in
    monkeypatch.setattr(render, "UPLOT", tmp_path)  # as an engine installed without `make setup`'s files

    def steps():
        browser.get(addon_page(site, site.addon, "overview"))
        missing = browser.find_element(By.ID, "charts-missing").text
        memory = wait(browser).until(EC.presence_of_element_located((By.CSS_SELECTOR, "[id^='memory-']"))).text
        shot(browser, "overview-without-charts")
        return missing, memory, browser.find_elements(By.CSS_SELECTOR, ".chart canvas")
    missing, memory, canvases = await in_browser(steps)
    assert "uPlot" in missing and "make setup" in missing
    assert "highest" in memory and canvases == []


async def test_an_unknown_addon_is_a_page_saying_so(site, signed_in):
    browser = signed_in
    def steps():
        browser.get(addon_page(site, f"{site.app}-0000", "overview"))
        return browser.find_element(By.TAG_NAME, "h1").text, browser.find_element(By.ID, "error").text
    heading, message = await in_browser(steps)
    assert heading == "Not found" and f"{site.app}-0000" in message


async def test_the_upgrade_button_appears_only_when_an_upgrade_is_allowed(site, signed_in):
    browser = signed_in
    def steps():
        browser.get(addon_page(site, site.addon, "general"))
        offered = [b.get_attribute("data-version") for b in browser.find_elements(By.CLASS_NAME, "upgrade-button")]
        shot(browser, "general-upgrade-offered")
        browser.get(addon_page(site, site.newest, "general"))
        none = browser.find_elements(By.CLASS_NAME, "upgrade-button")
        shot(browser, "general-newest")
        assert browser.find_element(By.ID, "no-upgrade").is_displayed()
        return offered, none
    offered, none = await in_browser(steps)
    allowed = (await site.engine.database_version.show(site.app, site.addon))["upgrades"]
    assert offered == [u["version"] for u in allowed] and offered  # 7.0.15 has somewhere to go
    assert none == []


async def test_aof_turned_on_with_its_steps_shown_live(site, signed_in):
    browser = signed_in
    def steps():
        # The Operations tab open first: the operation turns up there by the event stream alone.
        browser.get(addon_page(site, site.addon, "operations"))
        watching = browser.current_window_handle
        wait(browser).until(EC.text_to_be_present_in_element((By.ID, "live-status"), "Live from the event stream."))
        browser.execute_script("window.notReloaded = true")  # gone if the page were loaded again
        browser.switch_to.new_window("tab")
        browser.get(addon_page(site, site.addon, "features"))
        assert browser.find_element(By.ID, "state-aof").text == "disabled"
        # the reference's warnings, beside each feature
        assert "any data can be deleted" in browser.find_element(By.ID, "feature-cache-mode").text
        assert "denies any non-TLS connection" in browser.find_element(By.ID, "feature-force-tls").text
        assert "are lost" in browser.find_element(By.ID, "feature-rdb").text
        shot(browser, "features")
        browser.find_element(By.ID, "toggle-aof").click()
        op = operation_on_page(browser)
        browser.close()
        browser.switch_to.window(watching)
        done = await_steps(browser, op)
        assert browser.execute_script("return window.notReloaded === true"), "the steps came by reloading"
        shot(browser, "operations")
        browser.get(addon_page(site, site.addon, "features"))
        assert browser.find_element(By.ID, "state-aof").text == "enabled"
        return op, done
    op, done = await in_browser(steps)
    recorded = await site.engine.operation(op)
    assert recorded["kind"] == "change_settings" and recorded["status"] == "succeeded"
    assert done == [(s["name"], "succeeded") for s in recorded["steps"]]
    assert (await site.engine.database.show(site.app, site.addon))["aof"] is True


async def test_the_password_is_shown_only_on_request(site, signed_in):
    browser = signed_in
    password = site.engine.secrets.peek(site.addon)

    def steps():
        browser.get(addon_page(site, site.addon, "users"))
        html = browser.page_source
        acl = browser.find_element(By.ID, "acl").text
        shot(browser, "users")  # before the password is shown: no secret in the artifacts
        browser.find_element(By.ID, "show-password").click()
        shown = wait(browser).until(EC.visibility_of_element_located((By.ID, "password")))
        wait(browser).until(lambda _: shown.text)
        return html, acl, shown.text
    html, acl, shown = await in_browser(steps)
    assert password and password not in html
    assert acl == "user default on <password> ~* &* +@all"
    assert shown == password


async def test_a_manual_backup_is_made_and_downloaded(site, signed_in, downloads):
    browser = signed_in
    def steps():
        browser.get(addon_page(site, site.addon, "backups"))
        browser.find_element(By.ID, "schedule-enabled").click()
        Select(browser.find_element(By.ID, "hour")).select_by_value("3")
        update = browser.find_element(By.ID, "schedule-update")
        update.click()
        # The form posts to .../backups/schedule and lands on .../backups again: the URL alone does not tell
        # the new page from the old; the old page's button gone stale does.
        wait(browser).until(EC.staleness_of(update))
        wait(browser).until(lambda b: b.execute_script("return document.readyState") == "complete")
        assert Select(browser.find_element(By.ID, "hour")).first_selected_option.get_attribute("value") == "3"
        browser.find_element(By.ID, "make-backup").click()
        op = operation_on_page(browser)
        await_steps(browser, op)
        browser.get(addon_page(site, site.addon, "backups"))
        link = browser.find_element(By.CSS_SELECTOR, "a.download")
        shot(browser, "backups")
        link.click()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            done = [p for p in downloads.iterdir() if p.name.endswith(".tar.gz")]
            if done:
                return done
            time.sleep(0.2)
        return list(downloads.iterdir())
    files = await in_browser(steps)
    schedule = await site.engine.backups.schedule(site.app, site.addon)
    assert (schedule["hour"], schedule["minute"], schedule["zone"]) == (3, 0, "UTC")
    [backup] = await site.engine.backups.list(site.app, site.addon)
    assert [f.name for f in files] == [backup["name"]]
    assert hashlib.sha256(files[0].read_bytes()).hexdigest() == backup["sha256"]
    with tarfile.open(files[0], "r:gz") as archive:
        assert archive.getnames()


async def test_the_plan_is_changed_after_its_confirmation(site, signed_in):
    browser = signed_in
    def choose():
        browser.get(addon_page(site, site.addon, "general"))
        Select(browser.find_element(By.ID, "plan")).select_by_value("redis-starter-512")
        browser.find_element(By.ID, "plan-finish").click()
        confirm = wait(browser).until(EC.visibility_of_element_located((By.ID, "plan-confirm")))
        shot(browser, "general-confirm-plan")
        return confirm.text
    asked = await in_browser(choose)
    assert "redis-starter-512" in asked and "restarted" in asked
    assert (await site.engine.addon(site.app, site.addon))["plan"] == "redis-starter-256"  # nothing yet

    def confirm():
        browser.find_element(By.ID, "confirm-plan-change").click()
        op = operation_on_page(browser)
        await_steps(browser, op)
        return op
    op = await in_browser(confirm)
    assert (await site.engine.operation(op))["kind"] == "change_plan"
    assert (await site.engine.addon(site.app, site.addon))["plan"] == "redis-starter-512"


# -- refusals -----------------------------------------------------------------------------


async def test_requests_without_the_session_or_from_another_origin_are_refused(site):
    base = f"/dashboard/apps/{site.app}/addons/{site.addon}"
    api = f"/v1/apps/{site.app}/addons/{site.addon}"
    before = len(await site.engine.operations(site.addon))
    async with aiohttp.ClientSession(site.url) as http:
        async with http.get(base + "/overview", allow_redirects=False) as r:
            assert r.status == 303 and r.headers["Location"].startswith("/dashboard/signin")
        async with http.get(api + "/stats") as r:
            assert r.status == 401
        async with http.post("/dashboard/signin", data={"token": site.token}, allow_redirects=False,
                             headers={"Origin": "http://evil.example"}) as r:
            assert r.status == 403  # signing in from another site's page
        async with http.post("/dashboard/signin", data={"token": site.token}, allow_redirects=False,
                             headers={"Origin": site.url}) as r:
            assert r.status == 303
            cookie = r.cookies[COOKIE].value
        session = {"Cookie": f"{COOKIE}={cookie}"}
        async with http.get(base + "/backups", headers=session) as r:
            assert r.status == 200
            csrf = re.search(r'name="csrf" value="([^"]+)"', await r.text())[1]
        async with http.post(base + "/backups", data={"csrf": csrf}, allow_redirects=False,
                             headers={**session, "Origin": "http://evil.example"}) as r:
            assert r.status == 403 and "another origin" in await r.text()
        async with http.post(base + "/backups", data={}, allow_redirects=False,
                             headers={**session, "Origin": site.url}) as r:
            assert r.status == 403 and "CSRF token" in await r.text()
        async with http.post(base + "/backups", data={"csrf": csrf}, allow_redirects=False,
                             headers={"Origin": site.url}) as r:
            assert r.status == 401  # no session cookie
        async with http.put(api + "/settings/rdb", json={"enabled": False}, headers={**session, "Origin": site.url}) as r:
            assert r.status == 403 and (await r.json())["error"]["rule"] == "cross-site-refused"
        async with http.get(api + "/stats", headers=session) as r:
            assert r.status == 200  # the cookie reads the API (the Overview's script)
        async with http.post("/dashboard/signout", data={"csrf": csrf}, allow_redirects=False,
                             headers={**session, "Origin": site.url}) as r:
            assert r.status == 303
        async with http.get(api + "/stats", headers=session) as r:
            assert r.status == 401  # signed out: the session is gone
    assert len(await site.engine.operations(site.addon)) == before  # nothing refused was started
