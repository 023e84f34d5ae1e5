"""The `tag` serving graph: per-word tags equal the Python tagging path, entities equal seqeval's
chunking with character spans in the original text; the signature reloads in a fresh process."""


import numpy as np
import pytest
import tensorflow as tf

from albert_keras.tasks import tagging
from albert_keras.tasks.entity_metrics import entities
from tests.export.conftest import serve_raw_texts_in_fresh_process

T = 16
LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
TEXTS = [
    "  Peter  Blackburn\u00a0went to Brüssels ",
    "x",
    "\x01 \x02 word lone \u0301 mark",  # a lone combining mark normalizes to nothing: <unk>
    "a " * 40 + "end",  # several windows, split between words
    "Ünïcödé ``q'' 10,000, ﬁne\ttabs\nand lines",
    "",
    "   ",
    b"\xff\xfe broken \xc3 UTF-8 Bytecode".decode("utf-8", errors="replace"),
]
# The same texts as bytes, the invalid UTF-8 as sent (the graph repairs it as Python's decode does).
RAW = [t.encode() for t in TEXTS[:-1]] + [b"\xff\xfe broken \xc3 UTF-8 Bytecode"]


@pytest.fixture(scope="module")
def tagger():
    import keras

    from albert_keras import AlbertConfig, AlbertEncoder
    from albert_keras.modeling.task_models import AlbertTokenClassifier
    from tests.training.conftest import TINY_CONFIG

    keras.utils.set_random_seed(4)
    model = AlbertTokenClassifier(AlbertEncoder(AlbertConfig(**TINY_CONFIG)), labels=LABELS)
    # Larger output weights than the initializer gives, so the random tags vary from word to word.
    kernel = model.output_dense.kernel
    kernel.assign(np.random.default_rng(0).normal(0, 1.0, kernel.shape).astype("float32"))
    return model


def server(model, spm_model_path):
    from albert_keras.export.tagging import TaggingServer
    from albert_keras.tokenization import AlbertTokenizer

    return TaggingServer(model, AlbertTokenizer(spm_model_path, sequence_length=T), T)


def test_server_equals_python_tags_and_entities(tagger, spm_model_path):
    from albert_keras.tokenization import load_sentencepiece

    sentences = [tagging.TaggedSentence(t.split() or ["-"]) for t in TEXTS]
    features = tagging.make_features(load_sentencepiece(spm_model_path), sentences, max_seq_length=T)
    x, _, _ = tagging.feature_arrays(features)
    expected_tags = tagging.word_tags(features, tagger(x).numpy(), LABELS, len(sentences))
    out = {k: v.numpy() for k, v in server(tagger, spm_model_path)(tf.constant(RAW)).items()}
    entity_count = 0
    for k, text in enumerate(TEXTS):
        words = text.split()
        n = len(words)
        assert [w.decode() for w in out["words"][k][:n]] == words and (out["words"][k][n:] == b"").all()
        starts, ends = out["word_start"][k], out["word_end"][k]
        assert [text[a:b] for a, b in zip(starts[:n], ends[:n])] == words
        if not n:
            assert (out["entity_start"][k] == -1).all()
            continue
        tags = [t.decode() for t in out["tags"][k][:n]]
        assert tags == expected_tags[k]
        found = entities(tags)
        entity_count += len(found)
        m = len(found)
        served = list(zip([t.decode() for t in out["entity_type"][k][:m]], out["entity_start"][k][:m],
                          out["entity_end"][k][:m], [t.decode() for t in out["entity_text"][k][:m]]))
        assert served == [(type_, starts[a], ends[b - 1], text[starts[a]:ends[b - 1]]) for type_, a, b in found]
        assert (out["entity_type"][k][m:] == b"").all()
    assert len(features) > len(TEXTS) and entity_count > 5


def test_tag_signature_in_a_fresh_process(tagger, spm_model_path, tmp_path):
    from albert_keras.export.saved_model import export_saved_model

    export_dir = export_saved_model(tagger, str(tmp_path / "tagger" / "1"), spm_model=spm_model_path, sequence_length=T)
    expected = {k: v.numpy() for k, v in server(tagger, spm_model_path)(tf.constant(RAW)).items()}
    got = serve_raw_texts_in_fresh_process(export_dir, "tag", RAW, tmp_path)
    assert sorted(got) == sorted(expected)
    for key, want in expected.items():
        np.testing.assert_array_equal(got[key], want, err_msg=key)


def test_server_packs_with_the_vocabulary_special_ids_for_wordpiece(tmp_path):
    """A Chinese (BERT-layout) vocabulary: [CLS] 101, [SEP] 102, [UNK] 100, never SentencePiece's 2/3/1."""
    import keras

    from albert_keras import AlbertConfig, AlbertEncoder
    from albert_keras.export.tagging import TaggingServer
    from albert_keras.modeling.task_models import AlbertTokenClassifier
    from albert_keras.tokenization import AlbertTokenizer, load_vocabulary
    from tests.tokenization.wordpiece_fixtures import make_chinese_style_vocab
    from tests.training.conftest import TINY_CONFIG

    vocabulary = load_vocabulary(make_chinese_style_vocab(tmp_path / "vocab.txt", duplicate=False))
    keras.utils.set_random_seed(5)
    config = AlbertConfig(**{**TINY_CONFIG, "vocab_size": vocabulary.vocabulary_size()})
    model = AlbertTokenClassifier(AlbertEncoder(config), labels=LABELS)
    kernel = model.output_dense.kernel
    kernel.assign(np.random.default_rng(1).normal(0, 1.0, kernel.shape).astype("float32"))
    # Every token row silent but SentencePiece's [UNK]/[CLS]/[SEP] (1-3): packing with those ids instead
    # of the vocabulary's would change every tag.
    embeddings = model.encoder.token_embedding.embeddings
    loud = np.zeros(embeddings.shape, "float32")
    loud[1:4] = np.random.default_rng(2).normal(0, 30.0, loud[1:4].shape)
    embeddings.assign(loud)
    for variable in model.encoder.weights:  # sharp attention, so [CLS]/[SEP] reach every word
        if "kernel" in variable.path:
            variable.assign(variable.numpy() * 25.0)
    texts = ["张三 在 北京 工作", "Peter 住在 上海", "我 爱 你", "中 国 人 民 大 学 的 学 生"]
    sentences = [tagging.TaggedSentence(t.split()) for t in texts]
    features = tagging.make_features(vocabulary, sentences, max_seq_length=T)
    x, _, _ = tagging.feature_arrays(features)
    assert x["token_ids"][0][0] == 101 and 102 in x["token_ids"][0]
    expected = tagging.word_tags(features, model(x).numpy(), LABELS, len(sentences))
    def served_tags(special_ids=None):
        server = TaggingServer(model, AlbertTokenizer(vocabulary, sequence_length=T), T)
        if special_ids:
            server.cls_id, server.sep_id, server.unk_id = special_ids
        out = server(tf.constant(texts))["tags"].numpy()
        return [[t.decode() for t in out[k][: len(text.split())]] for k, text in enumerate(texts)]

    assert served_tags() == expected
    assert served_tags((2, 3, 1)) != expected  # SentencePiece's ids, the old constants: the check above can fail
