"""Streaming reader for pretraining text: documents in bounded chunks, bad lines counted.

Input format (official): one sentence per line, documents separated by blank lines. In
`"paragraphs"` mode each line is a paragraph that the worker splits into sentences
(`corpus.split_sentences`). Files are read as bytes, line by line, with a cap on the line length,
so a file with a 50 MB line or no newlines at all cannot exhaust memory.

A line longer than the cap is read in cap-sized blocks and cut at sentence boundaries
(`corpus.split_sentences`), its sentences staying in one document: a whole book written as one
line is still usable text. Only a stretch of more than the cap without any sentence boundary
(minified data, a dump) is skipped. Inputs may be on any filesystem (`io_utils`: `gs://...`).
"""

import codecs
import collections
import hashlib
import os

from albert_keras import io_utils
from albert_keras.errors import AlbertInputError

# Lines longer than this are cut at sentence boundaries; a stretch this long without one is
# skipped (counted as "line_too_long"): it is almost certainly not prose, and the cap bounds memory.
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
        self.split_lines = 0

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
            "long_lines_split_into_sentences": self.split_lines,
        }


# One input file of a run: the path it is read by (as given or matched), its size, and its
# fingerprint (`[absolute path, size, modification time]`: an edited file makes other records).
InputFile = collections.namedtuple("InputFile", "path size fingerprint")


def list_inputs(patterns, match_url=None):
    """The input files of paths and glob patterns (`corpus/*.txt`, sorted), checked: the one
    input listing of both create-data runners, with one set of messages.

    `file://` paths are local paths (`io_utils.is_url`). Other URLs are listed through
    `io_utils` (`tf.io.gfile`), or through `match_url` when given: the Beam runner reads them
    with Beam's filesystems (`s3://`, `hdfs://`), so it lists them with those too.

    Args:
        patterns: paths or glob patterns, local or URLs.
        match_url: None, or `pattern -> [InputFile]` for URL patterns (empty when nothing matches).

    Returns:
        A list of `InputFile`, in the order of `patterns`.

    Raises:
        AlbertInputError: no patterns, a pattern that matches nothing, a missing file, a
            directory, or a binary file (`check_input_files`).

    Example:
    ```python
    [f.path for f in list_inputs(["corpus/*.txt"])]  # ["corpus/a.txt", "corpus/b.txt"]
    ```
    """
    files = []
    for pattern in patterns:
        pattern = os.fspath(pattern)
        if not io_utils.is_url(pattern):
            pattern = io_utils.local_path(pattern)
        if match_url is not None and io_utils.is_url(pattern):
            found = match_url(pattern)
        else:
            paths = io_utils.glob(pattern) if io_utils.has_magic(pattern) else [pattern]
            found = [InputFile(path, fingerprint[1], fingerprint)
                     for path, fingerprint in zip(paths, check_input_files(paths) if paths else [])]
        if not found:
            what = "no input file matches this pattern" if io_utils.has_magic(pattern) else "input file not found"
            raise AlbertInputError(f"{pattern}: {what}")
        files.extend(found)
    if not files:
        raise AlbertInputError("create-data: no input files given")
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
        if not io_utils.exists(path):
            raise AlbertInputError(f"{path}: input file not found")
        if io_utils.isdir(path):
            raise AlbertInputError(f"{path}: is a directory; pass text files (one sentence per line)")
        with io_utils.open_file(path, "rb") as f:
            head = f.read(_SNIFF_BYTES)
        if b"\x00" in head:
            raise AlbertInputError(f"{path}: looks like a binary file (NUL byte in the first 8 KiB); expected UTF-8 text")
        fingerprints.append([io_utils.absolute(path), io_utils.getsize(path), _mtime_ns(path)])
    return fingerprints


def _mtime_ns(path):
    if io_utils.is_url(path):
        import tensorflow as tf

        return int(tf.io.gfile.stat(path).mtime_nsec)
    return os.stat(path).st_mtime_ns


def _read_lines(path, max_line_bytes, skips, on_bad_line, digest):
    """Yield (line_number, text, whole) of one file; a blank text means "document break"; `whole` is
    False for the sentences an over-long line was cut into."""
    good = 0
    bad = collections.Counter()
    with io_utils.open_file(path, "rb") as f:
        line_number = 0
        while True:
            raw = f.readline(max_line_bytes + 1)
            if not raw:
                break
            line_number += 1
            digest.update(raw)
            if len(raw) > max_line_bytes and not raw.endswith(b"\n"):
                sentences = 0
                for sentence in _long_line_sentences(f, raw, max_line_bytes, digest):
                    if sentence is None:  # no sentence boundary within max_line_bytes
                        _bad_line(skips, on_bad_line, "line_too_long", path, line_number,
                                  f"longer than {max_line_bytes} bytes without a sentence boundary")
                        bad["line_too_long"] += 1
                        break
                    if isinstance(sentence, UnicodeDecodeError):
                        _bad_line(skips, on_bad_line, "undecodable", path, line_number,
                                  f"not UTF-8 ({sentence.reason})")
                        bad["undecodable"] += 1
                        break
                    sentences += 1
                    good += 1
                    yield line_number, sentence, False
                if sentences:
                    skips.split_lines += 1
                continue
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                _bad_line(skips, on_bad_line, "undecodable", path, line_number, f"not UTF-8 ({error.reason} at byte {error.start})")
                bad["undecodable"] += 1
                continue
            if "\x00" in text:
                _bad_line(skips, on_bad_line, "nul_byte", path, line_number, "contains a NUL byte")
                bad["nul_byte"] += 1
                continue
            good += 1
            yield line_number, text, True
    if bad and not good:
        raise AlbertInputError(f"{path}: none of its {line_number} lines is usable: {_describe(bad, max_line_bytes)}")


_REASONS = {
    "undecodable": "not UTF-8 (a binary file?)",
    "nul_byte": "with a NUL byte (a binary file?)",
    "line_too_long": "longer than {max_line_bytes} bytes without a sentence boundary (not prose; if it is, "
    "break it into lines, one sentence or paragraph each, or raise max_line_bytes)",
}


def _describe(bad, max_line_bytes):
    return "; ".join(
        f"{count} {_REASONS[reason].format(max_line_bytes=max_line_bytes)}" for reason, count in sorted(bad.items())
    )


def _drain_line(f, digest):
    while True:
        rest = f.readline(1 << 20)
        digest.update(rest)
        if not rest or rest.endswith(b"\n"):
            return


def _long_line_sentences(f, first, max_line_bytes, digest):
    """Sentences of an over-long line, read in blocks of `max_line_bytes`.

    Yields sentence strings, then stops; yields None when more than `max_line_bytes` pass
    without a sentence boundary, or the `UnicodeDecodeError` when the line is not UTF-8 (both
    after draining the rest of the line). Memory stays within a few blocks.
    """
    from albert_keras.corpus import split_sentences

    decoder = codecs.getincrementaldecoder("utf-8")()
    carry = ""  # the last, possibly unfinished, sentence
    partial_word = ""  # text after the block's last whitespace: the next block continues it
    block, done = first, False
    while True:
        try:
            text = partial_word + decoder.decode(block, final=done)
        except UnicodeDecodeError as error:
            if not done:
                _drain_line(f, digest)
            yield error
            return
        if "\x00" in text:
            if not done:
                _drain_line(f, digest)
            yield UnicodeDecodeError("utf-8", b"\x00", 0, 1, "a NUL byte")
            return
        if done:
            partial_word = ""
        else:
            cut = max(text.rfind(" "), text.rfind("\t"))
            text, partial_word = (text[:cut], text[cut:]) if cut >= 0 else ("", text)
        sentences = split_sentences(carry + " " + text)
        carry = sentences.pop() if sentences and not done else ""
        yield from sentences
        if len(carry.encode("utf-8")) + len(partial_word.encode("utf-8")) > max_line_bytes:
            if not done:
                _drain_line(f, digest)
            yield None
            return
        if done:
            return
        block = f.readline(max_line_bytes)
        digest.update(block)
        done = not block or block.endswith(b"\n")


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
    line_keys=False,
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
        line_keys: also yield where each line comes from (for per-line side files such as
            Hugging Face's Chinese whole-word references, which skip blank lines).

    Yields:
        `(first_document_index, documents, chunk_text_bytes)`; with `line_keys`, a fourth item
        parallel to `documents`: per line `(file_index, non_blank_line_index)`, or None for a
        sentence of an over-long line that was cut.
    """
    document_index = 0
    chunk, chunk_size, chunk_keys = [], 0, []
    for file_index, path in enumerate(paths):
        path = os.fspath(path)
        if io_utils.getsize(path) == 0:
            skips.empty_files.append(path)
        digest = hashlib.sha256()
        if digests is not None:
            digests[path] = digest
        document, document_size, keys = [], 0, []
        blank = 0  # blank lines so far: every blank line is read (only non-blank lines are ever skipped)
        for line_number, text, whole in _read_lines(path, max_line_bytes, skips, on_bad_line, digest):
            if text.strip():
                document.append(text)
                keys.append((file_index, line_number - 1 - blank) if whole else None)
                document_size += len(text)
                if document_size < max_document_bytes:
                    continue
                skips.split_documents += 1
            else:
                blank += 1
            if document:
                chunk.append(document)
                chunk_keys.append(keys)
                chunk_size += document_size
                document, document_size, keys = [], 0, []
                if chunk_size >= chunk_bytes:
                    yield (document_index, chunk, chunk_size) + ((chunk_keys,) if line_keys else ())
                    document_index += len(chunk)
                    chunk, chunk_size, chunk_keys = [], 0, []
        if document:
            chunk.append(document)
            chunk_keys.append(keys)
            chunk_size += document_size
    if chunk:
        yield (document_index, chunk, chunk_size) + ((chunk_keys,) if line_keys else ())
