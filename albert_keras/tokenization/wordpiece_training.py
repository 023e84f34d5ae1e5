"""Training a WordPiece vocabulary (`vocab.txt`) in BERT-Chinese's layout (`train_wordpiece`).

The words are counted with `basic_tokenize`, the very splitting `WordPieceModel` applies, and
the pieces are learned by tensorflow-text's WordPiece learner
(`tensorflow_text.tools.wordpiece_vocab.wordpiece_tokenizer_learner_lib.learn`, the algorithm
behind `bert_vocab_from_dataset`; it is handed word counts directly, so its own BERT splitter is
not involved). Every CJK ideograph is its own word, so CJK characters are not left to the
learner's alphabet cap: each one seen at least `min_cjk_count` times is added whole and with
`##` (whole-word masking marks a character that continues a word by its `##` form).

Layout of the written file, one token per line (ids are line numbers; no token repeats):
1. `[PAD]`, then `[unused1]`..`[unused{num_unused}]`, then `[UNK]`, `[CLS]`, `[SEP]`, `[MASK]`:
   with the default `num_unused=99` that is BERT-Chinese's 0 and 100-103;
2. what the learner returns after those: every kept non-CJK character, sorted, then learned
   tokens and `##` forms by count (ties by token);
3. the kept CJK characters by count (ties by code point), then the same again with `##`.
`WordPieceModel` reads the special ids from the file, wherever they are.

Deterministic: the same files and arguments give a byte-identical file. Nothing is printed.
TensorFlow is imported (by tensorflow-text) on the first call, not on import.
"""

import collections
import os

from albert_keras import io_utils
from albert_keras.errors import AlbertInputError
from albert_keras.tokenization.wordpiece import (
    CLS_TOKEN,
    CONTINUATION_PREFIX,
    MASK_TOKEN,
    PAD_TOKEN,
    SEP_TOKEN,
    UNK_TOKEN,
    WordPieceModel,
    basic_tokenize,
    is_chinese_char,
)

_LINES_PER_BATCH = 20000


def reserved_tokens(num_unused=99):
    """The tokens at the head of a trained vocabulary: `[PAD]`, `[unused*]`, `[UNK]` .. `[MASK]`.

    Args:
        num_unused: how many `[unused{i}]` tokens (BERT-Chinese: 99).

    Returns:
        A `list` of `str`.

    Example:
    >>> reserved_tokens(2)
    ['[PAD]', '[unused1]', '[unused2]', '[UNK]', '[CLS]', '[SEP]', '[MASK]']
    """
    return [PAD_TOKEN] + [f"[unused{i}]" for i in range(1, num_unused + 1)] + [
        UNK_TOKEN, CLS_TOKEN, SEP_TOKEN, MASK_TOKEN,
    ]


def _as_paths(inputs):
    if isinstance(inputs, (str, os.PathLike)):
        return [os.fspath(inputs)]
    try:
        paths = [os.fspath(p) for p in inputs]
    except TypeError:
        raise AlbertInputError(
            "train_wordpiece: inputs must be a file path or a list of file paths"
        ) from None
    if not paths:
        raise AlbertInputError("train_wordpiece: no input files given")
    return paths


def count_words(inputs, lowercase=True):
    """Word counts of text files, split exactly as `WordPieceModel` splits text.

    Args:
        inputs: a path or a list of paths (local, or URLs such as `gs://...`) of UTF-8 text.
        lowercase: `do_lower_case`.

    Returns:
        A `collections.Counter` `{word: count}`.

    Raises:
        AlbertInputError: a missing file, or a line that is not UTF-8 (file and line named).

    Example:
    >>> count_words(["corpus.txt"])  # doctest: +SKIP
    Counter({'的': 10512, ',': 9003, ...})
    """
    counts = collections.Counter()
    for path in _as_paths(inputs):
        if not io_utils.exists(path) or io_utils.isdir(path):
            raise AlbertInputError(f"{path}: input file not found")
        batch = []
        with io_utils.open_file(path, "rb") as f:
            for number, raw in enumerate(f, start=1):
                try:
                    batch.append(raw.decode("utf-8"))
                except UnicodeDecodeError as error:
                    raise AlbertInputError(
                        f"{path}:{number}: not valid UTF-8 (byte {error.start} of the line); "
                        f"convert the file to UTF-8"
                    ) from None
                if len(batch) >= _LINES_PER_BATCH:
                    # Lines end in "\n", a word boundary, so a batch splits like its lines.
                    counts.update(basic_tokenize("\n".join(batch), lowercase))
                    batch = []
        counts.update(basic_tokenize("\n".join(batch), lowercase))
    return counts


def train_wordpiece(inputs, output, vocab_size, lowercase=True, min_cjk_count=1, num_unused=99,
                    max_unique_chars=1000, max_token_length=50, num_iterations=4,
                    max_input_words=5_000_000, slack_ratio=0.05, lower_thresh=1):
    """Train a WordPiece `vocab.txt` from text files (layout in the module docstring).

    Args:
        inputs: a path or a list of paths of UTF-8 text (any line layout: lines are only split
            into words).
        output: the file to write (a directory: `vocab.txt` in it); written atomically.
        vocab_size: the most lines the file may have. The learner aims at
            `vocab_size * (1 - slack_ratio)` or more; the CJK entries come out of the same budget.
        lowercase: count lowercased, accent-stripped words (`do_lower_case`; every public
            Chinese model is uncased). Use the same value with `WordPieceModel`.
        min_cjk_count: a CJK character seen at least this often is kept (whole and `##`);
            rarer ones become `[UNK]`.
        num_unused: `[unused*]` slots between `[PAD]` and `[UNK]` (99 puts `[UNK]` at 100).
        max_unique_chars: the learner's alphabet cap for non-CJK characters: a word with a rarer
            character is not learned from, and the character becomes `[UNK]`.
        max_token_length: longer words are not learned from.
        num_iterations: the learner's refinement passes.
        max_input_words: the learner keeps only this many most frequent distinct words.
        slack_ratio: see `vocab_size`.
        lower_thresh: the lowest token count the learner's threshold search tries (its default
            of 10 suits only large corpora).

    Returns:
        The path written (`str`).

    Raises:
        AlbertInputError: no input, a file that is not UTF-8, a corpus without words, or a
            `vocab_size` below what the special tokens and characters need; nothing is written.

    Example:
    >>> train_wordpiece(["zh_wiki.txt"], "vocab.txt", vocab_size=21128)  # doctest: +SKIP
    'vocab.txt'
    """
    if int(vocab_size) != vocab_size or vocab_size < 1:
        raise AlbertInputError(f"train_wordpiece: vocab_size must be a positive int, got {vocab_size!r}")
    if int(min_cjk_count) != min_cjk_count or min_cjk_count < 1:
        raise AlbertInputError(f"train_wordpiece: min_cjk_count must be an int >= 1, got {min_cjk_count!r}")
    output = os.fspath(output)
    if io_utils.isdir(output):
        output = os.path.join(output, "vocab.txt")
    counts = count_words(inputs, lowercase)
    if not counts:
        raise AlbertInputError(f"train_wordpiece: the inputs ({', '.join(_as_paths(inputs))}) have no words")

    cjk = sorted(
        ((word, count) for word, count in counts.items()
         if len(word) == 1 and is_chinese_char(word) and count >= min_cjk_count),
        key=lambda item: (-item[1], item[0]),
    )
    others = sorted(
        ((word, count) for word, count in counts.items() if not (len(word) == 1 and is_chinese_char(word))),
        key=lambda item: (-item[1], item[0]),
    )
    reserved = reserved_tokens(num_unused)
    alphabet = collections.Counter()
    for word, count in others:
        if len(word) <= max_token_length:
            alphabet.update(dict.fromkeys(word, count))
    needed = len(reserved) + 2 * len(cjk) + 2 * min(len(alphabet), max_unique_chars)
    if vocab_size < needed:
        raise AlbertInputError(
            f"train_wordpiece: vocab_size {vocab_size} is too small: the {len(reserved)} reserved "
            f"tokens, {len(cjk)} CJK characters and {min(len(alphabet), max_unique_chars)} other "
            f"characters (each also with ##) need {needed}"
        )

    vocab = list(reserved)
    if others:
        vocab = _learn(others, vocab_size - 2 * len(cjk), reserved, max_unique_chars, max_token_length,
                       num_iterations, max_input_words, slack_ratio, lower_thresh)
    vocab += [char for char, _ in cjk] + [CONTINUATION_PREFIX + char for char, _ in cjk]
    if len(vocab) > vocab_size:  # the learner's search can end above its target
        raise AlbertInputError(
            f"train_wordpiece: vocab_size {vocab_size} is too small for this corpus: the smallest "
            f"vocabulary the learner found has {len(vocab)} tokens"
        )
    if len(set(vocab)) != len(vocab):  # would be a bug: ids must be line numbers
        raise AssertionError("train_wordpiece: a token repeats in the learned vocabulary")
    WordPieceModel(vocab).special_ids()  # the file must load, with every special token
    with io_utils.atomic_write(output, "wb") as f:
        f.write(("\n".join(vocab) + "\n").encode("utf-8"))
    return output


def _learn(word_counts, size, reserved, max_unique_chars, max_token_length, num_iterations,
           max_input_words, slack_ratio, lower_thresh):
    """tensorflow-text's learner on sorted `(word, count)` pairs; reserved tokens come first.

    Its `learn()` binary-searches the count threshold but returns the last vocabulary it tried,
    which can be larger than the target (it stops at threshold 1, or when the interval closes,
    whatever the size). So this runs the same preparation and the same `learn_with_thresh`, and
    keeps the largest vocabulary that fits, stopping early within the slack as `learn()` does.
    """
    from tensorflow_text.tools.wordpiece_vocab import wordpiece_tokenizer_learner_lib as learner

    params = learner.Params(
        upper_thresh=None, lower_thresh=lower_thresh, num_iterations=num_iterations,
        max_input_tokens=max_input_words, max_token_length=max_token_length,
        max_unique_chars=max_unique_chars, vocab_size=size, slack_ratio=slack_ratio,
        include_joiner_token=True, joiner=CONTINUATION_PREFIX, reserved_tokens=reserved,
    )
    words = learner.get_input_words(word_counts, reserved, max_token_length)
    allowed = learner.get_allowed_chars(words, max_unique_chars)
    words = learner.filter_input_words(words, allowed, max_input_words)
    # Above the highest count only characters are kept, which the caller checked fit.
    lo, hi = max(1, int(lower_thresh)), max((count for _, count in words), default=0) + 1
    best = None
    while lo <= hi:
        thresh = (lo + hi) // 2
        vocab = learner.learn_with_thresh(words, thresh, params)
        if len(vocab) > size:
            lo = thresh + 1
            continue
        best, hi = vocab, thresh - 1
        if size - len(vocab) <= slack_ratio * size:
            break
    if best is None:
        raise AlbertInputError(
            f"train_wordpiece: vocab_size is too small for this corpus: even the characters alone "
            f"need more than the {size} entries left"
        )
    return list(best)
