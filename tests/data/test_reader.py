import pytest

from albert_keras.data import reader
from albert_keras.errors import AlbertInputError


def test_chunks_hold_whole_documents_in_order(tmp_path):
    first = tmp_path / "a.txt"
    first.write_bytes(b"One.\r\nTwo.\n\n\n  \nThree.\nFour.\n")
    second = tmp_path / "b.txt"
    second.write_bytes(b"Five.\n\nSix.")  # no trailing newline; a file boundary ends a document
    skips = reader.SkipLog()
    chunks = list(reader.iter_chunks([first, second], skips, chunk_bytes=8))
    documents = [doc for _, docs, _ in chunks for doc in docs]
    assert [[line.strip() for line in doc] for doc in documents] == [
        ["One.", "Two."], ["Three.", "Four."], ["Five."], ["Six."]]
    starts = [start for start, _, _ in chunks]
    assert starts == sorted(starts) and starts[0] == 0
    assert sum(len(docs) for _, docs, _ in chunks) == 4
    # Chunking depends only on the input: the same call gives the same chunks.
    again = list(reader.iter_chunks([first, second], reader.SkipLog(), chunk_bytes=8))
    assert [(s, d) for s, d, _ in again] == [(s, d) for s, d, _ in chunks]


def test_oversized_documents_are_cut_and_counted(tmp_path):
    path = tmp_path / "long.txt"
    path.write_text("".join(f"Sentence number {i}.\n" for i in range(100)))
    skips = reader.SkipLog()
    documents = [doc for _, docs, _ in reader.iter_chunks([path], skips, max_document_bytes=200) for doc in docs]
    assert len(documents) > 5 and skips.split_documents == len(documents) - 1
    assert sum(len(doc) for doc in documents) == 100


def test_input_checks_and_globs(tmp_path):
    (tmp_path / "x1.txt").write_text("a\n")
    (tmp_path / "x2.txt").write_text("b\n")
    assert reader.expand_inputs([tmp_path / "x*.txt"]) == [str(tmp_path / "x1.txt"), str(tmp_path / "x2.txt")]
    with pytest.raises(AlbertInputError, match="is a directory"):
        reader.check_input_files([tmp_path])
    with pytest.raises(AlbertInputError, match="no input files"):
        reader.check_input_files([])
