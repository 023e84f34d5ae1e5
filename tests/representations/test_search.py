import numpy as np
import pytest

from albert_keras.errors import AlbertInputError
from tests.representations.conftest import run_cli


@pytest.fixture(scope="module")
def index_dir(encoder_dir, corpus_sentences, tmp_path_factory):
    from albert_keras.representations.search import build_index

    texts = list(dict.fromkeys(corpus_sentences[:400]))  # distinct sentences
    path = tmp_path_factory.mktemp("index") / "corpus"
    build_index(encoder_dir, texts, path)
    return str(path), texts


def test_every_sentence_is_its_own_top_hit(index_dir, encoder_dir):
    from albert_keras.representations.embeddings import SentenceEmbedder
    from albert_keras.representations.search import search

    path, texts = index_dir
    queries = texts[::20]
    hits = search(path, queries, k=3, model=SentenceEmbedder(encoder_dir))
    for query, result in zip(queries, hits):
        assert result[0]["text"] == query and result[0]["id"] == texts.index(query)
        assert result[0]["score"] == pytest.approx(1.0, abs=1e-5)
        assert [h["rank"] for h in result] == [1, 2, 3] and result[0]["score"] >= result[1]["score"] >= result[2]["score"]


def test_search_is_identical_between_runs(index_dir):
    from albert_keras.representations.search import search

    path, texts = index_dir
    first = search(path, texts[7], k=10)
    assert search(path, texts[7], k=10) == first


def test_nearest_is_exact_with_ties_by_row(tmp_path):
    """Blocks of any size give the full sort's answer; equal scores come in row order."""
    from albert_keras.representations.search import SearchIndex

    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(50, 8)).astype(np.float32)
    vectors[[10, 30, 45]] = vectors[3]  # four identical rows
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index = SearchIndex.__new__(SearchIndex)
    index.embeddings, index.info = vectors, {"count": 50}
    queries = np.concatenate([vectors[[3]], vectors[[0, 1]]])
    for block_rows in (1, 7, 50, 1000):
        ids, scores = index.nearest(queries, k=6, block_rows=block_rows)
        for q, query in enumerate(queries):
            full = vectors @ query
            expected = np.lexsort((np.arange(50), -full))[:6]
            np.testing.assert_array_equal(ids[q], expected)
            np.testing.assert_allclose(scores[q], full[expected], rtol=1e-6)
    assert list(index.nearest(queries[:1], k=4)[0][0]) == [3, 10, 30, 45]


def test_an_index_refuses_another_model(index_dir, other_pretrainer_dir):
    from albert_keras.representations.search import search

    path, texts = index_dir
    with pytest.raises(AlbertInputError, match="built with another model"):
        search(path, texts[0], model=other_pretrainer_dir)


def test_index_and_search_cli(encoder_dir, other_pretrainer_dir, tmp_path):
    source = tmp_path / "texts.txt"
    source.write_text("The for statement loops.\n\nA function returns a value.\nImport loads a module.\n")
    index = tmp_path / "index"
    code, out, _ = run_cli("index", "--model", encoder_dir, "--input", source, "--output", index)
    assert code == 0 and "3 texts" in out
    code, out, _ = run_cli("search", "--index", index, "A function returns a value.", "-k", "2")
    assert code == 0
    lines = out.splitlines()
    assert len(lines) == 2 and lines[0].split(None, 2)[2] == "A function returns a value."
    code, _, err = run_cli("search", "--index", index, "loops", "--model", other_pretrainer_dir)
    assert code == 2 and "another model" in err and len(err.strip().splitlines()) == 1
    code, _, err = run_cli("search", "--index", tmp_path, "loops")
    assert code == 2 and "not a search index" in err
