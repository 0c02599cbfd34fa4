"""The Spindle Console (/console) in a real browser: headless Chromium, driven through its chromedriver
(Debian's chromium and chromium-driver, which the Makefile installs), against the real local server.
A machine without them fails these tests, saying so; it never skips them.

The stories: pasting a key, browsing the threads, opening a thread, and refusing to run a script that a
message carries. Screenshots go to tests/screenshots/ (ignored by git)."""

from __future__ import annotations

import openai
import pytest

from tests.console_page import (
    SCREENSHOTS,
    StagePrefix,
    count,
    error_shown,
    fresh_key,
    open_view,
    paste_key,
    shown,
    wait_for,
)
from tests.servers import mint

ATTACK = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>'


def test_a_pasted_key_browses_its_threads_and_opens_one(browser, server):
    from selenium.webdriver.common.by import By

    key = fresh_key()
    client = server.client(key)
    thread = client.beta.threads.create(
        messages=[{"role": "user", "content": "Hello from the console test"}], metadata={"user": "ada"}
    )
    paste_key(browser, server, key)
    link = browser.find_element(By.LINK_TEXT, thread.id)
    assert browser.execute_script("return sessionStorage.getItem('spindle.apiKey')") == key
    link.click()
    article = browser.find_element(By.CSS_SELECTOR, "article.message")
    assert "Hello from the console test" in article.text and article.text.startswith("User")
    browser.save_screenshot(str(SCREENSHOTS / "console-thread.png"))
    # another project's key sees none of it
    paste_key(browser, server, fresh_key())
    wait_for(browser, lambda page: page.find_element(By.CSS_SELECTOR, "main p").text == "No threads yet.")
    assert thread.id not in browser.find_element(By.ID, "main").text


def test_a_script_in_a_message_is_shown_as_text_and_never_runs(browser, server):
    from selenium.webdriver.common.by import By

    key = fresh_key()
    thread = server.client(key).beta.threads.create(messages=[{"role": "user", "content": ATTACK}])
    paste_key(browser, server, key)
    open_view(browser, server, f"/threads/{thread.id}")
    text = browser.find_element(By.CSS_SELECTOR, "article.message .text")
    assert text.text == ATTACK  # the markup is there, as text
    assert browser.execute_script("return window.__xss") is None
    assert count(browser, "main img[src='x'], main script") == 0
    browser.save_screenshot(str(SCREENSHOTS / "console-script-refused.png"))


def test_an_api_error_is_shown_with_its_openai_message(browser, server):
    paste_key(browser, server, fresh_key())
    open_view(browser, server, "/threads/thread_doesnotexist")
    assert "No thread found with id 'thread_doesnotexist'." in error_shown(browser)


def test_the_console_is_served_with_a_policy_that_runs_only_its_own_script(server):
    import urllib.error
    import urllib.request

    def get(path: str):
        try:
            return urllib.request.urlopen(server.root_url + path, timeout=10)
        except urllib.error.HTTPError as refused:
            return refused

    page = get("/console")
    assert page.status == 200 and page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert get("/console/console.js").headers["content-type"].startswith("text/javascript")
    assert get("/console/app.py").status == 404
    assert get("/console/nothing.js").status == 404


def test_a_run_opens_from_its_message_with_its_steps_and_the_code_it_ran(browser, server):
    from selenium.webdriver.common.by import By

    key = fresh_key()
    client = server.client(key)
    assistant = client.beta.assistants.create(model="gpt-4o", tools=[{"type": "code_interpreter"}])
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Please compute 6 * 7"}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=50)
    assert run.status == "completed"
    paste_key(browser, server, key)
    open_view(browser, server, f"/threads/{thread.id}")
    browser.find_element(By.CSS_SELECTOR, "a.run-link").click()
    code = browser.find_element(By.CSS_SELECTOR, "pre.code")
    assert code.text == "result = 6 * 7\nprint(result)"
    assert browser.find_element(By.CSS_SELECTOR, "pre.logs").text == "42"
    table = browser.find_element(By.CSS_SELECTOR, "table.run").text
    assert "completed" in table and "code_interpreter" in table and "total_tokens" in table
    steps = browser.find_elements(By.CSS_SELECTOR, "article.step")
    assert [step.get_attribute("id") for step in steps] == [
        step.id for step in client.beta.threads.runs.steps.list(run.id, thread_id=thread.id, order="asc")
    ]
    browser.save_screenshot(str(SCREENSHOTS / "console-run.png"))


def test_the_thread_list_keeps_to_one_user_across_its_pages(browser, server):
    from selenium.webdriver.common.by import By

    key = fresh_key()
    client = server.client(key)
    adas = [client.beta.threads.create(metadata={"user": "ada"}).id for _ in range(21)]
    bob = client.beta.threads.create(metadata={"user": "bob"}).id
    paste_key(browser, server, key)
    field = browser.find_element(By.ID, "user-filter")
    field.send_keys("ada")
    field.submit()
    wait_for(browser, lambda page: shown(page, "a.thread") == adas[::-1][:20])  # newest first, twenty a page
    browser.find_element(By.ID, "more").click()
    wait_for(browser, lambda page: shown(page, "a.thread") == [adas[0]])
    assert "user=ada" in browser.current_url
    assert bob not in browser.find_element(By.ID, "main").text


def test_a_citation_in_an_answer_links_to_the_file_it_cites(browser, server):
    from selenium.webdriver.common.by import By

    key = fresh_key()
    client = server.client(key)
    store = client.vector_stores.create(name="router")
    notes = client.vector_stores.files.upload_and_poll(
        vector_store_id=store.id,
        file=("warranty.txt", b"The router has a warranty of two years. Water damage is not covered."),
        poll_interval_ms=50,
    )
    assistant = client.beta.assistants.create(
        model="gpt-4o",
        tools=[{"type": "file_search"}],
        tool_resources={"file_search": {"vector_store_ids": [store.id]}},
    )
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "How long is the warranty?"}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=50)
    answer = client.beta.threads.messages.list(thread.id, run_id=run.id).data[0].content[0].text
    assert [note.type for note in answer.annotations] == ["file_citation"]
    paste_key(browser, server, key)
    open_view(browser, server, f"/threads/{thread.id}")
    citation = browser.find_element(By.CSS_SELECTOR, "article.message.assistant a.citation")
    marker = answer.annotations[0].text
    assert citation.text == "[1]" and citation.get_attribute("title") == marker
    # the answer's own text around it, in order, the marker shown as its number; the source named below
    shown = browser.find_element(By.CSS_SELECTOR, "article.message.assistant .text").text
    assert shown == answer.value.replace(marker, "[1]")
    wait_for(
        browser, lambda page: page.find_element(By.CSS_SELECTOR, "ol.sources li").text == f"warranty.txt ({notes.id})"
    )
    browser.save_screenshot(str(SCREENSHOTS / "console-thread-citation.png"))
    citation.click()
    wait_for(browser, lambda page: "File warranty.txt" in page.find_element(By.TAG_NAME, "h1").text)
    assert notes.id in browser.find_element(By.ID, "main").text


def test_the_console_works_under_an_api_gateway_stage_prefix(browser, server):
    """Deployed, the Console is at …/api/console: its files and the API it calls are found under the
    same prefix (a request outside it is refused, as API Gateway refuses one)."""
    from selenium.webdriver.common.by import By

    key = fresh_key()
    thread = server.client(key).beta.threads.create(messages=[{"role": "user", "content": "Behind a stage"}])
    stage = StagePrefix(server.root_url)
    try:
        paste_key(browser, stage, key)
        browser.find_element(By.LINK_TEXT, thread.id).click()
        assert "Behind a stage" in browser.find_element(By.CSS_SELECTOR, "article.message .text").text
        # the style sheet came too (the body's background is the Console's, not the browser's white)
        assert (
            browser.find_element(By.TAG_NAME, "body").value_of_css_property("background-color")
            == "rgba(250, 250, 250, 1)"
        )
    finally:
        stage.close()


# a 1x1 PNG, as a data URL
PIXEL_PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
PIXEL = "data:image/png;base64," + PIXEL_PNG


def test_image_urls_are_previewed_and_only_image_addresses_load(browser, server):
    from selenium.webdriver.common.by import By

    key = fresh_key()
    parts = [
        {"type": "image_url", "image_url": {"url": PIXEL}},
        {"type": "image_url", "image_url": {"url": "https://images.example/cat.png"}},
        {"type": "image_url", "image_url": {"url": "javascript:window.__xss=3//.png"}},
        {"type": "image_url", "image_url": {"url": "https://"}},  # no host: shown as text, the rest still drawn
    ]
    thread = server.client(key).beta.threads.create(messages=[{"role": "user", "content": parts}])
    paste_key(browser, server, key)
    open_view(browser, server, f"/threads/{thread.id}")
    images = wait_for(browser, lambda page: page.find_elements(By.CSS_SELECTOR, "article.message img"))
    assert [image.get_attribute("src") for image in images] == [PIXEL]  # a data URL is shown at once
    wait_for(browser, lambda page: page.execute_script("return arguments[0].complete", images[0]))
    assert browser.execute_script("return arguments[0].naturalWidth", images[0]) == 1
    # an https: image loads only when asked for (its server would learn who reads the thread)
    load = browser.find_element(By.CSS_SELECTOR, "button.load-image")
    assert load.text == "Show the image from images.example"
    load.click()
    images = browser.find_elements(By.CSS_SELECTOR, "article.message img")
    assert [image.get_attribute("src") for image in images] == [PIXEL, "https://images.example/cat.png"]
    assert browser.execute_script("return window.__xss") is None
    # any other address is shown as its text, never loaded or followed
    shown = browser.find_element(By.CSS_SELECTOR, "article.message").text
    assert "[image javascript:window.__xss=3//.png]" in shown and "[image https://]" in shown


def test_in_keys_mode_a_minted_key_sees_its_project_and_an_unknown_key_is_told_so(browser, keys_server):
    from selenium.webdriver.common.by import By

    first = mint(keys_server, "--name", "console")
    same_project = mint(keys_server, "--project", first["project_id"])["api_key"]
    thread = keys_server.client(first["api_key"]).beta.threads.create(metadata={"user": "ada"})
    paste_key(browser, keys_server, same_project)  # another key of the same project sees its threads
    assert browser.find_element(By.LINK_TEXT, thread.id)
    paste_key(browser, keys_server, mint(keys_server)["api_key"])  # a key of another project does not
    wait_for(browser, lambda page: page.find_element(By.CSS_SELECTOR, "main p").text == "No threads yet.")
    with pytest.raises(openai.AuthenticationError) as refused:
        keys_server.client("sk-spindle-made-up").beta.assistants.list()  # the same refusal on every route
    paste_key(browser, keys_server, "sk-spindle-made-up")
    assert error_shown(browser) == refused.value.body["message"]


def test_a_run_opens_again_after_going_back_and_a_deep_link_survives_pasting_the_key(browser, server):
    from selenium.webdriver.common.by import By

    key = fresh_key()
    client = server.client(key)
    assistant = client.beta.assistants.create(model="gpt-4o")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Hello twice"}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=50)
    # a link to the run, opened in a new tab (no key yet): the key asked for, then the run shown
    browser.get(server.root_url + f"/console#/threads/{thread.id}/runs/{run.id}")
    browser.execute_script("sessionStorage.clear()")
    browser.refresh()
    field = browser.find_element(By.ID, "key")
    field.send_keys(key)
    browser.find_element(By.ID, "use-key").click()
    wait_for(browser, lambda page: page.find_element(By.TAG_NAME, "h1").text == f"Run {run.id}")
    heading = lambda page: page.find_element(By.TAG_NAME, "h1").text  # noqa: E731
    browser.find_element(By.PARTIAL_LINK_TEXT, "← thread").click()
    wait_for(browser, lambda page: heading(page) == f"Thread {thread.id}")
    browser.find_element(By.CSS_SELECTOR, "a.run-link").click()
    wait_for(browser, lambda page: heading(page) == f"Run {run.id}")
    # back to the thread, and to the same unchanged run again: it is drawn again, not left undrawn
    browser.back()
    wait_for(browser, lambda page: heading(page) == f"Thread {thread.id}")
    browser.find_element(By.CSS_SELECTOR, "a.run-link").click()
    wait_for(browser, lambda page: heading(page) == f"Run {run.id}")
