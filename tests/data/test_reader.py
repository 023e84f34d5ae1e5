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
    files = reader.list_inputs([tmp_path / "x*.txt"])
    assert [f.path for f in files] == [str(tmp_path / "x1.txt"), str(tmp_path / "x2.txt")]
    assert [f.size for f in files] == [2, 2] and files[0].fingerprint[:2] == [str(tmp_path / "x1.txt"), 2]
    for missing, message in (("y*.txt", "no input file matches this pattern"), ("y.txt", "input file not found")):
        with pytest.raises(AlbertInputError, match=f"^{tmp_path / missing}: {message}$".replace("*", r"\*")):
            reader.list_inputs([tmp_path / missing])
    with pytest.raises(AlbertInputError, match="^create-data: no input files given$"):
        reader.list_inputs([])
    with pytest.raises(AlbertInputError, match="is a directory"):
        reader.check_input_files([tmp_path])
    with pytest.raises(AlbertInputError, match="no input files"):
        reader.check_input_files([])


def test_a_long_line_is_cut_at_sentence_boundaries(tmp_path):
    # A "book on one line": sentences with multi-byte characters, far longer than the line cap,
    # so blocks end inside words and inside UTF-8 sequences.
    sentences = [f"Sentence {i} talks about caf\u00e9s and na\u00efve \u201cquotes\u201d." for i in range(3000)]
    path = tmp_path / "book.txt"
    path.write_text("Before it.\n" + " ".join(sentences) + "\nAfter it.\n\nNext document.\n", encoding="utf-8")
    skips = reader.SkipLog()
    documents = [doc for _, docs, _ in reader.iter_chunks([path], skips, max_line_bytes=4096) for doc in docs]
    assert [line.strip() for line in documents[0]] == ["Before it.", *sentences, "After it."]
    assert [line.strip() for line in documents[1]] == ["Next document."]
    assert skips.split_lines == 1 and not skips.counts


def test_a_long_line_without_sentence_boundaries_is_skipped_with_a_true_message(tmp_path):
    path = tmp_path / "dump.txt"
    path.write_bytes(b"abc," * 5000)
    with pytest.raises(AlbertInputError, match=r"none of its 1 lines is usable: 1 longer than 4096 bytes without a "
                                               r"sentence boundary \(not prose; if it is, break it into lines"):
        list(reader.iter_chunks([path], reader.SkipLog(), max_line_bytes=4096))
    binary = tmp_path / "latin1.txt"
    binary.write_bytes("caf\u00e9 ".encode("latin-1") * 3000)
    with pytest.raises(AlbertInputError, match="1 not UTF-8"):
        list(reader.iter_chunks([binary], reader.SkipLog(), max_line_bytes=4096))


def test_create_data_on_a_corpus_written_as_one_line(tmp_path, spm_model_path):
    # The user report: a valid text file written as one line was refused as "binary".
    from albert_keras.corpus import embedded_corpus
    from albert_keras.data.create import create_pretraining_data

    sentences = [s for doc in embedded_corpus() for s in doc]
    text = " ".join(sentences)
    cap = 1 << 16  # the default cap is 1 MiB; a smaller one keeps this test fast, same code path
    text = text[: 3 * cap]
    (tmp_path / "one-line.txt").write_text(text, encoding="utf-8")
    manifest = create_pretraining_data([tmp_path / "one-line.txt"], spm_model_path, tmp_path / "out",
                                       max_seq_length=32, max_predictions_per_seq=5, num_shards=1,
                                       max_line_bytes=cap)
    stats = manifest["statistics"]
    assert stats["long_lines_split_into_sentences"] == 1 and stats["skipped_lines"] == {}
    assert stats["sentences"] > 1000 and stats["instances"] > 100
