"""The Spindle Console (/console) in a real browser: headless Chromium, driven through its chromedriver
(Debian's chromium and chromium-driver, which the Makefile installs), against the real local server.
A machine without them fails these tests, saying so; it never skips them.

The stories: pasting a key, browsing the threads, opening a thread, and refusing to run a script that a
message carries. Screenshots go to tests/screenshots/ (ignored by git)."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

SCREENSHOTS = Path(__file__).resolve().parents[1] / "screenshots"
ATTACK = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>'


@pytest.fixture(scope="module")
def browser() -> Iterator:
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    assert chromium and driver, (
        "Headless Chromium is needed for the Console tests: install Debian's chromium and chromium-driver "
        "(`make` does, with apt-get, when it runs as root)"
    )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1280,900",
    ):
        options.add_argument(flag)
    session = webdriver.Chrome(service=Service(executable_path=driver), options=options)
    session.implicitly_wait(10)
    SCREENSHOTS.mkdir(exist_ok=True)
    try:
        yield session
    finally:
        session.quit()


def paste_key(browser, server, key: str) -> None:
    from selenium.webdriver.common.by import By

    browser.get(server.root_url + "/console#/key")
    field = browser.find_element(By.ID, "key")
    field.clear()
    field.send_keys(key)
    browser.find_element(By.ID, "use-key").click()


def test_a_pasted_key_browses_its_threads_and_opens_one(browser, server):
    from selenium.webdriver.common.by import By

    key = f"sk-console-{uuid.uuid4().hex}"
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
    paste_key(browser, server, f"sk-console-other-{uuid.uuid4().hex}")
    assert thread.id not in browser.find_element(By.ID, "main").text


def test_a_script_in_a_message_is_shown_as_text_and_never_runs(browser, server):
    from selenium.webdriver.common.by import By

    key = f"sk-console-{uuid.uuid4().hex}"
    thread = server.client(key).beta.threads.create(messages=[{"role": "user", "content": ATTACK}])
    paste_key(browser, server, key)
    browser.get(server.root_url + f"/console#/threads/{thread.id}")
    browser.refresh()
    text = browser.find_element(By.CSS_SELECTOR, "article.message .text")
    assert text.text == ATTACK  # the markup is there, as text
    assert browser.execute_script("return window.__xss") is None
    assert browser.find_elements(By.CSS_SELECTOR, "main img[src='x'], main script") == []
    browser.save_screenshot(str(SCREENSHOTS / "console-script-refused.png"))


def test_an_api_error_is_shown_with_its_openai_message(browser, server):
    from selenium.webdriver.common.by import By

    paste_key(browser, server, f"sk-console-{uuid.uuid4().hex}")
    browser.get(server.root_url + "/console#/threads/thread_doesnotexist")
    browser.refresh()
    from selenium.webdriver.support.ui import WebDriverWait

    # the box is always on the page (hidden): wait for the API's answer to fill it
    shown = WebDriverWait(browser, 30).until(lambda page: page.find_element(By.ID, "error").text)
    assert "No thread found with id 'thread_doesnotexist'." in shown


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

    key = f"sk-console-{uuid.uuid4().hex}"
    client = server.client(key)
    assistant = client.beta.assistants.create(model="gpt-4o", tools=[{"type": "code_interpreter"}])
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Please compute 6 * 7"}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=50)
    assert run.status == "completed"
    paste_key(browser, server, key)
    browser.get(server.root_url + f"/console#/threads/{thread.id}")
    browser.refresh()
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
