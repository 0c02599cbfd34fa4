"""The Console's playground in a real browser (headless Chromium, tests/console_page.py), against the
local server with the scripted stand-in model (tests/standin_model.py): an answer streams in while the
model is still writing it, Stop cancels a long answer, a function call is answered by hand in a form,
and a conversation goes on in the same thread."""

from __future__ import annotations

import pytest

from tests.console_page import SCREENSHOTS, count, error_shown, fresh_key, open_view, paste_key, shown, wait_for
from tests.servers import start_local_server
from tests.standin_model import drip, text, tool_call

WORDS = ["word0"] + [f" word{index}" for index in range(1, 24)]
ANSWER = "".join(WORDS)


def answers(browser) -> list[str]:
    return shown(browser, "#transcript article.message.assistant .text")


def run_status(browser) -> str:
    from selenium.webdriver.common.by import By

    return browser.find_element(By.ID, "run-status").text


def thread_id(browser) -> str:
    """The playground's thread, which its address names once the run has made it."""
    return wait_for(
        browser, lambda page: page.current_url.split("thread=")[1] if "thread=" in page.current_url else None
    )


def say(browser, words: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    field = wait_for(browser, lambda page: page.find_element(By.ID, "prompt"))
    wait_for(browser, lambda page: page.find_element(By.ID, "send").is_enabled())
    field.send_keys(words, Keys.ENTER)  # Enter sends


def test_an_answer_streams_in_while_the_model_writes_it_and_the_thread_goes_on(browser, model_server, standin):
    from selenium.webdriver.common.by import By

    key = fresh_key()
    client = model_server.client(key)
    model = standin.script([drip(WORDS, 0.15), text("Second answer")])
    assistant = client.beta.assistants.create(model=model, name="Streamer")
    paste_key(browser, model_server, key)
    open_view(browser, model_server, f"/playground?assistant={assistant.id}")
    say(browser, "Tell me a long story")

    # part of the answer is on the page while the run is still going: it streams, word by word
    partial = wait_for(browser, lambda page: [shown for shown in answers(page) if shown.startswith("word0")])
    assert partial[0] != ANSWER
    assert "completed" not in run_status(browser)
    wait_for(browser, lambda page: "completed" in run_status(page))
    assert answers(browser) == [ANSWER]
    # once complete, the message is shown as stored, linked to its run
    run_link = browser.find_element(By.CSS_SELECTOR, "#transcript article.message.assistant a.run-link")
    assert run_link.text == "run " + client.beta.threads.runs.list(thread_id(browser)).data[0].id
    browser.save_screenshot(str(SCREENSHOTS / "console-playground.png"))

    say(browser, "And another")
    wait_for(browser, lambda page: answers(page)[-1:] == ["Second answer"] and "completed" in run_status(page))
    messages = client.beta.threads.messages.list(thread_id(browser), order="asc").data
    assert [(message.role, message.content[0].text.value) for message in messages] == [
        ("user", "Tell me a long story"),
        ("assistant", ANSWER),
        ("user", "And another"),
        ("assistant", "Second answer"),
    ]
    # the second request carried the whole conversation to the model
    assert [message["content"] for message in standin.requests(model)[1]["messages"] if message["role"] == "user"] == [
        "Tell me a long story",
        "And another",
    ]


@pytest.mark.parametrize("how", ["the Stop button", "the Escape key"])
def test_stop_cancels_a_long_answer_while_it_streams(browser, model_server, standin, how):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    key = fresh_key()
    client = model_server.client(key)
    model = standin.script([drip([f"slow{index} " for index in range(200)], 0.1)])
    assistant = client.beta.assistants.create(model=model)
    paste_key(browser, model_server, key)
    open_view(browser, model_server, f"/playground?assistant={assistant.id}")
    say(browser, "Talk for a long time")
    wait_for(browser, lambda page: [shown for shown in answers(page) if shown.startswith("slow0")])
    if how == "the Stop button":
        browser.find_element(By.ID, "stop").click()
    else:  # the focus is still in the message box, where Enter sent the message
        browser.switch_to.active_element.send_keys(Keys.ESCAPE)
    wait_for(browser, lambda page: "cancelled" in run_status(page))
    assert standin.wait_for_hangup(model) is not None  # the model's reply was cut off, not read to its end
    run = client.beta.threads.runs.list(thread_id(browser)).data[0]
    assert run.status == "cancelled"
    assert browser.find_element(By.ID, "send").is_enabled() and not browser.find_element(By.ID, "stop").is_enabled()
    if how == "the Stop button":
        browser.save_screenshot(str(SCREENSHOTS / "console-playground-stopped.png"))


def test_a_function_call_is_answered_by_hand_and_the_answer_streams_on(browser, model_server, standin):
    from selenium.webdriver.common.by import By

    key = fresh_key()
    client = model_server.client(key)
    model = standin.script(
        [tool_call("get_weather", '{"city": "Paris"}', call_id="call_weather"), text("It is sunny in Paris.")]
    )
    weather = {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}
    assistant = client.beta.assistants.create(model=model, tools=[{"type": "function", "function": weather}])
    paste_key(browser, model_server, key)
    open_view(browser, model_server, f"/playground?assistant={assistant.id}")
    say(browser, "Weather in Paris?")

    output = wait_for(browser, lambda page: page.find_element(By.CSS_SELECTOR, "form.tool-outputs textarea"))
    form = browser.find_element(By.CSS_SELECTOR, "form.tool-outputs").text
    assert 'get_weather({"city": "Paris"})' in form and "requires_action" in run_status(browser)
    output.send_keys('{"sky": "sunny"}')
    browser.find_element(By.ID, "submit-outputs").click()
    wait_for(browser, lambda page: "completed" in run_status(page))
    assert answers(browser) == ["It is sunny in Paris."]
    # the output typed in reached the model as the function's result
    tool_messages = [message for message in standin.requests(model)[1]["messages"] if message["role"] == "tool"]
    assert [(message["tool_call_id"], message["content"]) for message in tool_messages] == [
        ("call_weather", '{"sky": "sunny"}')
    ]
    thread = thread_id(browser)
    steps = client.beta.threads.runs.steps.list(client.beta.threads.runs.list(thread).data[0].id, thread_id=thread)
    calls = [
        call for step in steps.data if step.step_details.type == "tool_calls" for call in step.step_details.tool_calls
    ]
    assert [(call.function.name, call.function.output) for call in calls] == [("get_weather", '{"sky": "sunny"}')]


def test_a_new_user_creates_an_assistant_chats_with_it_and_opens_the_run(browser, model_server, standin):
    """The Console's whole story, all in the browser: a key pasted, an assistant created in the form,
    a chat with it from its page, and the run that answered opened with its steps."""
    from selenium.webdriver.common.by import By

    key = fresh_key()
    model = standin.script([drip(["Hello", " there,", " new", " user."], 0.05)])
    paste_key(browser, model_server, key)
    browser.find_element(By.LINK_TEXT, "Assistants").click()
    browser.find_element(By.ID, "new-assistant").click()
    browser.find_element(By.ID, "assistant-name").send_keys("Greeter")
    model_field = browser.find_element(By.ID, "assistant-model")
    model_field.clear()
    model_field.send_keys(model)
    browser.find_element(By.ID, "save-assistant").click()
    browser.find_element(By.ID, "chat").click()
    say(browser, "Hi")
    wait_for(browser, lambda page: "completed" in run_status(page))
    assert answers(browser) == ["Hello there, new user."]
    browser.find_element(By.CSS_SELECTOR, "#run-status a.run-link").click()
    steps = browser.find_elements(By.CSS_SELECTOR, "article.step")
    assert len(steps) == 1 and "completed" in steps[0].text and "Message" in steps[0].text
    assert "completed" in browser.find_element(By.CSS_SELECTOR, "table.run").text
    assistant = model_server.client(key).beta.assistants.list().data[0]
    assert (assistant.name, assistant.model) == ("Greeter", model)


def a_call_waiting_for_its_output(browser, model_server, standin):
    """A playground whose run called a function and waits for its output, typed in the form; the SDK
    client of its project."""
    from selenium.webdriver.common.by import By

    key = fresh_key()
    client = model_server.client(key)
    model = standin.script([tool_call("lookup", "{}", call_id="call_lookup")])
    lookup = {"name": "lookup", "parameters": {"type": "object", "properties": {}}}
    assistant = client.beta.assistants.create(model=model, tools=[{"type": "function", "function": lookup}])
    paste_key(browser, model_server, key)
    open_view(browser, model_server, f"/playground?assistant={assistant.id}")
    say(browser, "Look it up")
    wait_for(browser, lambda page: page.find_element(By.CSS_SELECTOR, "form.tool-outputs textarea"))
    return client


def test_stop_while_a_function_call_waits_for_its_output_ends_the_turn(browser, model_server, standin):
    from selenium.webdriver.common.by import By

    client = a_call_waiting_for_its_output(browser, model_server, standin)
    browser.find_element(By.ID, "stop").click()  # no stream is open while the run waits: the cancel's answer tells
    wait_for(browser, lambda page: "cancelled" in run_status(page))
    assert count(browser, "form.tool-outputs") == 0
    assert browser.find_element(By.ID, "send").is_enabled()
    assert client.beta.threads.runs.list(thread_id(browser)).data[0].status == "cancelled"


def test_outputs_for_a_run_that_ended_meanwhile_end_the_turn(browser, model_server, standin):
    """The run is cancelled elsewhere while the form waits: the submission's refusal is shown, and the
    run, asked how it stands, ends the turn (the form gone, Send back)."""
    from selenium.webdriver.common.by import By

    client = a_call_waiting_for_its_output(browser, model_server, standin)
    # the stream that asked for the outputs has ended (else it would tell of the cancel itself)
    wait_for(browser, lambda page: page.find_element(By.ID, "playground").get_attribute("data-streaming") == "false")
    output = browser.find_element(By.CSS_SELECTOR, "form.tool-outputs textarea")
    thread = thread_id(browser)
    run = client.beta.threads.runs.list(thread).data[0]
    client.beta.threads.runs.cancel(run.id, thread_id=thread)
    wait_for(browser, lambda page: client.beta.threads.runs.retrieve(run.id, thread_id=thread).status == "cancelled")
    output.send_keys("too late")
    browser.find_element(By.ID, "submit-outputs").click()
    assert "cancelled" in error_shown(browser)
    wait_for(browser, lambda page: "cancelled" in run_status(page) and count(page, "form.tool-outputs") == 0)
    assert browser.find_element(By.ID, "send").is_enabled() and not browser.find_element(By.ID, "stop").is_enabled()


def test_a_message_the_api_refuses_is_given_back_and_a_thread_opens_without_its_deleted_assistant(
    browser, model_server, standin
):
    from selenium.webdriver.common.by import By

    key = fresh_key()
    client = model_server.client(key)
    model = standin.script([text("Hi")])
    gone = client.beta.assistants.create(model=model, name="Gone")
    kept = client.beta.assistants.create(model=model, name="Kept")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Hello"}])
    client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=gone.id, poll_interval_ms=50)
    paste_key(browser, model_server, key)
    open_view(browser, model_server, f"/playground?assistant={gone.id}&thread={thread.id}")
    wait_for(browser, lambda page: answers(page) == ["Hi"])
    client.beta.assistants.delete(gone.id)  # deleted while the page still offers it
    say(browser, "Are you there?")
    assert error_shown(browser) == f"No assistant found with id '{gone.id}'."
    wait_for(browser, lambda page: page.find_element(By.ID, "prompt").get_attribute("value") == "Are you there?")
    assert count(browser, "#transcript article.message.user") == 1  # the refused message is not shown as sent
    # the thread opens again (its last answer's assistant is gone): the assistants that exist are offered
    open_view(browser, model_server, f"/playground?thread={thread.id}")
    picker = wait_for(browser, lambda page: page.find_element(By.ID, "playground-assistant"))
    assert picker.get_attribute("value") == kept.id and answers(browser) == ["Hi"]


@pytest.fixture(scope="module")
def dev_server():
    """`make dev`'s server as `make dev` runs it: open auth and the offline model writing a word every
    50 ms (the Makefile's SPINDLE_OFFLINE_WORD_SECONDS)."""
    with start_local_server(auth="open", SPINDLE_OFFLINE_WORD_SECONDS="0.05") as running:
        yield running


def test_on_make_devs_offline_model_an_answer_streams_and_stops(browser, dev_server):
    """The Console's story as a new user meets it under `make dev`, with no model key: an assistant
    created in the form (the default model), a long message echoed back word by word, and Stop."""
    from selenium.webdriver.common.by import By

    key = fresh_key()
    paste_key(browser, dev_server, key)
    open_view(browser, dev_server, "/assistants/new")
    browser.find_element(By.ID, "assistant-name").send_keys("Echo")
    browser.find_element(By.ID, "save-assistant").click()
    browser.find_element(By.ID, "chat").click()
    long_message = " ".join(f"w{index}" for index in range(400))  # 20 s of words at 50 ms each
    say(browser, long_message)
    wait_for(browser, lambda page: [shown for shown in answers(page) if shown.startswith("You said: w0 w1")])
    browser.find_element(By.ID, "stop").click()
    wait_for(browser, lambda page: "cancelled" in run_status(page))
    (stopped,) = answers(browser)
    assert stopped.startswith("You said: w0") and not stopped.endswith("w399")
    client = dev_server.client(key)
    run = client.beta.threads.runs.list(thread_id(browser)).data[0]
    assert run.status == "cancelled" and run.model == "gpt-4o"
