"""Security in a real browser: sign-in with the server's tokens, and stored XSS shown as text."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator

import pytest
from playwright.sync_api import expect

from runhistory import Experiment
from tests.ui.browser import UiServer, start_ui_server, wait_for
from tests.ui.conftest import PageWatch

pytestmark = pytest.mark.xdist_group("browser")

TAG_ATTACK = "<script>alert('tag')</script>"
METRIC_ATTACK = "<img src=x onerror=alert('metric')>"
NAME_ATTACK = "<script>alert('name')</script>"


@pytest.fixture
def token_server(tmp_path: Path) -> Iterator[UiServer]:
    """A server that requires tokens, over one experiment with a run."""
    ui = start_ui_server(tmp_path / "server", tokens=True)
    run = Experiment(ui.workspace, "guarded").start_logging(display_name="guarded-run")
    run.log("loss", 0.5)
    run.complete()
    try:
        yield ui
    finally:
        ui.stop()


def test_pages_need_a_sign_in_with_a_token(token_server: UiServer, page, watch: PageWatch) -> None:
    page.goto(f"{token_server.url}/experiments/guarded")
    page.wait_for_url(re.compile(r"/signin\?next="))
    expect(page.locator("table#runs")).to_have_count(0)
    assert page.request.get(f"{token_server.url}/ui/api/compare?runs=x").status == 401

    page.locator("input#token").fill("not-a-token")
    page.locator("button#signin").click()
    expect(page.locator("#signin-error")).to_be_visible()

    page.locator("input#token").fill(token_server.token)
    page.locator("button#signin").click()
    page.wait_for_url(re.compile(r"/experiments/guarded"))
    expect(page.locator("table#runs tr.run")).to_have_count(1)
    (cookie,) = [c for c in page.context.cookies() if c["name"] == "runhistory_session"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/"
    csrf = page.locator('meta[name="csrf-token"]').get_attribute("content")
    assert csrf

    page.goto(f"{token_server.url}/")
    expect(page.locator('table#experiments tr[data-experiment="guarded"]')).to_be_visible()
    assert not watch.errors


def test_tensorboard_is_served_only_to_a_signed_in_session(token_server: UiServer, page, chromium) -> None:
    page.goto(f"{token_server.url}/signin?next=/experiments/guarded")
    page.locator("input#token").fill(token_server.token)
    page.locator("button#signin").click()
    expect(page.locator("table#runs tr.run")).to_have_count(1)
    run_id = page.locator("table#runs tr.run").first.get_attribute("data-run-id")
    csrf = page.locator('meta[name="csrf-token"]').get_attribute("content")
    api = f"{token_server.url}/ui/api/tensorboard"
    assert page.request.post(api, data={"runs": [run_id]}).status == 403  # no CSRF token
    opened = page.request.post(api, data={"runs": [run_id]}, headers={"X-CSRF-Token": csrf})
    assert opened.ok, opened.text()
    runs_url = token_server.url + opened.json()["url"] + "data/runs"
    names = wait_for(lambda: page.request.get(runs_url).json(), lambda names: len(names) == 1, timeout=60,
                     what="TensorBoard's runs")
    assert names == ["guarded-run-1"]

    stranger = chromium.new_context()  # no session cookie
    try:
        assert stranger.request.get(runs_url).status == 401
        assert stranger.request.post(api, data={"runs": [run_id]}, headers={"X-CSRF-Token": csrf}).status == 401
    finally:
        stranger.close()


def test_a_stored_xss_attempt_is_shown_as_text(tmp_path: Path, page, watch: PageWatch) -> None:
    ui = start_ui_server(tmp_path / "server")
    try:
        run = Experiment(ui.workspace, "xss").start_logging(display_name=NAME_ATTACK)
        run.tag("note", TAG_ATTACK)
        for step in range(3):
            run.log(METRIC_ATTACK, float(step))
        run.log("comment", TAG_ATTACK)  # a text metric
        run.complete()

        page.goto(f"{ui.url}/experiments/xss")
        expect(page.locator("table#runs tr.run")).to_have_count(1)
        expect(page.get_by_text(NAME_ATTACK).first).to_be_visible()

        page.goto(f"{ui.url}/runs/{run.id}")
        expect(page.locator("table#tags")).to_contain_text(TAG_ATTACK)
        expect(page.get_by_text(NAME_ATTACK).first).to_be_visible()
        expect(page.locator("div.chart").first).to_be_visible()
        assert METRIC_ATTACK in page.locator("body").inner_text()
        page.wait_for_timeout(1000)  # time for an injected handler (img onerror) to have fired
        assert watch.dialogs == [], f"the page ran injected script: {watch.dialogs}"
        assert page.locator("img[src=x]").count() == 0
    finally:
        ui.stop()
