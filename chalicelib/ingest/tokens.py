"""Offline token counting: a deterministic approximation of OpenAI's cl100k_base BPE tokenizer.

The real tokenizer needs a vocabulary that tiktoken downloads at run time, and a Lambda may not reach the
internet, so this module loads none. It keeps the half of BPE that is cheap to reproduce, the
pre-tokenizer that cuts text into pieces (cl100k's own regex, translated to the standard `re` module),
and replaces the merge table with a length rule:

- a run of ASCII letters (with its optional leading space or punctuation character, as in cl100k) is
  1 token up to 9 letters, then 1 more token per 4 letters (BPE has whole-word tokens for most common
  words and splits longer or rarer ones into pieces);
- a run of letters with any non-ASCII letter costs 1 token per 3 bytes of UTF-8 (about 1 per CJK
  character, 1 per 1.5 Cyrillic or Greek letters), as BPE works on bytes;
- a run of 1 to 3 digits is 1 token (cl100k cuts numbers exactly that way);
- a contraction ('s, 't, 're, 've, 'm, 'll, 'd) is 1 token;
- a run of punctuation or of whitespace is 1 token per 16 characters: nearly always 1, and bounded for
  degenerate input (10,000 dashes are many tokens in cl100k too).

No token spans more than 16 characters, so a window of N tokens is at most 16 * N characters.

How close: counted against the real cl100k_base (the `bpe-openai` package, which embeds the vocabulary,
installed in a scratch environment once; it is no dependency of Spindle). The constants were fitted on
the first group; the second group was measured afterwards, unchanged. Ratio = this module / real.

    text                                              characters   real cl100k   this module   ratio
    GNU GPL v3, English prose                              35,149         7,455         7,659    1.03
    Apache License 2.0                                     11,358         2,270         2,397    1.06
    Python 3.11 pydoc topics, technical English           465,126       105,682       105,179    1.00
    The Rust Book, visible text of its HTML             1,303,692       305,318       303,410    0.99
    Spindle's README.md, Markdown                          63,027        16,330        15,446    0.95
    Python 3.11 stdlib source (a*-e*.py), code          1,045,945       236,380       229,287    0.97
    botocore's DynamoDB model, JSON                       556,233       130,054       129,769    1.00
    Spindle's openapi.yaml                                189,971        40,328        40,339    1.00
    -- held out --
    GNU GPL v2 / GFDL 1.3 / MPL 2.0                  18k/23k/17k   3,879/4,908/3,418        1.03/1.00/1.05
    The Rustonomicon / Rust Reference, HTML text     293k / 1.14M       69,071/262,327      0.98 / 0.94
    Python 3.11 stdlib source (p*-t*.py)                  804,759       186,273       178,829    0.96
    botocore's S3 model, JSON                           1,394,123       335,714       327,427    0.98
    JavaScript (npm's tar/unpack.js) / minified JS     33k / 83k         7,419 / 29,382      0.93 / 0.83
    Changelogs full of links and numbers (Markdown)  80k / 894k      27,777/257,232      0.90 / 0.86
    Japanese / Chinese / Korean samples (CPython's)     852/935/453     736/792/579   0.90/0.80/0.58

So English prose, documentation, code and JSON land within about 7% of the real count (3.9 to 5.0
characters per token), link- and number-heavy text and minified code undercount by 10-17%, and CJK is a
rough estimate. (The simpler rule "ceil(letters / 4) tokens per word" overcounts English by 22-44%.)
Good for sizing chunk windows and estimating usage; not for billing.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

# cl100k_base's pre-tokenizer is
#   (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
# The standard `re` has no \p{...} classes, so they are built from \w, which is letters, digits and "_":
# a letter is [^\W\d_], "neither letter nor digit" is [^\w] or "_". Every character falls in one of the
# alternatives (letter, digit, whitespace, or other), so the pieces tile the text with no gap.
_PIECE = re.compile(
    r"'(?i:[stmd]|re|ve|ll)"
    r"|(?:[^\r\n\w]|_)?[^\W\d_]+"
    r"|\d{1,3}"
    r"| ?(?:[^\s\w]|_)+[\r\n]*"
    r"|\s*[\r\n]+"
    r"|\s+(?!\S)"
    r"|\s+"
)
# The letter-run alternative alone, to tell a letter piece (and its letters) from the others. A
# contraction matches it too ("'" then letters), harmlessly: 1 token either way.
_LETTER_PIECE = re.compile(r"(?:[^\r\n\w]|_)?([^\W\d_]+)")

# English BPE vocabularies hold most words whole: cl100k has a single token for nearly every common
# word up to about 9 letters, and splits longer (or rarer) ones into pieces of a few letters. Fitted on
# the corpora in the module docstring.
ASCII_WORD_LETTERS = 9
ASCII_LETTERS_PER_EXTRA_TOKEN = 4
# BPE works on UTF-8 bytes, and other scripts have far fewer whole-word tokens in cl100k.
NON_ASCII_LETTER_BYTES_PER_TOKEN = 3
# Punctuation and whitespace runs are almost always 1 token; cl100k's longest tokens of this kind are
# 8 to 128 characters, so a long run (a ruler of dashes, a block of blank lines) is 1 token per 16
# characters. This also caps the length of any token, so N tokens never span more than 16 * N characters.
SYMBOL_CHARS_PER_TOKEN = 16
# An ASCII piece this short is 1 token whatever it is (at most 9 letters, 16 symbols, 3 digits): the
# common case, decided without classifying the piece.
_SHORT_ASCII_PIECE = min(ASCII_WORD_LETTERS, SYMBOL_CHARS_PER_TOKEN)


def _piece_tokens(piece: str) -> int:
    """The tokens one pre-tokenizer piece counts for."""
    # isascii() and len() are C-level checks: most pieces of English or code stop here.
    if len(piece) <= _SHORT_ASCII_PIECE and piece.isascii():
        return 1
    letter_piece = _LETTER_PIECE.fullmatch(piece)
    if letter_piece is None:  # punctuation, whitespace or digits
        return -(-len(piece) // SYMBOL_CHARS_PER_TOKEN)
    letters = letter_piece.group(1)
    if letters.isascii():
        extra = len(letters) - ASCII_WORD_LETTERS
        return 1 if extra <= 0 else 1 + -(-extra // ASCII_LETTERS_PER_EXTRA_TOKEN)
    size = len(letters.encode("utf-8", "surrogatepass"))
    # Capped at the piece's length so that each token can have a span of at least one character
    # (a letter outside the BMP is 4 bytes).
    return min(-(-size // NON_ASCII_LETTER_BYTES_PER_TOKEN), len(piece))


def count_tokens(text: str) -> int:
    """The approximate number of cl100k_base tokens in `text`; always `len(token_spans(text))`."""
    return sum(map(_piece_tokens, _PIECE.findall(text)))


def token_spans(text: str) -> list[tuple[int, int]]:
    """The [start, end) character offsets of each token of `text`, in order.

    The spans tile the whole text, whitespace included, as BPE tokens do (a space usually leads the
    word after it): the first starts at 0, each next one where the previous one ends, the last ends at
    len(text). A piece that counts as several tokens (a long word, a long run of dashes) is cut into that
    many spans of near-equal length.
    """
    return list(iter_token_spans(text))


def iter_token_spans(text: str) -> Iterator[tuple[int, int]]:
    """`token_spans` one at a time, for callers that keep less than a list of tuples (about 120 bytes a
    token) for a long text."""
    for match in _PIECE.finditer(text):
        start, end = match.span()
        tokens = _piece_tokens(match.group())
        if tokens == 1:
            yield start, end
            continue
        # The i-th cut at start + i * length // tokens: no span is empty, since tokens <= length.
        length = end - start
        previous = start
        for index in range(1, tokens + 1):
            boundary = start + index * length // tokens
            yield previous, boundary
            previous = boundary
