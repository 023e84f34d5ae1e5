"""Hugging Face Chinese whole-word reference files (`run_chinese_ref.py`) for `create-data`.

Hugging Face's `examples/research_projects/mlm_wwm/run_chinese_ref.py` segments every non-blank
line of a training file (with LTP) and writes a reference file beside it: one JSON list per
non-blank input line, holding the token positions (counted with `[CLS]` at 0, from
`BertTokenizer`, truncated at 512 tokens) of the Chinese characters that continue a word. Its
`run_mlm_wwm.py` pairs the two files line by line. `create_pretraining_data(...,
chinese_ref=FILES)` takes such files in place of segmenting with jieba: the references are read
here, in the main process, and travel with the text to the workers, so the records are the same
for any worker count. Which positions are honoured is decided by `MaskingVocab.encode_referenced`
(a position whose token is not a Chinese character following another one falls back to its own
word, and is counted).

Why our own reader rather than the `datasets` column Hugging Face adds: create-data streams its
input in chunks, so the references must stream beside it, one line at a time.
"""

import json
import os

from albert_keras import io_utils
from albert_keras.errors import AlbertInputError


def check_reference_files(chinese_ref, input_files):
    """The reference file paths, one per input file, checked to exist.

    Args:
        chinese_ref: a path or a list of paths (local or URLs), in the order of `input_files`.
        input_files: the expanded input text files.

    Returns:
        A list of absolute paths (`str`).

    Raises:
        AlbertInputError: a count that differs from the inputs', or a missing file.

    Example:
    ```python
    check_reference_files("ref.txt", ["corpus.txt"])  # ["/abs/ref.txt"]
    ```
    """
    paths = [os.fspath(chinese_ref)] if isinstance(chinese_ref, (str, os.PathLike)) else [
        os.fspath(path) for path in chinese_ref]
    if len(paths) != len(input_files):
        raise AlbertInputError(
            f"--chinese-ref: {len(paths)} reference file(s) for {len(input_files)} input file(s); "
            "give one per input file, in the same order")
    for path in paths:
        if not io_utils.exists(path) or io_utils.isdir(path):
            raise AlbertInputError(f"--chinese-ref {path}: reference file not found")
    return [io_utils.absolute(path) for path in paths]


class ReferenceLines:
    """Streams reference files beside the input: `lookup(keys)` gives the references of a chunk.

    Lines are read forward only (the keys of `reader.iter_chunks(..., line_keys=True)` ascend
    within each file), so memory holds one line per file.

    Args:
        paths: the reference files, one per input file (`check_reference_files`).
        input_files: the input files, for messages.

    Example:
    ```python
    references = ReferenceLines(["ref.txt"], ["corpus.txt"])
    for first, documents, size, keys in iter_chunks(["corpus.txt"], skips, line_keys=True):
        refs = references.lookup(keys)  # per document, per line: a tuple of positions or None
    references.finish(skipped_lines=0)
    ```
    """

    def __init__(self, paths, input_files):
        self.paths, self.input_files = list(paths), list(input_files)
        self._files = {}  # file index -> [handle, next non-blank index, line number]
        self._last = {}  # file index -> highest non-blank index looked up

    def _next(self, file_index):
        state = self._files.get(file_index)
        if state is None:
            state = self._files[file_index] = [io_utils.open_file(self.paths[file_index], "rb"), 0, 0]
        handle = state[0]
        while True:
            raw = handle.readline()
            if not raw:
                return None
            state[2] += 1
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise AlbertInputError(f"{self.paths[file_index]}:{state[2]}: not UTF-8") from None
            if text.strip():  # run_mlm_wwm.py skips blank lines of the reference file too
                state[1] += 1
                return text, state[2]

    def _read(self, file_index, index):
        state = self._files.get(file_index)
        while state is None or state[1] <= index:
            found = self._next(file_index)
            state = self._files[file_index]
            if found is None:
                raise AlbertInputError(
                    f"--chinese-ref {self.paths[file_index]}: has {state[1]} non-blank lines, but "
                    f"{self.input_files[file_index]} has more; the reference must come from this very file")
            text, number = found
        return _parse(text, self.paths[file_index], number)

    def lookup(self, keys):
        """References of one chunk: `keys` as `iter_chunks(..., line_keys=True)` yields them.

        Returns:
            Per document, per line: a tuple of positions, or None where the line has no reference
            (a sentence of an over-long line that was cut).
        """
        result = []
        for document_keys in keys:
            refs = []
            for key in document_keys:
                if key is None:
                    refs.append(None)
                    continue
                file_index, index = key
                self._last[file_index] = index
                refs.append(self._read(file_index, index))
            result.append(refs)
        return result

    def finish(self, skipped_lines=0):
        """Check that no reference file has lines the input lacks, and close the files.

        Args:
            skipped_lines: input lines the reader skipped (a skipped last line has no key, so its
                reference line is allowed to remain).

        Raises:
            AlbertInputError: a reference file with more lines than its input has non-blank lines.
        """
        try:
            for file_index in range(len(self.paths)):
                seen = self._last.get(file_index, -1) + 1
                extra = 0
                while extra <= skipped_lines and self._next(file_index) is not None:
                    extra += 1
                if extra > skipped_lines:
                    raise AlbertInputError(
                        f"--chinese-ref {self.paths[file_index]}: has more non-blank lines than the "
                        f"{seen} of {self.input_files[file_index]}; the reference must come from this very file")
        finally:
            self.close()

    def close(self):
        """Close the open reference files."""
        for state in self._files.values():
            state[0].close()
        self._files = {}


def with_references(chunks, paths, input_files, skips):
    """`iter_chunks(..., line_keys=True)` chunks with each line's references in place of its key.

    Read in the main process, in input order, and sent to the workers with the text: the records
    are the same for any worker count.

    Args:
        chunks: what `reader.iter_chunks(..., line_keys=True)` yields.
        paths: the reference files (`check_reference_files`).
        input_files: the input files, for messages.
        skips: the pass's `SkipLog` (skipped lines have no key).

    Yields:
        `(first_document_index, documents, chunk_text_bytes, references)`, `references` as
        `ReferenceLines.lookup` returns them.

    Example:
    ```python
    chunks = with_references(iter_chunks(files, skips, line_keys=True), refs, files, skips)
    ```
    """
    references = ReferenceLines(paths, input_files)
    try:
        for first_document, documents, size, keys in chunks:
            yield first_document, documents, size, references.lookup(keys)
        references.finish(skipped_lines=sum(skips.counts.values()))
    finally:
        references.close()


def _parse(text, path, number):
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if not isinstance(value, list) or not all(isinstance(p, int) and not isinstance(p, bool) for p in value):
        raise AlbertInputError(f"{path}:{number}: not a JSON list of token positions (run_chinese_ref.py output)")
    return tuple(value)
