"""SQuAD reading, windows, decoding, and a tiny model that learns rule-made questions."""

import json
import random

import numpy as np
import pytest

from albert_keras.corpus import embedded_corpus
from albert_keras.errors import AlbertInputError
from albert_keras.tasks import squad
from albert_keras.tasks.squad import QuestionAnsweringTask, decode, make_features, read_squad
from albert_keras.tokenization import load_sentencepiece
from albert_keras.tokenization.offsets import encode_with_offsets

# Whole-word pieces of the test vocabulary that the filler sentences below never contain: the
# answers of the rule-made questions (capitalized in the text, so the answer must come back as a
# slice of the original, not as lowercased pieces).
KEYS = ["Capital", "Bytecode", "Docstring", "Brace", "Memory", "Symbol", "Interface", "Header", "Lexical",
        "Dynamic"]
QUESTION = "What is the key?"


def filler_sentences():
    lowered = [k.lower() for k in KEYS]
    return [s for doc in embedded_corpus() for s in doc
            if len(s) < 120 and not any(k in s.lower() for k in lowered) and "key" not in s.lower()]


def rule_made_squad(count, seed, long_fraction=0.3, impossible_fraction=0.25):
    """SQuAD 2.0 JSON: "the key is X" hidden among corpus sentences; some contexts are long
    enough that the answer is only in a later window; some have no key at all."""
    rng = random.Random(seed)
    sentences = filler_sentences()
    paragraphs = []
    for n in range(count):
        long = rng.random() < long_fraction
        filler = rng.sample(sentences, 9 if long else 2)
        answer = " ".join(rng.sample(KEYS, rng.choice([1, 1, 2])))
        qa = {"id": f"q{n}", "question": QUESTION, "answers": []}
        if rng.random() < impossible_fraction:
            qa["is_impossible"] = True
            context = " ".join(filler)
        else:
            qa["is_impossible"] = False
            position = len(filler) if long else rng.randint(0, len(filler))
            before = " ".join(filler[:position])
            prefix = (before + " ") if before else ""
            context = prefix + f"The key is {answer}. " + " ".join(filler[position:])
            qa["answers"] = [{"text": answer, "answer_start": len(prefix) + len("The key is ")}]
            qa["long"] = long
        paragraphs.append({"context": context.strip(), "qas": [qa]})
    return {"version": "v2.0", "data": [{"title": "rules", "paragraphs": paragraphs}]}


def write(tmp_path, name, document):
    path = tmp_path / name
    path.write_text(document if isinstance(document, str) else json.dumps(document))
    return str(path)


# ------------------------------------------------------------------------------------- reader


def test_read_squad_versions_and_fields(tmp_path):
    v1 = {"data": [{"paragraphs": [{"context": "Ann met Bob.", "qas": [
        {"id": "a", "question": "Who met Bob?", "answers": [{"text": "Ann", "answer_start": 0}]}]}]}]}
    examples, version_2, skipped = read_squad(write(tmp_path, "v1.json", v1))
    assert (len(examples), version_2, skipped) == (1, False, {})
    assert examples[0].answers == [{"text": "Ann", "answer_start": 0}] and examples[0].where == "data[0].paragraphs[0].qas[0]"
    v2 = rule_made_squad(5, seed=0)
    examples, version_2, _ = read_squad(write(tmp_path, "v2.json", v2))
    assert version_2 and len(examples) == 5
    assert [e.is_impossible for e in examples] == [qa["is_impossible"] for p in v2["data"][0]["paragraphs"] for qa in p["qas"]]


def test_read_squad_errors(tmp_path, capsys):
    with pytest.raises(AlbertInputError, match=r"bad\.json:2:\d+: malformed JSON"):
        read_squad(write(tmp_path, "bad.json", '{"data": [\n  {"paragraphs": [}\n]}'))
    with pytest.raises(AlbertInputError, match="missing.json: file not found"):
        read_squad(tmp_path / "missing.json")
    no_context = {"data": [{"paragraphs": [{"qas": [{"id": "a", "question": "Who?", "answers": []}]}]}]}
    with pytest.raises(AlbertInputError, match=r"nc\.json: data\[0\]\.paragraphs\[0\]: 1 questions without a context"):
        read_squad(write(tmp_path, "nc.json", no_context))
    misplaced = {"data": [{"paragraphs": [{"context": "Ann met Bob.", "qas": [
        {"id": "a", "question": "Who?", "answers": [{"text": "Ann", "answer_start": 0}]},
        {"id": "b", "question": "Who?", "answers": [{"text": "Bob", "answer_start": 3}]}]}]}]}
    path = write(tmp_path, "mis.json", misplaced)
    with pytest.raises(AlbertInputError, match=r"mis\.json: data\[0\]\.paragraphs\[0\]\.qas\[1\]\.answers\[0\] "
                                               r"\(id 'b'\): answer text not at its answer_start 3"):
        read_squad(path)
    examples, _, skipped = read_squad(path, skip_bad_answers=True)
    assert [e.qid for e in examples] == ["a"] and skipped == {squad.BAD_ANSWER: 1}
    data = QuestionAnsweringTask().read(path, {"skip_bad_answers": True})
    assert data.skipped == {squad.BAD_ANSWER: 1} and len(data.examples) == 1
    assert f"{path}: skipped 1 questions (answer text not at its answer_start)" in capsys.readouterr().err
    duplicate = {"data": [{"paragraphs": [{"context": "x y", "qas": [
        {"id": "a", "question": "?", "answers": []}, {"id": "a", "question": "?", "answers": []}]}]}]}
    with pytest.raises(AlbertInputError, match="duplicate question id 'a'"):
        read_squad(write(tmp_path, "dup.json", duplicate))
    with pytest.raises(AlbertInputError, match=r"qas\[0\]: missing 'question'"):
        read_squad(write(tmp_path, "nq.json", {"data": [{"paragraphs": [{"context": "x", "qas": [{"id": "a"}]}]}]}))


# ----------------------------------------------------------------------------------- features


def test_windows_follow_the_official_doc_spans():
    assert squad._windows(10, 4, 2) == [(0, 4), (2, 4), (4, 4), (6, 4)]
    assert squad._windows(3, 4, 2) == [(0, 3)]
    assert squad._windows(0, 4, 2) == [(0, 0)]
    spans = squad._windows(10, 4, 2)
    # Every position is "max context" in exactly one window, and in the window centred on it.
    for position in range(10):
        owners = [i for i in range(len(spans)) if squad._is_max_context(spans, i, position)]
        assert len(owners) == 1
    assert squad._is_max_context(spans, 1, 3) and not squad._is_max_context(spans, 0, 3)


def test_features_put_answers_in_their_windows(tmp_path, spm_model_path):
    sp = load_sentencepiece(spm_model_path)
    examples, _, _ = read_squad(write(tmp_path, "d.json", rule_made_squad(40, seed=1, long_fraction=0.5)))
    features = make_features(sp, examples, max_seq_length=48, doc_stride=16, training=True)
    by_example = {}
    for feature in features:
        by_example.setdefault(feature.example_index, []).append(feature)
        assert feature.token_ids[0] == 2 and feature.padding_mask.sum() <= 48
    assert max(len(v) for v in by_example.values()) > 2  # long contexts really have several windows
    second_window_only = 0
    for index, example in enumerate(examples):
        windows = by_example[index]
        found = [f for f in windows if f.start_position > 0]
        if example.is_impossible:
            assert not found
            continue
        assert found, example.context  # the answer fits some window
        if windows[0].start_position == 0:
            second_window_only += 1
        answer = example.answers[0]
        for f in found:
            begin, end = f.starts[f.start_position], f.ends[f.end_position]
            assert example.context[begin:end] == answer["text"]
            assert f.start_position <= f.end_position
    assert second_window_only > 3


def test_decode_picks_max_context_spans_and_no_answer(tmp_path, spm_model_path):
    sp = load_sentencepiece(spm_model_path)
    context = "Some filler words come first. The key is Crème Brûlée today, and then more filler follows here."
    start_char = context.index("Crème")
    document = {"version": "v2.0", "data": [{"paragraphs": [{"context": context, "qas": [
        {"id": "q", "question": "What?", "answers": [{"text": "Crème Brûlée", "answer_start": start_char}]}]}]}]}
    examples, _, _ = read_squad(write(tmp_path, "d.json", document))
    features = make_features(sp, examples, max_seq_length=32, doc_stride=8, training=True)
    assert len(features) > 2
    starts = np.full((len(features), 32), -5.0)
    ends = np.full((len(features), 32), -5.0)
    for k, f in enumerate(features):
        if f.start_position:
            starts[k, f.start_position] = 4.0
            ends[k, f.end_position] = 4.0
        starts[k, 0] = ends[k, 0] = 1.0
    result = decode(examples, features, starts, ends, version_2=True)["q"]
    assert result["text"] == "Crème Brûlée" and context[result["start"]:result["end"]] == "Crème Brûlée"
    assert result["score"] == 8.0 and result["null_score"] == 2.0 and result["null_odds"] == -6.0
    # A no-answer score that beats the span (beyond the threshold) answers "".
    starts[:, 0] = ends[:, 0] = 9.0
    assert decode(examples, features, starts, ends, version_2=True)["q"]["text"] == ""
    assert decode(examples, features, starts, ends, version_2=True, null_score_diff_threshold=20.0)["q"]["text"] == "Crème Brûlée"
    assert decode(examples, features, starts, ends, version_2=False)["q"]["text"] == "Crème Brûlée"
    # Spans longer than max_answer_length are never chosen.
    short = decode(examples, features, starts, ends, max_answer_length=1)["q"]
    ids, s, e = encode_with_offsets(sp, context)
    assert short["text"] in {context[a:b] for a, b in zip(s, e)}


# ------------------------------------------------------------------------------------ training


@pytest.fixture(scope="module")
def trained(tmp_path_factory, spm_model_path):
    """A tiny ALBERT fine-tuned on rule-made questions by `albert-keras finetune`, loaded back as
    `evaluate`/`predict` load it."""
    import keras

    from albert_keras import AlbertConfig, AlbertEncoder
    from albert_keras.cli import main
    from albert_keras.training.finetune_commands import load_finetuned
    from tests.training.conftest import TINY_CONFIG

    tmp = tmp_path_factory.mktemp("squad")
    train_path = write(tmp, "train.json", rule_made_squad(240, seed=2))
    dev_path = write(tmp, "dev.json", rule_made_squad(60, seed=3, long_fraction=0.4))
    keras.utils.set_random_seed(0)
    init_dir = str(tmp / "init")
    AlbertEncoder(AlbertConfig(**TINY_CONFIG)).save_pretrained(init_dir, spm_model=spm_model_path)
    run = tmp / "run"
    assert main(["finetune", "--from-scratch",
                 "--task", "question-answering", "--init", init_dir, "--train", train_path,
                 "--validation", dev_path, "--output", str(run), "--num-train-steps", "300", "--batch-size", "16",
                 "--learning-rate", "2e-3", "--warmup", "0.05", "--max-seq-length", "64", "--doc-stride", "24",
                 "--validation-every", "300", "--verbose", "0"]) == 0
    task, model, options, metadata = load_finetuned(run / "pretrained")
    assert (metadata["doc_stride"], metadata["version_2_with_negative"]) == (24, True)
    dev = task.read(dev_path, options, metadata=metadata)
    return task, model, dev, json.loads(open(dev_path).read()), str(run / "pretrained"), dev_path


def test_tiny_model_answers_rule_made_questions(trained):
    task, model, dev, document, _, _ = trained
    scores = task.evaluate(model, dev, {})
    assert set(scores) >= {"exact", "f1", "HasAns_exact", "NoAns_exact", "best_f1", "best_f1_thresh"}
    # Chance: a random span of the context is almost never the key; "always no answer" gets 25 %.
    assert scores["HasAns_exact"] > 60, scores
    assert scores["NoAns_exact"] > 60, scores
    results = task.answers(model, dev, {})
    long_ids = [qa["id"] for p in document["data"][0]["paragraphs"] for qa in p["qas"] if qa.get("long")]
    features = task._features(model, dev, {}, training=False)
    assert len(features) > len(dev.examples)  # long contexts made several windows
    gold = {e.qid: e.answers[0]["text"] for e in dev.examples if e.answers}
    right = sum(results[q]["text"] == gold[q] for q in long_ids)
    assert len(long_ids) >= 10 and right / len(long_ids) > 0.6, (right, len(long_ids))


def test_predict_and_evaluate_commands(trained, tmp_path, capsys):
    from albert_keras.cli import main

    task, model, dev, document, model_dir, dev_path = trained
    records = list(task.predict(model, dev, {}))
    assert [r["id"] for r in records] == [e.qid for e in dev.examples]
    for record, example in zip(records, dev.examples):
        if record["answer"]:
            assert example.context[record["start"]:record["end"]] == record["answer"]
    assert main(["predict", "--model", model_dir, "--input", dev_path, "--output", str(tmp_path / "out") + "/"]) == 0
    predictions = json.loads((tmp_path / "out" / "predictions.json").read_text())
    null_odds = json.loads((tmp_path / "out" / "null_odds.json").read_text())
    assert set(predictions) == set(null_odds) == {e.qid for e in dev.examples}
    assert predictions == {r["id"]: r["answer"] for r in records}
    scores = squad.evaluate(document, predictions, na_probs=null_odds)
    capsys.readouterr()
    assert main(["evaluate", "--model", model_dir, "--data", dev_path]) == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed.keys() == scores.keys()
    assert all(abs(printed[k] - scores[k]) < 1e-4 for k in scores)
