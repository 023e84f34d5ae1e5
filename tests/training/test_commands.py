"""The training commands' shared argparse pieces: one definition of the device flags and the help
formatter for `pretrain` and `finetune`."""

import argparse

import pytest

from albert_keras.training.commands import DefaultsFormatter
from albert_keras.training.commands import add_precision_flags
from albert_keras.training.commands import add_strategy_flags


def _parser():
    parser = argparse.ArgumentParser(prog="x", formatter_class=DefaultsFormatter)
    add_precision_flags(parser, "log and checkpoint")
    add_strategy_flags(parser, "where the TPU is")
    return parser


def test_flags_parse_with_their_defaults_and_choices():
    args = _parser().parse_args([])
    assert (args.precision, args.steps_per_execution, args.strategy, args.tpu) == ("auto", None, "auto", None)
    args = _parser().parse_args(["--precision", "mixed_bfloat16", "--steps-per-execution", "4",
                                 "--strategy", "multi-worker", "--tpu", "grpc://h:1"])
    assert (args.precision, args.steps_per_execution, args.strategy, args.tpu) == (
        "mixed_bfloat16", 4, "multi-worker", "grpc://h:1")
    with pytest.raises(SystemExit):
        _parser().parse_args(["--precision", "float64"])


def test_help_names_the_intervals_and_hides_none_defaults():
    text = " ".join(_parser().format_help().split())
    assert "divisor of the log and checkpoint intervals" in text
    assert "where the TPU is" in text and "(default: None)" not in text
    assert "(default: auto)" in text
