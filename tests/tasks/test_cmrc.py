"""CMRC 2018: the official scorer on hand-worked cases, the answer_start repair, the task wiring."""

import json

import pytest

from albert_keras.errors import AlbertInputError
from albert_keras.tasks import cmrc
from albert_keras.tasks.squad import QuestionAnsweringTask


def test_mixed_segmentation_cuts_cjk_characters_and_tokenizes_the_rest():
    assert cmrc.mixed_segmentation("1998年NBA总决赛") == ["1998", "年", "nba", "总", "决", "赛"]
    assert cmrc.mixed_segmentation("《三国志》") == ["《", "三", "国", "志", "》"]
    assert cmrc.mixed_segmentation("《三国志》", remove_punctuation=True) == ["三", "国", "志"]
    # Removed punctuation is no boundary: "ω-force" becomes one word.
    assert cmrc.mixed_segmentation("ω-force开发", remove_punctuation=True) == ["ωforce", "开", "发"]
    assert cmrc.word_tokenize("Apple's iPhone (2007).") == ["Apple", "'s", "iPhone", "(", "2007", ")", "."]
    assert cmrc.word_tokenize('13,000 "U.S." cannot') == ["13,000", "``", "U.S.", "''", "can", "not"]
    assert cmrc.word_tokenize("a—b, 3.5") == ["a", "—", "b", ",", "3.5"]


@pytest.mark.parametrize("answers, prediction, f1, em", [
    (["北京大学"], "北京", 2 / 3, 0),                       # precision 2/2, recall 2/4
    (["NBA总决赛"], "1998年NBA总决赛", 0.8, 0),              # English inside Chinese: 4 of 6 segments
    (["上海市长"], "上市海长", 0.25, 0),                     # a contiguous run, not a bag: 1 of 4
    (["《红楼梦》"], "红楼梦", 1.0, 1),                      # listed punctuation removed for both
    (["Apple Inc."], "apple inc", 0.8, 0),                   # "." is not listed: EM differs, F1 2/3 vs 2/2
    (["，"], "", 0.0, 1),                                   # punctuation-only answer: nothing to overlap
    (["，"], "。", 0.0, 1),
    (["北京"], "", 0.0, 0),                                 # empty prediction
    (["北京", "北京市", " 首都 "], "首都", 1.0, 1),           # several answers: the best of each score
    (["北京大学", "北大"], "北京", 2 / 3, 0),
    (["对……"], "对…", 0.5, 0),                               # the listed "……" never matches one character
])
def test_scores_of_hand_worked_cases(answers, prediction, f1, em):
    assert cmrc.f1_score(answers, prediction) == pytest.approx(f1)
    assert cmrc.exact_score(answers, prediction) == em


def dataset(questions):
    return {"data": [{"paragraphs": [{"context": "上下文", "qas": [
        {"id": qid, "question": "问", "answers": [{"text": t, "answer_start": -1} for t in texts]}]}
        for qid, texts in questions]}]}


def test_evaluate_counts_a_missing_prediction_and_prints_three_decimals(capsys):
    data = dataset([("a", ["北京大学"]), ("b", ["北京"]), ("c", ["上海"]), ("d", ["广州"])])
    scores = cmrc.evaluate(data, {"a": "北京", "b": "北京", "c": "杭州"})
    # F1 (2/3 + 1 + 0 + 0) / 4, EM 1/4, AVERAGE their mean.
    assert scores == {"AVERAGE": 33.333, "F1": 41.667, "EM": 25.0, "TOTAL": 4, "SKIP": 1}
    assert "1 of 4 questions have no prediction" in capsys.readouterr().err
    with pytest.raises(AlbertInputError, match=r"qas\[0\] \(id 'x'\) has no answers"):
        cmrc.evaluate(dataset([("x", [])]), {})


CONTEXT = "《战国无双3》是由光荣开发的游戏，于2009年发售。"


def document(*answers):
    return {"version": "v1.0", "data": [{"paragraphs": [{"id": "P", "context": CONTEXT, "qas": [
        {"id": f"Q{i}", "question": "问题", "answers": group} for i, group in enumerate(answers)]}]}]}


def test_answer_start_repair_moves_left_then_right_and_counts(tmp_path):
    start = CONTEXT.index("光荣")
    doc = document([{"text": "光荣", "answer_start": start + 2}],        # CLUE's case: too far right
                   [{"text": "光荣", "answer_start": start - 3}],        # not in CLUE's script: too far left
                   [{"text": "2009年", "answer_start": CONTEXT.index("2009年")}])
    repairs, free = cmrc.repair_answer_starts(doc, "f.json")
    assert (repairs, free) == (2, {})
    assert [qa["answers"][0]["answer_start"] for qa in doc["data"][0]["paragraphs"][0]["qas"]] == [start, start, 18]
    far = document([{"text": "光荣", "answer_start": start + 4}])
    with pytest.raises(AlbertInputError, match=r"f\.json: question 'Q0': answer '光荣' is not within 3 characters"):
        cmrc.repair_answer_starts(far, "f.json")


def test_free_answers_are_scored_but_never_trained_on(tmp_path, capsys):
    path = tmp_path / "dev.json"
    path.write_text(json.dumps(document(
        [{"text": "光荣", "answer_start": CONTEXT.index("光荣")}, {"text": "光荣公司", "answer_start": -1}],
        [{"text": "索尼", "answer_start": -1}],
        [{"text": "游戏", "answer_start": -1}],   # -1 but in the context: moved there
    ), ensure_ascii=False), encoding="utf-8")
    examples, skipped, repairs = cmrc.read_cmrc(path)
    assert repairs == 1 and skipped == {}
    assert [a["text"] for a in examples[0].answers] == ["光荣", "光荣公司"] and examples[0].answers[1]["answer_start"] == -1
    assert examples[1].answers == [{"text": "索尼", "answer_start": -1}] and not examples[1].is_impossible
    assert examples[2].answers[0]["answer_start"] == CONTEXT.index("游戏")
    trained, skipped, _ = cmrc.read_cmrc(path, training=True)
    assert [e.qid for e in trained] == ["Q0", "Q2"] and skipped == {cmrc.NO_SPAN: 1}
    data = QuestionAnsweringTask().read(path, {"glue_task": "cmrc2018"})
    assert data.metadata["metrics"] == ["F1", "EM", "AVERAGE"] and data.metadata["glue_task"] == "cmrc2018"
    assert "skipped 1 questions (no answer is a span of the context)" in capsys.readouterr().err


def test_tiny_cmrc_finetune_evaluates_with_the_cmrc_scorer(tmp_path, finetune_init_dir, capsys):
    from albert_keras.cli import main

    qas = [{"id": f"Q{i}", "question": "what is the key?",
            "answers": [{"text": "memory", "answer_start": 13 + (i % 3)}]} for i in range(8)]  # some starts off
    doc = {"data": [{"paragraphs": [{"context": "The key is a memory of the past.", "qas": qas}]}]}
    path = tmp_path / "cmrc.json"
    path.write_text(json.dumps(doc))
    run = tmp_path / "run"
    assert main(["finetune", "--from-scratch",
                 "--task", "question-answering", "--glue-task", "cmrc2018", "--init", finetune_init_dir,
                 "--train", str(path), "--output", str(run), "--num-train-steps", "2", "--batch-size", "4",
                 "--max-seq-length", "32", "--verbose", "0"]) == 0
    assert "moved 5 answer_start values" in capsys.readouterr().err
    out = tmp_path / "out"
    assert main(["predict", "--model", str(run / "pretrained"), "--input", str(path), "--output", f"{out}/"]) == 0
    predictions = json.loads((out / "predictions.json").read_text())
    capsys.readouterr()
    assert main(["evaluate", "--model", str(run / "pretrained"), "--data", str(path)]) == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed == cmrc.evaluate(doc, predictions) and printed["TOTAL"] == 8
