"""The one statement of ALBERT's masked-LM masking rule, shared by both maskers.

Two maskers apply it: the static one that `create-data` runs while it writes records
(`instances.InstanceMaker`, the official `create_masked_lm_predictions` on int ids) and the dynamic
in-graph one that re-masks stored records every epoch (`pipeline.DynamicMasker`). Both take every
constant from a `MaskingSpec`: the masking budget, the n-gram length probabilities, whole-word or
per-token grouping and the [MASK]/kept/random split. `tests/data/test_masking.py` masks the same
tokens with both and checks that they draw the same distribution.

The rule (official-albert.md §1.4): candidates are every token but `[CLS]`/`[SEP]`/padding, grouped
into words (a piece that does not start a word joins the one before). Words are visited in random
order; at each, an n-gram length n in 1..ngram is drawn with p(n) ∝ 1/n (reversed with
`favor_shorter_ngram=False`) and shortened while the n words would overshoot the budget; an n-gram
touching an already masked word is skipped. Masking stops at the budget. Each masked token then
becomes `[MASK]` (80 %), stays (10 %) or becomes a random replacement id (10 %).
"""

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class MaskingSpec:
    """What to mask and how: the settings and derived constants both maskers use.

    Args:
        masked_lm_prob: share of an instance's tokens (all of them, `[CLS]`/`[SEP]` included, as
            the official script counts) to mask before the cap.
        max_predictions_per_seq: cap on masked tokens per instance.
        ngram: longest n-gram, in words.
        favor_shorter_ngram: p(n) ∝ 1/n; False reverses the probabilities (the official flag).
        do_whole_word_mask: group continuation pieces with their word; False: every token is a word.
        mask_probability, keep_probability, random_probability: what a masked token becomes:
            `[MASK]`, itself, or a random replacement id (they must sum to 1).

    Example:
    >>> spec = MaskingSpec(masked_lm_prob=0.15, max_predictions_per_seq=20)
    >>> spec.num_to_predict(128), spec.num_to_predict(512), spec.ngram_probabilities()
    (19, 20, [0.5454545454545455, 0.27272727272727276, 0.18181818181818182])
    """

    masked_lm_prob: float = 0.15
    max_predictions_per_seq: int = 20
    ngram: int = 3
    favor_shorter_ngram: bool = True
    do_whole_word_mask: bool = True
    mask_probability: float = 0.8
    keep_probability: float = 0.1
    random_probability: float = 0.1

    def __post_init__(self):
        if self.max_predictions_per_seq < 1:
            raise ValueError(f"max_predictions_per_seq must be >= 1, got {self.max_predictions_per_seq}")
        if self.ngram < 1:
            raise ValueError(f"ngram must be >= 1, got {self.ngram}")
        shares = (self.mask_probability, self.keep_probability, self.random_probability)
        if min(shares) < 0 or abs(sum(shares) - 1.0) > 1e-9:
            raise ValueError(f"mask/keep/random probabilities must be >= 0 and sum to 1, got {shares}")

    def num_to_predict(self, length):
        """Tokens to mask in an instance of `length` tokens (official: round half to even, >= 1).

        Example:
        >>> MaskingSpec().num_to_predict(10)
        2
        """
        return min(self.max_predictions_per_seq, max(1, int(round(length * self.masked_lm_prob))))

    def budget_table(self, max_seq_length):
        """`num_to_predict(length)` for length 0..max_seq_length as an int32 array (for in-graph
        lookup, so the graph rounds exactly as Python does rather than in float32)."""
        return np.array([self.num_to_predict(n) for n in range(max_seq_length + 1)], np.int32)

    def ngram_probabilities(self):
        """p(n) for n = 1..ngram, computed as the official script does (1/n, normalised)."""
        weights = [1.0 / n for n in range(1, self.ngram + 1)]
        total = sum(weights)
        probabilities = [w / total for w in weights]
        return probabilities if self.favor_shorter_ngram else probabilities[::-1]

    def cumulative_ngram_probabilities(self):
        """Running sums of `ngram_probabilities`, the last pinned to exactly 1.0 (so a uniform draw
        in [0, 1) always lands on a length: n = bisect_right(cumulative, u) + 1)."""
        cumulative = [float(c) for c in np.cumsum(self.ngram_probabilities())]
        cumulative[-1] = 1.0
        return cumulative

    @property
    def keep_given_not_masked(self):
        """P(kept | not `[MASK]`): the official script draws `[MASK]` first, then keep-or-random."""
        rest = self.keep_probability + self.random_probability
        return self.keep_probability / rest if rest else 0.0
