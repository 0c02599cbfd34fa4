"""code_interpreter's pieces that need no sandbox: the code streamed out of JSON arguments, the
file_path annotations of the links a reply writes, the step's delta events, and the offline model's
programs."""

from __future__ import annotations

import json

import pytest

from chalicelib.domain import events
from chalicelib.domain.citations import Citable, Scanner, citations_in
from chalicelib.runs import code_interpreter
from chalicelib.runs.code_interpreter import CodeStream, code_of
from chalicelib.runs.providers.offline import _program_for

CODE = 'import math\nprint("héllo \\\\ \\"quoted\\"\\t", math.pi, "\U0001f600")\n'


@pytest.mark.parametrize("size", [1, 2, 3, 5, 8, 1000])
def test_the_code_streams_out_of_its_json_arguments_in_pieces_of_any_size(size):
    for arguments in (json.dumps({"code": CODE}), json.dumps({"code": CODE}, ensure_ascii=False)):
        stream = CodeStream()
        pieces = [stream.feed(arguments[at : at + size]) for at in range(0, len(arguments), size)]
        assert "".join(pieces) == CODE == code_of(arguments)


def test_bare_code_is_taken_as_it_is_and_bad_arguments_are_an_error():
    stream = CodeStream()
    assert stream.feed("  print(") + stream.feed("1)") == "  print(1)"
    assert code_of("print(1)") == "print(1)"
    with pytest.raises(ValueError, match="not JSON"):
        code_of('{"code": ')
    with pytest.raises(ValueError, match='takes `{"code"'):
        code_of('{"source": "print(1)"}')


CITABLE = Citable({(0, 0): "file-manual"}, {"out.csv": "file-out", "plots/a b.png": "file-plot"})


def test_links_to_files_the_code_wrote_become_file_path_annotations_at_their_exact_place():
    text = (
        "Cited 【0:0†m.pdf】. [Download](sandbox:/mnt/data/out.csv), again sandbox:/mnt/data/out.csv. "
        "Unknown sandbox:/mnt/data/other.csv stays text."
    )
    found = citations_in(text, CITABLE)
    assert [(a["type"], a["text"]) for a in found] == [
        ("file_citation", "【0:0†m.pdf】"),
        ("file_path", "sandbox:/mnt/data/out.csv"),
        ("file_path", "sandbox:/mnt/data/out.csv"),
    ]
    assert all(text[a["start_index"] : a["end_index"]] == a["text"] for a in found)
    assert found[1]["file_path"] == {"file_id": "file-out"}
    for size in (1, 2, 4, 7, 500):
        scanner = Scanner(CITABLE)
        streamed = [note for at in range(0, len(text), size) for note in scanner.feed(text[at : at + size])]
        assert [note["index"] for note in streamed] == [0, 1, 2]
        assert [{k: v for k, v in note.items() if k != "index"} for note in streamed] == found


def test_code_steps_stream_as_the_official_deltas():
    call = {
        "id": "call_1",
        "type": "code_interpreter",
        "code_interpreter": {"input": "a = 1\nprint(a)\n", "outputs": [{"type": "logs", "logs": "1"}]},
        "_model": {"arguments": "{}"},
    }
    step = {"id": "step_1", "step_details": {"type": "tool_calls", "tool_calls": [call]}}
    deltas = [e["data"]["delta"]["step_details"]["tool_calls"][0] for e in events.tool_call_delta_events(step, {})]
    assert deltas[0] == {
        "index": 0,
        "id": "call_1",
        "type": "code_interpreter",
        "code_interpreter": {"input": "", "outputs": []},
    }
    assert "".join(d["code_interpreter"].get("input", "") for d in deltas[1:]) == "a = 1\nprint(a)\n"
    assert deltas[-1]["code_interpreter"] == {"outputs": [{"index": 0, "type": "logs", "logs": "1"}]}


def test_what_the_run_remembers_of_its_code():
    def code_step(files, images):
        outputs = [{"type": "image", "image": {"file_id": image}} for image in images]
        call = {"id": "c", "type": "code_interpreter", "code_interpreter": {"input": "", "outputs": outputs}}
        call["_model"] = {"arguments": "", "files": files}
        return {"type": "tool_calls", "step_details": {"type": "tool_calls", "tool_calls": [call]}}

    message = {"type": "message_creation", "step_details": {}}
    steps = [code_step({"a.png": "file-1"}, ["file-1"]), message, code_step({"a.png": "file-2"}, ["file-2"])]
    assert code_interpreter.written_files(steps) == {"a.png": "file-2"}  # the latest of each path
    assert code_interpreter.images_to_show(steps) == ("file-2",)  # only since the last message


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("What is 12 * (3 + 4)?", "result = 12 * (3 + 4)"),
        ("Compute 2^10 please", "result = 2**10"),
        ("prove to me that the code_interpreter tool is in good working order", "primes below 50"),
        ("Plot data.csv", "savefig('plot.png')"),
        ("Hello there", None),
    ],
)
def test_the_offline_model_writes_a_program_when_asked_to_compute(question, expected):
    program = _program_for(question, "")
    if expected is None:
        assert program is None
    else:
        assert program is not None and expected.replace("'", '"') in program.replace("'", '"')


def test_a_broken_escape_stops_the_streamed_code_without_failing_the_run():
    stream = CodeStream()
    assert stream.feed('{"code": "a\\uZZZZb') == "a"
    assert stream.feed('c"}') == ""
    with pytest.raises(ValueError):
        code_of('{"code": "a\\uZZZZb"}')  # the call then says what is wrong with its arguments


def test_names_fit_a_file_systems_255_bytes_keeping_their_suffix():
    from chalicelib.runs.code_interpreter import _names

    long_name = "数" * 104 + ".csv"  # 316 bytes in UTF-8, 108 characters
    named = _names({"file-1": {"filename": long_name}, "file-2": {"filename": "a.csv"}}, ["file-1", "file-2"])
    assert len(named["file-1"].encode()) <= 255 and named["file-1"].endswith(".csv")
    assert named["file-2"] == "a.csv"
