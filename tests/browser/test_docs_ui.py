"""Swagger UI in headless Chromium: it renders from local assets and "Try it out" classifies."""

import re

from playwright.sync_api import Browser, expect

from tests.support.browser import PageWatch, save_screenshot
from tests.support.servers import Server


def test_swagger_ui_renders_and_try_it_out_classifies(
    browser: Browser, bundled_server: Server
) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    watch = PageWatch(page)
    page.goto(bundled_server.base_url + "/docs")
    operations = page.locator(".opblock-summary-path")
    expect(operations.first).to_be_visible()
    paths = set(operations.all_inner_texts())
    assert {"/classify", "/explain", "/model", "/health/live", "/health/ready", "/metrics"} <= {
        p.replace("\u200b", "") for p in paths
    }

    classify = page.locator(".opblock-post", has=page.locator("[data-path='/classify']"))
    classify.locator(".opblock-summary").click()
    # The documented answer is shown before anything runs.
    expect(classify.locator(".responses-wrapper")).to_contain_text("rotten_tomatoes-gru")
    classify.get_by_role("button", name="Try it out").click()
    # The default body is the documented example, a real request.
    expect(classify.locator("textarea.body-param__text")).to_have_value(
        re.compile("A gripping, beautifully acted film")
    )
    classify.get_by_role("button", name="Execute").click()
    live = classify.locator(".live-responses-table")
    expect(live.locator("tbody .response-col_status")).to_have_text("200")
    body = live.locator("tbody .response-col_description")
    expect(body).to_contain_text('"label": "positive"')
    expect(body).to_contain_text('"label": "negative"')
    page.set_viewport_size({"width": 1280, "height": 1450})
    classify.evaluate("e => e.scrollIntoView()")
    save_screenshot(page, "swagger-ui.png")
    watch.assert_clean()
    page.close()
