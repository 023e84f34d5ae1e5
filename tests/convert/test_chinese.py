"""The Chinese checkpoints: Google's `albert_*_zh` layout, Hugging Face models saved with
`BertTokenizer`, brightmart's native models (refused) and vocabulary/config size mismatches."""

import json
import os

import numpy as np
import pytest
from safetensors.numpy import load_file
from safetensors.numpy import save_file

from albert_keras.convert import common
from albert_keras.convert import huggingface
from albert_keras.convert import official
from albert_keras.convert.huggingface import from_huggingface
from albert_keras.convert.huggingface import to_huggingface
from albert_keras.convert.official import from_official
from albert_keras.errors import AlbertInputError
from albert_keras.tokenization.layer import AlbertTokenizer
from albert_keras.tokenization.vocabulary import load_vocabulary
from albert_keras.tokenization.vocabulary import read_tokenizer_settings
from tests.convert.conftest import random_canonical
from tests.convert.conftest import tiny_config
from tests.convert.test_official import _write_checkpoint
from tests.tokenization.wordpiece_fixtures import make_chinese_style_vocab

# Raw text the way a user has it: Chinese with full-width punctuation, Latin in both cases, digits.
TEXTS = ("我爱北京天安门。", "今天天气很好，我们去公园吧！", "Hello World 2020 年的新数据", "他说：“这是什么？”")

# Keys Google's zh configs and brightmart's `*_google` configs carry that the model never reads.
LEGACY_KEYS = dict(net_structure_type=0, layers_to_keep=[], gap_size=0, num_memory_blocks=0, down_scale_factor=1,
                   ln_type="postln", directionality="bidi", pooler_fc_size=768, pooler_num_attention_heads=12,
                   pooler_num_fc_layers=3, pooler_size_per_head=128, pooler_type="first_token_transform")


def _load(directory):
    from albert_keras.modeling.pretrained import load_pretrained

    return load_pretrained(directory)


def _zh_config(vocab_path, **overrides):
    # 16 heads as in albert_xxlarge_zh (English xxlarge has 64): only the config can say so.
    values = dict(vocab_size=load_vocabulary(vocab_path).vocabulary_size(), hidden_act="relu",
                  num_attention_heads=16)
    values.update(overrides)
    return tiny_config(**values)


def _official_zh(directory, vocab_size_delta=0, extra_variables=None):
    """A Google `albert_*_zh` directory: albert_config.json (relu, legacy keys), model.ckpt-best, vocab_chinese.txt."""
    directory.mkdir()
    vocab = make_chinese_style_vocab(str(directory / "vocab_chinese.txt"))
    config = _zh_config(vocab)
    config.vocab_size += vocab_size_delta
    canonical = random_canonical(config, seed=3)
    variables = common.canonical_to_foreign(canonical, official.RULES, config)
    variables["global_step"] = np.array(1000, np.int64)
    variables.update(extra_variables or {})
    _write_checkpoint(directory / "model.ckpt-best", variables)
    with open(directory / "albert_config.json", "w") as f:
        json.dump({**config.to_dict(), **LEGACY_KEYS}, f)
    return config, canonical, vocab


def test_official_zh_layout_loads_with_every_head(tmp_path):
    config, canonical, vocab = _official_zh(tmp_path / "albert_tiny_zh")
    out = from_official(tmp_path / "albert_tiny_zh", tmp_path / "out")

    model = _load(out)
    assert type(model).__name__ == "AlbertPretrainer"
    got_config = model.encoder.config
    assert (got_config.hidden_act, got_config.num_attention_heads) == ("relu", 16)
    assert got_config == config
    weights = common.read_model_weights(model)
    assert sorted(weights) == sorted(canonical)  # encoder, pooler, MLM and SOP heads
    for name, value in canonical.items():
        np.testing.assert_array_equal(weights[name], value, err_msg=name)

    assert "vocab.txt" in os.listdir(out) and "spiece.model" not in os.listdir(out)
    with open(vocab, "rb") as a, open(os.path.join(out, "vocab.txt"), "rb") as b:
        assert a.read() == b.read()
    settings = read_tokenizer_settings(out)
    assert (settings["kind"], settings["lowercase"]) == ("wordpiece", True)
    ours, source = load_vocabulary(out), load_vocabulary(vocab)
    for text in TEXTS:
        assert ours.encode(text) == source.encode(text)
    assert ours.encode("我爱北京") == [ours.token_to_id(c) for c in "我爱北京"]


def test_official_zh_model_runs_on_raw_chinese_text(tmp_path):
    _official_zh(tmp_path / "zh")
    model = _load(from_official(tmp_path / "zh", tmp_path / "out"))
    tokenizer = AlbertTokenizer(load_vocabulary(tmp_path / "out"), sequence_length=24)
    features = tokenizer(np.array(TEXTS[:2]))
    encoded = model.encoder({k: features[k] for k in ("token_ids", "segment_ids", "padding_mask")})
    assert np.asarray(encoded["sequence_output"]).shape == (2, 24, 32)
    assert np.asarray(features["token_ids"])[0, 0] == 101  # [CLS] of the BERT-Chinese layout


def test_a_brightmart_google_config_name_is_found(tmp_path):
    config, _, _ = _official_zh(tmp_path / "albert_base_zh_google")
    os.rename(tmp_path / "albert_base_zh_google" / "albert_config.json",
              tmp_path / "albert_base_zh_google" / "albert_config_base_google_fast.json")
    assert _load(from_official(tmp_path / "albert_base_zh_google", tmp_path / "out")).encoder.config == config


def test_preln_config_is_refused(tmp_path):
    _official_zh(tmp_path / "zh")
    with open(tmp_path / "zh" / "albert_config.json") as f:
        values = json.load(f)
    values["ln_type"] = "preln"
    with open(tmp_path / "zh" / "albert_config.json", "w") as f:
        json.dump(values, f)
    with pytest.raises(AlbertInputError, match="'ln_type' is 'preln'"):
        from_official(tmp_path / "zh", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_brightmart_native_checkpoint_is_one_line(tmp_path):
    # brightmart/albert_zh's own graph: BERT scopes shared as `layer_shared`, and `word_embeddings_2`
    # projecting E -> H before the position embeddings are added.
    extra = {
        "bert/embeddings/word_embeddings_2": np.zeros((16, 32), np.float32),
        "bert/encoder/layer_shared/attention/self/query/kernel": np.zeros((32, 32), np.float32),
    }
    _official_zh(tmp_path / "albert_base_zh", extra_variables=extra)
    with pytest.raises(AlbertInputError) as error:
        from_official(tmp_path / "albert_base_zh", tmp_path / "out")
    message = str(error.value)
    assert "\n" not in message
    assert "brightmart" in message and "word_embeddings_2" in message and "_google" in message
    assert not (tmp_path / "out").exists()


def test_official_vocabulary_size_mismatch_writes_nothing(tmp_path):
    config, _, _ = _official_zh(tmp_path / "zh", vocab_size_delta=3)
    with pytest.raises(AlbertInputError) as error:
        from_official(tmp_path / "zh", tmp_path / "out")
    message = str(error.value)
    assert "\n" not in message and "vocab_chinese.txt" in message
    assert f"vocab_size is {config.vocab_size}" in message
    assert not (tmp_path / "out").exists()


def _hf_chinese(directory, lowercase=True, vocab_size_delta=0, **vocab_options):
    """A Hugging Face Chinese ALBERT as the model cards have it: relu, vocab.txt, BertTokenizer."""
    directory.mkdir()
    vocab = make_chinese_style_vocab(str(directory), **vocab_options)
    config = _zh_config(vocab, num_attention_heads=4)
    config.vocab_size += vocab_size_delta
    canonical = random_canonical(config, seed=4)
    tensors = common.canonical_to_foreign(canonical, huggingface.RULES, config)
    save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(directory / "model.safetensors"),
              metadata={"format": "pt"})
    with open(directory / "config.json", "w") as f:
        json.dump(huggingface.config_to_hf(config, pad_token_id=0, bos_token_id=101, eos_token_id=102), f)
    with open(directory / "tokenizer_config.json", "w") as f:
        json.dump({"tokenizer_class": "BertTokenizer", "do_lower_case": lowercase}, f)
    return config, canonical, vocab


@pytest.mark.parametrize("lowercase", [True, False])
def test_hf_chinese_in_and_out(tmp_path, lowercase):
    config, canonical, vocab = _hf_chinese(tmp_path / "hf", lowercase=lowercase)
    ours = from_huggingface(tmp_path / "hf", tmp_path / "ours")
    model = _load(ours)
    assert model.encoder.config == config and config.hidden_act == "relu"
    weights = common.read_model_weights(model)
    for name, value in canonical.items():
        np.testing.assert_array_equal(weights[name], value, err_msg=name)
    settings = read_tokenizer_settings(ours)
    assert (settings["kind"], settings["lowercase"]) == ("wordpiece", lowercase)
    with open(vocab, "rb") as a, open(os.path.join(ours, "vocab.txt"), "rb") as b:
        assert a.read() == b.read()

    back = to_huggingface(ours, tmp_path / "back")
    assert sorted(os.listdir(back)) == ["config.json", "model.safetensors", "tokenizer_config.json", "vocab.txt"]
    with open(os.path.join(back, "tokenizer_config.json")) as f:
        tokenizer_config = json.load(f)
    assert tokenizer_config["tokenizer_class"] == "BertTokenizer"
    assert tokenizer_config["do_lower_case"] is lowercase
    assert tokenizer_config["tokenize_chinese_chars"] is True and tokenizer_config["strip_accents"] is None
    assert (tokenizer_config["cls_token"], tokenizer_config["mask_token"]) == ("[CLS]", "[MASK]")
    with open(os.path.join(back, "config.json")) as f:
        hf_config = json.load(f)
    assert hf_config["hidden_act"] == "relu"
    assert (hf_config["pad_token_id"], hf_config["bos_token_id"], hf_config["eos_token_id"]) == (0, 101, 102)
    with open(vocab, "rb") as a, open(os.path.join(back, "vocab.txt"), "rb") as b:
        assert a.read() == b.read()
    original = load_file(str(tmp_path / "hf" / "model.safetensors"))
    written = load_file(os.path.join(back, "model.safetensors"))
    assert sorted(original) == sorted(written)
    for name in original:
        np.testing.assert_array_equal(written[name], original[name], err_msg=name)
    # And in again: the casing travels through tokenizer_config.json.
    again = from_huggingface(back, tmp_path / "again")
    assert read_tokenizer_settings(again)["lowercase"] is lowercase


def test_hf_vocabulary_size_mismatch_writes_nothing(tmp_path):
    _hf_chinese(tmp_path / "hf", vocab_size_delta=-2)
    with pytest.raises(AlbertInputError, match=r"vocab\.txt: the vocabulary has \d+ tokens but") as error:
        from_huggingface(tmp_path / "hf", tmp_path / "out")
    assert "\n" not in str(error.value)
    assert not (tmp_path / "out").exists()


def test_hf_tokenizer_settings_we_cannot_follow_are_warned(tmp_path, caplog):
    _hf_chinese(tmp_path / "hf")
    with open(tmp_path / "hf" / "tokenizer_config.json", "w") as f:
        json.dump({"tokenizer_class": "BertTokenizer", "do_lower_case": True, "strip_accents": False,
                   "tokenize_chinese_chars": False}, f)
    with caplog.at_level("WARNING", logger="albert_keras.convert"):
        from_huggingface(tmp_path / "hf", tmp_path / "out")
    assert "strip_accents is False" in caplog.text and "tokenize_chinese_chars is false" in caplog.text


def test_transformers_bert_tokenizer_and_albert_model_agree_from_raw_text(tmp_path):
    """Skipped without transformers + torch (CI); run locally for the 1e-5 parity figure."""
    transformers = pytest.importorskip("transformers")
    torch = pytest.importorskip("torch")
    # A vocabulary without repeated lines: BertTokenizer numbers lines, ALBERT numbers distinct tokens.
    _hf_chinese(tmp_path / "hf", duplicate=False, unicode_line_separators=False)
    ours_dir = from_huggingface(tmp_path / "hf", tmp_path / "ours")
    back = to_huggingface(ours_dir, tmp_path / "back")
    model = _load(ours_dir)
    vocabulary = load_vocabulary(ours_dir)
    for directory in (tmp_path / "hf", back):
        tokenizer = transformers.BertTokenizer.from_pretrained(str(directory))
        hf_model = transformers.AlbertModel.from_pretrained(str(directory)).eval()
        for text in TEXTS:
            ids = tokenizer(text)["input_ids"]
            assert ids == [vocabulary.cls_id] + vocabulary.encode(text) + [vocabulary.sep_id], text
            token_ids = np.array([ids], np.int32)
            with torch.no_grad():
                want = hf_model(input_ids=torch.from_numpy(token_ids.astype("int64"))).last_hidden_state.numpy()
            got = model.encoder({"token_ids": token_ids, "segment_ids": np.zeros_like(token_ids),
                                 "padding_mask": np.ones_like(token_ids)})["sequence_output"]
            np.testing.assert_allclose(np.asarray(got), want, atol=1e-5, rtol=0)
