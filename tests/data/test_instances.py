import collections

import numpy as np
import pytest

from albert_keras.corpus import embedded_corpus
from albert_keras.data.instances import InstanceMaker
from albert_keras.data.instances import InstanceOptions
from albert_keras.data.instances import Statistics
from albert_keras.data.instances import document_rng
from albert_keras.data.vocab import MaskingVocab
from albert_keras.data.vocab import is_start_piece
from albert_keras.tokenization import convert_pieces_to_ids
from albert_keras.tokenization import load_sentencepiece
from albert_keras.tokenization import preprocess_text
from albert_keras.tokenization import tokenize_for_albert

HARD_STRINGS = [
    "", "   ", "Hello  World", "Crème brûlée", "``quoted''", "a\tb\nc", "10,000, ok 1999, was",
    "\u00a0nbsp\u3000ideographic", "ﬁne", "日本語のテキスト", "emoji 🙂 here", "Straße", "x\u0301y",
    "ALL CAPS", "control\x07char",
]


@pytest.fixture(scope="module")
def vocab(spm_model_path):
    return MaskingVocab(load_sentencepiece(spm_model_path))


@pytest.fixture(scope="module")
def documents(vocab):
    docs = []
    for document in embedded_corpus():
        sentences = [ids for ids in vocab.encode_sentences([preprocess_text(s) for s in document]) if len(ids)]
        if sentences:
            docs.append(sentences)
    return docs


def _make(vocab, documents, options, seed=3, passes=3):
    maker = InstanceMaker(vocab, options)
    stats = Statistics(options.ngram)
    instances = []
    for dupe_pass in range(passes):
        for index in range(len(documents)):
            instances += maker.document_instances(documents, index, document_rng(seed, dupe_pass, index), stats)
    return instances, stats


def test_is_start_piece_matches_the_official_rule():
    for piece in ["\u2581the", "<unk>", ".", ",", "(", "99", "don't", "caf\u00e9", "\u2581", "x=y", "€"]:
        assert is_start_piece(piece), piece
    for piece in ["ing", "ING", "s", "a-b", "[cls]", ""]:
        assert not is_start_piece(piece), piece


def test_batched_ids_equal_the_official_tokenizer(vocab):
    sp = vocab.sp
    lines = [preprocess_text(s) for s in HARD_STRINGS + [s for d in embedded_corpus() for s in d][:1500]]
    ours = vocab.encode_sentences(lines)
    for line, ids in zip(lines, ours):
        assert ids.tolist() == convert_pieces_to_ids(sp, tokenize_for_albert(sp, line)), line


def test_digit_comma_pieces_are_split_like_the_official_tokenizer(tmp_path):
    from albert_keras.tokenization import train_sentencepiece

    numbers = [f"in {1990 + i % 30}, we sold {i * 37 % 1000},{i % 10}00, and {i}, more." for i in range(400)]
    sp = load_sentencepiece(train_sentencepiece(numbers, tmp_path / "digits.model", vocab_size=120))
    vocab = MaskingVocab(sp)
    lines = [preprocess_text(line) for line in numbers[:50] + ["10,000, ok 1999, was", "3,14159, and 0,"]]
    exercised = 0
    for line, ids in zip(lines, vocab.encode_sentences(lines)):
        exercised += any(vocab._has_digit_comma[i] for i in sp.encode(line))
        assert ids.tolist() == convert_pieces_to_ids(sp, tokenize_for_albert(sp, line)), line
    assert exercised > 5


def test_statistics_follow_the_algorithm(vocab, documents):
    options = InstanceOptions(max_seq_length=64, max_predictions_per_seq=10)
    instances, stats = _make(vocab, documents, options)
    assert len(instances) > 3000
    labels = np.array([x.next_sentence_label for x in instances])
    assert abs(labels.mean() - 0.5) <= 0.03
    drawn = np.array(stats.ngram_drawn) / sum(stats.ngram_drawn)
    np.testing.assert_allclose(drawn, [6 / 11, 3 / 11, 2 / 11], atol=0.03)
    assert stats.counts["random_document_segments"] == 0  # deviation (b)
    short = 0
    for x in instances:
        n = len(x.input_ids)
        assert n <= 64
        target = min(10, max(1, int(round(0.15 * n))))
        assert len(x.masked_lm_positions) <= target
        short += len(x.masked_lm_positions) < target
        positions = x.masked_lm_positions
        assert np.all(np.diff(positions) > 0)
        assert not np.isin(x.masked_lm_ids, [vocab.cls_id, vocab.sep_id, 0]).any()
        seps = np.flatnonzero(x.input_ids == vocab.sep_id)
        assert x.input_ids[0] == vocab.cls_id and seps[-1] == n - 1 and len(seps) == 2
        assert not np.isin(positions, [0, seps[0], seps[1]]).any()
        np.testing.assert_array_equal(x.segment_ids, (np.arange(n) > seps[0]).astype(np.int8))
        assert x.token_boundary[0] == 1 and x.token_boundary[seps].all()
    assert short == stats.counts["instances_short_of_target"]
    assert short <= 0.01 * len(instances)


def test_whole_words_are_masked_together(vocab, documents):
    instances, _ = _make(vocab, documents, InstanceOptions(max_seq_length=64, max_predictions_per_seq=10), passes=1)
    checked = 0
    for x in instances:
        masked = set(x.masked_lm_positions.tolist())
        seps = set(np.flatnonzero(x.input_ids == vocab.sep_id).tolist())
        for p in masked:
            # A continuation piece (boundary 0) is masked only with the piece before it in its word.
            nxt = p + 1
            while nxt in seps:
                nxt += 1
            if nxt < len(x.input_ids) and x.token_boundary[nxt] == 0 and nxt not in seps:
                assert nxt in masked
                checked += 1
    assert checked > 100


def test_same_key_same_instances_other_key_other_instances(vocab, documents):
    maker = InstanceMaker(vocab, InstanceOptions(max_seq_length=64, max_predictions_per_seq=10))

    def run(key):
        return [(x.input_ids.tolist(), x.masked_lm_positions.tolist()) for x in
                maker.document_instances(documents, 5, document_rng(*key), Statistics())]

    assert run((1, 0, 5)) == run((1, 0, 5))
    assert run((1, 0, 5)) != run((1, 1, 5))
    assert run((1, 0, 5)) != run((2, 0, 5))


def test_official_random_negatives_flag(vocab, documents):
    options = InstanceOptions(max_seq_length=64, max_predictions_per_seq=10, official_random_negatives=True)
    _, stats = _make(vocab, documents, options, passes=1)
    assert stats.counts["random_document_segments"] > 0
    assert stats.counts["single_sentence_splits"] == 0
    _, default = _make(vocab, documents, InstanceOptions(max_seq_length=64, max_predictions_per_seq=10), passes=1)
    assert default.counts["single_sentence_splits"] > 0


def test_random_replacements_are_never_special_unless_official(spm_model_path, documents):
    sp = load_sentencepiece(spm_model_path)
    default = MaskingVocab(sp)
    official = MaskingVocab(sp, official_random_replacement=True)
    assert not np.isin(default.replacement_ids, [0, 1, 2, 3, 4]).any()
    assert len(official.replacement_ids) == sp.get_piece_size()
    instances, stats = _make(default, documents, InstanceOptions(max_seq_length=64, max_predictions_per_seq=10))
    replaced = collections.Counter()
    for x in instances:
        for p, original in zip(x.masked_lm_positions, x.masked_lm_ids):
            if x.input_ids[p] not in (default.mask_id, original):
                replaced[int(x.input_ids[p])] += 1
    assert sum(replaced.values()) > 100
    assert not set(replaced) & {0, 1, 2, 3, 4}


def test_options_validate():
    with pytest.raises(ValueError):
        InstanceOptions(max_seq_length=4)
    with pytest.raises(ValueError):
        InstanceOptions(max_predictions_per_seq=0)
    assert InstanceOptions(ngram=2, favor_shorter_ngram=False).ngram_probabilities() == pytest.approx([1 / 3, 2 / 3])


def test_official_nondeterministic_flag_gives_different_runs(vocab, documents):
    options = InstanceOptions(max_seq_length=64, max_predictions_per_seq=10, official_nondeterministic=True)
    maker = InstanceMaker(vocab, options)

    def run():
        rngs = [document_rng(1, 0, i, nondeterministic=True) for i in range(5)]
        return [x.masked_lm_positions.tolist() for i in range(5)
                for x in maker.document_instances(documents, i, rngs[i], Statistics())]

    assert run() != run()

