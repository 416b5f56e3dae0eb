"""The browser tests' bounded closes (tests/browser/chromium.py) do what they promise, in a real Chromium."""

import asyncio
import time

import pytest

from tests.browser import chromium
from tests.browser.test_browser import _require_chromium

pytestmark = pytest.mark.browser


def test_a_close_that_never_answers_is_given_up_with_a_warning(monkeypatch):
    _require_chromium()
    monkeypatch.setattr(chromium, "CLOSE_TIMEOUT_S", 0.5)
    with chromium.launched() as browser:
        context = browser.new_context()
        context.new_page().set_content("<p>hello</p>")
        started = time.monotonic()
        with pytest.warns(UserWarning, match="did not hang up within 0 s|did not hang up within 1 s"):
            # a close that never answers, as Chromium's sometimes does: given up after the allowance
            assert chromium._bounded(context, asyncio.sleep(3600), "hang up") is False
        assert time.monotonic() - started < 10
        # the sync API still works afterwards: the real close goes through
        chromium.close_context(context)
        assert browser.contexts == []


def test_a_browser_that_will_not_close_is_killed():
    _require_chromium()
    with chromium.launched() as browser:
        browser.new_page().set_content("<p>hello</p>")
        assert chromium.kill_chromium() >= 1
        deadline = time.monotonic() + 10
        while chromium.kill_chromium() and time.monotonic() < deadline:  # until none is left to kill
            time.sleep(0.1)
        assert chromium.kill_chromium() == 0
        with pytest.raises(Exception, match="closed|Target"):  # Playwright sees the browser gone
            browser.new_page()
