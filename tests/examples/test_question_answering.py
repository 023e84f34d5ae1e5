"""Smoke test for examples/question_answering.py with tiny settings: official files for every
question, answers that are slices of their contexts, and a served answer sliced from the context."""

import json
import os

from tests.scripts import load_script

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "examples")


def test_question_answering_example(tmp_path, capsys):
    example = load_script(os.path.join(EXAMPLES, "question_answering.py"), "example_qa")
    result = example.main(["--output-dir", str(tmp_path), "--questions", "40", "--steps", "10"])
    dev = json.loads((tmp_path / "dev.json").read_text())
    contexts = {qa["id"]: p["context"] for p in dev["data"][0]["paragraphs"] for qa in p["qas"]}
    assert set(result["predictions"]) == set(contexts)
    assert all(text in contexts[qid] for qid, text in result["predictions"].items())
    assert {"exact", "f1", "HasAns_exact", "NoAns_exact", "best_f1"} <= set(result["scores"])
    served = result["served"]
    if served["has_answer"]:
        assert result["context"][served["answer_start"]:served["answer_end"]] == served["answer_text"].decode()
    assert "served:" in capsys.readouterr().out
