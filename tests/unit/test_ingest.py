"""chalicelib.ingest: offline token counting, token-window chunking, and text extraction."""

from __future__ import annotations

import codecs
import dataclasses
import json
import math
import random

import pytest

from chalicelib.ingest import text as text_module
from chalicelib.ingest.chunks import AUTO, Chunk, chunk_text
from chalicelib.ingest.text import (
    EXTRACTORS,
    FileNotReadable,
    InvalidFile,
    UnsupportedFile,
    extract_text,
    file_extension,
)
from chalicelib.ingest.tokens import SYMBOL_CHARS_PER_TOKEN, count_tokens, iter_token_spans, token_spans
from tests.pdf_maker import make_pdf

# Two samples with their real cl100k_base token counts, measured once with an offline copy of the
# tokenizer (the `bpe-openai` package, not a dependency of Spindle).
ENGLISH_SAMPLE = (
    "A vector store is a collection of processed files that the file search tool can read. When a file is\n"
    "added to a vector store, the service extracts its text, splits the text into overlapping chunks, and\n"
    "embeds each chunk so that a question can later be matched against the passages that answer it. The\n"
    "default strategy cuts every file into windows of eight hundred tokens that overlap by four hundred, which\n"
    "keeps each passage short enough to be precise while still carrying the sentences around it. Files that\n"
    "hold no text, or whose format cannot be read, are marked as failed with an error code that explains why,\n"
    "and the rest of the store remains usable. Searching happens in two steps: the question is rewritten into\n"
    "a few queries, each query is compared with the stored chunks, and the best matches are ranked again\n"
    "before the model reads them. The answer then cites the files it relied on, so that a reader can open the\n"
    "original document and check the quotation in context.\n"
)
ENGLISH_SAMPLE_CL100K_TOKENS = 201
CODE_SAMPLE = '''def chunk_windows(total: int, size: int, overlap: int) -> list[tuple[int, int]]:
    """Return the [first, last) token indices of each window."""
    if size <= 0 or not 0 <= overlap < size:
        raise ValueError(f"bad window: size={size}, overlap={overlap}")
    windows = []
    first = 0
    while True:
        last = min(first + size, total)
        windows.append((first, last))
        if last == total:
            return windows
        first += size - overlap


class Cache:
    def __init__(self, capacity: int = 128) -> None:
        self._items: dict[str, bytes] = {}
        self._capacity = capacity

    def get(self, key: str) -> bytes | None:
        return self._items.get(key)
'''
CODE_SAMPLE_CL100K_TOKENS = 179


def pieces(text: str) -> list[str]:
    return [text[start:end] for start, end in token_spans(text)]


def assert_spans_tile(text: str) -> list[tuple[int, int]]:
    """The spans are ordered, non-empty, contiguous, cover the whole text, and agree with count_tokens."""
    spans = token_spans(text)
    assert len(spans) == count_tokens(text)
    assert list(iter_token_spans(text)) == spans
    position = 0
    for start, end in spans:
        assert start == position
        assert start < end
        assert end - start <= SYMBOL_CHARS_PER_TOKEN
        position = end
    assert position == len(text)
    return spans


def random_text(seed: int, length: int) -> str:
    """Text mixing every character class the tokenizer distinguishes, in runs of random lengths."""
    rng = random.Random(seed)
    alphabets = [
        "abcdefghijklmnopqrstuvwxyz",
        "ABCDEFGHIJKLMNOPQRSTUVWXYZ",
        "0123456789",
        " ",
        "\n",
        "\r\n",
        "\t",
        ".,;:!?-_()[]{}\"'/\\@#$%^&*=+<>|~`",
        "éèüößçñ",
        "привет",
        "日本語中文한국어",
        "\u0301\u0308",  # combining marks: neither letters nor digits
        "²½",  # numeric but not decimal digits
        "🙂𝐀",  # outside the BMP
        "\u00a0\u2003",  # non-breaking and em spaces
    ]
    parts: list[str] = []
    size = 0
    while size < length:
        alphabet = rng.choice(alphabets)
        run = "".join(rng.choice(alphabet) for _ in range(rng.choice((1, 1, 2, 3, 5, 9, 12, 20, 40))))
        parts.append(run)
        size += len(run)
    return "".join(parts)


def numbered_words(count: int) -> str:
    """`count` one-token words ("w", " w", " w", ...): token i is word i."""
    return " ".join("w" for _ in range(count))


# -- tokens ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Each of these is exactly the real cl100k_base count, and the pieces are its pieces.
        ("hello world", ["hello", " world"]),
        ("Hello, world!!!", ["Hello", ",", " world", "!!!"]),
        ("1234567", ["123", "456", "7"]),
        ("a\n\nb", ["a", "\n\n", "b"]),
        ("    return x", ["   ", " return", " x"]),
        ("don't", ["don", "'t"]),
        ("I'm here, they'll go", ["I", "'m", " here", ",", " they", "'ll", " go"]),
        ("def foo(self):", ["def", " foo", "(self", "):"]),
        ('{"a": [1, 2]}', ['{"', "a", '":', " [", "1", ",", " ", "2", "]}"]),
        ("x_y = 3.14159", ["x", "_y", " =", " ", "3", ".", "141", "59"]),
        ("THE END.", ["THE", " END", "."]),
    ],
)
def test_simple_texts_are_cut_as_cl100k_cuts_them(text, expected):
    assert pieces(text) == expected
    assert count_tokens(text) == len(expected)


def test_empty_text_has_no_tokens():
    assert count_tokens("") == 0
    assert token_spans("") == []


def test_whitespace_counts_as_tokens_as_in_bpe():
    assert count_tokens(" ") == 1
    assert count_tokens("\n\n\n") == 1
    assert pieces("a  b") == ["a", " ", " b"]


@pytest.mark.parametrize(
    ("word", "tokens"),
    [
        ("cat", 1),
        ("knowledge", 1),  # 9 letters: common words of this length are one BPE token
        ("vocabulary", 2),  # 10
        ("compatibility", 2),  # 13
        ("internationalization", 4),  # 20
        ("supercalifragilisticexpialidocious", 8),  # 34
    ],
)
def test_long_words_count_one_more_token_per_four_letters_past_nine(word, tokens):
    assert count_tokens(word) == tokens
    assert count_tokens(" " + word) == tokens  # the leading space rides on the word, as in BPE


def test_a_long_word_is_cut_into_near_equal_spans():
    word = "internationalization"
    assert pieces(word) == ["inter", "natio", "naliz", "ation"]
    assert pieces("The " + word)[1:] == [" inte", "rnati", "onali", "zation"]


def test_numbers_are_cut_in_groups_of_three_digits():
    assert pieces("2024-01-15") == ["202", "4", "-", "01", "-", "15"]
    assert count_tokens("1" * 30) == 10


def test_punctuation_runs_are_one_token_up_to_sixteen_characters():
    assert count_tokens("...") == 1
    assert count_tokens("!" * 16) == 1
    assert count_tokens("-" * 17) == 2
    assert count_tokens("=" * 1000) == math.ceil(1000 / 16)
    assert count_tokens(" " * 1000) == math.ceil(1000 / 16)


def test_non_ascii_letters_cost_more_per_character():
    assert count_tokens("日本語") == 3  # 9 UTF-8 bytes: one token per CJK character
    assert count_tokens("café") == 2  # 5 bytes
    assert count_tokens("Привет") == 4  # 12 bytes; cl100k cuts it in 3
    assert count_tokens("hello") < count_tokens("привет")


def test_unicode_spans_never_split_a_character():
    for text in ["Привет мир", "日本語のテキストです。", "e\u0301", "𝐀𝐁𝐂", "🙂🙂 ok", "naïve café straße"]:
        spans = assert_spans_tile(text)
        assert "".join(text[start:end] for start, end in spans) == text


def test_non_breaking_and_other_unicode_spaces_are_whitespace():
    assert pieces("a\u00a0b") == ["a", "\u00a0b"]


@pytest.mark.parametrize("seed", range(25))
def test_spans_tile_any_text(seed):
    assert_spans_tile(random_text(seed, 3000))


def test_spans_cover_every_non_whitespace_character():
    text = random_text(99, 5000)
    covered = [False] * len(text)
    for start, end in token_spans(text):
        for index in range(start, end):
            covered[index] = True
    assert all(covered[index] for index, char in enumerate(text) if not char.isspace())


def test_counts_are_deterministic():
    text = random_text(7, 20_000)
    assert count_tokens(text) == count_tokens(text) == len(token_spans(text))


@pytest.mark.parametrize(
    ("sample", "real_tokens"),
    [(ENGLISH_SAMPLE, ENGLISH_SAMPLE_CL100K_TOKENS), (CODE_SAMPLE, CODE_SAMPLE_CL100K_TOKENS)],
)
def test_counts_are_within_ten_percent_of_cl100k_on_english_and_code(sample, real_tokens):
    assert abs(count_tokens(sample) - real_tokens) <= real_tokens * 0.10


def test_english_runs_about_four_to_five_characters_per_token():
    assert 4 <= len(ENGLISH_SAMPLE) / count_tokens(ENGLISH_SAMPLE) <= 5.5


# -- chunks ---------------------------------------------------------------------------------------


def token_index_ranges(text: str, chunks: list[Chunk]) -> list[tuple[int, int]]:
    """For each chunk, the [first, last) indices of its tokens among the whole text's tokens."""
    spans = token_spans(text)
    first_by_start = {start: index for index, (start, _) in enumerate(spans)}
    last_by_end = {end: index + 1 for index, (_, end) in enumerate(spans)}
    return [(first_by_start[chunk.start], last_by_end[chunk.end]) for chunk in chunks]


def assert_chunks_well_formed(text: str, chunks: list[Chunk], max_tokens: int, overlap_tokens: int) -> None:
    assert chunks
    assert chunks[0].start == 0
    assert chunks[-1].end == len(text)
    for chunk in chunks:
        assert chunk.text == text[chunk.start : chunk.end]
        assert 0 < chunk.tokens <= max_tokens
        assert len(chunk.text) <= max_tokens * SYMBOL_CHARS_PER_TOKEN
    for chunk in chunks[:-1]:
        assert chunk.tokens == max_tokens
    for previous, following in zip(chunks, chunks[1:], strict=False):
        assert previous.start < following.start
        assert previous.end < following.end  # no chunk lies wholly inside the one before it
        if overlap_tokens:
            assert following.start < previous.end
        else:
            assert following.start == previous.end


def test_auto_strategy_is_800_tokens_overlapping_by_400():
    assert AUTO == (800, 400)
    text = numbered_words(2000)
    assert chunk_text(text) == chunk_text(text, 800, 400)


def test_chunk_is_a_frozen_dataclass():
    chunk = Chunk(text="a", start=0, end=1, tokens=1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        chunk.text = "b"  # type: ignore[misc]


@pytest.mark.parametrize("text", ["", " ", "\n\n\t  \r\n", "\u00a0\u2003"])
def test_empty_or_whitespace_text_has_no_chunks(text):
    assert chunk_text(text) == []


def test_a_text_shorter_than_a_window_is_one_chunk_of_the_whole_text():
    text = "  Hello, world.\nA second line.\n\n"
    [chunk] = chunk_text(text, 100, 50)
    assert chunk == Chunk(text=text, start=0, end=len(text), tokens=count_tokens(text))


@pytest.mark.parametrize(
    ("words", "max_tokens", "overlap_tokens", "expected_chunks"),
    [
        (100, 100, 50, 1),
        (101, 100, 50, 2),
        (150, 100, 50, 2),
        (151, 100, 50, 3),
        (1000, 100, 0, 10),
        (1001, 100, 0, 11),
        (2000, 800, 400, 4),
        (5000, 4096, 2048, 2),
        (6145, 4096, 2048, 3),
    ],
)
def test_windows_advance_by_max_minus_overlap_and_stop_at_the_end(words, max_tokens, overlap_tokens, expected_chunks):
    text = numbered_words(words)
    chunks = chunk_text(text, max_tokens, overlap_tokens)
    assert len(chunks) == expected_chunks
    assert_chunks_well_formed(text, chunks, max_tokens, overlap_tokens)
    stride = max_tokens - overlap_tokens
    expected = [(index * stride, min(index * stride + max_tokens, words)) for index in range(expected_chunks)]
    assert token_index_ranges(text, chunks) == expected


@pytest.mark.parametrize(("max_tokens", "overlap_tokens"), [(100, 0), (100, 50), (300, 7), (800, 400), (1000, 123)])
def test_consecutive_chunks_share_exactly_the_overlap(max_tokens, overlap_tokens):
    text = random_text(3, 40_000)
    chunks = chunk_text(text, max_tokens, overlap_tokens)
    assert len(chunks) > 2
    assert_chunks_well_formed(text, chunks, max_tokens, overlap_tokens)
    ranges = token_index_ranges(text, chunks)
    for index, (previous, following) in enumerate(zip(chunks, chunks[1:], strict=False)):
        (_, previous_last), (following_first, following_last) = ranges[index], ranges[index + 1]
        assert previous_last - following_first == overlap_tokens
        assert following.tokens == following_last - following_first
        # The shared text is the same characters in both chunks.
        shared = text[following.start : previous.end]
        assert previous.text.endswith(shared)
        assert following.text.startswith(shared)


def test_the_last_chunk_reaches_the_end_even_when_the_text_ends_in_whitespace():
    text = ENGLISH_SAMPLE * 20 + "\n\n\n"
    chunks = chunk_text(text, 100, 20)
    assert chunks[-1].end == len(text)
    assert chunks[-1].text.endswith("context.\n\n\n\n")


def test_the_last_window_is_not_a_tail_of_the_one_before():
    # 130 tokens with a stride of 50: windows at 0 and 50 (reaching 130); a third at 100 would lie
    # wholly inside the second.
    text = numbered_words(130)
    chunks = chunk_text(text, 100, 50)
    assert token_index_ranges(text, chunks) == [(0, 100), (50, 130)]


def test_chunk_token_counts_match_a_recount_of_their_text_closely():
    text = ENGLISH_SAMPLE * 10
    for chunk in chunk_text(text, 200, 50):
        # A chunk's own text can be cut slightly differently at its edges (a word without its space).
        assert abs(count_tokens(chunk.text) - chunk.tokens) <= 2


def test_a_long_run_of_one_character_still_chunks_within_bounds():
    text = "x" * 100_000
    chunks = chunk_text(text, 100, 10)
    assert_chunks_well_formed(text, chunks, 100, 10)


@pytest.mark.parametrize(
    ("max_tokens", "overlap_tokens"),
    [(99, 0), (4097, 0), (0, 0), (-800, 0), (800, 401), (800, -1), (101, 51), (True, 0), (800, False), (800.0, 0)],
)
def test_out_of_bounds_strategies_are_rejected(max_tokens, overlap_tokens):
    with pytest.raises(ValueError):
        chunk_text("some text", max_tokens, overlap_tokens)


@pytest.mark.parametrize(("max_tokens", "overlap_tokens"), [(100, 0), (100, 50), (101, 50), (4096, 2048), (4096, 0)])
def test_the_official_bounds_are_accepted(max_tokens, overlap_tokens):
    assert chunk_text("some text", max_tokens, overlap_tokens)[0].text == "some text"


def test_two_megabytes_chunk_into_well_formed_windows():
    # A sanity check of scale, not a timing: every chunk of a 2 MB text is checked structurally.
    paragraphs = [random_text(seed, 2000) for seed in range(10)] + [ENGLISH_SAMPLE, CODE_SAMPLE]
    rng = random.Random(0)
    parts: list[str] = []
    size = 0
    while size < 2_000_000:
        paragraph = rng.choice(paragraphs)
        parts.append(paragraph)
        size += len(paragraph)
    text = "\n\n".join(parts)
    chunks = chunk_text(text, *AUTO)
    assert_chunks_well_formed(text, chunks, *AUTO)
    stride = AUTO[0] - AUTO[1]
    total = count_tokens(text)
    assert len(chunks) == 1 + math.ceil((total - AUTO[0]) / stride)
    assert sum(chunk.tokens for chunk in chunks) == total + AUTO[1] * (len(chunks) - 1)


# -- text extraction ------------------------------------------------------------------------------

SOURCE = "line one\nline two — with an em dash\n\tindented\n"
PLAIN_EXTENSIONS = (
    "txt md csv py js ts java c cpp h cs go rb php sh css tex rst yaml yml xml".split()  # the brief's list
)


@pytest.mark.parametrize("extension", PLAIN_EXTENSIONS)
def test_plain_text_and_source_code_are_returned_as_they_are(extension):
    assert extract_text(f"file.{extension}", SOURCE.encode()) == SOURCE


@pytest.mark.parametrize("filename", ["README.MD", "Notes.Txt", "main.PY", "page.HTML", "data.Json"])
def test_extensions_are_case_insensitive(filename):
    assert extract_text(filename, b'{"a": "text"}') == '{"a": "text"}'


@pytest.mark.parametrize(
    ("filename", "extension"),
    [
        ("report.txt", "txt"),
        ("dir/sub/report.final.MD", "md"),
        ("C:\\Users\\me.d\\notes.txt", "txt"),
        ("archive.tar.gz", "gz"),
        ("README", ""),
        (".bashrc", ""),
        ("trailing.", ""),
        ("dir.d/noext", ""),
    ],
)
def test_file_extension(filename, extension):
    assert file_extension(filename) == extension


def test_a_utf8_byte_order_mark_is_dropped():
    assert extract_text("a.txt", codecs.BOM_UTF8 + "héllo".encode()) == "héllo"


@pytest.mark.parametrize(
    ("bom", "encoding"),
    [
        (codecs.BOM_UTF16_LE, "utf-16-le"),
        (codecs.BOM_UTF16_BE, "utf-16-be"),
        (codecs.BOM_UTF32_LE, "utf-32-le"),
        (codecs.BOM_UTF32_BE, "utf-32-be"),
    ],
)
def test_utf16_and_utf32_with_a_byte_order_mark_are_decoded(bom, encoding):
    assert extract_text("a.md", bom + "héllo 日本 🙂".encode(encoding)) == "héllo 日本 🙂"


def test_json_with_a_byte_order_mark_is_valid():
    assert extract_text("a.json", codecs.BOM_UTF8 + b'{"k": 1}') == '{"k": 1}'


@pytest.mark.parametrize(
    "data",
    [
        b"caf\xe9 au lait",  # Latin-1
        b"\xff\xfe\xfd",
        b"ok \xc3",  # a truncated sequence
        codecs.BOM_UTF16_LE + b"a",  # an odd byte after a UTF-16 mark
    ],
)
def test_undecodable_bytes_are_an_invalid_file(data):
    with pytest.raises(InvalidFile) as raised:
        extract_text("a.txt", data)
    assert raised.value.code == "invalid_file"
    assert "not valid" in raised.value.message


def test_nul_characters_mean_binary_or_unmarked_utf16_and_are_an_invalid_file():
    with pytest.raises(InvalidFile, match="NUL"):
        extract_text("a.txt", "hello".encode("utf-16-le"))
    with pytest.raises(InvalidFile, match="NUL"):
        extract_text("a.py", b"ELF\x00\x01\x02")


def test_json_is_validated_and_returned_unchanged():
    source = '{\n  "name": "Spindle",\n  "tags": ["a", "b"],\n  "n": 1.5e3\n}\n'
    assert extract_text("data.json", source.encode()) == source
    assert json.loads(extract_text("data.json", source.encode())) == json.loads(source)


@pytest.mark.parametrize("source", ['{"a": 1,}', "{'a': 1}", '{"a": ', "not json", "[1, 2] [3]"])
def test_invalid_json_is_an_invalid_file(source):
    with pytest.raises(InvalidFile, match="not valid JSON"):
        extract_text("data.json", source.encode())


def test_json_nested_too_deeply_to_check_is_an_invalid_file():
    depth = 100_000
    with pytest.raises(InvalidFile, match="nested too deeply"):
        extract_text("deep.json", ("[" * depth + "]" * depth).encode())


HTML_PAGE = """<!DOCTYPE html>
<html>
<head>
  <meta charset="utf-8">
  <title>Fish &amp; Chips</title>
  <style>body { color: red; } p::before { content: "hidden"; }</style>
  <script>var s = "<p>not shown</p>"; if (a < b && c > d) {}</script>
</head>
<body>
  <!-- a comment that is not shown -->
  <h1>Menu&nbsp;of   the
      day</h1>
  <p>Cod, <b>haddock</b> &amp; <i>plaice</i> &lt;fresh&gt; &#8212; caf&eacute;&#x2019;s best.</p>
  <ul><li>Peas</li><li>Vinegar</li></ul>
  <p>Line one<br>Line two</p>
  <table><tr><th>Item</th><th>Price</th></tr><tr><td>Cod </td><td> 9</td></tr></table>
  <pre>
def fry(fish):
    return fish  # kept as written
</pre>
  <noscript>Please enable JavaScript</noscript>
  <template><p>a template</p></template>
  <div>Closing time</div>
  <script type="module">import x from "y";</script>
</body>
</html>
"""
HTML_TEXT = (
    "Fish & Chips\n"
    "\n"
    "Menu of the day\n"
    "\n"
    "Cod, haddock & plaice <fresh> — café’s best.\n"
    "\n"
    "Peas\n"
    "Vinegar\n"
    "\n"
    "Line one\n"
    "Line two\n"
    "\n"
    "Item\tPrice\n"
    "Cod\t9\n"
    "\n"
    "def fry(fish):\n"
    "    return fish  # kept as written\n"
    "\n"
    "Closing time"
)


@pytest.mark.parametrize("filename", ["page.html", "page.htm", "PAGE.HTM"])
def test_html_yields_its_visible_text(filename):
    assert extract_text(filename, HTML_PAGE.encode()) == HTML_TEXT


def test_html_without_a_closing_head_tag_keeps_its_body():
    page = "<html><head><title>T</title><body><p>Body text</p></body></html>"
    assert extract_text("a.html", page.encode()) == "T\n\nBody text"


def test_html_fragments_and_stray_tags_are_read():
    # A stray </p> is an empty paragraph to a browser too.
    assert extract_text("a.html", b"</script>plain <em>text</em></p> here") == "plain text\n\nhere"
    assert extract_text("a.html", b"</pre>plain</style> <span>text") == "plain text"


def test_html_marked_sections_html_parser_rejects_are_read_as_text():
    # html.parser raises AssertionError on these; a browser shows them as text or drops them.
    assert extract_text("a.html", b"a <![ b c") == "a <![ b c"
    assert extract_text("a.html", b"a <![Pcp x]]> b") == "a <![Pcp x]]> b"
    assert extract_text("a.html", b"a <![CDATA[x]]> b <![if IE]>c<![endif]>") == "a b c"


def test_malformed_html_never_raises_anything_but_file_not_readable():
    rng = random.Random(5)
    alphabet = "<>!/?-[]&#;:xapif \"'=\n"
    for _ in range(5000):
        markup = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 40)))
        try:
            extract_text("fuzz.html", markup.encode())
        except FileNotReadable:
            pass


def test_html_with_only_scripts_and_styles_has_no_text():
    page = b"<html><head><style>a{}</style></head><body><script>alert(1)</script>  </body></html>"
    with pytest.raises(InvalidFile, match="The file has no text."):
        extract_text("a.html", page)


@pytest.mark.parametrize("filename", ["empty.txt", "empty.md", "empty.py", "empty.html", "empty.csv"])
def test_an_empty_file_has_no_text(filename):
    with pytest.raises(InvalidFile) as raised:
        extract_text(filename, b"")
    assert raised.value.message == "The file has no text."
    assert raised.value.code == "invalid_file"


def test_a_whitespace_only_file_has_no_text():
    with pytest.raises(InvalidFile, match="The file has no text."):
        extract_text("blank.txt", b" \n\t\r\n")


def test_an_empty_json_file_is_invalid():
    with pytest.raises(InvalidFile):
        extract_text("empty.json", b"")


@pytest.mark.parametrize(
    "filename", ["setup.exe", "photo.png", "photo.JPG", "report.docx", "slides.pptx", "README", "a."]
)
def test_unsupported_extensions_are_an_unsupported_file(filename):
    with pytest.raises(UnsupportedFile) as raised:
        extract_text(filename, b"some bytes")
    assert raised.value.code == "unsupported_file"
    assert isinstance(raised.value, FileNotReadable)


def test_unsupported_file_messages_name_the_extension():
    with pytest.raises(UnsupportedFile, match=r"'\.exe'"):
        extract_text("setup.exe", b"MZ")
    with pytest.raises(UnsupportedFile, match="no extension"):
        extract_text("Makefile", b"all:")


def test_the_error_codes_are_the_official_last_error_codes():
    assert UnsupportedFile.code == "unsupported_file"
    assert InvalidFile.code == "invalid_file"
    assert issubclass(UnsupportedFile, FileNotReadable)
    assert issubclass(InvalidFile, FileNotReadable)
    assert str(InvalidFile("why")) == "why"


def test_an_extractor_can_be_registered(monkeypatch):
    assert "docx" not in EXTRACTORS
    monkeypatch.setitem(text_module.EXTRACTORS, "docx", lambda data: f"{len(data)} bytes of Word")
    assert extract_text("paper.DOCX", b"PK\x03\x04") == "4 bytes of Word"


def test_a_pdf_gives_the_text_of_its_pages():
    pdf = make_pdf(["To reset the device (model X),", "hold the power button."], ["Warranty: two years."])
    assert (
        extract_text("manual.PDF", pdf)
        == "To reset the device (model X),\nhold the power button.\n\nWarranty: two years."
    )


@pytest.mark.parametrize(
    "content, message",
    [
        (b"%PDF-1.4\nthis is no PDF at all", "The PDF could not be read"),
        (b"", "The PDF could not be read"),
        (make_pdf([]), "The file has no text."),
    ],
)
def test_a_pdf_that_cannot_be_read_or_has_no_text_is_an_invalid_file(content, message):
    with pytest.raises(InvalidFile, match=message.replace("(", r"\(").replace(")", r"\)")) as raised:
        extract_text("broken.pdf", content)
    assert raised.value.code == "invalid_file"


def test_every_extractor_extension_is_lower_case_without_a_dot():
    for extension in EXTRACTORS:
        assert extension == extension.lower()
        assert not extension.startswith(".")
