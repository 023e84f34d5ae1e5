"""Smoke test for examples/named_entities.py with tiny settings: entity scores, and served
entities whose character spans slice the text that was sent."""

import os

from tests.scripts import load_script

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "examples")


def test_named_entities_example(tmp_path, capsys):
    example = load_script(os.path.join(EXAMPLES, "named_entities.py"), "example_ner")
    result = example.main(["--output-dir", str(tmp_path), "--sentences", "40", "--steps", "10"])
    assert {"precision", "recall", "f1", "accuracy"} <= set(result["scores"])
    words = result["text"].split()
    served = result["served"]
    assert [w.decode() for w in served["words"]] == words
    assert len(served["tags"]) == len(words)
    for type_, text, start, end in result["entities"]:
        assert type_ in ("PER", "LOC") and result["text"][start:end] == text
    assert "served:" in capsys.readouterr().out
