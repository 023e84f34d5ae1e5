"""Per-vocabulary lookup tables that let instance creation work on integer ids.

The official `create_pretraining_data.py` handles piece *strings*: it calls `_is_start_piece_sp`
twice per token (each call rebuilds two sets) and maps pieces to ids one at a time, which is most of
its run time. Every one of those answers depends only on the piece, so `MaskingVocab` computes them
once per vocabulary id into numpy tables, and `encode_sentences` tokenizes whole batches of lines
with SentencePiece's C++ batch API straight to ids.
"""

import itertools

import numpy as np

from albert_keras.tokenization import sentencepiece as tokenization

# The official special-character set of `_is_start_piece_sp` (the apostrophe, `<`, `=` and `>` are
# not in it; the code also adds "€"/"£" as *bytes*, which never match a Python 3 str).
_SPECIAL_PIECES = frozenset('!"#$%&"()*+,-./:;?@[\\]^_`{|}~')
_START_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz") | _SPECIAL_PIECES

def is_start_piece(piece):
    """The official `_is_start_piece_sp` word-start test for one SentencePiece piece.

    A piece starts a new word if it starts with "▁" or "<", is one of the official punctuation
    characters, or contains any character outside a-z and that punctuation (so pieces with digits,
    apostrophes or non-ASCII letters are words of their own).

    Example:
    >>> is_start_piece("\u2581the"), is_start_piece("ing"), is_start_piece("99")
    (True, False, True)
    """
    return (
        piece.startswith(tokenization.SPIECE_UNDERLINE)
        or piece.startswith("<")
        or piece in _SPECIAL_PIECES
        or not all(char.lower() in _START_CHARS for char in piece)
    )


class MaskingVocab:
    """Id-level tables for one SentencePiece model: word starts, special ids, replacement ids.

    Args:
        sp: a loaded `sentencepiece.SentencePieceProcessor` with ALBERT's special ids
            (`<pad>`=0, `<unk>`=1, `[CLS]`=2, `[SEP]`=3, `[MASK]`=4).
        official_random_replacement: if True, the 10% "random token" replacements are drawn from the
            whole vocabulary, special pieces included, as the official script does. By default they
            are drawn only from ordinary pieces (documented deviation (c)).
        name: how to name the model in error messages (usually its path).

    Example:
    ```python
    vocab = MaskingVocab(sentencepiece.SentencePieceProcessor(model_file="spiece.model"))
    vocab.is_start[vocab.encode_sentences(["Hello world."])[0]]
    ```
    """

    def __init__(self, sp, official_random_replacement=False, name="SentencePiece model"):
        self.sp = sp
        self.vocab_size = sp.get_piece_size()
        tokenization.check_albert_special_ids(sp, name)
        self.cls_id, self.sep_id, self.mask_id = tokenization.CLS_ID, tokenization.SEP_ID, tokenization.MASK_ID
        pieces = [sp.id_to_piece(i) for i in range(self.vocab_size)]
        self.is_start = np.fromiter((is_start_piece(p) for p in pieces), bool, self.vocab_size)
        special = np.zeros(self.vocab_size, bool)
        special[list(tokenization.SPECIAL_IDS)] = True
        for i in range(self.vocab_size):
            if sp.is_control(i) or sp.is_unknown(i) or sp.is_unused(i):
                special[i] = True
        self.is_special = special
        if official_random_replacement:
            self.replacement_ids = np.arange(self.vocab_size, dtype=np.int32)
        else:
            self.replacement_ids = np.flatnonzero(~special).astype(np.int32)
        # Pieces like "99," that the official `encode_pieces` splits again (tokenization owns the rule).
        self._digit_comma = tokenization.digit_comma_expansions(sp)
        self._has_digit_comma = np.zeros(self.vocab_size, bool)
        self._has_digit_comma[list(self._digit_comma)] = True

    def encode_sentences(self, lines, num_threads=1):
        """Tokenize already-normalized lines to int32 id arrays, exactly like the official code.

        Equivalent to `[sp.PieceToId(p) for p in tokenize_for_albert(sp, line)]` per line, but
        batched through SentencePiece's C++ encoder.

        Args:
            lines: list of strings, already passed through `preprocess_text`.
            num_threads: SentencePiece encoder threads.

        Returns:
            A list of `np.int32` arrays, one per line (possibly empty).
        """
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
