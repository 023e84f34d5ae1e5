"""ALBERT pretraining instances: SOP segment pairs and n-gram whole-word masking, on int ids.

This is the algorithm of the official `create_instances_from_document` and
`create_masked_lm_predictions` (official-albert.md §1.3-1.4), re-expressed over integer ids with
numpy tables (see `vocab.MaskingVocab`) so it runs an order of magnitude faster. Three documented
deviations, each switchable back to the official behaviour through `InstanceOptions`:

(a) Deterministic: every document gets its own RNG seeded from (seed, dupe pass, document index),
    so output depends only on the inputs and the seed (the official script draws n-gram lengths
    from the unseeded global NumPy RNG). `official_nondeterministic=True` seeds from the OS.
(b) Pure SOP: a chunk holding a single sentence does not pair it with a random other document
    labelled 1 (the official NSP leftover, issue #234); it is split into two consecutive segments
    at a random word start instead, and labelled like any other SOP pair.
    `official_random_negatives=True` restores random-document segments, drawn from the documents
    of the same work chunk (the official script draws from the whole corpus, held in memory).
(c) The 10% random replacement tokens are never special pieces (`<pad>`, `[CLS]`, ...).
    `official_random_replacement=True` (a `MaskingVocab` argument) draws from the whole vocabulary.

The masking constants (budget, n-gram probabilities, 80/10/10) come from `masking.MaskingSpec`,
which the dynamic masker (`pipeline.DynamicMasker`) shares.
"""

import bisect
import dataclasses
import random

import numpy as np

from albert_keras.data.masking import MaskingSpec


@dataclasses.dataclass(frozen=True)
class InstanceOptions:
    """Settings of instance creation; the defaults are the official flag defaults.

    Args:
        max_seq_length: tokens per instance including `[CLS]` and two `[SEP]`.
        max_predictions_per_seq: cap on masked positions per instance.
        masked_lm_prob: share of tokens to mask before the cap.
        short_seq_prob: probability that a document uses a shorter random target length.
        ngram: longest n-gram (in whole words) to mask; p(n) is proportional to 1/n.
        favor_shorter_ngram: False reverses the n-gram probabilities, as the official flag does.
        do_whole_word_mask: mask whole words (continuation pieces join the previous word).
        official_random_negatives: deviation (b) off: single-sentence chunks take segment B from
            a random document and get label 1.
        official_nondeterministic: deviation (a) off: RNGs are seeded from the OS, so reruns differ.

    Example:
    >>> InstanceOptions(max_seq_length=128, max_predictions_per_seq=20).ngram_probabilities()
    [0.5454545454545455, 0.27272727272727276, 0.18181818181818182]
    """

    max_seq_length: int = 512
    max_predictions_per_seq: int = 20
    masked_lm_prob: float = 0.15
    short_seq_prob: float = 0.1
    ngram: int = 3
    favor_shorter_ngram: bool = True
    do_whole_word_mask: bool = True
    official_random_negatives: bool = False
    official_nondeterministic: bool = False

    def __post_init__(self):
        if self.max_seq_length < 5:
            raise ValueError(f"max_seq_length must be >= 5, got {self.max_seq_length}")
        self.masking_spec()  # validates the masking settings

    def masking_spec(self):
        """The masking settings as the `MaskingSpec` both maskers share (`data.masking`)."""
        return MaskingSpec(
            masked_lm_prob=self.masked_lm_prob, max_predictions_per_seq=self.max_predictions_per_seq,
            ngram=self.ngram, favor_shorter_ngram=self.favor_shorter_ngram,
            do_whole_word_mask=self.do_whole_word_mask,
        )

    def ngram_probabilities(self):
        """p(n) for n = 1..ngram, as the official script computes them (`MaskingSpec`)."""
        return self.masking_spec().ngram_probabilities()


class Statistics:
    """Counters gathered while creating instances; `merge` adds another's, `to_dict` reports them."""

    COUNTERS = (
        "documents", "sentences", "input_tokens", "instances", "tokens", "masked_tokens",
        "mask_token", "kept_token", "random_token", "sop_label_0", "sop_label_1",
        "random_document_segments", "single_sentence_splits", "single_token_chunks_skipped",
        "truncated_instances", "truncated_tokens", "instances_short_of_target", "whole_words_segmented",
        "chinese_ref_rejected_positions", "chinese_ref_unreferenced_lines",
    )

    def __init__(self, ngram=3):
        self.counts = dict.fromkeys(self.COUNTERS, 0)
        self.ngram_drawn = [0] * ngram
        self.ngram_masked = [0] * ngram

    def merge(self, other):
        for key, value in other.counts.items():
            self.counts[key] += value
        for i, value in enumerate(other.ngram_drawn):
            self.ngram_drawn[i] += value
        for i, value in enumerate(other.ngram_masked):
            self.ngram_masked[i] += value

    def to_dict(self):
        c = self.counts
        result = dict(c)
        result["masked_fraction"] = c["masked_tokens"] / c["tokens"] if c["tokens"] else 0.0
        result["sop_label_1_fraction"] = c["sop_label_1"] / c["instances"] if c["instances"] else 0.0
        masked = c["masked_tokens"] or 1
        result["mask_fractions"] = {
            "mask": c["mask_token"] / masked,
            "kept": c["kept_token"] / masked,
            "random": c["random_token"] / masked,
        }
        result["ngram_drawn_histogram"] = {str(n + 1): v for n, v in enumerate(self.ngram_drawn)}
        result["ngram_masked_histogram"] = {str(n + 1): v for n, v in enumerate(self.ngram_masked)}
        return result


@dataclasses.dataclass
class TrainingInstance:
    """One pretraining example before padding.

    `input_ids`, `segment_ids` and `token_boundary` (bool or 0/1 ints) have the real length;
    `masked_lm_positions` ascend and `masked_lm_ids` hold the original ids at those positions.
    """

    input_ids: np.ndarray
    segment_ids: np.ndarray
    token_boundary: np.ndarray
    masked_lm_positions: np.ndarray
    masked_lm_ids: np.ndarray
    next_sentence_label: int


def document_rng(seed, dupe_pass, document_index, nondeterministic=False):
    """The per-document RNG behind deviation (a): a `random.Random` keyed by all three numbers.

    String seeds are hashed with SHA-512 by `random.Random`, so the stream is the same in every
    process and Python run (PYTHONHASHSEED does not matter).
    """
    if nondeterministic:
        return random.Random()
    return random.Random(f"albert-keras/{seed}/{dupe_pass}/{document_index}")


def _truncate_pair(a_len, b_len, max_num_tokens, rng):
    """Official `truncate_seq_pair` on lengths: returns (a_front, a_back, b_front, b_back) cuts."""
    cuts = [0, 0, 0, 0]
    while a_len + b_len > max_num_tokens:
        # The longer side loses a token (B on ties), from the front or back with p = 0.5 each.
        side = 0 if a_len > b_len else 2
        cuts[side + (0 if rng.random() < 0.5 else 1)] += 1
        if side == 0:
            a_len -= 1
        else:
            b_len -= 1
    return cuts


class InstanceMaker:
    """Makes `TrainingInstance`s from tokenized documents, one document at a time.

    Args:
        vocab: a `MaskingVocab` for the SentencePiece model the ids come from.
        options: `InstanceOptions`.

    Example:
    ```python
    maker = InstanceMaker(vocab, InstanceOptions(max_seq_length=128))
    documents = [vocab.encode_sentences(sentences) for sentences in corpus]
    stats = Statistics()
    for index in range(len(documents)):
        rng = document_rng(seed=12345, dupe_pass=0, document_index=index)
        instances = maker.document_instances(documents, index, rng, stats)
    ```
    """

    def __init__(self, vocab, options):
        self.vocab = vocab
        self.options = options
        self.spec = options.masking_spec()
        self._cumulative = self.spec.cumulative_ngram_probabilities()
        self._is_start = vocab.is_start
        self._replacement_ids = vocab.replacement_ids

    def document_instances(self, documents, document_index, rng, stats):
        """All instances of `documents[document_index]` (official `create_instances_from_document`).

        Args:
            documents: list of documents; each is a list of int id arrays (sentences). Only used
                beyond `document_index` with `official_random_negatives`.
            document_index: which document to cut into instances.
            rng: a `random.Random` (see `document_rng`).
            stats: a `Statistics` to update.

        Returns:
            A list of `TrainingInstance`.
        """
        options = self.options
        document = documents[document_index]
        max_num_tokens = options.max_seq_length - 3
        target_seq_length = max_num_tokens
        if rng.random() < options.short_seq_prob:
            target_seq_length = rng.randint(2, max_num_tokens)
        instances = []
        chunk = []
        chunk_length = 0
        i = 0
        while i < len(document):
            segment = document[i]
            chunk.append(segment)
            chunk_length += len(segment)
            if i == len(document) - 1 or chunk_length >= target_seq_length:
                a_end = 1 if len(chunk) < 2 else rng.randint(1, len(chunk) - 1)
                tokens_a = np.concatenate(chunk[:a_end])
                label = 0
                if len(chunk) == 1 and options.official_random_negatives:
                    label = 1
                    tokens_b = self._random_document_tokens(
                        documents, document_index, target_seq_length - len(tokens_a), rng
                    )
                    stats.counts["random_document_segments"] += 1
                    i -= len(chunk) - a_end
                elif len(chunk) == 1:
                    split = self._split_point(tokens_a, rng)
                    if split is None:
                        stats.counts["single_token_chunks_skipped"] += 1
                        chunk, chunk_length = [], 0
                        i += 1
                        continue
                    stats.counts["single_sentence_splits"] += 1
                    tokens_a, tokens_b = tokens_a[:split], tokens_a[split:]
                    if rng.random() < 0.5:
                        label = 1
                        tokens_a, tokens_b = tokens_b, tokens_a
                else:
                    tokens_b = np.concatenate(chunk[a_end:])
                    if rng.random() < 0.5:
                        label = 1
                        tokens_a, tokens_b = tokens_b, tokens_a
                instance = self._make_instance(tokens_a, tokens_b, label, max_num_tokens, rng, stats)
                if instance is not None:
                    instances.append(instance)
                chunk, chunk_length = [], 0
            i += 1
        return instances

    def _random_document_tokens(self, documents, document_index, target_b_length, rng):
        for _ in range(10):
            random_index = rng.randint(0, len(documents) - 1)
            if random_index != document_index:
                break
        random_document = documents[random_index]
        start = rng.randint(0, len(random_document) - 1)
        pieces = []
        length = 0
        for j in range(start, len(random_document)):
            pieces.append(random_document[j])
            length += len(random_document[j])
            if length >= target_b_length:
                break
        return np.concatenate(pieces)

    def _split_point(self, tokens, rng):
        # Deviation (b): cut a lone sentence into two consecutive segments, at a word start when
        # there is one, so SOP still compares two pieces of the same text in and out of order.
        if len(tokens) < 2:
            return None
        starts = np.flatnonzero(self._is_start[tokens[1:]]) + 1
        if starts.size:
            return int(starts[rng.randrange(starts.size)])
        return rng.randint(1, len(tokens) - 1)

    def _make_instance(self, tokens_a, tokens_b, label, max_num_tokens, rng, stats):
        a_front, a_back, b_front, b_back = _truncate_pair(len(tokens_a), len(tokens_b), max_num_tokens, rng)
        removed = a_front + a_back + b_front + b_back
        if removed:
            stats.counts["truncated_instances"] += 1
            stats.counts["truncated_tokens"] += removed
            tokens_a = tokens_a[a_front : len(tokens_a) - a_back]
            tokens_b = tokens_b[b_front : len(tokens_b) - b_back]
        if len(tokens_a) < 1 or len(tokens_b) < 1:
            return None
        vocab = self.vocab
        len_a, len_b = len(tokens_a), len(tokens_b)
        length = len_a + len_b + 3
        tokens = np.empty(length, np.int32)
        tokens[0] = vocab.cls_id
        tokens[1 : len_a + 1] = tokens_a
        tokens[len_a + 1] = vocab.sep_id
        tokens[len_a + 2 : length - 1] = tokens_b
        tokens[length - 1] = vocab.sep_id
        segment_ids = np.zeros(length, np.int8)
        segment_ids[len_a + 2 :] = 1
        boundary = self._is_start[tokens]
        boundary[[0, len_a + 1, length - 1]] = True
        if getattr(vocab, "unmark", None) is not None:
            # Whole-word masking marked continuation characters to group words; the records (inputs
            # and labels alike) store the plain ids.
            tokens = vocab.unmark[tokens]
        positions, original_ids = self.mask_tokens(tokens, boundary, len_a, rng, stats)
        counts = stats.counts
        counts["instances"] += 1
        counts["tokens"] += length
        counts["sop_label_1" if label else "sop_label_0"] += 1
        return TrainingInstance(tokens, segment_ids, boundary, positions, original_ids, label)

    def mask_tokens(self, tokens, boundary, len_a, rng, stats):
        """Official `create_masked_lm_predictions` with the constants of `self.spec` (`MaskingSpec`).

        Candidates are every position but `[CLS]` (0) and the two `[SEP]`s (`len_a + 1`, last);
        candidate index c is token position `c + 1 + (c >= len_a)`, so word spans are kept as
        candidate-index ranges and no candidate array is built.

        Args:
            tokens: int32 ids of one instance, `[CLS] A [SEP] B [SEP]`; masked in place.
            boundary: bool per token, True where a word starts (`[CLS]`/`[SEP]` included).
            len_a: length of segment A.
            rng: a `random.Random`; the draws are made in the official script's order.
            stats: a `Statistics` to update.

        Returns:
            (positions, original ids): int32 arrays, positions ascending.

        Example:
        ```python
        positions, originals = maker.mask_tokens(tokens, boundary, len_a, random.Random(1), Statistics())
        ```
        """
        spec = self.spec
        length = len(tokens)
        num_candidates = length - 3
        if spec.do_whole_word_mask:
            # Word starts among the candidates: boundary pieces of A and B, plus the first one.
            starts = np.flatnonzero(boundary[1:-1])  # candidate-ish index p - 1, [SEP] included
            starts = starts[starts != len_a]  # drop the middle [SEP]
            starts[starts > len_a] -= 1  # positions after [SEP] shift down by one
            bounds = starts.tolist()
            if not bounds or bounds[0] != 0:
                bounds.insert(0, 0)  # the first candidate always opens a group
        else:
            bounds = list(range(num_candidates))
        num_words = len(bounds)
        bounds.append(num_candidates)
        num_to_predict = spec.num_to_predict(length)
        ngram = spec.ngram
        cumulative = self._cumulative
        covered = set()
        swapped = {}  # sparse Fisher-Yates: only the displaced entries of range(num_words)
        picked = []  # (first, end) candidate-index ranges
        masked = 0
        drawn = stats.ngram_drawn
        masked_hist = stats.ngram_masked
        randrange, random_ = rng.randrange, rng.random
        for k in range(num_words):
            if masked >= num_to_predict:
                break
            # Lazy Fisher-Yates: the same distribution as shuffling all n-gram starts up front.
            j = randrange(k, num_words)
            word = swapped.get(j, j)
            swapped[j] = swapped.get(k, k)
            n = min(bisect.bisect_right(cumulative, random_()) + 1, ngram)
            drawn[n - 1] += 1
            # Fall back to shorter n-grams while the longer one would exceed the budget.
            while n >= 1:
                end_word = min(word + n, num_words)
                span = bounds[end_word] - bounds[word]
                if masked + span <= num_to_predict:
                    break
                n -= 1
            if n == 0:
                continue
            words = range(word, end_word)
            if not covered.isdisjoint(words):
                continue
            covered.update(words)
            masked_hist[end_word - word - 1] += 1
            picked.append((bounds[word], bounds[end_word]))
            masked += span
        counts = stats.counts
        if masked < num_to_predict:
            counts["instances_short_of_target"] += 1
        picked.sort()
        positions = [c + 1 if c < len_a else c + 2 for first, end in picked for c in range(first, end)]
        if not positions:
            return np.zeros(0, np.int32), np.zeros(0, np.int32)
        original = tokens[positions]
        values = original.tolist()
        replacement_ids = self._replacement_ids
        num_replacements = len(replacement_ids)
        mask_id = self.vocab.mask_id
        # Two draws as the official script makes them: [MASK] or not, then kept or random.
        mask_probability, keep_given_not_masked = spec.mask_probability, spec.keep_given_not_masked
        num_mask = num_kept = num_random = 0
        for i in range(len(values)):
            if random_() < mask_probability:
                values[i] = mask_id
                num_mask += 1
            elif random_() < keep_given_not_masked:
                num_kept += 1
            else:
                values[i] = replacement_ids[randrange(num_replacements)]
                num_random += 1
        tokens[positions] = values
        counts["masked_tokens"] += len(positions)
        counts["mask_token"] += num_mask
        counts["kept_token"] += num_kept
        counts["random_token"] += num_random
        return np.asarray(positions, np.int32), original
