"""The Console's files and vector stores (#/files, #/vector_stores) in headless Chromium against the real
local server, each story checked with the official SDK too: uploading a file through the form, seeing
it listed, downloading it and deleting it; a filename carrying markup shown as text; creating a vector
store, adding a file to it, watching it ingest and removing it; and an API error shown with its message.
Screenshots go to tests/screenshots/ (ignored by git)."""

from __future__ import annotations

import uuid
from typing import Any

import openai
import pytest

from tests.console_page import SCREENSHOTS, error_shown, fresh_key, open_view, paste_key, shown, wait_for

# markup that runs if parsed as HTML: one that multipart carries as it is, and one with double quotes,
# which browsers and httpx send as %22 (the server keeps the name as sent)
ATTACK_NAME = "<img src=x onerror=window.__xss=1>.txt"
QUOTED_ATTACK_NAME = '<img src=x onerror="window.__xss=2">.txt'
SLOW = 120  # background ingestion on a busy two-core machine


def cell(browser: Any, row_id: str, column: int) -> str | None:
    """The text of the `column`th cell (from 1) of the table row whose id is `row_id`, if it is shown."""
    return browser.execute_script(
        "const row = document.getElementById(arguments[0]);"
        "const cell = row && row.querySelector('td:nth-child(' + arguments[1] + ')');"
        "return cell ? cell.textContent : null",
        row_id,
        column,
    )


def click(browser: Any, css: str) -> None:
    """Clicks the element `css` selects once it is shown and enabled."""
    from selenium.webdriver.common.by import By

    def ready(page: Any) -> Any:
        found = page.execute_script("return document.querySelector(arguments[0])", css)
        return found if found is not None and found.is_enabled() else False

    wait_for(browser, ready)
    browser.find_element(By.CSS_SELECTOR, css).click()


def confirm_box(browser: Any) -> Any:
    """The page's window.confirm() box, once it is open."""
    from selenium.webdriver.support import expected_conditions

    return wait_for(browser, expected_conditions.alert_is_present())


def accept_confirm(browser: Any, expected: str) -> None:
    alert = confirm_box(browser)
    assert expected in alert.text
    alert.accept()


def test_a_file_is_uploaded_listed_downloaded_and_deleted(browser, server, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    key = fresh_key()
    client = server.client(key)
    older = client.files.create(file=("older.md", b"# older\n"), purpose="assistants")
    content = "Spindle console upload\nsecond line, ünïcode\n".encode()
    upload = tmp_path / "upload" / "notes.txt"
    upload.parent.mkdir()
    upload.write_bytes(content)

    paste_key(browser, server, key)
    open_view(browser, server, "/files")
    wait_for(browser, lambda page: cell(page, older.id, 1) == "older.md")
    browser.find_element(By.ID, "upload-file").send_keys(str(upload))
    Select(browser.find_element(By.ID, "upload-purpose")).select_by_value("user_data")
    browser.find_element(By.ID, "upload").click()

    # the list shows it first (newest first), and the API has it with its bytes and purpose
    wait_for(browser, lambda page: shown(page, "table.files tbody a.file")[:1] == ["notes.txt"])
    (uploaded,) = [file for file in client.files.list() if file.filename == "notes.txt"]
    assert (uploaded.bytes, uploaded.purpose) == (len(content), "user_data")
    assert client.files.content(uploaded.id).content == content
    assert shown(browser, "table.files tbody a.file") == ["notes.txt", "older.md"]
    assert [cell(browser, uploaded.id, n) for n in (2, 3, 4)] == [uploaded.id, "user_data", str(len(content))]
    browser.save_screenshot(str(SCREENSHOTS / "console-files.png"))

    # downloading saves its very bytes under its name
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    browser.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    click(browser, f"tr[id='{uploaded.id}'] button.download")
    saved = downloads / "notes.txt"
    wait_for(browser, lambda page: saved.exists() and saved.read_bytes() == content)

    # deleting asks first, then the file is gone from the list and from the API
    click(browser, f"tr[id='{uploaded.id}'] button.delete")
    accept_confirm(browser, "notes.txt")
    wait_for(browser, lambda page: shown(page, "table.files tbody a.file") == ["older.md"])
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(uploaded.id)
    assert client.files.retrieve(older.id).filename == "older.md"


def test_a_file_view_shows_its_fields_and_deletes_only_when_confirmed(browser, server, tmp_path):
    from selenium.webdriver.common.by import By

    key = fresh_key()
    client = server.client(key)
    content = b'{"answer": 42}\n'
    file = client.files.create(file=("answer.json", content), purpose="assistants")
    paste_key(browser, server, key)
    open_view(browser, server, f"/files/{file.id}")
    details = wait_for(browser, lambda page: "".join(shown(page, "main table tbody")))
    for text in (file.id, "answer.json", "assistants", str(len(content)), "processed"):
        assert text in details

    downloads = tmp_path / "downloads"
    downloads.mkdir()
    browser.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    click(browser, "#download")
    wait_for(browser, lambda page: (downloads / "answer.json").exists())
    wait_for(browser, lambda page: (downloads / "answer.json").read_bytes() == content)

    # dismissed, nothing happens; accepted, the file is deleted and the list is shown
    click(browser, "#delete")
    confirm_box(browser).dismiss()
    assert client.files.retrieve(file.id).id == file.id
    assert browser.current_url.endswith(f"#/files/{file.id}")
    click(browser, "#delete")
    accept_confirm(browser, "answer.json")
    wait_for(browser, lambda page: page.current_url.endswith("#/files"))
    wait_for(browser, lambda page: shown(page, "main h1") == ["Files"])
    assert file.id not in browser.find_element(By.ID, "main").text
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(file.id)


def test_more_than_a_page_of_files_goes_on_to_the_older_ones(browser, server):
    from selenium.webdriver.common.by import By

    key = fresh_key()
    client = server.client(key)
    made = [client.files.create(file=(f"{n:03}.txt", b"x"), purpose="assistants").id for n in range(101)]
    paste_key(browser, server, key)
    open_view(browser, server, "/files")
    wait_for(browser, lambda page: len(shown(page, "table.files tbody tr")) == 100)
    assert shown(browser, "table.files tbody a.file")[:2] == ["100.txt", "099.txt"]
    browser.find_element(By.ID, "more").click()
    wait_for(browser, lambda page: shown(page, "table.files tbody a.file") == ["000.txt"])
    assert cell(browser, made[0], 2) == made[0]
    assert browser.execute_script("return document.getElementById('more')") is None


def test_a_filename_carrying_markup_is_shown_as_text_and_never_runs(browser, server, tmp_path):
    key = fresh_key()
    client = server.client(key)
    by_sdk = client.files.create(file=(ATTACK_NAME, b"harmless\n"), purpose="assistants")
    assert by_sdk.filename == ATTACK_NAME
    paste_key(browser, server, key)
    open_view(browser, server, "/files")
    wait_for(browser, lambda page: cell(page, by_sdk.id, 1) == ATTACK_NAME)

    # and uploaded through the form, from a file with that very name, whatever name the browser sends
    attack = tmp_path / QUOTED_ATTACK_NAME
    attack.write_bytes(b"also harmless\n")
    from selenium.webdriver.common.by import By

    browser.find_element(By.ID, "upload-file").send_keys(str(attack))
    browser.find_element(By.ID, "upload").click()
    wait_for(browser, lambda page: len(shown(page, "table.files tbody tr")) == 2)
    names = {file.id: file.filename for file in client.files.list()}
    assert len(names) == 2 and all("<img src=x onerror=" in name for name in names.values())
    for file_id, name in names.items():
        assert cell(browser, file_id, 1) == name  # the markup is there, as text

    open_view(browser, server, f"/files/{by_sdk.id}")
    wait_for(browser, lambda page: shown(page, "main h1") == ["File " + ATTACK_NAME])
    assert browser.execute_script("return window.__xss") is None
    assert browser.execute_script("return document.querySelectorAll(\"main img[src='x'], main script\").length") == 0


def test_a_vector_store_is_created_and_a_file_added_ingested_and_removed(browser, server, tmp_path):
    from selenium.webdriver.common.by import By

    key = fresh_key()
    client = server.client(key)
    name = f"Manuals {uuid.uuid4().hex[:6]}"
    paste_key(browser, server, key)
    open_view(browser, server, "/vector_stores")
    wait_for(browser, lambda page: shown(page, "main h1") == ["Vector stores"])
    browser.find_element(By.ID, "store-name").send_keys(name)
    browser.find_element(By.ID, "create-store").click()

    # the new store's view opens, and the API has the store
    wait_for(browser, lambda page: "#/vector_stores/vs_" in page.current_url)
    store_id = browser.current_url.split("#/vector_stores/")[1]
    assert client.vector_stores.retrieve(store_id).name == name
    wait_for(browser, lambda page: shown(page, "main h1") == ["Vector store " + name])

    # a file uploaded through the store's form is attached and ingested in the background
    manual = tmp_path / "manual.txt"
    manual.write_text("The return policy allows returns within thirty days of purchase.\n" * 20)
    browser.find_element(By.ID, "store-upload").send_keys(str(manual))
    wait_for(browser, lambda page: len(shown(page, "table.store-files tbody tr")) == 1)
    (attached,) = client.vector_stores.files.list(vector_store_id=store_id)
    assert client.files.retrieve(attached.id).filename == "manual.txt"
    assert client.files.retrieve(attached.id).purpose == "assistants"
    wait_for(browser, lambda page: cell(page, attached.id, 2) == "completed", SLOW)
    done = client.vector_stores.files.retrieve(attached.id, vector_store_id=store_id)
    assert done.status == "completed" and done.usage_bytes > 0
    wait_for(browser, lambda page: cell(page, attached.id, 3) == str(done.usage_bytes))
    assert cell(browser, attached.id, 5) == "static: 800 tokens, 400 overlap"
    assert (
        browser.find_element(By.CSS_SELECTOR, f"tr[id='{attached.id}'] a.file")
        .get_attribute("href")
        .endswith(f"#/files/{attached.id}")
    )
    # the store's own counts come from another request than its files: they catch up within a refresh
    wait_for(browser, lambda page: "1/1, 0 in progress, 0 failed" in "".join(shown(page, "table.store tbody")))
    assert "completed" in "".join(shown(browser, "table.store tbody"))
    browser.save_screenshot(str(SCREENSHOTS / "console-vector-store.png"))

    # the store is listed with its counts
    open_view(browser, server, "/vector_stores")
    wait_for(browser, lambda page: cell(page, store_id, 1) == name)
    assert cell(browser, store_id, 4) == "1/1, 0 in progress, 0 failed"

    # removing the file takes it out of the store (the file itself stays)
    open_view(browser, server, f"/vector_stores/{store_id}")
    click(browser, f"tr[id='{attached.id}'] button.remove")
    wait_for(browser, lambda page: shown(page, "main p").count("No files in this store.") == 1)
    assert list(client.vector_stores.files.list(vector_store_id=store_id)) == []
    assert client.vector_stores.retrieve(store_id).file_counts.total == 0
    assert client.files.retrieve(attached.id).id == attached.id


def test_an_uploaded_file_is_added_by_id_and_the_store_deleted(browser, server):
    from selenium.webdriver.common.by import By

    key = fresh_key()
    client = server.client(key)
    store = client.vector_stores.create(name="By id")
    file = client.files.create(file=("faq.md", b"# FAQ\n\nShipping takes two days.\n"), purpose="assistants")
    paste_key(browser, server, key)
    open_view(browser, server, f"/vector_stores/{store.id}")
    browser.find_element(By.ID, "store-file-id").send_keys(file.id)
    browser.find_element(By.ID, "add-file").click()
    wait_for(browser, lambda page: cell(page, file.id, 2) == "completed", SLOW)
    assert client.vector_stores.files.retrieve(file.id, vector_store_id=store.id).status == "completed"

    click(browser, "#delete-store")
    accept_confirm(browser, store.id)
    wait_for(browser, lambda page: page.current_url.endswith("#/vector_stores"))
    wait_for(browser, lambda page: shown(page, "main h1") == ["Vector stores"])
    wait_for(browser, lambda page: shown(page, "main p") == ["No vector stores yet."])
    with pytest.raises(openai.NotFoundError):
        client.vector_stores.retrieve(store.id)


def test_an_api_error_is_shown_with_its_openai_message(browser, server):
    from selenium.webdriver.common.by import By

    key = fresh_key()
    client = server.client(key)
    store = client.vector_stores.create(name="Errors")
    with pytest.raises(openai.NotFoundError) as refused:
        client.vector_stores.files.create(vector_store_id=store.id, file_id="file-doesnotexist")
    message = refused.value.body["message"]
    assert message == "No file found with id 'file-doesnotexist'."

    paste_key(browser, server, key)
    open_view(browser, server, f"/vector_stores/{store.id}")
    browser.find_element(By.ID, "store-file-id").send_keys("file-doesnotexist")
    browser.find_element(By.ID, "add-file").click()
    assert error_shown(browser) == message
    assert list(client.vector_stores.files.list(vector_store_id=store.id)) == []

    # a view's own error too: a file that is not there
    open_view(browser, server, "/files/file-doesnotexist")
    assert error_shown(browser) == message
