"""Joint intent and slots: Goo et al. / JSONL readers, their one-line errors, first-piece features,
the metrics, and a tiny model that learns a made-up assistant grammar through the CLI, whose
`predict` is the same after a reload."""

import collections
import json
import os

import numpy as np
import pytest

from albert_keras.cli import main
from albert_keras.errors import AlbertInputError
from albert_keras.tasks import intent_slots as isl
from tests.tasks import intent_slot_data as data

WHITESPACE = " \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f\x85\xa0\u1680\u2000\u2005\u200a\u2028\u2029\u202f\u205f\u3000"


def test_words_are_str_split_with_character_spans():
    text = f"{WHITESPACE}play{WHITESPACE[3:9]}jazz\u200bby Ünïcödé{WHITESPACE[::-1]}x"
    spans = isl.word_spans(text)
    assert [text[a:b] for a, b in spans] == text.split()
    assert isl.Utterance("  play  jazz ").spans == [(2, 6), (8, 12)]


def test_goo_folder_and_jsonl_read_alike(tmp_path):
    records = data.utterances(12, seed=3)
    goo = isl.read_utterances(data.write_goo(tmp_path / "goo", records))
    jsonl = isl.read_utterances(data.write_jsonl(tmp_path / "u.jsonl", records))
    assert [(u.text, u.intent, u.tags) for u in goo[0]] == [(u.text, u.intent, u.tags) for u in jsonl[0]]
    assert goo[1:] == jsonl[1:] and goo[1] == sorted(data.TEMPLATES) and goo[2][0] == "O"
    assert goo[0][4].where == f"{tmp_path / 'goo' / 'seq.in'}:5"
    # The slots read back as the character spans they were written from.
    for utterance, (_, _, slots) in zip(jsonl[0], records):
        assert isl.tags_to_slots(utterance, utterance.tags) == [
            {"text": utterance.text[s["start"]:s["end"]], **s} for s in slots]


def test_lines_end_at_newlines_only(tmp_path):
    records = [("set the\u2028key to\x0cone", "set_value", [{"start": 8, "end": 11, "type": "object"}]),
               ("show the table", "show_item", [{"start": 9, "end": 14, "type": "object"}])]
    folder = data.write_goo(tmp_path / "goo", records)
    # A copy with CRLF line ends reads the same.
    crlf = tmp_path / "crlf"
    crlf.mkdir()
    for name in ("seq.in", "seq.out", "label"):
        (crlf / name).write_bytes((tmp_path / "goo" / name).read_bytes().replace(b"\n", b"\r\n"))
    for directory in (folder, crlf):
        utterances, _, _ = isl.read_utterances(directory)
        assert [u.text for u in utterances] == [t for t, _, _ in records]
        assert utterances[0].words == ["set", "the", "key", "to", "one"]
        assert utterances[0].tags == ["O", "O", "B-object", "O", "O"]


def test_a_span_tags_every_word_it_overlaps(tmp_path):
    text = "weather in Paris? tomorrow please"
    path = tmp_path / "u.jsonl"
    path.write_text(json.dumps({"text": text, "intent": "weather", "slots": [
        {"start": 11, "end": 16, "type": "city", "text": "Paris"}, {"start": 18, "end": 33, "type": "time"}]}) + "\n")
    (utterance,), _, labels = isl.read_utterances(path)
    assert utterance.tags == ["O", "O", "B-city", "B-time", "I-time"]
    # What comes back is whole words, slices of the text.
    assert isl.tags_to_slots(utterance, utterance.tags) == [
        {"text": "Paris?", "start": 11, "end": 17, "type": "city"},
        {"text": "tomorrow please", "start": 18, "end": 33, "type": "time"}]
    assert labels == ["O", "B-city", "B-time", "I-time"]


def _goo(tmp_path, seq_in, seq_out, label):
    folder = tmp_path / "bad"
    folder.mkdir(exist_ok=True)
    for name, text in (("seq.in", seq_in), ("seq.out", seq_out), ("label", label)):
        (folder / name).write_text(text)
    return folder


@pytest.mark.parametrize("seq_in,seq_out,label,message", [
    ("a b\nc\n", "O O\n", "x\ny\n", r"bad/seq\.out:2: missing line \(.*seq\.in has 2 lines, .*seq\.out has 1\)"),
    ("a b\n", "O O\n", "x\ny\n", r"bad/seq\.in:2: missing line"),
    ("a b\nc d e\n", "O O\nO B-t\n", "x\ny\n", r"bad/seq\.out:2: 2 slot tags for the 3 words of .*seq\.in:2"),
    ("a b\n\n", "O O\n\n", "x\ny\n", r"bad/seq\.in:2: blank utterance"),
    ("a b\n", "O X-t\n", "x\n", r"bad/seq\.in:1, tag 1: unknown tag 'X-t'"),
    ("a b\n", "O O\n", " \n", r"bad/label:1: blank intent"),
])
def test_goo_errors_name_file_and_line(tmp_path, seq_in, seq_out, label, message):
    with pytest.raises(AlbertInputError, match=message):
        isl.read_utterances(_goo(tmp_path, seq_in, seq_out, label))


def _slot(start, end, type_="t", **extra):
    return {"start": start, "end": end, "type": type_, **extra}


@pytest.mark.parametrize("record,message", [
    ({"text": "a b", "intent": "x", "slots": [_slot(1, 2)]}, r"slot 0: span 1:2 covers no word"),
    ({"text": "a b", "intent": "x", "slots": [_slot(0, 9)]}, r"slot 0: span 0:9 is not inside the text \(3 char"),
    ({"text": "a b", "intent": "x", "slots": [_slot(0, 1, text="b")]}, r"slot 0: 'text' 'b' is not the text at 0:1"),
    ({"text": "a b", "intent": "x", "slots": [_slot(0, 3), _slot(2, 3, "u")]}, r"slot 1: word 2:3 is already in"),
    ({"text": "a b", "intent": "x"}, r"no 'slots'"),
    ({"text": "a b", "slots": []}, r"'intent' must be a non-empty string"),
    ({"text": "a b", "intent": "x", "slots": [_slot("0", 1)]}, r"slot 0: 'start' and 'end' must be integers"),
])
def test_jsonl_errors_name_file_and_line(tmp_path, record, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"text": "fine", "intent": "x", "slots": []}) + "\n" + json.dumps(record) + "\n")
    with pytest.raises(AlbertInputError, match=r"bad\.jsonl:2: " + message):
        isl.read_utterances(path)


def test_unknown_intent_or_tag_at_evaluation(tmp_path):
    train = data.write_jsonl(tmp_path / "train.jsonl", data.utterances(8))
    _, intents, tags = isl.read_utterances(train)
    dev = tmp_path / "dev.jsonl"
    dev.write_text(json.dumps({"text": "a b", "intent": "x", "slots": []}) + "\n"
                   + json.dumps({"text": "a b", "intent": "fly", "slots": []}) + "\n")
    with pytest.raises(AlbertInputError, match=r"dev\.jsonl:1: unknown intent 'x' \(not in the training"):
        isl.read_utterances(dev, intents=intents, slot_labels=tags)
    dev.write_text(json.dumps({"text": "a b", "intent": intents[0], "slots": [{"start": 0, "end": 1, "type": "q"}]}))
    with pytest.raises(AlbertInputError, match=r"dev\.jsonl:1: unknown slot tag 'B-q'"):
        isl.read_utterances(dev, intents=intents, slot_labels=tags)


def test_features_put_each_tag_on_the_first_piece_and_cut_at_the_window(spm_model_path):
    from albert_keras.tokenization.vocabulary import load_vocabulary

    vocabulary = load_vocabulary(spm_model_path)
    utterance = isl.Utterance("show the zebraphone quizzical in module", intent="show", tags=[
        "O", "O", "B-object", "I-object", "O", "B-place"])
    pieces = [vocabulary.encode(w) for w in utterance.words]
    assert max(len(p) for p in pieces) > 1  # some word has several pieces
    labels = ["O", "B-object", "I-object", "B-place"]
    f = isl.make_features(vocabulary, [utterance], ["other", "show"], labels, max_seq_length=32)
    expected = [1 + sum(len(p) for p in pieces[:w]) for w in range(len(pieces))]
    assert f.positions == [expected] and f.intents.tolist() == [1]
    assert f.inputs["token_ids"][0, : expected[-1] + 2].tolist() == [2, *sum(pieces, []), 3]
    assert np.flatnonzero(f.weights[0]).tolist() == expected
    assert [labels[t] for t in f.tags[0, expected]] == utterance.tags
    # A short window: the words whose first piece does not fit are out (position -1, no weight).
    short = isl.make_features(vocabulary, [utterance], ["other", "show"], labels, max_seq_length=expected[3] + 2)
    assert short.positions[0][:4] == expected[:4] and short.positions[0][4:] == [-1, -1]
    assert short.weights[0].sum() == 4 and short.inputs["padding_mask"][0].sum() == expected[3] + 2


def test_scores_by_hand():
    gold = [("play", ["O", "B-a", "I-a", "O"]), ("play", ["B-b", "O"]), ("stop", ["O", "O"])]
    predicted = [("play", ["O", "B-a", "I-a", "O"]), ("stop", ["B-b", "O"]), ("stop", ["B-a", "O"])]
    scores = isl.intent_slot_scores(gold, predicted)
    assert scores["intent_accuracy"] == pytest.approx(2 / 3)
    assert scores["slot_precision"] == pytest.approx(2 / 3) and scores["slot_recall"] == 1.0
    assert scores["slot_f1"] == pytest.approx(0.8)
    assert scores["frame_accuracy"] == pytest.approx(1 / 3)  # the third has the intent but a wrong slot
    # Tags that differ but chunk to the same slots make the same frame (I- after O starts a slot).
    assert isl.intent_slot_scores([("p", ["B-a", "O"])], [("p", ["I-a", "O"])])["frame_accuracy"] == 1.0


# ---------------------------------------------------------------------------------------------
# Learning, evaluate, predict, reload
# ---------------------------------------------------------------------------------------------

FAST = ["--batch-size", "16", "--learning-rate", "1e-3", "--max-seq-length", "24", "--quiet"]


@pytest.fixture(scope="module")
def trained(finetune_init_dir, tmp_path_factory):
    directory = tmp_path_factory.mktemp("intent_slots")
    train_records = data.utterances(320, seed=1)
    dev_records = data.utterances(120, seed=2)
    train = data.write_goo(directory / "train", train_records)
    dev = data.write_jsonl(directory / "dev.jsonl", dev_records)
    output = directory / "run"
    code = main(["finetune", "--from-scratch", "--task", "intent-slots", "--model", finetune_init_dir, "--train", train,
                 "--validation", dev, "--output", str(output), "--epochs", "8", *FAST])
    assert code == 0
    return {"dir": str(output / "pretrained"), "run": output, "dev": dev, "dev_records": dev_records, "tmp": directory}


def test_the_model_learns_the_grammar_well_above_trivial_baselines(trained):
    with open(trained["run"] / "summary.json") as f:
        best = json.load(f)["best"]["metrics"]
    intents = collections.Counter(intent for _, intent, _ in trained["dev_records"])
    majority = intents.most_common(1)[0][1] / len(trained["dev_records"])
    # Trivial baselines: the majority intent, and no slots (slot F1 0, and no frame right, since every
    # template has a slot).
    assert all(slots for _, _, slots in trained["dev_records"]) and majority < 0.3
    assert best["intent_accuracy"] >= majority + 0.5
    assert best["slot_f1"] >= 0.85
    assert best["frame_accuracy"] >= 0.7


def test_evaluate_prints_all_three_metrics(trained, capsys):
    capsys.readouterr()
    assert main(["evaluate", "--model", trained["dir"], "--data", trained["dev"]]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert set(metrics) == {"intent_accuracy", "slot_precision", "slot_recall", "slot_f1", "frame_accuracy"}
    with open(trained["run"] / "summary.json") as f:
        assert metrics == pytest.approx(json.load(f)["best"]["metrics"], abs=1e-6)


def test_predict_writes_slots_as_slices_and_is_the_same_after_a_reload(trained):
    from albert_keras.training.finetune import save_finetuned
    from albert_keras.training.finetune_commands import load_finetuned
    from albert_keras.training.finetune_commands import predict_directory

    texts = ["  show   the new class in  line ", "set key to first", "list all Ünïcödé tuple in this test"]
    source = trained["tmp"] / "texts.txt"
    source.write_text("".join(t + "\n" for t in texts))
    out = trained["tmp"] / "predictions.jsonl"
    assert main(["predict", "--model", trained["dir"], "--input", str(source), "--output", str(out)]) == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["text"] for r in records] == texts
    assert [r["intent"] for r in records] == ["show_item", "set_value", "list_items"]
    for record in records:
        assert 0.25 < record["probability"] <= 1.0 and record["slots"]
        for slot in record["slots"]:
            assert record["text"][slot["start"]:slot["end"]] == slot["text"]
    assert {(s["text"], s["type"]) for s in records[0]["slots"]} == {("new class", "object"), ("line", "place")}
    # Reload: the model rebuilt from the directory, saved again, and read back predicts the same.
    task, model, options, metadata = load_finetuned(trained["dir"], labelled=False)
    again = trained["tmp"] / "reloaded"
    save_finetuned(model, str(again), task, options, metadata)
    out_again = trained["tmp"] / "again.jsonl"
    assert predict_directory(str(again), str(source), str(out_again)) == 3
    assert [json.loads(line) for line in out_again.read_text().splitlines()] == records


def test_bad_input_through_the_cli_is_one_line_and_writes_nothing(trained, tmp_path, capsys):
    folder = _goo(tmp_path, "show the class\nlist all key\n", "O O B-object\n", "show_item\nlist_items\n")
    out = tmp_path / "never.jsonl"
    capsys.readouterr()
    assert main(["evaluate", "--model", trained["dir"], "--data", str(folder)]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "seq.out:2: missing line" in error
    unknown = tmp_path / "unknown.jsonl"
    unknown.write_text(json.dumps({"text": "fly me", "intent": "book_flight", "slots": []}) + "\n")
    assert main(["evaluate", "--model", trained["dir"], "--data", str(unknown)]) == 2
    assert "unknown.jsonl:1: unknown intent 'book_flight'" in capsys.readouterr().err
    assert main(["predict", "--model", trained["dir"], "--input", str(tmp_path / "missing"),
                 "--output", str(out)]) == 2
    assert not out.exists()
