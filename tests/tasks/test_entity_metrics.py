"""Entity chunking and scores: hand-computed cases, bad tags, and seqeval on random sequences."""

import random
import warnings

import pytest

from albert_keras.errors import AlbertInputError
from albert_keras.tasks.entity_metrics import entities, entity_scores


@pytest.mark.parametrize(
    "tags, scheme, expected",
    [
        (["O", "B-PER", "I-PER"], "IOB2", [("PER", 1, 3)]),  # ends with the sentence
        (["B-LOC", "O", "B-PER"], "IOB2", [("LOC", 0, 1), ("PER", 2, 3)]),
        (["O", "I-PER", "I-PER", "O"], "IOB2", [("PER", 1, 3)]),  # I- after O starts one
        (["I-ORG"], "BIO", [("ORG", 0, 1)]),
        (["B-PER", "I-LOC", "I-LOC"], "IOB2", [("PER", 0, 1), ("LOC", 1, 3)]),  # type change
        (["B-PER", "I-PER", "B-PER"], "IOB2", [("PER", 0, 2), ("PER", 2, 3)]),
        (["B-MISC-X", "I-MISC-X"], "IOB2", [("MISC-X", 0, 2)]),  # a type may hold '-'
        (["O", "O"], "IOB2", []),
        ([], "IOB2", []),
        (["I-PER", "I-PER", "B-PER", "I-LOC"], "IOB1", [("PER", 0, 2), ("PER", 2, 3), ("LOC", 3, 4)]),
        (["B-PER", "I-PER", "E-PER", "S-LOC", "S-LOC", "O", "E-ORG"], "BIOES",
         [("PER", 0, 3), ("LOC", 3, 4), ("LOC", 4, 5), ("ORG", 6, 7)]),
        (["B-PER", "E-PER", "I-PER", "E-PER"], "IOBES", [("PER", 0, 2), ("PER", 2, 4)]),
        (["S-PER", "I-PER"], "BIOES", [("PER", 0, 1), ("PER", 1, 2)]),
    ],
)
def test_entities(tags, scheme, expected):
    assert entities(tags, scheme) == expected


def test_scores_hand_computed():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"], ["B-PER", "I-PER"]]
    predicted = [["B-PER", "I-PER", "O", "B-ORG"], ["B-ORG", "B-MISC"], ["B-PER", "O"]]
    # Gold: PER, LOC, ORG, PER (4). Predicted: PER, ORG, ORG, MISC, PER (5; the last is cut short).
    # Correct: the first PER and the second sentence's ORG.
    scores = entity_scores(gold, predicted)
    assert scores["overall"] == pytest.approx(
        {"precision": 2 / 5, "recall": 2 / 4, "f1": 2 * 0.4 * 0.5 / 0.9, "support": 4, "predicted": 5, "correct": 2})
    assert list(scores["per_type"]) == ["LOC", "MISC", "ORG", "PER"]
    assert scores["per_type"]["LOC"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1, "predicted": 0,
                                         "correct": 0}
    assert scores["per_type"]["MISC"]["support"] == 0 and scores["per_type"]["MISC"]["precision"] == 0.0
    assert scores["per_type"]["ORG"] == pytest.approx(
        {"precision": 0.5, "recall": 1.0, "f1": 2 / 3, "support": 1, "predicted": 2, "correct": 1})
    assert scores["per_type"]["PER"] == pytest.approx(
        {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2, "predicted": 2, "correct": 1})


def test_same_entity_in_different_sentences_counts_once_each():
    gold = [["B-PER"], ["B-PER"]]
    scores = entity_scores(gold, [["B-PER"], ["O"]])
    assert scores["overall"]["support"] == 2 and scores["overall"]["correct"] == 1
    assert entity_scores([], [])["overall"]["f1"] == 0.0


@pytest.mark.parametrize(
    "gold, predicted, scheme, message",
    [
        ([["O"], ["B-PER", "X-PER"]], [["O"], ["B-PER", "O"]], "IOB2", r"gold sentence 1, tag 1: unknown tag 'X-PER'"),
        ([["O", "O"]], [["O", "E-PER"]], "IOB2", r"predicted sentence 0, tag 1: unknown tag 'E-PER' \(expected O, B-TYPE, I-TYPE\)"),
        ([["B-"]], [["O"]], "IOB2", "unknown tag 'B-'"),
        ([["b-per"]], [["O"]], "IOB2", "unknown tag 'b-per'"),
        ([[None]], [["O"]], "BIOES", "unknown tag None"),
        ([["O"]], [["O"]], "BILOU", "unknown tagging scheme 'BILOU'"),
        ([["O"]], [], "IOB2", "1 gold sentences but 0 predicted"),
        ([["O", "O"]], [["O"]], "IOB2", "sentence 0 has 2 gold tags but 1 predicted"),
    ],
)
def test_bad_input_is_one_clear_error(gold, predicted, scheme, message):
    with pytest.raises(AlbertInputError, match=message):
        entity_scores(gold, predicted, scheme=scheme)


@pytest.mark.parametrize("scheme, prefixes", [("IOB2", "BI"), ("IOB1", "BI"), ("BIOES", "BIES")])
def test_agrees_with_seqeval_default_mode_on_random_sequences(scheme, prefixes):
    seqeval = pytest.importorskip("seqeval.metrics")
    from seqeval.metrics.sequence_labeling import get_entities

    rng = random.Random(scheme)
    tags = ["O", "O"] + [f"{p}-{t}" for p in prefixes for t in ("PER", "LOC", "MISC-X")]
    for trial in range(150):
        gold = [[rng.choice(tags) for _ in range(rng.randint(0, 9))] for _ in range(rng.randint(1, 6))]
        # Predictions: gold with some tags changed, so some entities match.
        predicted = [[t if rng.random() < 0.7 else rng.choice(tags) for t in sentence] for sentence in gold]
        ours = entity_scores(gold, predicted, scheme=scheme)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            report = seqeval.classification_report(gold, predicted, output_dict=True, zero_division=0)
            overall = [seqeval.precision_score(gold, predicted, zero_division=0),
                       seqeval.recall_score(gold, predicted, zero_division=0),
                       seqeval.f1_score(gold, predicted, zero_division=0)]
        assert [ours["overall"][k] for k in ("precision", "recall", "f1")] == pytest.approx(overall, abs=1e-12)
        assert set(ours["per_type"]) == set(report) - {"micro avg", "macro avg", "weighted avg"}
        for type_, row in ours["per_type"].items():
            assert [row["precision"], row["recall"], row["f1"], row["support"]] == pytest.approx(
                [report[type_]["precision"], report[type_]["recall"], report[type_]["f1-score"],
                 report[type_]["support"]], abs=1e-12)
        for sentence in gold:
            # seqeval's spans end inclusive; ours end exclusive.
            assert [(t, s, e - 1) for t, s, e in entities(sentence, scheme)] == get_entities(sentence)
