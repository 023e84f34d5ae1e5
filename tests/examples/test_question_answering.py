"""Smoke test for examples/question_answering.py with tiny settings: official files for every
question, answers that are slices of their contexts, and a served answer that is the one Keras'
predictions of the fine-tuned model decode to (a slice of the context, or no answer)."""

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
    assert "served:" in capsys.readouterr().out

    # The SavedModel's answer is what the Keras model's logits decode to, answer or no answer.
    from albert_keras.modeling import AlbertQuestionAnswerer
    from albert_keras.tasks import squad
    from albert_keras.tokenization import load_sentencepiece

    question = squad.SquadExample("served", "What is the password?", result["context"], [], True)
    features = squad.make_features(load_sentencepiece(os.path.join(result["model_dir"], "spiece.model")), [question],
                                   max_seq_length=64)
    outputs = AlbertQuestionAnswerer.from_pretrained(result["model_dir"]).predict(squad.feature_arrays(features)[0],
                                                                                  verbose=0)
    want = squad.decode([question], features, outputs["start_logits"], outputs["end_logits"], n_best_size=1000,
                        version_2=True)["served"]
    text = served["answer_text"].decode()
    assert (text, int(served["answer_start"]), int(served["answer_end"])) == (want["text"], want["start"], want["end"])
    assert bool(served["has_answer"]) == (want["start"] >= 0) == (text != "")
    assert result["context"][max(want["start"], 0):max(want["end"], 0)] == text  # "" when there is no answer
