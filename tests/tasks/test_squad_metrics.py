"""SQuAD scores on hand-computed cases; optionally against a copy of the official v2.0 script."""

import importlib.util
import os
import random

import pytest

from albert_keras.errors import AlbertInputError
from albert_keras.tasks.squad_metrics import evaluate, evaluate_v1, exact_score, f1_score, normalize_answer


def _dataset(*questions):
    """SQuAD JSON from (id, [gold texts]) pairs, split over two articles."""
    qas = [{"id": qid, "question": "?", "answers": [{"text": t, "answer_start": 0} for t in golds],
            **({"is_impossible": True} if not golds else {})} for qid, golds in questions]
    half = len(qas) // 2
    return {"version": "v2.0", "data": [
        {"title": "a", "paragraphs": [{"context": "...", "qas": qas[:half]}]},
        {"title": "b", "paragraphs": [{"context": "...", "qas": qas[half:]}, {"context": "...", "qas": []}]},
    ]}


@pytest.mark.parametrize(
    "text, expected",
    [
        ("The  Quick, brown fox!", "quick brown fox"),
        ("an apple a day", "apple day"),
        ("theater Anthem", "theater anthem"),  # articles only as whole words
        ("A.B.C.", "abc"),  # punctuation goes before articles are looked for
        ("\t a\n b ", "b"),
        ("Ünïcode — dash", "ünïcode — dash"),  # only ASCII punctuation is removed, as officially
        ("", ""),
    ],
)
def test_normalize_answer(text, expected):
    assert normalize_answer(text) == expected


def test_exact_and_f1_scores():
    assert exact_score("Denver Broncos", "the denver broncos.") == 1
    assert exact_score("Broncos", "Denver Broncos") == 0
    # gold tokens cat sat on mat, predicted cat on hat: 2 common, precision 2/3, recall 1/2.
    assert f1_score("the cat sat on the mat", "a cat on a hat") == pytest.approx(4 / 7)
    # Bag of tokens: one "red" in common; precision 1, recall 1/3.
    assert f1_score("red red blue", "red") == pytest.approx(0.5)
    assert f1_score("red", "red red") == pytest.approx(2 / 3)
    assert f1_score("", "") == 1.0 and f1_score("", "x") == 0.0 and f1_score("x", "") == 0.0
    assert f1_score("the", "a") == 1.0  # both normalize to no answer
    assert f1_score("Denver", "Broncos") == 0.0


def _v2_case():
    data = _dataset(
        ("q1", ["Denver Broncos", "Broncos", "The Denver Broncos"]),
        ("q2", ["Santa Clara, California"]),
        ("q3", []),
        ("q4", []),
        ("q5", ["1"]),
    )
    predictions = {"q1": "Broncos won", "q2": "santa clara   california", "q3": "", "q4": "Levi's Stadium", "q5": ""}
    return data, predictions


def test_evaluate_v2_hand_computed():
    data, predictions = _v2_case()
    result = evaluate(data, predictions)
    # q1: exact 0, F1 max(1/2 vs "denver broncos", 2/3 vs "broncos"); q2 right; q3 right (empty);
    # q4 answers an unanswerable question; q5 leaves an answerable one empty.
    assert result == pytest.approx({
        "exact": 40.0, "f1": 100 * (2 / 3 + 2) / 5, "total": 5,
        "HasAns_exact": 100 / 3, "HasAns_f1": 100 * (5 / 3) / 3, "HasAns_total": 3,
        "NoAns_exact": 50.0, "NoAns_f1": 50.0, "NoAns_total": 2,
    })
    assert evaluate(data["data"], predictions) == result  # the "data" list works too


def test_evaluate_v2_with_no_answer_probabilities():
    data, predictions = _v2_case()
    na_probs = {"q1": 0.1, "q2": 0.2, "q3": 0.9, "q4": 0.6, "q5": 0.7}
    # The official default threshold 1.0 changes nothing; best threshold 0.2 answers q1, q2 only.
    result = evaluate(data, predictions, na_probs=na_probs)
    assert result["exact"] == 40.0
    assert result["best_exact"] == pytest.approx(60.0) and result["best_exact_thresh"] == 0.2
    assert result["best_f1"] == pytest.approx(100 * (2 / 3 + 3) / 5) and result["best_f1_thresh"] == 0.2
    # Threshold 0.5: q3, q4 (no answer) become right, q5 (has one) stays wrong.
    result = evaluate(data, predictions, na_probs=na_probs, na_prob_thresh=0.5)
    assert result["exact"] == pytest.approx(60.0)
    assert result["f1"] == pytest.approx(100 * (2 / 3 + 3) / 5)
    assert result["NoAns_exact"] == 100.0 and result["HasAns_exact"] == pytest.approx(100 / 3)


def test_best_thresholds_differ_between_exact_and_f1():
    data = _dataset(("n1", []), ("a1", ["red blue"]), ("a2", ["one two three four five"]))
    predictions = {"n1": "x", "a1": "red", "a2": "one two three four"}
    na_probs = {"n1": 0.1, "a1": 0.2, "a2": 0.3}
    # Abstaining everywhere scores 1 (n1). Answering n1 costs 1; a1 then adds F1 2/3 (exact 0),
    # a2 adds F1 8/9: F1 1 + 5/9 beats 1 at threshold 0.3; exact never beats abstaining (0.0).
    result = evaluate(data, predictions, na_probs=na_probs)
    assert result["best_exact"] == pytest.approx(100 / 3) and result["best_exact_thresh"] == 0.0
    assert result["best_f1"] == pytest.approx(100 * (2 / 3 + 8 / 9) / 3)
    assert result["best_f1_thresh"] == 0.3


def test_squad_1_1_files_and_the_v1_keys():
    data = _dataset(("q1", ["Denver Broncos", "Broncos"]), ("q2", ["1990"]), ("q3", ["the Eiffel Tower"]))
    predictions = {"q1": "Denver", "q2": "1990.", "q3": "Eiffel tower"}
    result = evaluate(data, predictions)
    assert set(result) == {"exact", "f1", "total", "HasAns_exact", "HasAns_f1", "HasAns_total"}
    assert result["exact"] == pytest.approx(200 / 3)
    assert result["f1"] == pytest.approx(100 * (2 / 3 + 2) / 3)  # q1: max(2/3, 0)
    assert evaluate_v1(data, predictions) == pytest.approx({"exact_match": result["exact"], "f1": result["f1"]})
    # The v1.1 script scores a missing prediction 0 and keeps it in the total.
    assert evaluate_v1(data, {"q2": "1990"}) == pytest.approx({"exact_match": 100 / 3, "f1": 100 / 3})


def test_missing_predictions():
    data, predictions = _v2_case()
    del predictions["q2"], predictions["q3"]
    with pytest.raises(AlbertInputError, match=r"2 of 5 questions have no prediction \(first: 'q2', 'q3'\)"):
        evaluate(data, predictions)
    result = evaluate(data, predictions, missing="zero")
    assert result["total"] == 5 and result["exact"] == 0.0 and result["NoAns_exact"] == 0.0
    # Predictions for questions not in the file are ignored, as officially.
    assert evaluate(_dataset(("q1", ["a b"])), {"q1": "a b", "other": "x"})["exact"] == 100.0


@pytest.mark.parametrize(
    "dataset, predictions, na_probs, message",
    [
        ({"version": "1.1"}, {}, None, "'data' list"),
        ([{"title": "x"}], {}, None, r"data\[0\] has no 'paragraphs'"),
        ([{"paragraphs": [{"qas": [{"answers": []}]}]}], {}, None, r"data\[0\].paragraphs\[0\].qas\[0\] has no 'id'"),
        ([{"paragraphs": [{"qas": [{"id": "q", "answers": ["x"]}]}]}], {"q": ""}, None, r"id 'q'.*'answers'"),
        ([{"paragraphs": [{"qas": [{"id": "q", "answers": []}, {"id": "q", "answers": []}]}]}], {"q": ""}, None,
         "appears twice"),
        ([{"paragraphs": []}], {}, None, "no questions"),
        (_dataset(("q", [])), {"q": None}, None, "answer for 'q' must be a string"),
        (_dataset(("q", []), ("r", [])), {"q": "", "r": ""}, {"q": 0.5}, r"no probability for 1 predicted questions \(first: 'r'\)"),
        (_dataset(("q", [])), {"q": ""}, {"q": "high"}, "value for 'q' must be a number"),
    ],
)
def test_bad_input_is_one_clear_error(dataset, predictions, na_probs, message):
    with pytest.raises(AlbertInputError, match=message):
        evaluate(dataset, predictions, na_probs=na_probs)


def _official_scores(official, data, predictions, na_probs, threshold):
    """What the official script's main() computes, through its own functions."""
    dataset = data["data"]
    has_answer = official.make_qid_to_has_ans(dataset)
    exact_raw, f1_raw = official.get_raw_scores(dataset, predictions)
    probabilities = na_probs if na_probs is not None else {k: 0.0 for k in predictions}
    exact = official.apply_no_ans_threshold(exact_raw, probabilities, has_answer, threshold)
    f1 = official.apply_no_ans_threshold(f1_raw, probabilities, has_answer, threshold)
    result = official.make_eval_dict(exact, f1)
    for prefix, wanted in (("HasAns", True), ("NoAns", False)):
        qids = [k for k, v in has_answer.items() if v == wanted]
        if qids:
            official.merge_eval(result, official.make_eval_dict(exact, f1, qid_list=qids), prefix)
    if na_probs is not None:
        official.find_all_best_thresh(result, predictions, exact_raw, f1_raw, na_probs, has_answer)
    return dict(result)


@pytest.mark.skipif(not os.environ.get("SQUAD_V2_EVAL"), reason="set SQUAD_V2_EVAL to a copy of evaluate-v2.0.py")
def test_agrees_with_the_official_v2_script_on_random_cases():
    spec = importlib.util.spec_from_file_location("official_squad_v2", os.environ["SQUAD_V2_EVAL"])
    official = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(official)
    rng = random.Random(0)
    words = ["the", "a", "an", "Cat", "cat.", "sat", "on", "mat,", "red", "red", "(blue)", "1990", "theater", "—"]

    def text():
        return " ".join(rng.choice(words) for _ in range(rng.randint(0, 5))) + rng.choice(["", " ", "!", "  "])

    for trial in range(200):
        questions = [(f"q{i}", [text() for _ in range(rng.choice([0, 1, 1, 3]))]) for i in range(rng.randint(1, 12))]
        data = _dataset(*questions)
        predictions = {qid: rng.choice([text(), ""]) for qid, _ in questions}
        na_probs = {qid: round(rng.random(), 1) for qid, _ in questions} if trial % 2 else None
        threshold = rng.choice([1.0, 0.5, 0.0])
        ours = evaluate(data, predictions, na_probs=na_probs, na_prob_thresh=threshold)
        assert ours == pytest.approx(_official_scores(official, data, predictions, na_probs, threshold))
