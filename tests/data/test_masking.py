"""The static masker (create-data) and the dynamic one (pretrain --dynamic-masking) share one
`MaskingSpec` and draw the same distribution on the same tokens (issue 22, item 3a).

Both mask the same few hundred instances (made from the embedded corpus with the shared
SentencePiece model, so many words have several pieces) many times. Every comparison has a
tolerance of `Z` standard errors computed from the sample sizes; the negative controls show that
the comparisons notice a masker with another n-gram length or another [MASK] share.
"""

import dataclasses
import math
import random

import numpy as np
import pytest

from albert_keras.corpus import embedded_corpus
from albert_keras.data.instances import InstanceMaker
from albert_keras.data.instances import InstanceOptions
from albert_keras.data.instances import Statistics
from albert_keras.data.instances import document_rng
from albert_keras.data.masking import MaskingSpec
from albert_keras.data.vocab import MaskingVocab
from albert_keras.tokenization import load_sentencepiece
from albert_keras.tokenization import preprocess_text

SEQ = 64
PREDICTIONS = 8  # below round(0.15 * 64) = 10, so the cap binds for long instances
INSTANCES = 300
REPEATS = 6
# A two-sided normal tail of 7e-6 per comparison: with about 20 comparisons a correct pair of
# maskers fails by chance about once in 7,000 seeds (and the seeds here are fixed).
Z = 4.5
LONGEST_RUN = 6  # runs of masked words this long or longer share the last histogram bin


def _options(**changes):
    return InstanceOptions(max_seq_length=SEQ, max_predictions_per_seq=PREDICTIONS, short_seq_prob=0.3, **changes)


@pytest.fixture(scope="module")
def vocab(spm_model_path):
    return MaskingVocab(load_sentencepiece(spm_model_path))


@pytest.fixture(scope="module")
def instances(vocab):
    """(unmasked ids, boundary, len_a, stored record) of `INSTANCES` instances of varied length."""
    documents = []
    for document in embedded_corpus():
        sentences = [ids for ids in vocab.encode_sentences([preprocess_text(s) for s in document]) if len(ids)]
        if sentences:
            documents.append(sentences)
    maker = InstanceMaker(vocab, _options())
    made = []
    for index in range(len(documents)):
        made += maker.document_instances(documents, index, document_rng(11, 0, index), Statistics())
        if len(made) >= INSTANCES:
            break
    result = []
    for x in made[:INSTANCES]:
        ids = x.input_ids.copy()
        ids[x.masked_lm_positions] = x.masked_lm_ids
        len_a = int(np.flatnonzero(ids == vocab.sep_id)[0]) - 1
        result.append((ids, np.asarray(x.token_boundary, bool), len_a, x))
    return result


def _words(ids, boundary, len_a):
    """Word index per position (-1 for [CLS]/[SEP]), by the rule as the spec states it."""
    word = np.full(len(ids), -1)
    current = -1
    for p in range(1, len(ids) - 1):
        if p == len_a + 1:
            continue
        if boundary[p] or current < 0:
            current += 1
        word[p] = current
    return word


def _observe(spec, instances, maskings, mask_id, replacement_count):
    """What a masker did, as counts, from (positions, new ids) per masking of `instances * REPEATS`."""
    tally = {"maskings": 0, "at_budget": 0, "masked": [], "mask": 0, "kept": 0, "random": 0,
             "runs": np.zeros(LONGEST_RUN, int), "split_words": 0, "non_candidates": 0, "multi_piece_masked": 0}
    for (ids, boundary, len_a, _), (positions, new_ids) in zip(instances * REPEATS, maskings):
        word = _words(ids, boundary, len_a)
        budget = spec.num_to_predict(len(ids))
        tally["maskings"] += 1
        tally["masked"].append(len(positions))
        tally["at_budget"] += len(positions) == budget
        assert len(positions) <= budget
        inside = positions < len(ids)  # beyond: padding
        masked_word = np.full(len(positions), -1)
        masked_word[inside] = word[positions[inside]]
        tally["non_candidates"] += int(np.sum(masked_word < 0))  # [CLS], [SEP] or padding
        masked_word = masked_word[masked_word >= 0]
        pieces = np.bincount(word[word >= 0])
        masked_pieces = np.bincount(masked_word, minlength=len(pieces))
        # A word is masked whole or not at all.
        tally["split_words"] += int(np.sum((masked_pieces > 0) & (masked_pieces < pieces)))
        tally["multi_piece_masked"] += int(np.sum((masked_pieces > 1) & (masked_pieces == pieces)))
        # Runs of consecutive masked words: the observable trace of the n-gram lengths.
        masked_words = np.zeros(len(pieces) + 1, bool)
        masked_words[masked_word] = True
        run = 0
        for flag in masked_words:
            if flag:
                run += 1
            elif run:
                tally["runs"][min(run, LONGEST_RUN) - 1] += 1
                run = 0
        original = ids[positions[inside]]
        new_ids = new_ids[inside]
        is_mask = new_ids == mask_id
        tally["mask"] += int(is_mask.sum())
        tally["kept"] += int(np.sum(~is_mask & (new_ids == original)))
        tally["random"] += int(np.sum(~is_mask & (new_ids != original)))
    tally["masked"] = np.asarray(tally["masked"], float)
    tally["replacement_count"] = replacement_count
    return tally


def _static(vocab, instances, options, spec=None):
    maker = InstanceMaker(vocab, options)
    if spec is not None:  # a negative control: other [MASK]/kept/random shares (read at every call)
        maker.spec = spec
    stats = Statistics(options.ngram)
    maskings = []
    for r in range(REPEATS):
        for i, (ids, boundary, len_a, _) in enumerate(instances):
            tokens = ids.copy()
            positions, _ = maker.mask_tokens(tokens, boundary, len_a, random.Random(f"masking/{r}/{i}"), stats)
            maskings.append((positions, tokens[positions]))
    return maker.spec, _observe(maker.spec, instances, maskings, vocab.mask_id, len(vocab.replacement_ids)), stats


def _dynamic(vocab, instances, options):
    import tensorflow as tf

    from albert_keras.data.pipeline import DynamicMasker

    masker = DynamicMasker(SEQ, PREDICTIONS, vocab.vocab_size, options.masked_lm_prob, options.ngram,
                           vocabulary=vocab.manifest_entry(), favor_shorter_ngram=options.favor_shorter_ngram,
                           do_whole_word_mask=options.do_whole_word_mask)
    columns = {name: [] for name in ("input_ids", "input_mask", "segment_ids", "token_boundary",
                                     "masked_lm_positions", "masked_lm_ids", "masked_lm_weights")}
    for _, _, _, x in instances:  # the stored records, masks and all: the masker undoes them
        pad, k = SEQ - len(x.input_ids), len(x.masked_lm_positions)
        columns["input_ids"].append(np.pad(x.input_ids, (0, pad)))
        columns["input_mask"].append(np.pad(np.ones(len(x.input_ids), np.int32), (0, pad)))
        columns["segment_ids"].append(np.pad(x.segment_ids, (0, pad)))
        columns["token_boundary"].append(np.pad(np.asarray(x.token_boundary, np.int32), (0, pad)))
        columns["masked_lm_positions"].append(np.pad(x.masked_lm_positions, (0, PREDICTIONS - k)))
        columns["masked_lm_ids"].append(np.pad(x.masked_lm_ids, (0, PREDICTIONS - k)))
        columns["masked_lm_weights"].append(np.pad(np.ones(k, np.float32), (0, PREDICTIONS - k)))
    data = {name: np.stack(value).astype(np.float32 if name == "masked_lm_weights" else np.int32)
            for name, value in columns.items()}
    dataset = tf.data.Dataset.from_tensor_slices(data).repeat(REPEATS).enumerate()
    dataset = dataset.map(lambda i, example: masker(example, tf.stack([tf.constant(3, tf.int64), i])),
                          num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    maskings = []
    for batch in dataset.batch(512).as_numpy_iterator():
        for row in range(len(batch["input_ids"])):
            k = int(batch["masked_lm_weights"][row].sum())
            positions = batch["masked_lm_positions"][row, :k]
            maskings.append((positions, batch["input_ids"][row, np.minimum(positions, SEQ - 1)]))
    return masker.spec, _observe(masker.spec, instances, maskings, masker.mask_id, len(masker._replacement_ids))


def _matches(k, n, p):
    """k of n agrees with probability p within Z binomial standard errors."""
    return abs(k / n - p) <= Z * math.sqrt(p * (1 - p) / n) + 1e-12


def _agree(k1, n1, k2, n2):
    """Two observed proportions agree within Z standard errors (pooled two-sample test)."""
    p = (k1 + k2) / (n1 + n2)
    return abs(k1 / n1 - k2 / n2) <= Z * math.sqrt(p * (1 - p) * (1 / n1 + 1 / n2)) + 1e-12


def _differences(spec, a, b):
    """The names of the checks on which tallies `a` and `b` (or either and `spec`) disagree."""
    failed = []
    for name, tally in (("a", a), ("b", b)):
        masked = tally["mask"] + tally["kept"] + tally["random"]
        # A random replacement equal to the original id reads as kept.
        chance = 1 / tally["replacement_count"]
        expected = {"mask": spec.mask_probability, "kept": spec.keep_probability + spec.random_probability * chance,
                    "random": spec.random_probability * (1 - chance)}
        failed += [f"{name}: {kind} share vs spec" for kind, p in expected.items()
                   if not _matches(tally[kind], masked, p)]
        if tally["split_words"] or tally["non_candidates"]:
            failed.append(f"{name}: split words or masked [CLS]/[SEP]/padding")
    masked_a, masked_b = (t["mask"] + t["kept"] + t["random"] for t in (a, b))
    failed += [f"{kind} share a vs b" for kind in ("mask", "kept", "random")
               if not _agree(a[kind], masked_a, b[kind], masked_b)]
    runs_a, runs_b = a["runs"].sum(), b["runs"].sum()
    failed += [f"runs of {n + 1} words" for n in range(LONGEST_RUN)
               if not _agree(a["runs"][n], runs_a, b["runs"][n], runs_b)]
    if not _agree(a["at_budget"], a["maskings"], b["at_budget"], b["maskings"]):
        failed.append("share of maskings at the budget")
    se = math.sqrt(a["masked"].var() / len(a["masked"]) + b["masked"].var() / len(b["masked"]))
    if abs(a["masked"].mean() - b["masked"].mean()) > Z * se:
        failed.append("masked tokens per instance")
    return failed


@pytest.fixture(scope="module")
def observed(vocab, instances):
    static_spec, static, stats = _static(vocab, instances, _options())
    dynamic_spec, dynamic = _dynamic(vocab, instances, _options())
    assert static_spec == dynamic_spec
    return static_spec, static, dynamic, stats


def test_static_and_dynamic_masks_have_one_distribution(instances, observed):
    spec, static, dynamic, stats = observed
    # The instances hold many multi-piece words, and both maskers mask some of them (whole).
    pieces = [np.bincount(w[w >= 0]) for w in (_words(*x[:3]) for x in instances)]
    assert sum(int(np.sum(p > 1)) for p in pieces) > 500
    assert min(static["multi_piece_masked"], dynamic["multi_piece_masked"]) > 500
    assert len({len(x[0]) for x in instances}) > 20  # budgets below and at the cap
    assert static["at_budget"] > 0
    assert _differences(spec, static, dynamic) == []
    # The static masker's n-gram draws follow the spec's p(n) (the dynamic draws show in the runs).
    drawn = sum(stats.ngram_drawn)
    for count, p in zip(stats.ngram_drawn, spec.ngram_probabilities()):
        assert _matches(count, drawn, p)


def test_the_comparison_notices_another_ngram_or_mask_share(vocab, instances, observed):
    spec, _, dynamic, _ = observed
    _, shorter, _ = _static(vocab, instances, _options(ngram=2))
    assert any(d.startswith("runs of") for d in _differences(spec, shorter, dynamic))
    _, reversed_, _ = _static(vocab, instances, _options(favor_shorter_ngram=False))
    assert any(d.startswith("runs of") for d in _differences(spec, reversed_, dynamic))
    fewer_masks = dataclasses.replace(spec, mask_probability=0.7, keep_probability=0.2)
    _, masks, _ = _static(vocab, instances, _options(), spec=fewer_masks)
    differences = _differences(spec, masks, dynamic)
    assert "a: mask share vs spec" in differences and "mask share a vs b" in differences


def test_both_maskers_take_one_spec(vocab):
    options = _options(ngram=2, favor_shorter_ngram=False, masked_lm_prob=0.2)
    maker = InstanceMaker(vocab, options)
    from albert_keras.data.pipeline import DynamicMasker

    masker = DynamicMasker(SEQ, PREDICTIONS, vocab.vocab_size, 0.2, 2, favor_shorter_ngram=False)
    assert maker.spec == masker.spec == options.masking_spec()
    assert options.ngram_probabilities() == maker.spec.ngram_probabilities() == pytest.approx([1 / 3, 2 / 3])
    np.testing.assert_allclose(np.exp(masker._log_probs.numpy()[0]), [1 / 3, 2 / 3], rtol=1e-6)
    # The in-graph budget is the spec's, also where float32 rounding would differ (190 * 0.15).
    long_masker = DynamicMasker(256, 40, vocab.vocab_size)
    assert long_masker.spec.num_to_predict(190) == 28 == int(long_masker._budgets.numpy()[190])


def test_spec_validates_and_states_the_rule():
    spec = MaskingSpec()
    assert (spec.mask_probability, spec.keep_probability, spec.random_probability) == (0.8, 0.1, 0.1)
    assert spec.keep_given_not_masked == 0.5
    assert [spec.num_to_predict(n) for n in (0, 3, 10, 64, 200)] == [1, 1, 2, 10, 20]
    assert spec.cumulative_ngram_probabilities()[-1] == 1.0
    with pytest.raises(ValueError, match="ngram"):
        MaskingSpec(ngram=0)
    with pytest.raises(ValueError, match="sum to 1"):
        MaskingSpec(mask_probability=0.9)
