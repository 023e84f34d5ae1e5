"""Streaming reader for pretraining text: documents in bounded chunks, bad lines counted.

Input format (official): one sentence per line, documents separated by blank lines. In
`"paragraphs"` mode each line is a paragraph that the worker splits into sentences
(`corpus.split_sentences`). Files are read as bytes, line by line, with a cap on the line length,
so a file with a 50 MB line or no newlines at all cannot exhaust memory.
"""

import collections
import glob
import hashlib
import os

from albert_keras.errors import AlbertInputError

# Lines longer than this are skipped (counted as "line_too_long"): a sentence or paragraph this
# long is almost certainly not prose (minified data, a dump), and bounding it bounds memory.
DEFAULT_MAX_LINE_BYTES = 1 << 20
# A "document" without blank lines larger than this is cut into several (counted), so one huge
# document cannot hold the whole corpus in memory.
DEFAULT_MAX_DOCUMENT_BYTES = 16 << 20
# Documents are handed to workers in chunks of about this much text.
DEFAULT_CHUNK_BYTES = 1 << 20

_SNIFF_BYTES = 8192
_MAX_SKIP_EXAMPLES = 5


class SkipLog:
    """Counts skipped input lines by reason and keeps the first few `file:line` locations."""

    def __init__(self):
        self.counts = collections.Counter()
        self.examples = collections.defaultdict(list)
        self.empty_files = []
        self.split_documents = 0

    def skip(self, reason, path, line_number):
        self.counts[reason] += 1
        if len(self.examples[reason]) < _MAX_SKIP_EXAMPLES:
            self.examples[reason].append(f"{path}:{line_number}")

    def to_dict(self):
        return {
            "skipped_lines": dict(self.counts),
            "skipped_line_examples": dict(self.examples),
            "empty_files": list(self.empty_files),
            "documents_split_for_size": self.split_documents,
        }


def expand_inputs(paths):
    """Expand glob patterns (`corpus/*.txt`, sorted) and keep plain paths as given.

    Raises:
        AlbertInputError: a pattern matches nothing.
    """
    files = []
    for path in paths:
        path = os.fspath(path)
        if glob.has_magic(path):
            matches = sorted(glob.glob(path))
            if not matches:
                raise AlbertInputError(f"{path}: no input file matches this pattern")
            files.extend(matches)
        else:
            files.append(path)
    return files


def check_input_files(paths):
    """Validate input paths up front; returns their fingerprints `[abspath, size, mtime_ns]`.

    Raises:
        AlbertInputError: a path is missing, a directory, or its first bytes contain NUL
            (a binary file, not UTF-8 text).
    """
    if not paths:
        raise AlbertInputError("create-data: no input files given")
    fingerprints = []
    for path in paths:
        path = os.fspath(path)
        if not os.path.exists(path):
            raise AlbertInputError(f"{path}: input file not found")
        if os.path.isdir(path):
            raise AlbertInputError(f"{path}: is a directory; pass text files (one sentence per line)")
        with open(path, "rb") as f:
            head = f.read(_SNIFF_BYTES)
        if b"\x00" in head:
            raise AlbertInputError(f"{path}: looks like a binary file (NUL byte in the first 8 KiB); expected UTF-8 text")
        stat = os.stat(path)
        fingerprints.append([os.path.abspath(path), stat.st_size, stat.st_mtime_ns])
    return fingerprints


def _read_lines(path, max_line_bytes, skips, on_bad_line, digest):
    """Yield (line_number, text) of one file; a blank text means "document break"."""
    good = bad = 0
    with open(path, "rb") as f:
        line_number = 0
        while True:
            raw = f.readline(max_line_bytes + 1)
            if not raw:
                break
            line_number += 1
            digest.update(raw)
            if len(raw) > max_line_bytes and not raw.endswith(b"\n"):
                # Drain the rest of the over-long line in bounded reads.
                while True:
                    rest = f.readline(1 << 20)
                    digest.update(rest)
                    if not rest or rest.endswith(b"\n"):
                        break
                _bad_line(skips, on_bad_line, "line_too_long", path, line_number,
                          f"longer than {max_line_bytes} bytes")
                bad += 1
                continue
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                _bad_line(skips, on_bad_line, "undecodable", path, line_number, f"not UTF-8 ({error.reason} at byte {error.start})")
                bad += 1
                continue
            if "\x00" in text:
                _bad_line(skips, on_bad_line, "nul_byte", path, line_number, "contains a NUL byte")
                bad += 1
                continue
            good += 1
            yield line_number, text
    if bad and not good:
        raise AlbertInputError(f"{path}: none of its {bad} lines is usable UTF-8 text (binary file?)")


def _bad_line(skips, on_bad_line, reason, path, line_number, message):
    if on_bad_line == "error":
        raise AlbertInputError(f"{path}:{line_number}: {message}")
    skips.skip(reason, path, line_number)


def iter_chunks(
    paths,
    skips,
    max_line_bytes=DEFAULT_MAX_LINE_BYTES,
    max_document_bytes=DEFAULT_MAX_DOCUMENT_BYTES,
    chunk_bytes=DEFAULT_CHUNK_BYTES,
    on_bad_line="skip",
    digests=None,
):
    """Stream the input as chunks of documents; each document is a list of raw line strings.

    Chunk boundaries depend only on the input (never on the number of workers), which keeps the
    output identical for any `--workers`.

    Args:
        paths: input text files, read in order; a file boundary is also a document boundary.
        skips: a `SkipLog` that records skipped lines and empty files.
        max_line_bytes: longer lines are skipped.
        max_document_bytes: larger documents are cut into several.
        chunk_bytes: target text size of one chunk.
        on_bad_line: `"skip"` (count it) or `"error"` (raise `AlbertInputError` naming file:line).
        digests: optional dict path -> hashlib object, updated with each file's bytes.

    Yields:
        `(first_document_index, documents, chunk_text_bytes)`.
    """
    document_index = 0
    chunk, chunk_size = [], 0
    for path in paths:
        path = os.fspath(path)
        if os.path.getsize(path) == 0:
            skips.empty_files.append(path)
        digest = hashlib.sha256()
        if digests is not None:
            digests[path] = digest
        document, document_size = [], 0
        for _, text in _read_lines(path, max_line_bytes, skips, on_bad_line, digest):
            if text.strip():
                document.append(text)
                document_size += len(text)
                if document_size < max_document_bytes:
                    continue
                skips.split_documents += 1
            if document:
                chunk.append(document)
                chunk_size += document_size
                document, document_size = [], 0
                if chunk_size >= chunk_bytes:
                    yield document_index, chunk, chunk_size
                    document_index += len(chunk)
                    chunk, chunk_size = [], 0
        if document:
            chunk.append(document)
            chunk_size += document_size
    if chunk:
        yield document_index, chunk, chunk_size
