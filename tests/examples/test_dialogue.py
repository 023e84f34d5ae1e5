"""Smoke test for examples/dialogue.py with tiny settings: intent-slot scores, a served utterance
whose slots are slices of the text sent, and response-selection scores beside their chance level."""

import os

import pytest

from tests.scripts import load_script

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "examples")


def test_dialogue_example(tmp_path, capsys):
    example = load_script(os.path.join(EXAMPLES, "dialogue.py"), "example_dialogue")
    result = example.main(["--output-dir", str(tmp_path), "--examples", "64", "--steps", "20"])
    assert {"intent_accuracy", "slot_f1", "frame_accuracy"} <= set(result["intent_scores"])
    text, served = result["text"], result["served"]
    assert served["intent"].decode() in {"list_items", "set_value", "show_item", "test_item"}
    for kind, start, end in result["slots"]:
        assert kind in ("object", "place", "value") and text[start:end] in text.split(" ") + ["this test"]
    # Served text of each slot is the slice of the original text (the double space kept).
    for slot_text, start, end in zip(served["slot_text"], served["slot_start"], served["slot_end"]):
        if slot_text:
            assert slot_text.decode() == text[start:end]
    assert result["chance"]["R10@1"] == pytest.approx(0.1) and {"R10@1", "R10@2", "R10@5", "mrr"} <= set(result["ranking_scores"])
    out = capsys.readouterr().out
    assert "served:" in out and "response selection: R10@1" in out
