"""Smoke test for examples/translation.py with tiny settings: it pretrains, fine-tunes from the
pretrained and from random weights, and reports BLEU and chrF for both."""

import json
import os

from tests.scripts import load_script

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "examples")


def test_translation_example(tmp_path, capsys):
    example = load_script(os.path.join(EXAMPLES, "translation.py"), "example_translation")
    report = example.main(["--output-dir", str(tmp_path), "--pretrain-steps", "4", "--finetune-steps", "4",
                           "--pairs", "64"])
    for start in ("pretrained", "random"):
        assert 0.0 <= report[start]["bleu"] <= 100.0 and 0.0 <= report[start]["chrf"] <= 100.0
    with open(tmp_path / "report.json") as f:
        assert json.load(f)["pretraining"]["steps"] == 4
    assert "| pretrained |" in capsys.readouterr().out
    with open(tmp_path / "ft_pretrained" / "pretrained" / "model.json") as f:
        assert json.load(f)["class"] == "AlbertSeq2Seq"
