"""The Console's assistants in a real browser (headless Chromium, tests/console_page.py): creating one
through the form, editing it, and the API's own validation errors shown as the API words them."""

from __future__ import annotations

import json

import openai
import pytest

from tests.console_page import SCREENSHOTS, error_shown, fresh_key, open_view, paste_key, wait_for


def fill(browser, field_id: str, text: str) -> None:
    from selenium.webdriver.common.by import By

    field = browser.find_element(By.ID, field_id)
    field.clear()
    field.send_keys(text)


def saved(browser) -> str:
    from selenium.webdriver.common.by import By

    return wait_for(browser, lambda page: page.find_element(By.ID, "saved").text)


def test_an_assistant_is_created_through_the_form_and_edited(browser, server):
    from selenium.webdriver.common.by import By

    key = fresh_key()
    client = server.client(key)
    paste_key(browser, server, key)
    open_view(browser, server, "/assistants")
    browser.find_element(By.ID, "new-assistant").click()
    fill(browser, "assistant-name", "Math tutor")
    fill(browser, "assistant-model", "gpt-4o-mini")
    fill(browser, "assistant-instructions", "Explain each step.")
    browser.find_element(By.ID, "tool-code-interpreter").click()
    fill(browser, "assistant-metadata", '{"team": "ml"}')
    fill(browser, "assistant-temperature", "0.5")
    browser.find_element(By.ID, "save-assistant").click()
    # a created assistant opens in its own form
    wait_for(browser, lambda page: "/assistants/asst_" in page.current_url)
    assistant_id = browser.current_url.rsplit("/", 1)[1]
    wait_for(browser, lambda page: page.find_element(By.TAG_NAME, "h1").text == "Assistant Math tutor")
    created = client.beta.assistants.retrieve(assistant_id)
    assert (created.name, created.model, created.instructions) == ("Math tutor", "gpt-4o-mini", "Explain each step.")
    assert [tool.type for tool in created.tools] == ["code_interpreter"]
    assert created.metadata == {"team": "ml"} and created.temperature == 0.5

    # edited: a function added, the instructions emptied (reset, as `null` does), metadata changed
    function = {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    }
    fill(browser, "assistant-functions", json.dumps([function]))
    browser.find_element(By.ID, "assistant-instructions").clear()
    fill(browser, "assistant-metadata", '{"team": "search"}')
    browser.find_element(By.ID, "save-assistant").click()
    assert saved(browser).startswith("Saved")
    edited = client.beta.assistants.retrieve(assistant_id)
    assert [tool.type for tool in edited.tools] == ["code_interpreter", "function"]
    assert (
        edited.tools[1].function.name == "get_weather" and edited.tools[1].function.parameters == function["parameters"]
    )
    assert edited.instructions is None and edited.metadata == {"team": "search"} and edited.name == "Math tutor"
    # the form shows what was saved, and the list shows the assistant
    open_view(browser, server, f"/assistants/{assistant_id}")
    assert json.loads(browser.find_element(By.ID, "assistant-functions").get_attribute("value")) == [function]
    assert browser.find_element(By.ID, "tool-code-interpreter").is_selected()
    assert not browser.find_element(By.ID, "tool-file-search").is_selected()
    browser.save_screenshot(str(SCREENSHOTS / "console-assistant.png"))
    open_view(browser, server, "/assistants")
    row = browser.find_element(By.LINK_TEXT, "Math tutor").find_element(By.XPATH, "./ancestor::tr")
    assert assistant_id in row.text and "code_interpreter, get_weather" in row.text


@pytest.mark.parametrize(
    ("field_id", "text", "request_fields"),
    [
        ("assistant-temperature", "3", {"temperature": 3}),
        ("assistant-top-p", "0,5", {"top_p": "0,5"}),  # a typo is refused, never sent as a reset
        ("assistant-metadata", json.dumps({"k": "v" * 600}), {"metadata": {"k": "v" * 600}}),
        (
            "assistant-code-files",
            "file-doesnotexist",
            {"tool_resources": {"code_interpreter": {"file_ids": ["file-doesnotexist"]}}},
        ),
    ],
)
def test_an_edit_the_api_refuses_shows_the_apis_error_and_changes_nothing(
    browser, server, field_id, text, request_fields
):
    from selenium.webdriver.common.by import By

    key = fresh_key()
    client = server.client(key)
    assistant = client.beta.assistants.create(model="gpt-4o", name="Unchanged", tools=[{"type": "code_interpreter"}])
    with pytest.raises(openai.APIStatusError) as refused:  # what the API says to the SDK
        client.beta.assistants.update(assistant.id, **request_fields)
    paste_key(browser, server, key)
    open_view(browser, server, f"/assistants/{assistant.id}")
    fill(browser, "assistant-name", "Changed")
    fill(browser, field_id, text)
    browser.find_element(By.ID, "save-assistant").click()
    assert error_shown(browser) == refused.value.body["message"]
    assert client.beta.assistants.retrieve(assistant.id).name == "Unchanged"


def test_text_that_is_not_json_is_refused_before_anything_is_sent(browser, server):
    from selenium.webdriver.common.by import By

    key = fresh_key()
    paste_key(browser, server, key)
    open_view(browser, server, "/assistants/new")
    fill(browser, "assistant-metadata", "{team: ml}")
    browser.find_element(By.ID, "save-assistant").click()
    assert error_shown(browser).startswith("Metadata is not valid JSON")
    assert server.client(key).beta.assistants.list().data == []
