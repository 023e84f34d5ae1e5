"""CLUENER2020: inclusive-end reader, IOB2 / BIOS character tags, the official macro-F1, a tiny run."""

import json

import pytest

from albert_keras.errors import AlbertInputError
from albert_keras.tasks import cluener
from albert_keras.tasks.tagging import TokenClassificationTask
from tests.finetune_data import write_jsonl

TEXT = "浙商银行企业信贷部叶老桂博士则从另一个角度对五道门槛进行了解读。"
LABEL = {"name": {"叶老桂": [[9, 11]]}, "company": {"浙商银行": [[0, 3]]}}


def test_reader_checks_inclusive_ends_and_tags_characters(tmp_path):
    path = write_jsonl(tmp_path / "dev.json", [{"text": TEXT, "label": LABEL}, {"text": "去了吗", "label": {}}])
    sentences, skipped = cluener.read_cluener(path)
    first = sentences[0]
    assert first.words == list(TEXT) and first.label == LABEL and first.id == 0 and skipped == {}
    assert first.tags[:5] == ["B-company", "I-company", "I-company", "I-company", "O"]
    assert first.tags[9:12] == ["B-name", "I-name", "I-name"] and first.tags.count("O") == len(TEXT) - 7
    assert sentences[1].tags == ["O", "O", "O"]


def test_bios_marks_single_characters_and_overlaps_are_counted(tmp_path, capsys):
    label = {"address": {"京": [[1, 1]], "北京城": [[0, 2]]}, "name": {"城": [[2, 2]]}}
    path = write_jsonl(tmp_path / "train.json", [{"text": "北京城里", "label": label}])
    sentences, skipped = cluener.read_cluener(path, scheme="BIOS")
    # "北京城" starts first and covers both one-character entities: they are left out of the tags.
    assert sentences[0].tags == ["B-address", "I-address", "I-address", "O"] and skipped == {cluener.OVERLAP: 2}
    assert "2 entities (overlapping entity left out of the tags)" in capsys.readouterr().err
    assert cluener.tags_for("去京", [(1, 2, "address")], "BIOS")[0] == ["O", "S-address"]
    assert cluener.tags_for("去京", [(1, 2, "address")], "IOB2")[0] == ["O", "B-address"]
    assert len(cluener.labels_for("IOB2")) == 21 and len(cluener.labels_for("BIOS")) == 31


@pytest.mark.parametrize("record, message", [
    ({"text": "浙商银行", "label": {"company": {"浙商银行": [[0, 4]]}}}, r"x\.json:1: company '浙商银行' is not at \[0, 4\]"),
    ({"text": "浙商银行", "label": {"company": {"浙商": [[1, 2]]}}}, r"x\.json:1: company '浙商' is not at \[1, 2\]"),
    ({"text": "浙商银行", "label": {"bank": {"浙商": [[0, 1]]}}}, r"x\.json:1: unknown entity type 'bank'"),
    ({"text": "浙商银行"}, r"x\.json:1: no field 'label'"),
])
def test_reader_errors_name_file_and_line(tmp_path, record, message):
    path = write_jsonl(tmp_path / "x.json", [record])
    with pytest.raises(AlbertInputError, match=message):
        cluener.read_cluener(path)


def test_predicted_tags_back_to_labels_round_trip(tmp_path):
    for scheme in ("IOB2", "BIOS"):
        spans = [(0, 4, "company"), (9, 12, "name"), (22, 23, "scene")]
        tags, _ = cluener.tags_for(TEXT, spans, scheme)
        assert cluener.predicted_labels(TEXT, tags, scheme) == {
            "company": {"浙商银行": [[0, 3]]}, "name": {"叶老桂": [[9, 11]]}, "scene": {TEXT[22]: [[22, 22]]}}
    # Repeated surfaces keep every position; a stray I- starts an entity (seqeval's lenient reading).
    assert cluener.predicted_labels("京京", ["B-address", "B-address"]) == {"address": {"京": [[0, 0], [1, 1]]}}
    assert cluener.predicted_labels("去京", ["O", "I-address"]) == {"address": {"京": [[1, 1]]}}


def test_official_score_on_a_hand_worked_case():
    gold = [{"name": {"张三": [[0, 1]], "李四": [[3, 4]]}, "address": {"北京": [[6, 7]]}},
            {"name": {"张三": [[0, 1]]}}]
    predicted = [{"name": {"张三": [[0, 1]]}, "address": {"北京市": [[6, 8]]}, "company": {"腾讯": [[9, 10]]}},
                 {"name": {"张三": [[0, 1]], "王五": [[3, 4]]}}]
    scores = cluener.score(gold, predicted)
    # name: TP 2 (张三 twice), FP 1 (王五), FN 1 (李四): P = R = F1 = 2/3; every other type 0.
    assert scores["f1_name"] == pytest.approx(2 / 3) and scores["precision_name"] == pytest.approx(2 / 3)
    assert scores["f1_address"] == scores["f1_company"] == scores["f1_game"] == 0.0
    assert scores["macro_f1"] == pytest.approx(2 / 3 / 10)
    # Strings, not positions: the same surface elsewhere in the sentence still counts.
    assert cluener.score(gold[:1], [{"name": {"张三": [[5, 6]], "李四": [[3, 4]]},
                                     "address": {"北京": [[0, 1]]}}])["macro_f1"] == pytest.approx(0.2)
    with pytest.raises(AlbertInputError, match="2 gold sentences but 1 predicted"):
        cluener.score(gold, predicted[:1])


def test_tiny_cluener_finetune_evaluates_with_the_official_score(tmp_path, finetune_init_dir, capsys):
    from albert_keras.cli import main

    directory = tmp_path / "cluener"
    directory.mkdir()
    records = [{"text": "the key is memory now", "label": {"name": {"memory": [[11, 16]]}}} for _ in range(8)]
    write_jsonl(directory / "train.json", records)
    write_jsonl(directory / "dev.json", records[:3])
    write_jsonl(directory / "test.json", [{"id": 4, "text": "memory is key"}])
    run = tmp_path / "run"
    assert main(["finetune", "--from-scratch",
                 "--task", "token-classification", "--glue-task", "cluener", "--scheme", "BIOS",
                 "--init", finetune_init_dir, "--train", str(directory), "--output", str(run),
                 "--num-train-steps", "2", "--batch-size", "4", "--max-seq-length", "32", "--verbose", "0"]) == 0
    task = TokenClassificationTask()
    options = {"glue_task": "cluener", "labelled": False}
    metadata = json.loads((run / "pretrained" / "finetune.json").read_text())["metadata"]
    assert metadata["scheme"] == "BIOS" and metadata["labels"] == cluener.labels_for("BIOS")
    out = tmp_path / "cluener_predict.json"
    assert main(["predict", "--model", str(run / "pretrained"), "--input", str(directory / "test.json"),
                 "--output", str(out)]) == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 1 and lines[0]["id"] == 4 and isinstance(lines[0]["label"], dict)
    assert task.read(directory, options, metadata).path.endswith("test.json")
    assert main(["predict", "--model", str(run / "pretrained"), "--input", str(directory / "dev.json"),
                 "--output", str(tmp_path / "dev_predict.json")]) == 0
    predicted = [json.loads(line)["label"] for line in (tmp_path / "dev_predict.json").read_text().splitlines()]
    capsys.readouterr()
    assert main(["evaluate", "--model", str(run / "pretrained"), "--data", str(directory / "dev.json")]) == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed == pytest.approx(cluener.score([r["label"] for r in records[:3]], predicted))
    assert "macro_f1" in printed and "f1_scene" in printed
