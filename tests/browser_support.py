"""Browser-test fixtures: the real app on a free port, Debian's Chromium through Playwright,
a seeded plant with a monitored pump, and a page that fails the test on any browser error.

Loaded with ``pytest_plugins = ["browser_support"]`` by the modules that drive a browser.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Coroutine, Generator, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import uvicorn
from playwright.sync_api import Browser, ConsoleMessage, Error, Page, Playwright, sync_playwright
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from maintainpro.app import create_app
from maintainpro.config import Settings
from maintainpro.core.db import build_session_factory, utcnow
from monitoring_world import PASSWORD, USERNAME, seed_monitored_plant

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


class _Server(uvicorn.Server):
    """A uvicorn server that remembers its event loop, so tests can run coroutines on it."""

    loop: asyncio.AbstractEventLoop | None = None

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        """Serve, keeping a reference to the running loop."""
        self.loop = asyncio.get_running_loop()
        await super().serve(sockets)


@dataclass
class LiveApp:
    """The running app: its base URL, the app object, and the ids of the seeded data."""

    url: str
    app: Any
    server: _Server
    factory: sessionmaker[Session]
    ids: dict[str, int] = field(default_factory=dict)

    def sign_in(self, page: Page, next_path: str = "/") -> None:
        """Sign in through the login form and wait for the target page."""
        page.goto(f"/login?next={next_path}")
        page.fill("#username", USERNAME)
        page.fill("#password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"**{next_path}")

    def run(self, coroutine: Coroutine[Any, Any, Any], timeout: float = 10.0) -> Any:
        """Run a coroutine on the server's event loop and return its result."""
        assert self.server.loop is not None
        return asyncio.run_coroutine_threadsafe(coroutine, self.server.loop).result(timeout)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def live_app(database_url: str, settings: Settings, engine: Engine) -> Iterator[LiveApp]:
    """The real app with its background jobs, served by uvicorn on a free port (SQLite only)."""
    if not database_url.startswith("sqlite"):
        pytest.skip("browser tests run on SQLite only")
    app = create_app(settings.model_copy(update={"run_background_jobs": True}))
    factory = build_session_factory(engine)
    ids = seed_monitored_plant(factory, utcnow())
    port = _free_port()
    server = _Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("the app did not start")
        time.sleep(0.02)
    yield LiveApp(f"http://127.0.0.1:{port}", app, server, factory, ids)
    server.should_exit = True
    thread.join(15)


# Module scope, not session: the sync API keeps an event loop running in this thread while it
# lives, which would break every later test that starts an event loop of its own.
@pytest.fixture(scope="module")
def playwright_driver() -> Iterator[Playwright]:
    """Playwright for one test module."""
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright_driver: Playwright) -> Iterator[Browser]:
    """Debian's headless Chromium, launched once per module (no browser download)."""
    chromium = playwright_driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield chromium
    chromium.close()


@dataclass
class BrowserErrors:
    """Console errors and uncaught page errors seen during a test."""

    messages: list[str] = field(default_factory=list)

    def console(self, message: ConsoleMessage) -> None:
        """Record a console message of type error."""
        # The app has no favicon; Chromium's automatic request for one is not the page's doing.
        if message.type == "error" and not message.location.get("url", "").endswith("/favicon.ico"):
            self.messages.append(f"console error: {message.text} at {message.location}")

    def page_error(self, error: Error) -> None:
        """Record an uncaught exception in the page."""
        self.messages.append(f"page error: {error.message}")


@pytest.fixture
def page(browser: Browser, live_app: LiveApp) -> Iterator[Page]:
    """A fresh page on the live app; the test fails if the browser reported any error."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=live_app.url)
    context.set_default_timeout(10_000)
    tab = context.new_page()
    errors = BrowserErrors()
    tab.on("console", errors.console)
    tab.on("pageerror", errors.page_error)
    tab.browser_errors = errors  # type: ignore[attr-defined]
    yield tab
    context.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, object, object]:
    """Turn browser errors recorded during the test into a failure of the test itself."""
    result = yield
    tab = getattr(item, "funcargs", {}).get("page")
    errors: BrowserErrors | None = getattr(tab, "browser_errors", None)
    if errors is not None and errors.messages:
        pytest.fail("the browser reported errors:\n" + "\n".join(errors.messages))
    return result
