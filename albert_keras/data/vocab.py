"""Per-vocabulary lookup tables that let instance creation work on integer ids.

The official `create_pretraining_data.py` handles piece *strings*: it calls `_is_start_piece_sp`
twice per token (each call rebuilds two sets) and maps pieces to ids one at a time, which is most of
its run time. Every one of those answers depends only on the piece, so `MaskingVocab` computes them
once per vocabulary id into numpy tables, and `encode_lines` tokenizes whole batches of lines
(SentencePiece's C++ batch API straight to ids).

Either vocabulary kind works (`albert_keras.tokenization.load_vocabulary`): the word-start rule is
the official one for each (SentencePiece: `_is_start_piece_sp`; WordPiece: a piece starts a word
unless it begins with `##`, so each Chinese character is a word), and the special ids are read
from the vocabulary.
"""

import itertools

import numpy as np

from albert_keras.tokenization import sentencepiece as tokenization
from albert_keras.tokenization.sentencepiece import is_start_piece  # noqa: F401 (re-exported)


def id_ranges(ids):
    """Sorted ids as `[[start, end), ...]` runs (how manifests record the replacement ids).

    Example:
    >>> id_ranges([5, 6, 7, 10])
    [[5, 8], [10, 11]]
    """
    ranges = []
    for i in sorted(int(x) for x in ids):
        if ranges and ranges[-1][1] == i:
            ranges[-1][1] = i + 1
        else:
            ranges.append([i, i + 1])
    return ranges


class MaskingVocab:
    """Id-level tables for one vocabulary: word starts, special ids, replacement ids.

    Args:
        vocabulary: a `Vocabulary` (`load_vocabulary`), or a loaded
            `sentencepiece.SentencePieceProcessor` with ALBERT's ids.
        official_random_replacement: if True, the 10% "random token" replacements are drawn from the
            whole vocabulary, special pieces included, as the official script does. By default they
            are drawn only from ordinary tokens (documented deviation (c)).
        name: unused; kept for callers that named the model (errors name the vocabulary's path).

    Example:
    ```python
    vocab = MaskingVocab(load_vocabulary("spiece.model"))
    vocab.is_start[vocab.encode_lines(["Hello world."])[0]]
    ```
    """

    def __init__(self, vocabulary, official_random_replacement=False, name=None, whole_word_segmenter=None,
                 reference_marks=False):
        from albert_keras.tokenization.vocabulary import load_vocabulary

        self.vocabulary = load_vocabulary(vocabulary)
        self.kind = self.vocabulary.kind
        self.vocab_size = self.vocabulary.vocabulary_size()
        special_ids = self.vocabulary.special_ids
        self.cls_id, self.sep_id, self.mask_id = special_ids["cls"], special_ids["sep"], special_ids["mask"]
        self.is_start = np.asarray(self.vocabulary.word_starts(), bool)
        special = np.zeros(self.vocab_size, bool)
        special[sorted(self.vocabulary._special_set())] = True
        self.is_special = special
        if official_random_replacement:
            self.replacement_ids = np.arange(self.vocab_size, dtype=np.int32)
        else:
            self.replacement_ids = np.flatnonzero(~special).astype(np.int32)
        self.sp = getattr(self.vocabulary, "processor", None)
        self._digit_comma = tokenization.digit_comma_expansions(self.sp) if self.sp is not None else {}
        self._has_digit_comma = np.zeros(self.vocab_size, bool)
        self._has_digit_comma[list(self._digit_comma)] = True
        self.segmenter = None
        self.unmark = None
        self.segmented_words = 0  # multi-character words found by the segmenter (a running count)
        self.rejected_references = 0  # reference positions that fell back to a character (running)
        self.unreferenced_lines = 0  # lines that had no reference (running)
        if whole_word_segmenter is not None and reference_marks:
            from albert_keras.errors import AlbertInputError

            raise AlbertInputError("--whole-word-segmenter and --chinese-ref: give one or the other")
        if whole_word_segmenter is not None:
            self._set_up_segmenter(whole_word_segmenter)
        elif reference_marks:
            self._set_up_marks("--chinese-ref")

    def _set_up_marks(self, flag):
        """Chinese whole-word masking: continuation characters of a segmented word carry the `##`
        mark while instances are made (so the official word-start rule groups the word), and
        `unmark` maps every id back to the unmarked one the records store."""
        from albert_keras.errors import AlbertInputError
        from albert_keras.tokenization.wordpiece import is_chinese_char

        if self.kind != "wordpiece":
            raise AlbertInputError(
                f"{flag}: needs a WordPiece vocabulary (vocab.txt, as the Chinese models have); "
                f"{self.vocabulary.name} is {self.kind}"
            )
        tokens = self.vocabulary.tokens()
        ids = {token: i for i, token in enumerate(tokens)}
        self.mark = np.arange(self.vocab_size, dtype=np.int32)
        self.unmark = np.arange(self.vocab_size, dtype=np.int32)
        self._chinese = np.zeros(self.vocab_size, bool)  # single Chinese characters (unmarked)
        for i, token in enumerate(tokens):
            # Only single characters with a "##" twin can be marked; others fall back to per character.
            if len(token) == 1 and not self.is_special[i] and "##" + token in ids:
                self.mark[i] = ids["##" + token]
                self.unmark[ids["##" + token]] = i
            self._chinese[i] = len(token) == 1 and is_chinese_char(token)
        self._markable = self.mark != np.arange(self.vocab_size)

    def _set_up_segmenter(self, name):
        """jieba segments the lines; `_set_up_marks` does the rest."""
        from albert_keras.errors import AlbertInputError

        if name != "jieba":
            raise AlbertInputError(f"--whole-word-segmenter: {name!r} is not supported (use jieba)")
        self._set_up_marks("--whole-word-segmenter")
        try:
            import jieba
        except ImportError:
            raise AlbertInputError(
                "--whole-word-segmenter jieba: jieba is not installed (pip install 'albert-keras[zh]')"
            ) from None
        import logging

        jieba.setLogLevel(logging.WARNING)
        self.segmenter = jieba

    def _segmented_ids(self, line):
        """WordPiece ids of a line with the continuation characters of each segmented word marked."""
        ids, starts, _ = self.vocabulary.encode_with_offsets(line)
        ids = np.asarray(ids, np.int32)
        if not len(ids):
            return ids, 0
        inside = np.zeros(len(line) + 1, bool)  # character positions that continue a multi-character word
        words = 0
        for word, start, end in self.segmenter.tokenize(line):
            if end - start > 1 and word.strip():
                inside[start + 1 : end] = True
                words += 1
        starts = np.asarray(starts, np.int64)
        marked = self._markable[ids] & inside[np.clip(starts, 0, len(line))]
        ids[marked] = self.mark[ids[marked]]
        return ids, words

    def encode_referenced(self, lines, groups):
        """Tokenize lines and mark word continuations from Hugging Face reference positions.

        Args:
            lines: the strings to tokenize, in order.
            groups: `(count, positions)` per input line, in order: the next `count` strings are
                that line (its sentences, in paragraph mode) and `positions` its reference (token
                positions with `[CLS]` at 0 over the line's tokens, as `run_chinese_ref.py` writes
                them), or None for no reference (per character).

        Returns:
            A list of `np.int32` arrays, one per string. A position is honoured only where its
            token is a markable Chinese character right after another Chinese character of the
            same sentence; every other position falls back to its own word and is counted in
            `rejected_references`.

        Example:
        ```python
        vocab = MaskingVocab(load_vocabulary("vocab.txt"), reference_marks=True)
        vocab.encode_referenced(["我们喜欢北京。"], [(1, (2, 4, 6))])  # 们, 欢, 京 continue words
        ```
        """
        encoded = [np.asarray(self.vocabulary.encode(line), np.int32) for line in lines]
        result, start = [], 0
        for count, positions in groups:
            parts = encoded[start : start + count]
            start += count
            if positions is None:
                self.unreferenced_lines += 1
                result += parts
                continue
            ids = np.concatenate(parts) if parts else np.zeros(0, np.int32)
            first = np.zeros(len(ids) + 1, bool)  # the first token of each sentence continues nothing
            first[np.cumsum([0] + [len(p) for p in parts[:-1]])] = True
            wanted = np.unique(np.asarray(positions, np.int64)) - 1  # token index without [CLS]
            inside = (wanted >= 1) & (wanted < len(ids))
            index = wanted[inside]
            ok = ~first[index] & self._markable[ids[index]] & self._chinese[ids[index]] & self._chinese[ids[index - 1]]
            index = index[ok]
            self.rejected_references += len(wanted) - len(index)
            # A word is a run of continuations: count its start once.
            self.segmented_words += int(np.sum(~np.isin(index - 1, index)))
            ids[index] = self.mark[ids[index]]
            result += np.split(ids, np.cumsum([len(p) for p in parts[:-1]])) if parts else []
        return result

    def manifest_entry(self):
        """What `manifest.json` records so readers mask with the same ids (`"vocabulary"`)."""
        return {
            "kind": self.kind,
            "vocab_size": int(self.vocab_size),
            "lowercase": self.vocabulary.lowercase,
            "special_ids": {key: int(value) for key, value in self.vocabulary.special_ids.items()},
            "replacement_ids": id_ranges(self.replacement_ids),
        }

    def encode_lines(self, lines, num_threads=1):
        """Tokenize raw lines to int32 id arrays, exactly like the official code (either kind).

        SentencePiece lines are normalized with `preprocess_text` (the vocabulary's casing) first;
        WordPiece lines go through the official `FullTokenizer` steps.

        Returns:
            A list of `np.int32` arrays, one per line (possibly empty).
        """
        if self.segmenter is not None:
            encoded = [self._segmented_ids(line) for line in lines]
            self.segmented_words += sum(words for _, words in encoded)
            return [ids for ids, _ in encoded]
        if self.sp is None:
            return [np.asarray(self.vocabulary.encode(line), np.int32) for line in lines]
        lowercase = self.vocabulary.lowercase
        return self.encode_sentences([tokenization.preprocess_text(line, lowercase=lowercase) for line in lines],
                                     num_threads=num_threads)

    def encode_sentences(self, lines, num_threads=1):
        """Tokenize already-normalized lines (SentencePiece: `preprocess_text`) to int32 id arrays.

        Equivalent to `[sp.PieceToId(p) for p in tokenize_for_albert(sp, line)]` per line, but
        batched through SentencePiece's C++ encoder.

        Args:
            lines: list of strings, already passed through `preprocess_text`.
            num_threads: SentencePiece encoder threads.

        Returns:
            A list of `np.int32` arrays, one per line (possibly empty).
        """
        if self.sp is None:
            return [np.asarray(self.vocabulary.encode(line), np.int32) for line in lines]
        encoded = self.sp.encode(lines, out_type=int, num_threads=num_threads)
        lengths = np.fromiter(map(len, encoded), np.int64, len(encoded))
        flat = np.fromiter(itertools.chain.from_iterable(encoded), np.int32, int(lengths.sum()))
        # One array for the batch, split into per-line views: far fewer numpy calls than one
        # conversion per line.
        result = np.split(flat, np.cumsum(lengths)[:-1]) if len(encoded) else []
        hits = self._has_digit_comma[flat]
        if hits.any():
            line_of = np.repeat(np.arange(len(encoded)), lengths)
            for line in np.unique(line_of[hits]).tolist():
                fixed = []
                for piece_id in encoded[line]:
                    expansion = self._digit_comma.get(piece_id)
                    if expansion is None:
                        fixed.append(piece_id)
                    else:
                        fixed.extend(expansion)
                result[line] = np.asarray(fixed, dtype=np.int32)
        return result
