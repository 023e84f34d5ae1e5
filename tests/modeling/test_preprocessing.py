import keras
import numpy as np
import pytest

from albert_keras.errors import AlbertInputError
from albert_keras.modeling.preprocessing import AlbertTextPreprocessor
from albert_keras.modeling.preprocessing import is_raw_text
from albert_keras.modeling.preprocessing import preprocessor_from_directory
from albert_keras.tokenization.layer import AlbertTokenizer


@pytest.fixture(scope="module")
def tokenizer(spm_model_path):
    return AlbertTokenizer(str(spm_model_path), sequence_length=12)


def test_text_mode_is_the_tokenizer_for_singles_and_pairs(tokenizer):
    preprocessor = AlbertTextPreprocessor(tokenizer)
    single = preprocessor(["a fine film .", "dull"])
    pair = preprocessor((["a question ?"], ["its context ."]))
    for got, want in ((single, tokenizer(["a fine film .", "dull"])), (pair, tokenizer((["a question ?"], ["its context ."])))):
        for key in want:
            np.testing.assert_array_equal(got[key], want[key])
    assert pair["segment_ids"].numpy().max() == 1


def test_multiple_choice_mode_packs_context_with_each_choice(tokenizer):
    preprocessor = AlbertTextPreprocessor(tokenizer, mode="multiple_choice")
    out = preprocessor((["pick one .", "which ?"], [["red", "blue", "green"], ["a", "b", "c"]]))
    assert out["token_ids"].shape == (2, 3, 12)
    want = tokenizer((["which ?"], ["b"]))
    np.testing.assert_array_equal(out["token_ids"][1, 1], want["token_ids"][0])
    np.testing.assert_array_equal(out["segment_ids"][1, 1], want["segment_ids"][0])


def test_config_round_trip(tokenizer):
    preprocessor = AlbertTextPreprocessor(tokenizer, mode="multiple_choice", name="pre")
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(preprocessor))
    assert restored.mode == "multiple_choice" and restored.sequence_length == 12
    x = (["pick ."], [["x", "y"]])
    np.testing.assert_array_equal(restored(x)["token_ids"], preprocessor(x)["token_ids"])
    with pytest.raises(ValueError, match="mode"):
        AlbertTextPreprocessor(tokenizer, mode="tagging")


def test_raw_text_detection():
    assert is_raw_text(["a"]) and is_raw_text(np.array(["a", "b"])) and is_raw_text("a")
    assert is_raw_text((["q"], ["c"])) and is_raw_text((["c"], [["x", "y"]]))
    assert not is_raw_text({"token_ids": np.zeros((1, 3), "int32")}) and not is_raw_text(np.zeros((2, 3)))


def test_directory_settings_and_length_limits(finetune_init_dir, tmp_path):
    preprocessor = preprocessor_from_directory(finetune_init_dir, sequence_length=16, max_positions=64)
    assert preprocessor.sequence_length == 16 and preprocessor.tokenizer.lowercase
    assert preprocessor_from_directory(finetune_init_dir, max_positions=64).sequence_length == 64  # 128 capped
    with pytest.raises(AlbertInputError, match="exceeds the model's max_position_embeddings 64"):
        preprocessor_from_directory(finetune_init_dir, sequence_length=100, max_positions=64)
    assert preprocessor_from_directory(tmp_path) is None
