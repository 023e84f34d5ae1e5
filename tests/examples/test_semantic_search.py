"""Smoke test for examples/semantic_search.py with tiny settings: every query gets k ranked hits
from the corpus, and an indexed sentence used as a query finds itself first."""

import os

from tests.scripts import load_script

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "examples")


def test_semantic_search_example(tmp_path, capsys):
    from albert_keras.corpus import embedded_corpus

    example = load_script(os.path.join(EXAMPLES, "semantic_search.py"), "example_semantic_search")
    sentences = [s for document in embedded_corpus() for s in document][:200]
    query = sentences[42]
    results = example.main(["--output-dir", str(tmp_path), "--sentences", "200", "--epochs", "1", "-k", "2",
                            "How does a for loop end?", query])
    assert [len(hits) for hits in results.values()] == [2, 2]
    assert results[query][0]["text"] == query
    assert all(hit["text"] in sentences for hits in results.values() for hit in hits)
    assert query in capsys.readouterr().out
