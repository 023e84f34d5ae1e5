"""One path from a file or directory to a vocabulary: `load_vocabulary`.

ALBERT models come with one of two vocabulary kinds:

- **SentencePiece** (`spiece.model`, `30k-clean.model`): the English models. Text is normalised by
  `preprocess_text` and cut by a unigram SentencePiece model; `<pad>`=0, `<unk>`=1, `[CLS]`=2,
  `[SEP]`=3, `[MASK]`=4.
- **WordPiece** (`vocab.txt`, `vocab_chinese.txt`): every public Chinese ALBERT (Google's
  `albert_*_zh`, brightmart's `*_google`, the Hugging Face Chinese models) uses BERT's vocabulary
  and google-research/ALBERT's `FullTokenizer` without an spm model; BERT-Chinese has `[PAD]`=0,
  `[UNK]`=100, `[CLS]`=101, `[SEP]`=102, `[MASK]`=103.

Everything else in the package (task preprocessing, data creation, export, conversion, the CLI)
gets its vocabulary here, so the kind, the casing and the special ids are decided in one place:
the special ids are read from the vocabulary itself, never assumed. A pretrained directory holds
the vocabulary file under its kind's name and a `tokenizer.json` recording the kind, the casing and
the sequence length the model was trained with.

This module does not import TensorFlow; `Vocabulary.tokenizer()` builds the in-graph
`AlbertTokenizer` layer on demand.
"""

import abc
import hashlib
import json
import os

from albert_keras.errors import AlbertInputError

SENTENCEPIECE = "sentencepiece"
WORDPIECE = "wordpiece"
KINDS = (SENTENCEPIECE, WORDPIECE)
# The file name each kind is saved under in a pretrained directory.
SPM_FILE = "spiece.model"
WORDPIECE_FILE = "vocab.txt"
VOCABULARY_FILES = {SENTENCEPIECE: SPM_FILE, WORDPIECE: WORDPIECE_FILE}
# Other names the same files have in released checkpoints (Google's tarballs), searched in a directory
# after the canonical ones.
RELEASED_VOCABULARY_FILES = (("30k-clean.model", SENTENCEPIECE), ("vocab_chinese.txt", WORDPIECE))
TOKENIZER_FILE = "tokenizer.json"
# The packed length used when neither the caller nor `tokenizer.json` gives one: training, evaluation
# and export all fall back to this same number.
DEFAULT_SEQUENCE_LENGTH = 128
DEFAULT_TOKENIZER_SETTINGS = {"kind": None, "lowercase": True, "sequence_length": None}
SPECIAL_NAMES = ("pad", "unk", "cls", "sep", "mask")


def read_tokenizer_settings(directory):
    """A directory's `tokenizer.json` merged over the defaults.

    Keys: `kind` (`"sentencepiece"`, `"wordpiece"` or None when not recorded), `lowercase`
    (default True) and `sequence_length` (None when not recorded).

    Example:
    ```python
    read_tokenizer_settings("runs/quickstart/pretrain/pretrained")  # {"kind": ..., "lowercase": True, ...}
    ```
    """
    from albert_keras.io_utils import read_json_object

    path = os.path.join(os.fspath(directory), TOKENIZER_FILE)
    if not os.path.isfile(path):
        return dict(DEFAULT_TOKENIZER_SETTINGS)
    settings = read_json_object(path, "tokenizer settings")
    unknown = sorted(set(settings) - set(DEFAULT_TOKENIZER_SETTINGS))
    if unknown:
        raise AlbertInputError(f"{path}: unknown key {unknown[0]!r}")
    if not isinstance(settings.get("lowercase", True), bool):
        raise AlbertInputError(f"{path}: 'lowercase' must be true or false")
    if settings.get("kind") not in (None,) + KINDS:
        raise AlbertInputError(f"{path}: 'kind' must be one of {list(KINDS)}, got {settings['kind']!r}")
    length = settings.get("sequence_length")
    if length is not None and (not isinstance(length, int) or isinstance(length, bool) or length < 3):
        raise AlbertInputError(f"{path}: 'sequence_length' must be an integer >= 3 or null")
    return {**DEFAULT_TOKENIZER_SETTINGS, **settings}


def write_tokenizer_settings(directory, settings):
    """Write `tokenizer.json` (`kind`, `lowercase`, `sequence_length`) into `directory`."""
    merged = {**DEFAULT_TOKENIZER_SETTINGS, **settings}
    with open(os.path.join(os.fspath(directory), TOKENIZER_FILE), "w") as f:
        json.dump({key: merged[key] for key in DEFAULT_TOKENIZER_SETTINGS}, f, indent=2, sort_keys=True)


def vocabulary_path(directory):
    """The vocabulary file in a directory (`spiece.model`, `vocab.txt`, or a released name), or None.

    Example:
    ```python
    vocabulary_path("albert_base_zh")  # "albert_base_zh/vocab_chinese.txt"
    ```
    """
    directory = os.fspath(directory)
    names = [(name, kind) for kind, name in VOCABULARY_FILES.items()] + list(RELEASED_VOCABULARY_FILES)
    found = [os.path.join(directory, name) for name, _ in names if os.path.isfile(os.path.join(directory, name))]
    return found[0] if found else None


class Vocabulary(abc.ABC):
    """A tokenizer vocabulary of either kind, with its casing and its special ids.

    Build one with `load_vocabulary`. Subclasses: `SentencePieceVocabulary`, `WordPieceVocabulary`.

    Attributes:
        kind: `"sentencepiece"` or `"wordpiece"`.
        data: the vocabulary file's bytes (what `save` writes and `AlbertTokenizer` embeds).
        lowercase: lowercase text before tokenizing.
        source: where it was read from (a path), or None.
        special_ids: `{"pad": id, "unk": id, "cls": id, "sep": id, "mask": id}` read from the file.

    Example:
    ```python
    vocabulary = load_vocabulary("albert_base_zh")          # a directory, or a file
    vocabulary.kind, vocabulary.special_ids["cls"]           # ("wordpiece", 101)
    vocabulary.encode("我爱北京")                            # [2769, 4263, 1266, 776]
    layer = AlbertTokenizer(vocabulary, sequence_length=64)  # the in-graph layer built from it
    ```
    """

    kind = None

    def __init__(self, data, lowercase=True, source=None):
        self.data = bytes(data)
        self.lowercase = bool(lowercase)
        self.source = os.fspath(source) if source is not None else None

    # ----------------------------------------------------------------- what every kind answers

    @property
    def file_name(self):
        """The name this vocabulary is saved under in a pretrained directory."""
        return VOCABULARY_FILES[self.kind]

    @property
    def name(self):
        """How errors name this vocabulary: its path, else its kind."""
        return self.source or f"{self.kind} vocabulary"

    @property
    def pad_id(self):
        return self.special_ids["pad"]

    @property
    def unk_id(self):
        return self.special_ids["unk"]

    @property
    def cls_id(self):
        return self.special_ids["cls"]

    @property
    def sep_id(self):
        return self.special_ids["sep"]

    @property
    def mask_id(self):
        return self.special_ids["mask"]

    @property
    def mask_token(self):
        return self.id_to_token(self.mask_id)

    def sha256(self):
        """Hex sha256 of the vocabulary file's bytes."""
        return hashlib.sha256(self.data).hexdigest()

    def settings(self, sequence_length=None):
        """What `tokenizer.json` records for this vocabulary."""
        return {"kind": self.kind, "lowercase": self.lowercase, "sequence_length": sequence_length}

    def with_casing(self, lowercase):
        """The same vocabulary with another casing (`self` when it does not change)."""
        if lowercase is None or bool(lowercase) == self.lowercase:
            return self
        return type(self)(self.data, lowercase=lowercase, source=self.source)

    def save(self, directory):
        """Write the vocabulary file into `directory` under `file_name`; returns its path."""
        path = os.path.join(os.fspath(directory), self.file_name)
        with open(path, "wb") as f:
            f.write(self.data)
        return path

    def is_special(self, token_id):
        """Whether an id is a special or control token (never a replacement or a prediction)."""
        return int(token_id) in self._special_set()

    def _special_set(self):
        return set(self.special_ids.values())

    def __len__(self):
        return self.vocabulary_size()

    def __repr__(self):
        return (f"{type(self).__name__}({self.name!r}, size={self.vocabulary_size()}, "
                f"lowercase={self.lowercase})")

    # ----------------------------------------------------------------- per kind

    @property
    @abc.abstractmethod
    def special_ids(self):
        """`{"pad", "unk", "cls", "sep", "mask"}` -> id, read from the vocabulary."""

    @abc.abstractmethod
    def vocabulary_size(self):
        """How many ids the vocabulary has."""

    @abc.abstractmethod
    def tokens(self):
        """Every token, indexed by id."""

    @abc.abstractmethod
    def id_to_token(self, token_id):
        """The token of an id."""

    @abc.abstractmethod
    def token_to_id(self, token):
        """The id of a token; unknown tokens give the `[UNK]` id."""

    def tokenize(self, text):
        """The tokens of one text (no special tokens), as the official tokenizer cuts them."""
        return [self.id_to_token(i) for i in self.encode(text)]

    @abc.abstractmethod
    def encode(self, text):
        """The ids of one text (no special tokens), exactly the official tokenizer's."""

    @abc.abstractmethod
    def encode_with_offsets(self, text):
        """`(ids, starts, ends)`: `encode(text)` with each token's character span in `text`."""

    @abc.abstractmethod
    def word_starts(self):
        """A bool per id: does a token with this id start a word (the official masking rule)."""


class SentencePieceVocabulary(Vocabulary):
    """An ALBERT SentencePiece model (`spiece.model`), tokenized as google-research/ALBERT does.

    Text is normalised by `preprocess_text` (accents always stripped; lowercased if `lowercase`),
    cut by SentencePiece, and "<digit>," pieces re-encoded as the official `encode_pieces` does.

    Args:
        data: the `.model` file's bytes.
        lowercase: lowercase during normalization (True for the English ALBERT models).
        source: the file's path, for messages.

    Example:
    ```python
    vocabulary = SentencePieceVocabulary(open("spiece.model", "rb").read())
    vocabulary.encode("Hello world.")
    ```
    """

    kind = SENTENCEPIECE

    def __init__(self, data, lowercase=True, source=None):
        super().__init__(data, lowercase, source)
        from albert_keras.tokenization.sentencepiece import load_sentencepiece

        # Loading checks ALBERT's special ids and gives a clear error for a broken model.
        self.processor = load_sentencepiece(self.data, name=self.name)

    @property
    def special_ids(self):
        sp = self.processor
        return {"pad": sp.pad_id(), "unk": sp.unk_id(), "cls": sp.piece_to_id("[CLS]"),
                "sep": sp.piece_to_id("[SEP]"), "mask": sp.piece_to_id("[MASK]")}

    def _special_set(self):
        sp = self.processor
        found = set(self.special_ids.values())
        found.update(i for i in range(sp.get_piece_size()) if sp.is_control(i) or sp.is_unknown(i) or sp.is_unused(i))
        return found

    def vocabulary_size(self):
        return self.processor.get_piece_size()

    def tokens(self):
        return [self.processor.id_to_piece(i) for i in range(self.processor.get_piece_size())]

    def id_to_token(self, token_id):
        token_id = int(token_id)
        if not 0 <= token_id < self.vocabulary_size():
            raise ValueError(f"id {token_id} is outside the vocabulary (size {self.vocabulary_size()})")
        return self.processor.id_to_piece(token_id)

    def token_to_id(self, token):
        return self.processor.piece_to_id(token)

    def encode(self, text):
        from albert_keras.tokenization.sentencepiece import encode_for_albert

        return encode_for_albert(self.processor, text, self.lowercase)

    def encode_with_offsets(self, text):
        from albert_keras.tokenization.offsets import encode_with_offsets

        return encode_with_offsets(self.processor, text, self.lowercase)

    def word_starts(self):
        import numpy as np

        from albert_keras.tokenization.sentencepiece import is_start_piece

        return np.fromiter((is_start_piece(p) for p in self.tokens()), bool, self.vocabulary_size())


class WordPieceVocabulary(Vocabulary):
    """A BERT WordPiece vocabulary (`vocab.txt`), tokenized as google-research/ALBERT's
    `FullTokenizer` does without an spm model (see `albert_keras.tokenization.wordpiece`).

    Args:
        data: the `vocab.txt` file's bytes (one token a line, split on `\\n` only).
        lowercase: lowercase and strip accents (True for every public Chinese ALBERT: the
            BERT-Chinese vocabulary has no uppercase entries).
        source: the file's path, for messages.

    Example:
    ```python
    vocabulary = WordPieceVocabulary(open("vocab_chinese.txt", "rb").read())
    vocabulary.tokenize("我爱Apple")  # ['我', '爱', 'apple']
    ```
    """

    kind = WORDPIECE

    def __init__(self, data, lowercase=True, source=None):
        super().__init__(data, lowercase, source)
        from albert_keras.tokenization.wordpiece import WordPieceModel
        from albert_keras.tokenization.wordpiece import read_wordpiece_vocab

        self.model = WordPieceModel(read_wordpiece_vocab(self.data, self.name), lowercase=self.lowercase)
        self._tokens = [self.model.id_to_token(i) for i in range(self.model.vocabulary_size)]
        found = self.model.special_ids()
        names = {"pad": "[PAD]", "unk": "[UNK]", "cls": "[CLS]", "sep": "[SEP]", "mask": "[MASK]"}
        self._special_ids = {key: found[token] for key, token in names.items()}
        if self._special_ids["pad"] is None:
            # Padding positions are masked out, so any id serves; 0 is what every BERT layout uses.
            self._special_ids["pad"] = 0

    @property
    def special_ids(self):
        return dict(self._special_ids)

    def _special_set(self):
        found = set(self._special_ids.values())
        # `[unused*]`, `[PAD]`-like bracketed entries never stand for text.
        found.update(i for i, token in enumerate(self._tokens) if token.startswith("[") and token.endswith("]"))
        return found

    def vocabulary_size(self):
        return len(self._tokens)

    def tokens(self):
        return list(self._tokens)

    def id_to_token(self, token_id):
        return self.model.id_to_token(token_id)

    def token_to_id(self, token):
        return self.model.token_to_id(token)

    def tokenize(self, text):
        return self.model.tokenize(text)

    def encode(self, text):
        return self.model.encode(text)

    def encode_with_offsets(self, text):
        return self.model.encode_with_offsets(text)

    def word_starts(self):
        import numpy as np

        # The official `create_pretraining_data.py` rule for WordPiece: every piece starts a word
        # unless it begins with "##" (so each Chinese character is a word of its own).
        return np.fromiter((not t.startswith("##") for t in self._tokens), bool, len(self._tokens))


_CLASSES = {SENTENCEPIECE: SentencePieceVocabulary, WORDPIECE: WordPieceVocabulary}


def detect_kind(data, name="vocabulary"):
    """`"sentencepiece"` or `"wordpiece"` from a vocabulary file's bytes.

    A SentencePiece model is a serialized protocol buffer (binary); a WordPiece vocabulary is UTF-8
    text, one token a line, holding `[UNK]`, `[CLS]` and `[SEP]`.

    Raises:
        AlbertInputError: the bytes are neither kind.
    """
    if not data:
        raise AlbertInputError(f"{name}: empty file; expected a SentencePiece model or a WordPiece vocab.txt")
    try:
        text = bytes(data).decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None and "\x00" not in text:
        lines = set(line.strip() for line in text.split("\n"))
        if {"[UNK]", "[CLS]", "[SEP]"} <= lines:
            return WORDPIECE
        if str(name).endswith(".model"):
            raise AlbertInputError(f"{name}: not a valid SentencePiece model (text, not a serialized model proto)")
        raise AlbertInputError(
            f"{name}: text without [UNK], [CLS] and [SEP] lines; neither a WordPiece vocab.txt nor a "
            "SentencePiece model"
        )
    import sentencepiece

    processor = sentencepiece.SentencePieceProcessor()
    try:
        processor.LoadFromSerializedProto(bytes(data))
    except Exception:  # sentencepiece raises RuntimeError/OSError with C++ messages
        raise AlbertInputError(
            f"{name}: neither a valid SentencePiece model nor a WordPiece vocab.txt (binary, but not a model proto)"
        ) from None
    return SENTENCEPIECE


def load_vocabulary(source, lowercase=None, kind=None):
    """The vocabulary at `source`: THE way the package turns a path into a tokenizer vocabulary.

    Args:
        source: a vocabulary file (`spiece.model`, `vocab.txt`, any name: the kind is read from the
            contents), a directory holding one (a pretrained directory, a Google or Hugging Face
            checkpoint folder), the file's bytes, a loaded `sentencepiece.SentencePieceProcessor`,
            or a `Vocabulary` (returned, re-cased if asked).
        lowercase: the casing; None takes the directory's `tokenizer.json` (or a Hugging Face
            `tokenizer_config.json`'s `do_lower_case`), else True.
        kind: `"sentencepiece"` or `"wordpiece"` to insist on one kind (an error names the other).

    Returns:
        A `SentencePieceVocabulary` or `WordPieceVocabulary`.

    Raises:
        AlbertInputError: no vocabulary there, or a file that is neither kind.

    Example:
    ```python
    vocabulary = load_vocabulary("runs/quickstart/pretrain/pretrained")
    vocabulary.encode("Hello world.")
    ```
    """
    if isinstance(source, Vocabulary):
        vocabulary = source.with_casing(lowercase)
    else:
        data, path, settings = _read_source(source)
        found = detect_kind(data, path or "vocabulary")
        if settings.get("kind") not in (None, found):
            raise AlbertInputError(
                f"{path}: tokenizer.json says kind {settings['kind']!r} but the file is a {found} vocabulary"
            )
        if lowercase is None:
            lowercase = settings.get("lowercase", True)
        vocabulary = _CLASSES[found](data, lowercase=lowercase, source=path)
    if kind is not None and vocabulary.kind != kind:
        raise AlbertInputError(f"{vocabulary.name}: a {vocabulary.kind} vocabulary, but a {kind} one is needed")
    return vocabulary


def _read_source(source):
    """`(bytes, path or None, settings)` of a vocabulary source."""
    if isinstance(source, (bytes, bytearray)):
        return bytes(source), None, {}
    if hasattr(source, "serialized_model_proto"):  # a loaded sentencepiece.SentencePieceProcessor
        return source.serialized_model_proto(), None, {}
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(f"load_vocabulary: expected a path, bytes or a Vocabulary, got {type(source).__name__}")
    path = os.fspath(source)
    settings = {}
    from albert_keras import io_utils

    path = path if io_utils.is_url(path) else io_utils.local_path(path)  # file://... is local
    if io_utils.is_url(path):  # gs://... and other TensorFlow filesystems: a file, read whole
        if not io_utils.exists(path):
            raise AlbertInputError(f"{path}: vocabulary not found")
        return io_utils.read_bytes(path), path, settings
    if os.path.isdir(path):
        directory = path
        settings = read_tokenizer_settings(directory)
        found = vocabulary_path(directory)
        if found is None:
            expected = ", ".join(list(VOCABULARY_FILES.values()) + [name for name, _ in RELEASED_VOCABULARY_FILES])
            raise AlbertInputError(f"{directory}: no vocabulary (expected one of {expected})")
        path = found
        if not os.path.isfile(os.path.join(directory, TOKENIZER_FILE)):
            settings.update(_huggingface_casing(directory))
    elif not os.path.exists(path):
        raise AlbertInputError(f"{path}: vocabulary not found")
    from albert_keras.io_utils import read_bytes

    try:
        data = read_bytes(path)
    except OSError as error:
        raise AlbertInputError(f"{path}: cannot read the vocabulary ({error.strerror or error})") from None
    return data, path, settings


def _huggingface_casing(directory):
    """`{"lowercase": ...}` from a Hugging Face `tokenizer_config.json`'s `do_lower_case`, if any."""
    path = os.path.join(directory, "tokenizer_config.json")
    if not os.path.isfile(path):
        return {}
    try:
        with open(path, encoding="utf-8") as f:
            config = json.load(f)
    except (OSError, ValueError):
        return {}
    value = config.get("do_lower_case") if isinstance(config, dict) else None
    return {"lowercase": value} if isinstance(value, bool) else {}
