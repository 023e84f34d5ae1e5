"""WordPiece vocabularies (BERT's `vocab.txt`), tokenized exactly as google-research/ALBERT does.

Every public Chinese ALBERT ships BERT's WordPiece vocabulary rather than a SentencePiece model.
This module is the Python reference for that path: `read_wordpiece_vocab` reads a vocabulary file
the way the official `tokenization.load_vocab` does, and `WordPieceModel` gives the ids of the
official `FullTokenizer(vocab_file, do_lower_case)` (no spm model) for any text:

1. clean: drop U+0000, U+FFFD and every Cc/Cf character except tab, newline and CR (so a
   zero-width space or a vertical tab vanishes without splitting its word);
2. put spaces around every CJK ideograph (the official ranges, `is_chinese_char`);
3. split on whitespace (`str.split`: tab/newline/CR, every Zs such as U+3000 and NBSP, and
   U+2028/U+2029, which step 1 keeps and `str.split` still splits on);
4. if lowercasing: `str.lower()` on each whitespace token (so Greek final sigma sees its token),
   then NFD, then drop every Mn character: accents are stripped only when lowercasing;
5. split off every punctuation character (ASCII 33-47, 58-64, 91-96, 123-126, every P*);
6. greedy longest-match-first WordPiece with the `##` continuation prefix; a word longer than
   `max_input_chars_per_word` characters (200 in ALBERT; 400 in the BERT copy that
   tf-models-official ships) or with a rest no entry matches becomes one `[UNK]`.

A literal `"[MASK]"` in the text is NOT a special token here: step 5 cuts it into `"["`, `"mask"`
(or `"MASK"`), `"]"`, as the official code does (Hugging Face's `BertTokenizer` keeps it whole).

Ids. The official `load_vocab` gives a repeated token its FIRST id and does not count the repeat:
`vocab[token] = len(vocab)`, so every id after a repeated line is one lower than its line
number. That is `id_layout="albert"` (the default, what ALBERT's own data and checkpoints use).
`id_layout="line"` keeps line numbers (a repeated token still maps to its first line; the
repeat's id decodes to the token but is never produced), the layout of BERT's and Hugging Face's
readers. Without a repeated token (BERT-Chinese's `vocab.txt`, `train_wordpiece`'s output) the two
are the same; `WordPieceModel.repeated_lines` lists the repeats.

Offsets (`WordPieceModel.encode_with_offsets`) are character offsets `[start, end)` into the
ORIGINAL text, so that a span the model picks is a slice of what the user sent:
- every character the normalization keeps or produces comes from one original character: an
  accented or uppercase character maps back to itself, and so do the several characters one
  character can become (a Hangul syllable's jamo, `"İ"`'s `"i"`);
- an original character that normalizes to nothing (a combining mark dropped by step 4) belongs
  to the character before it in its whitespace token, so `"e\\u0301"` spans both; one with no
  character before it belongs to no piece;
- a piece spans from its first character's original character to the end of its last one's;
  characters dropped by step 1 belong to no piece (inside a piece they are inside its span);
- an `[UNK]` spans its whole word (the word of step 5 it replaced).
Pieces cut from the same original character have overlapping spans (one jamo per piece). What
the tests check: for each group of pieces with overlapping spans, basic-tokenizing the original
slice of the group gives back the concatenation of its pieces without `##` (the replaced word for
`[UNK]`), reading final sigma as sigma (lowering a slice can change it). The one known departure:
NFD's canonical reordering could swap two kept (non-Mn) marks with non-zero combining classes
that came from different original characters; each still maps to an original character of the
same token.

Speed: steps 1-5 run as a few regular expressions and `str` methods over the whole text (their
character classes are built once from `unicodedata`), and each distinct word's pieces are cached,
so a corpus costs little more than one dictionary lookup per word. This module imports no
TensorFlow.
"""

import functools
import os
import re
import sys
import unicodedata

from albert_keras import io_utils
from albert_keras.errors import AlbertInputError

PAD_TOKEN = "[PAD]"
UNK_TOKEN = "[UNK]"
CLS_TOKEN = "[CLS]"
SEP_TOKEN = "[SEP]"
MASK_TOKEN = "[MASK]"
SPECIAL_TOKENS = (PAD_TOKEN, UNK_TOKEN, CLS_TOKEN, SEP_TOKEN, MASK_TOKEN)
# The tokens a model cannot do without; `[PAD]` is optional (padding positions are masked out).
REQUIRED_SPECIAL_TOKENS = (UNK_TOKEN, CLS_TOKEN, SEP_TOKEN, MASK_TOKEN)
CONTINUATION_PREFIX = "##"
ALBERT_MAX_INPUT_CHARS_PER_WORD = 200
ID_LAYOUTS = ("albert", "line")

# The official `_is_chinese_char` ranges, inclusive.
CJK_RANGES = (
    (0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F), (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F),
)
_ASCII_PUNCTUATION = [(33, 47), (58, 64), (91, 96), (123, 126)]
_WORD_CACHE_LIMIT = 1 << 20


def is_chinese_char(char):
    """Whether `char` is a CJK ideograph in the official sense (each is its own word).

    Args:
        char: a one-character `str`.

    Returns:
        `bool`.

    Example:
    >>> is_chinese_char("中"), is_chinese_char("。"), is_chinese_char("カ")
    (True, False, False)
    """
    cp = ord(char)
    return any(lo <= cp <= hi for lo, hi in CJK_RANGES)


# ---------------------------------------------------------------------------------------------
# Character classes, built once from the running Python's `unicodedata` (the official code asks
# the same `unicodedata` one character at a time).
# ---------------------------------------------------------------------------------------------


def _ranges_to_class(ranges):
    parts = []
    for lo, hi in ranges:
        parts.append(f"\\U{lo:08x}" if lo == hi else f"\\U{lo:08x}-\\U{hi:08x}")
    return "".join(parts)


def _is_ascii_punctuation(cp):
    return any(lo <= cp <= hi for lo, hi in _ASCII_PUNCTUATION)


@functools.lru_cache(maxsize=None)
def _patterns():
    """`(dropped, cjk, mn, words)` compiled regular expressions (for offsets)."""
    dropped = _ranges_to_class(_collect_cached("dropped"))
    punct = _ranges_to_class(_collect_cached("punct"))
    mn = _ranges_to_class(_collect_cached("mn"))
    cjk = _ranges_to_class(CJK_RANGES)
    return (
        re.compile(f"[{dropped}]+"),
        re.compile(f"[{cjk}]"),
        re.compile(f"[{mn}]+"),
        # After CJK characters are spaced out: each punctuation character alone, or a run of
        # anything but punctuation and whitespace (= punctuation split, then whitespace split).
        re.compile(f"[{punct}]|[^{punct}\\s]+"),
    )


@functools.lru_cache(maxsize=None)
def _tables():
    """`str.translate` tables: `(clean, punct, punct_and_mn)`.

    One `translate` pass does what the official code does one character at a time in Python;
    the regular expressions above are as exact but slower here, since `re` tests characters
    outside the Basic Multilingual Plane against a list of ranges.
    """
    clean = {cp: None for lo, hi in _collect_cached("dropped") for cp in range(lo, hi + 1)}
    for lo, hi in CJK_RANGES:
        clean.update((cp, f" {chr(cp)} ") for cp in range(lo, hi + 1))
    punct = {cp: f" {chr(cp)} " for lo, hi in _collect_cached("punct") for cp in range(lo, hi + 1)}
    punct_and_mn = dict(punct)
    punct_and_mn.update((cp, None) for lo, hi in _collect_cached("mn") for cp in range(lo, hi + 1))
    return clean, punct, punct_and_mn


@functools.lru_cache(maxsize=None)
def _char_classes():
    """`{"dropped" | "punct" | "mn": [(first, last), ...]}`, from one pass over all code points."""
    ranges = {"dropped": [], "punct": [], "mn": []}
    category = unicodedata.category
    for cp in range(sys.maxunicode + 1):
        cat = category(chr(cp))
        if cat == "Cn" or cat == "Co" or cat == "Cs":
            continue  # unassigned, private use, surrogates: in no class
        for name, member in (
            ("dropped", cat in ("Cc", "Cf") and cp not in (9, 10, 13)),
            ("punct", cat[0] == "P" or _is_ascii_punctuation(cp)),
            ("mn", cat == "Mn"),
        ):
            if member:
                spans = ranges[name]
                if spans and spans[-1][1] == cp - 1:
                    spans[-1] = (spans[-1][0], cp)
                else:
                    spans.append((cp, cp))
    ranges["dropped"] = sorted(ranges["dropped"] + [(0, 0), (0xFFFD, 0xFFFD)])
    return ranges


def _collect_cached(name):
    return _char_classes()[name]


def _normalize_case(text, lowercase):
    """Step 4 on a string whose whitespace tokens are already separated (see `basic_tokenize`)."""
    if not lowercase:
        return text
    if text.isascii():
        return text.lower()
    return _patterns()[2].sub("", unicodedata.normalize("NFD", text.lower()))


@functools.lru_cache(maxsize=1 << 16)
def _lowered_length(char):
    """How many characters step 4 makes of one character (0 for a mark it drops)."""
    return len(_normalize_case(char, True))


def basic_tokenize(text, lowercase=True):
    """The official `BasicTokenizer(do_lower_case=lowercase).tokenize(text)`: steps 1-5.

    Lowering, NFD and dropping Mn run once over the whole spaced-out text: no step crosses a
    space (final sigma looks past neither spaces nor CJK ideographs, NFD reorders only marks
    after a starter), so that equals doing them token by token as the official code does.

    Args:
        text: a `str`, or `bytes` (decoded as UTF-8, invalid bytes dropped, as officially).
        lowercase: `do_lower_case`.

    Returns:
        The words (`list` of `str`) WordPiece then cuts into pieces.

    Example:
    >>> basic_tokenize("Héllo,\\u3000世界! [MASK]")
    ['hello', ',', '世', '界', '!', '[', 'mask', ']']
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="ignore")
    clean, punct, punct_and_mn = _tables()
    text = text.translate(clean)
    if not lowercase:
        return text.translate(punct).split()
    if text.isascii():
        return text.lower().translate(punct).split()
    return unicodedata.normalize("NFD", text.lower()).translate(punct_and_mn).split()


# ---------------------------------------------------------------------------------------------
# Vocabulary files
# ---------------------------------------------------------------------------------------------


def read_wordpiece_vocab(data, source="vocab.txt"):
    """The tokens of a WordPiece vocabulary file, one per line, as the official `load_vocab`.

    Lines are split on `"\\n"` only: `str.splitlines()` would also split on U+2028, which
    BERT-Chinese's `vocab.txt` has as a token, and shift every later id. Each line becomes its
    first whitespace-separated column (`line.strip().split()[0]`: `"##\\u2028"` becomes `"##"`),
    and a whitespace-only or empty line becomes `" "`. The text after the last `"\\n"` is a line
    only if it is not empty (a final newline adds no token). Repeated tokens are kept, so the list
    has one entry per line; `WordPieceModel` decides their ids (see `id_layout`).

    Args:
        data: the file's contents, `bytes` (UTF-8) or `str`.
        source: the file's name, for error messages.

    Returns:
        A `list` of `str`, one per line.

    Raises:
        AlbertInputError: a line that is not UTF-8 (naming `source` and the line).

    Example:
    >>> read_wordpiece_vocab("[PAD]\\n\\u2028\\n##\\u2028\\nfoo 12\\n".encode("utf-8"))
    ['[PAD]', ' ', '##', 'foo']
    """
    if isinstance(data, str):
        lines = data.split("\n")
    elif isinstance(data, (bytes, bytearray, memoryview)):
        lines = bytes(data).split(b"\n")
    else:
        raise AlbertInputError(f"{source}: a vocabulary must be bytes or str, got {type(data).__name__}")
    if lines and not lines[-1]:
        lines.pop()
    tokens = []
    for number, line in enumerate(lines, start=1):
        if isinstance(line, bytes):
            try:
                line = line.decode("utf-8")
            except UnicodeDecodeError as error:
                raise AlbertInputError(
                    f"{source}: line {number}: not valid UTF-8 (byte {error.start} of the line)"
                ) from None
        stripped = line.strip()
        tokens.append(stripped.split()[0] if stripped else " ")
    return tokens


# ---------------------------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------------------------


class WordPieceModel:
    """A WordPiece vocabulary with the official ALBERT/BERT tokenization (pure Python).

    Args:
        tokens: the vocabulary's tokens in file order (`read_wordpiece_vocab`), one per line.
        lowercase: `do_lower_case` (True for every public Chinese ALBERT and BERT-Chinese).
        unk_token: the token for a word WordPiece cannot cut; must be in the vocabulary.
        max_input_chars_per_word: longer words become `unk_token` (ALBERT: 200).
        id_layout: `"albert"` (official `load_vocab`: a repeated line takes no id) or `"line"`
            (ids are line numbers); the same unless a token repeats (see the module docstring).

    Example:
    >>> model = WordPieceModel(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "un", "##aff",
    ...                         "##able", "中", ","])
    >>> model.tokenize("Unaffable, 中!")
    ['un', '##aff', '##able', ',', '中', '[UNK]']
    >>> model.encode("Unaffable, 中!")
    [5, 6, 7, 9, 8, 1]
    """

    def __init__(self, tokens, lowercase=True, unk_token=UNK_TOKEN,
                 max_input_chars_per_word=ALBERT_MAX_INPUT_CHARS_PER_WORD, id_layout="albert"):
        if id_layout not in ID_LAYOUTS:
            raise AlbertInputError(f"id_layout must be one of {ID_LAYOUTS}, got {id_layout!r}")
        tokens = list(tokens)
        token_to_id, repeated = {}, []
        for line, token in enumerate(tokens):
            if token in token_to_id:
                repeated.append((line, token))
            else:
                token_to_id[token] = line if id_layout == "line" else len(token_to_id)
        self._id_to_token = tokens if id_layout == "line" else list(token_to_id)
        self._token_to_id = token_to_id
        self.repeated_lines = tuple(repeated)
        self.lowercase = bool(lowercase)
        self.id_layout = id_layout
        self.max_input_chars_per_word = int(max_input_chars_per_word)
        if unk_token not in token_to_id:
            raise AlbertInputError(
                f"the WordPiece vocabulary has no {unk_token!r} token (it has {len(tokens)} lines); "
                f"is this a vocab.txt?"
            )
        self.unk_token = unk_token
        self._unk_id = token_to_id[unk_token]
        # Longest-match-first never needs a candidate longer than the longest entry.
        self._max_first = max(len(t) for t in token_to_id)
        self._max_rest = max(
            (len(t) - 2 for t in token_to_id if t.startswith(CONTINUATION_PREFIX)), default=0
        )
        self._cache = {}

    @classmethod
    def from_file(cls, path, **kwargs):
        """A model from a `vocab.txt` (local path or URL such as `gs://...`).

        Args:
            path: the vocabulary file.
            **kwargs: as for `WordPieceModel`.

        Example:
        >>> model = WordPieceModel.from_file("vocab_chinese.txt")  # doctest: +SKIP
        """
        path = os.fspath(path)
        if not io_utils.exists(path):
            raise AlbertInputError(f"{path}: WordPiece vocabulary not found")
        return cls(read_wordpiece_vocab(io_utils.read_bytes(path), source=path), **kwargs)

    # -- ids -----------------------------------------------------------------------------------

    @property
    def vocabulary_size(self):
        """Number of ids (lines, or distinct tokens with `id_layout="albert"`)."""
        return len(self._id_to_token)

    def token_to_id(self, token):
        """The id of `token`; the `[UNK]` id for a token not in the vocabulary.

        Args:
            token: a `str` (a `##` piece includes its prefix).

        Example:
        >>> model.token_to_id("[CLS]")  # doctest: +SKIP
        101
        """
        return self._token_to_id.get(token, self._unk_id)

    def id_to_token(self, token_id):
        """The token of `token_id`.

        Args:
            token_id: an `int` in `[0, vocabulary_size)`.

        Raises:
            AlbertInputError: an id outside `[0, vocabulary_size)`.

        Example:
        >>> model.id_to_token(101)  # doctest: +SKIP
        '[CLS]'
        """
        token_id = int(token_id)
        if not 0 <= token_id < len(self._id_to_token):
            raise AlbertInputError(f"token id {token_id} is outside [0, {len(self._id_to_token)})")
        return self._id_to_token[token_id]

    def __contains__(self, token):
        """Whether `token` is a vocabulary entry (`"##中" in model`)."""
        return token in self._token_to_id

    def special_ids(self):
        """`{"[PAD]": id or None, "[UNK]": id, "[CLS]": id, "[SEP]": id, "[MASK]": id}`, as read
        from the vocabulary (BERT-Chinese: 0, 100, 101, 102, 103; never assumed). `[PAD]` is
        `None` when the vocabulary has none: padding positions are masked, any id serves.

        Raises:
            AlbertInputError: `[UNK]`, `[CLS]`, `[SEP]` or `[MASK]` is missing.

        Example:
        >>> model.special_ids()  # doctest: +SKIP
        {'[PAD]': 0, '[UNK]': 100, '[CLS]': 101, '[SEP]': 102, '[MASK]': 103}
        """
        missing = [t for t in REQUIRED_SPECIAL_TOKENS if t not in self._token_to_id]
        if missing:
            raise AlbertInputError(
                f"the WordPiece vocabulary lacks {', '.join(missing)}: a model needs "
                f"{', '.join(REQUIRED_SPECIAL_TOKENS)}"
            )
        return {t: self._token_to_id.get(t) for t in SPECIAL_TOKENS}

    # -- tokenization --------------------------------------------------------------------------

    def _word_pieces(self, word):
        """`((id, length without "##"), ...)` for one basic word; `((unk, len(word)),)` if none."""
        cached = self._cache.get(word)
        if cached is not None:
            return cached
        vocab, n = self._token_to_id, len(word)
        pieces = []
        if n > self.max_input_chars_per_word:
            pieces = None
        start = 0
        while pieces is not None and start < n:
            if start == 0:
                end = min(n, self._max_first)
                while end > 0 and word[:end] not in vocab:
                    end -= 1
                key = word[:end]
            else:
                end = min(n, start + self._max_rest)
                while end > start and CONTINUATION_PREFIX + word[start:end] not in vocab:
                    end -= 1
                key = CONTINUATION_PREFIX + word[start:end]
            if end == start:
                pieces = None
                break
            pieces.append((vocab[key], end - start))
            start = end
        result = tuple(pieces) if pieces is not None else ((self._unk_id, n),)
        if len(self._cache) >= _WORD_CACHE_LIMIT:
            self._cache.clear()
        self._cache[word] = result
        return result

    def encode(self, text):
        """The ids of `text`, equal to the official `convert_tokens_to_ids(tokenize(text))`.

        Args:
            text: a `str` (or UTF-8 `bytes`).

        Returns:
            A `list` of `int` (no `[CLS]`/`[SEP]`: packing is the caller's).

        Example:
        >>> model.encode("中文，ok")  # doctest: +SKIP
        [704, 3152, 8024, 8228]
        """
        out = []
        cache, word_pieces = self._cache, self._word_pieces
        for word in basic_tokenize(text, self.lowercase):
            pieces = cache.get(word) or word_pieces(word)
            if len(pieces) == 1:
                out.append(pieces[0][0])
            else:
                out.extend(p[0] for p in pieces)
        return out

    def tokenize(self, text):
        """The tokens of `text`, equal to the official `FullTokenizer.tokenize(text)`.

        Example:
        >>> model.tokenize("Unaffable")  # doctest: +SKIP
        ['un', '##aff', '##able']
        """
        return [self._id_to_token[i] for i in self.encode(text)]

    def _words_with_spans(self, text):
        """`[(word, [start per char], [end per char])]`: `basic_tokenize` with each normalized
        character's original span (see the module docstring)."""
        dropped_re, cjk_re, mn_re, words_re = _patterns()
        # Whitespace tokens of the cleaned text as lists of original indices.
        tokens, current = [], []
        for i, char in enumerate(text):
            if dropped_re.match(char):
                continue
            if char.isspace() or cjk_re.match(char):
                if current:
                    tokens.append(current)
                current = []
                if not char.isspace():
                    tokens.append([i])
                continue
            current.append(i)
        if current:
            tokens.append(current)
        out = []
        for indices in tokens:
            token = "".join(text[i] for i in indices)
            normalized = _normalize_case(token, self.lowercase)
            starts, ends = [], []
            if normalized == token:
                starts = indices
                ends = [i + 1 for i in indices]
            else:
                for i in indices:
                    count = _lowered_length(text[i])
                    if count == 0 and ends:  # a dropped mark joins the character before it
                        ends[-1] = i + 1
                    starts.extend([i] * count)
                    ends.extend([i + 1] * count)
                # Propagate a joined mark's end to every character of the same original character.
                for k in range(len(starts) - 2, -1, -1):
                    if starts[k] == starts[k + 1]:
                        ends[k] = ends[k + 1]
                if len(starts) != len(normalized):  # a bug in the alignment, never bad input
                    raise AssertionError(f"WordPiece offsets lost their way on {text!r}")
            for match in words_re.finditer(normalized):
                a, b = match.span()
                out.append((match.group(), starts[a:b], ends[a:b]))
        return out

    def encode_with_offsets(self, text):
        """`encode(text)` with each piece's `[start, end)` character span in `text`.

        Args:
            text: the original `str` (`bytes` are decoded as UTF-8, invalid bytes dropped;
                offsets are then into the decoded `str`).

        Returns:
            `(ids, starts, ends)`, three `list`s of `int`: piece `i` was cut from
            `text[starts[i]:ends[i]]` (rules in the module docstring).

        Example:
        >>> ids, starts, ends = model.encode_with_offsets(" Café中")  # doctest: +SKIP
        >>> [" Café中"[s:e] for s, e in zip(starts, ends)]  # doctest: +SKIP
        ['Caf', 'é', '中']
        """
        if isinstance(text, bytes):
            text = text.decode("utf-8", errors="ignore")
        ids, out_starts, out_ends = [], [], []
        for word, starts, ends in self._words_with_spans(text):
            k = 0
            for piece_id, length in self._word_pieces(word):
                ids.append(piece_id)
                out_starts.append(min(starts[k:k + length]))
                out_ends.append(max(ends[k:k + length]))
                k += length
        return ids, out_starts, out_ends
