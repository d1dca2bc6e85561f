"""The playground at / in a real browser (Debian's chromium): type, submit, see the label, the
probability bars, the highlighted words and the five layers; nothing loaded from elsewhere."""

import re

from playwright.sync_api import Browser, expect

from tests.support.artifacts import BUNDLED_MODEL
from tests.support.browser import PageWatch, save_screenshot
from tests.support.servers import Server, start_server, stop_server


def test_playground_explains_a_text_with_the_keyboard_alone(
    browser: Browser, bundled_server: Server
) -> None:
    page = browser.new_page(viewport={"width": 1000, "height": 800})
    watch = PageWatch(page)
    page.goto(bundled_server.base_url + "/")
    text = page.get_by_label("Text")
    text.fill("The plot is thin, but the cast is wonderful.")
    # Keyboard only: Tab past the API key field to the button, Enter.
    text.focus()
    page.keyboard.press("Tab")
    expect(page.get_by_label("API key")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Explain")).to_be_focused()
    page.keyboard.press("Enter")

    expect(page.locator("#label")).to_have_text("positive")
    expect(page.locator("#probabilities meter")).to_have_count(2)
    tokens = page.locator("#tokens .token")
    expect(tokens).to_have_count(11)  # the words and marks of the text
    # The sentiment word is highlighted as supporting the label, with the strongest colour.
    wonderful = tokens.filter(has_text=re.compile("^wonderful$"))
    expect(wonderful).to_have_class(re.compile("supports"))
    colours = tokens.evaluate_all("spans => spans.map(s => getComputedStyle(s).backgroundColor)")
    assert len(set(colours)) > 1  # highlighted by attribution, not one flat colour
    layers = page.locator("#layers details")
    expect(layers).to_have_count(5)
    expect(layers.first.locator("table")).to_be_hidden()
    layers.first.locator("summary").focus()
    page.keyboard.press("Enter")  # a <summary> opens from the keyboard
    expect(layers.first.locator("table")).to_be_visible()
    expect(layers.first).to_contain_text("wonderful")
    layers.nth(2).locator("summary").click()
    expect(layers.nth(2)).to_contain_text("max_mean pooling")
    # Ctrl+Enter in the text box explains too.
    text.fill("Two dull hours.")
    text.press("Control+Enter")
    expect(page.locator("#label")).to_have_text("negative")
    text.fill("The plot is thin, but the cast is wonderful.")
    page.get_by_role("button", name="Explain").click()
    expect(page.locator("#label")).to_have_text("positive")
    layers.first.locator("summary").click()
    save_screenshot(page, "playground.png", full_page=True)
    watch.assert_clean()
    page.close()


def test_playground_sends_the_api_key_when_one_is_typed(browser: Browser) -> None:
    server = start_server({"MODEL_DIR": str(BUNDLED_MODEL), "API_KEY": "s3cret"})
    try:
        page = browser.new_page()
        watch = PageWatch(page)
        page.goto(server.base_url + "/")
        page.get_by_role("button", name="Explain").click()
        expect(page.get_by_role("alert")).to_contain_text("401")
        expect(page.get_by_label("API key")).to_be_focused()
        page.get_by_label("API key").fill("s3cret")
        page.get_by_role("button", name="Explain").click()
        expect(page.locator("#label")).to_have_text("positive")
        expect(page.get_by_role("alert")).to_be_hidden()
        page.close()
    finally:
        stop_server(server)
    assert watch.off_host() == []
    # The refused first try is the only failure.
    assert [f for f in watch.failed if "/explain" not in f or "401" not in f] == []
