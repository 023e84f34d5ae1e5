"""An English corpus that ships with Python, and a rule-based sentence splitter.

`embedded_corpus()` turns the documentation topics that CPython bundles in `pydoc_data.topics`
(the text behind `help("for")`, ~0.45 MB) into documents made of sentences, so quickstarts and tests
have real English prose without downloading anything. The text changes a little between Python
versions; for a given interpreter the result is always the same.

`split_sentences()` is the splitter used both here and by the data pipeline's "plain paragraphs"
input mode. It is deliberately simple and documented rather than statistical (no nltk/punkt
dependency): see its docstring for the exact rule.
"""

import os
import re

from albert_keras.io_utils import atomic_write

# Tokens that end in "." but rarely end a sentence. Compared lowercased, with surrounding
# brackets and quotes stripped.
ABBREVIATIONS = frozenset(
    [
        "e.g.", "i.e.", "etc.", "vs.", "cf.", "viz.", "approx.", "mr.", "mrs.", "ms.", "dr.",
        "prof.", "st.", "no.", "nos.", "fig.", "figs.", "eq.", "sec.", "vol.", "ch.", "al.", "jr.",
        "sr.", "inc.", "ltd.", "co.", "corp.", "u.s.", "a.m.", "p.m.",
    ]
)

_CLOSERS = "\"'\u201d\u2019)]}"
_OPENERS = "\"'\u201c\u2018([{"
# A sentence-final run of punctuation, optional closing quotes/brackets, then whitespace.
_BOUNDARY = re.compile(r"[.!?]+[" + re.escape(_CLOSERS) + r"]*\s+")
_HEADING_UNDERLINE = re.compile(r"^\s*([*=\-~^#+])\1{2,}\s*$")
_BULLET = re.compile(r"^\s*(?:[*\-+\u2022]|\d+\.|\([a-z0-9]\))\s+")
_EMPHASIS = re.compile(r"\*{1,2}([^*\s](?:[^*]*[^*\s])?)\*{1,2}")
_WORD = re.compile(r"^[\"'\u201c\u2018(\[]*[A-Za-z][A-Za-z'\u2019-]*[\"'\u201d\u2019)\],.;:!?]*$")


def _is_sentence_start(char):
    return char.isupper() or char.isdigit() or char in _OPENERS


def split_sentences(paragraph):
    """Split a paragraph of prose into sentences.

    The rule: whitespace (including newlines) is collapsed to single spaces; a sentence ends after
    a run of `.`, `!` or `?`, optionally followed by closing quotes or brackets, when whitespace
    follows and the next character is an uppercase letter, a digit or an opening quote/bracket.
    It does not end after a known abbreviation (`ABBREVIATIONS`, e.g. "e.g.", "Dr.") or a single
    capital initial ("J.").

    Args:
        paragraph: a string; line breaks inside it are treated as spaces.

    Returns:
        A list of non-empty sentence strings, in order.

    Example:
    >>> split_sentences("It works, e.g. here. Dr. Smith agreed! Then 3 more?")
    ['It works, e.g. here.', 'Dr. Smith agreed!', 'Then 3 more?']
    """
    text = " ".join(paragraph.split())
    sentences = []
    start = 0
    for match in _BOUNDARY.finditer(text):
        end = match.end()
        if end >= len(text) or not _is_sentence_start(text[end]):
            continue
        # The word ending at the boundary; found by scanning back from it, so long runs of
        # rejected boundaries stay linear in the text length.
        space = text.rfind(" ", start, match.start() + 1)
        word = text[start if space < 0 else space + 1 : match.start() + 1].strip(_OPENERS + _CLOSERS)
        if word.lower() in ABBREVIATIONS or re.fullmatch(r"[A-Z]\.", word):
            continue
        sentence = text[start:end].strip()
        if sentence:
            sentences.append(sentence)
        start = end
    tail = text[start:].strip()
    if tail:
        sentences.append(tail)
    return sentences


def _is_prose(sentence):
    """Whether a sentence looks like English prose rather than code, grammar or a table row."""
    words = sentence.split()
    if len(words) < 3 or not sentence[0].isupper() and sentence[0] not in _OPENERS:
        return False
    if sentence.rstrip(_CLOSERS)[-1:] not in (".", "!", "?", ":"):
        return False
    if "::=" in sentence or ">>>" in sentence:
        return False
    wordlike = sum(1 for word in words if _WORD.match(word))
    return wordlike >= 0.6 * len(words)


def _topic_paragraphs(text):
    """Yield the paragraphs of one topic: blank-line separated blocks, minus headings and markup."""
    for block in re.split(r"\n\s*\n", text):
        lines = block.split("\n")
        kept = []
        for index, line in enumerate(lines):
            # "Title\n*****": drop both the underline and the title above it (a fragment).
            if _HEADING_UNDERLINE.match(line):
                if kept and index > 0 and kept[-1] == lines[index - 1]:
                    kept.pop()
                continue
            stripped = line.strip()
            # Table borders/rows, doctest and grammar lines are not prose.
            if stripped.startswith(("+-", "+=", "|", ">>>", "...")) or "::=" in stripped:
                continue
            kept.append(line)
        if not kept:
            continue
        # A bullet starts its own paragraph, so list items do not run into each other.
        paragraph = []
        for line in kept:
            if _BULLET.match(line) and paragraph:
                yield " ".join(paragraph)
                paragraph = []
            paragraph.append(_BULLET.sub("", line, count=1) if _BULLET.match(line) else line)
        if paragraph:
            yield " ".join(paragraph)


def embedded_corpus():
    """Real English text with no download: CPython's documentation topics, as documents.

    Each topic of `pydoc_data.topics.topics` (sorted by name) becomes one document. Headings,
    indented code, grammar productions, doctests and table rows are dropped; the remaining
    paragraphs are split with `split_sentences`, `*emphasis*` markers are removed, and only
    sentences that look like prose (at least 3 words, capitalised, ending in `.`, `!`, `?` or `:`,
    mostly alphabetic words) are kept. Documents with no sentence left are omitted.

    Returns:
        A list of documents; each document is a list of sentence strings. The result is the same
        on every call for a given Python version.

    Example:
    >>> docs = embedded_corpus()
    >>> len(docs) > 50 and all(isinstance(s, str) for s in docs[0])
    True
    """
    from pydoc_data.topics import topics

    documents = []
    for name in sorted(topics):
        sentences = []
        for paragraph in _topic_paragraphs(topics[name]):
            paragraph = _EMPHASIS.sub(r"\1", paragraph)
            sentences.extend(s for s in split_sentences(paragraph) if _is_prose(s))
        if sentences:
            documents.append(sentences)
    return documents


def write_embedded_corpus(path):
    """Write `embedded_corpus()` as one sentence per line, with a blank line between documents.

    This is the input format of `albert-keras create-data` and of the official
    `create_pretraining_data.py`. The file is written atomically.

    Args:
        path: output text file (UTF-8).

    Returns:
        `path`.

    Example:
    >>> import tempfile, os
    >>> p = write_embedded_corpus(os.path.join(tempfile.mkdtemp(), "corpus.txt"))
    >>> open(p, encoding="utf-8").readline().strip() != ""
    True
    """
    documents = embedded_corpus()
    text = "\n\n".join("\n".join(document) for document in documents) + "\n"
    with atomic_write(path, "wb") as f:
        f.write(text.encode("utf-8"))
    return os.fspath(path)
