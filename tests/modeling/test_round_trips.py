"""Every public layer and model through the shared harness (`tests/harness.py`): config round trip,
`.keras` save and reload, pretrained directory save and reload, the same outputs after each, on raw
text wherever the model takes it. Tiny configs, the session's SentencePiece model and a small
WordPiece vocabulary."""

import keras
import numpy as np
import pytest

from albert_keras.modeling import AlbertClassifier
from albert_keras.modeling import AlbertEncoder
from albert_keras.modeling import AlbertIntentSlotTagger
from albert_keras.modeling import AlbertMultipleChoice
from albert_keras.modeling import AlbertPretrainer
from albert_keras.modeling import AlbertQuestionAnswerer
from albert_keras.modeling import AlbertSentenceEncoder
from albert_keras.modeling import AlbertSeq2Seq
from albert_keras.modeling import AlbertTokenClassifier
from albert_keras.modeling import save_pretrained
from tests.conftest import SPM_VOCAB_SIZE
from tests.harness import run_layer_test
from tests.harness import run_model_test
from tests.modeling.conftest import encoder_batch
from tests.modeling.conftest import pretraining_batch
from tests.modeling.conftest import tiny_config

TEXTS = ["The film was a delight.", "A dull, tedious plot!", "Lists are mutable sequences."]
PAIRS = (["Is it raining?", "Where is the cat?"], ["It is raining hard.", "The dog sleeps."])
CHOICES = (["Pick a colour.", "Pick an animal."], [["red", "tea", "blue"], ["cat", "dog", "rain"]])
WORDS = ["the", "cat", "dog", "sees", "big", "red", "a", "bird", "runs", "."]


def _spm_config(**overrides):
    return tiny_config(vocab_size=SPM_VOCAB_SIZE, num_hidden_layers=2, num_hidden_groups=1, inner_group_num=1,
                       **overrides)


@pytest.fixture(scope="module")
def text_dir(spm_model_path, tmp_path_factory):
    """A tiny random ALBERT with the session's SentencePiece model, packing 16 pieces."""
    keras.utils.set_random_seed(0)
    directory = tmp_path_factory.mktemp("round_trips") / "init"
    return save_pretrained(AlbertEncoder(_spm_config()), directory, spm_model=str(spm_model_path),
                           tokenizer_settings={"lowercase": True, "sequence_length": 16})


@pytest.fixture(scope="module")
def wordpiece_path(tmp_path_factory):
    """A WordPiece vocabulary with ALBERT's special ids (0-4) and whole words."""
    path = tmp_path_factory.mktemp("wordpiece") / "vocab.txt"
    path.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS) + "\n")
    return path


# ---------------------------------------------------------------------------- layers


def test_tokenizer_layers(spm_model_path, wordpiece_path, tmp_path):
    from albert_keras.modeling.generation import Seq2SeqPreprocessor
    from albert_keras.modeling.preprocessing import AlbertTextPreprocessor
    from albert_keras.tokenization import AlbertTokenizer

    texts = np.array(TEXTS, dtype=object)
    spm = run_layer_test(AlbertTokenizer, {"vocabulary": str(spm_model_path), "sequence_length": 12}, texts,
                         tmp_path, expected_output_shape={k: (3, 12) for k in ("token_ids", "segment_ids", "padding_mask")})
    wordpiece = run_layer_test(AlbertTokenizer, {"vocabulary": str(wordpiece_path), "sequence_length": 8},
                               np.array(["the big cat sees a red bird .", "a dog runs ."], dtype=object), tmp_path)
    assert wordpiece.vocabulary.kind == "wordpiece" and spm.vocabulary.kind == "sentencepiece"
    run_layer_test(AlbertTextPreprocessor, {"tokenizer": AlbertTokenizer(str(spm_model_path), sequence_length=12)},
                   texts, tmp_path)
    run_layer_test(AlbertTextPreprocessor, {"tokenizer": AlbertTokenizer(str(spm_model_path), sequence_length=12),
                                            "mode": "multiple_choice"},
                   tuple(np.array(part, dtype=object) for part in CHOICES), tmp_path,
                   expected_output_shape={k: (2, 3, 12) for k in ("token_ids", "segment_ids", "padding_mask")})
    run_layer_test(Seq2SeqPreprocessor, {"tokenizer": AlbertTokenizer(str(wordpiece_path), sequence_length=8),
                                         "target_length": 6},
                   np.array(["the cat sees a bird .", "a dog runs ."], dtype=object), tmp_path)


def test_model_building_layers(tmp_path):
    from albert_keras.modeling.activations import gelu_approximate
    from albert_keras.modeling.activations import gelu_exact
    from albert_keras.modeling.fusion import FusedBiasDense
    from albert_keras.modeling.fusion import FusedLayerNormalization
    from albert_keras.modeling.seq2seq import DecoderPositions
    from albert_keras.modeling.task_models import FoldChoices

    keras.utils.set_random_seed(0)
    ids = np.random.default_rng(0).integers(0, 50, (2, 3, 5)).astype("int32")
    run_layer_test(FoldChoices, {}, ids, tmp_path, expected_output_shape=(6, 5))
    run_layer_test(DecoderPositions, {"dtype": "int32"}, ids[:, 0], tmp_path, expected_output_shape=(2, 5))
    hidden = np.random.default_rng(1).normal(size=(2, 40, 8)).astype("float32")
    # The fused layers run their fused forms here (CPU inference) and must keep Keras' configs.
    run_layer_test(FusedBiasDense, {"units": 6, "activation": gelu_approximate}, hidden, tmp_path,
                   expected_output_shape=(2, 40, 6))
    run_layer_test(FusedLayerNormalization, {"epsilon": 1e-12}, hidden, tmp_path)
    # The registered activations are what configs name; a .keras file must find them again.
    run_layer_test(keras.layers.Dense, {"units": 3, "activation": gelu_exact}, hidden, tmp_path)


# ---------------------------------------------------------------------------- models on token ids


@pytest.mark.parametrize("arguments", [{}, {"output_encoder_outputs": True, "fuse": False}])
def test_encoder(tmp_path, arguments):
    keras.utils.set_random_seed(0)
    run_model_test(AlbertEncoder(tiny_config(), **arguments), encoder_batch(pad_from=6), tmp_path,
                   pretrained_arguments=arguments)


@pytest.mark.parametrize("saved_fuse, loaded_fuse", [(False, "auto"), ("auto", False)])
def test_encoder_weights_load_across_fuse_settings(tmp_path, saved_fuse, loaded_fuse):
    """Keras names top-level layers in weight files by class (fused or not); either file loads into either."""
    keras.utils.set_random_seed(0)
    saved = AlbertEncoder(tiny_config(), fuse=saved_fuse)
    batch = encoder_batch(pad_from=6)
    want = keras.ops.convert_to_numpy(saved(batch)["sequence_output"])
    directory = saved.save_pretrained(tmp_path / "saved")
    loaded = AlbertEncoder.from_pretrained(directory, fuse=loaded_fuse)
    assert type(loaded.embeddings_layer_norm).__name__ == (
        "LayerNormalization" if loaded_fuse is False else "FusedLayerNormalization")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(batch)["sequence_output"]), want, atol=1e-5)


def test_pretrainer(tmp_path):
    keras.utils.set_random_seed(0)
    model = AlbertPretrainer(AlbertEncoder(tiny_config()))
    run_model_test(model, pretraining_batch(), tmp_path, predict=lambda m, x: m(x))


@pytest.mark.parametrize("build", [
    lambda encoder: AlbertTokenClassifier(encoder, num_classes=4),
    lambda encoder: AlbertQuestionAnswerer(encoder),
    lambda encoder: AlbertIntentSlotTagger(encoder, intents=["play", "weather"], slot_labels=["O", "B-city", "I-city"]),
], ids=["token_classifier", "question_answerer", "intent_slots"])
def test_token_id_task_models(tmp_path, build):
    keras.utils.set_random_seed(0)
    run_model_test(build(AlbertEncoder(tiny_config())), encoder_batch(pad_from=7), tmp_path)


# ---------------------------------------------------------------------------- models on raw text


def test_classifier_on_texts(text_dir, tmp_path):
    model = AlbertClassifier.from_pretrained(text_dir, labels=["negative", "positive"])
    reloaded = run_model_test(model, TEXTS, tmp_path)
    for how, again in reloaded.items():
        assert again.labels == ["negative", "positive"], how
        assert again.predict_labels(TEXTS) == model.predict_labels(TEXTS), how


def test_pair_classifier_on_text_pairs(text_dir, tmp_path):
    """Sentence pairs: also response selection's cross-encoder (a two-class pair classifier)."""
    run_model_test(AlbertClassifier.from_pretrained(text_dir, num_classes=2), PAIRS, tmp_path)


def test_multiple_choice_on_contexts_and_choices(text_dir, tmp_path):
    run_model_test(AlbertMultipleChoice.from_pretrained(text_dir, num_choices=3), CHOICES, tmp_path)


def test_sentence_encoder_on_texts(text_dir, tmp_path):
    """Sentence embeddings: also response selection's bi-encoder."""
    model = AlbertSentenceEncoder.from_pretrained(text_dir, temperature=0.1)
    run_model_test(model, TEXTS, tmp_path, predict=lambda m, x: m.encode(x))


def test_seq2seq_on_source_and_target_texts(wordpiece_path, tmp_path):
    config = tiny_config(vocab_size=5 + len(WORDS), initializer_range=0.5)
    keras.utils.set_random_seed(4)
    save_pretrained(AlbertEncoder(config), tmp_path / "init", vocabulary=str(wordpiece_path))
    model = AlbertSeq2Seq.from_pretrained(tmp_path / "init", max_target_length=8)
    sources, targets = ["the big cat sees a red bird .", "a dog runs ."], ["a cat sees the dog .", "the bird runs ."]

    def predict(m, texts):
        # Raw text through each model's own preprocessor, to teacher-forced next-token logits.
        x, labels, weights = m.preprocessor(*texts)
        return {"logits": m(x, training=False), "labels": labels, "weights": weights}

    reloaded = run_model_test(model, (sources, targets), tmp_path, predict=predict)
    # Generation end to end (one traced loop per model, so one reload stands for the others).
    assert reloaded["keras"].generate(sources, max_length=6) == model.generate(sources, max_length=6)
