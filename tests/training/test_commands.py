"""The training commands' shared argparse pieces: one definition of the device flags and the help
formatter for `pretrain` and `finetune`."""

import argparse

import pytest

from albert_keras.cli_args import DefaultsFormatter
from albert_keras.training.commands import add_precision_flags
from albert_keras.training.commands import add_strategy_flags
from albert_keras.training.commands import training_precision
from albert_keras.training.commands import warmup_steps


def _parser():
    parser = argparse.ArgumentParser(prog="x", formatter_class=DefaultsFormatter)
    add_precision_flags(parser, "log and checkpoint")
    add_strategy_flags(parser, "where the TPU is")
    return parser


def test_flags_parse_with_their_defaults_and_choices():
    args = _parser().parse_args([])
    assert (args.precision, args.steps_per_execution, args.strategy, args.tpu) == ("auto", None, "auto", None)
    args = _parser().parse_args(["--precision", "bfloat16", "--steps-per-execution", "4",
                                 "--strategy", "multi-worker", "--tpu", "grpc://h:1"])
    assert (args.precision, args.steps_per_execution, args.strategy, args.tpu) == (
        "bfloat16", 4, "multi-worker", "grpc://h:1")
    assert training_precision(args.precision) == "mixed_bfloat16"  # Keras' policy name for training
    with pytest.raises(SystemExit):
        _parser().parse_args(["--precision", "float64"])


def test_old_precision_names_still_parse_with_one_warning(capsys):
    assert _parser().parse_args(["--precision", "mixed_float16"]).precision == "float16"
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--precision mixed_float16 is deprecated, use --precision float16" in err[0]


def test_warmup_is_a_fraction_or_steps():
    assert (warmup_steps(0.1, 1000), warmup_steps(300, 1000), warmup_steps(None, 1000)) == (100, 300, None)


def test_help_names_the_intervals_and_hides_none_defaults():
    text = " ".join(_parser().format_help().split())
    assert "divisor of the log and checkpoint intervals" in text
    assert "where the TPU is" in text and "(default: None)" not in text
    assert "(default: auto)" in text
