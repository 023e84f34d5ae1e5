"""In-graph text -> ALBERT features for exported models (SavedModel, TFLite, batch prediction).

`AlbertTextPacker` wraps `albert_keras.tokenization.AlbertTokenizer` (the official normalization,
SentencePiece, the official digit-comma rewrite and dense packing of `[CLS] A [SEP] (B [SEP])`,
padded to the batch's longest row) with what serving adds:

- invalid UTF-8 becomes U+FFFD and strings are cut to a length that cannot change the first
  `sequence_length` pieces, so a 10 MB request costs no more than a long sentence;
- a TFLite-compatible mode: LiteRT has no kernels for the regex / ICU ops of the official
  normalization, so the TFLite graph tokenizes with a SentencePiece model whose normalization
  rules are ALBERT's normalization (`albert_spm.folded_spm_model`).

`resolve_tokenizer` picks the vocabulary and casing an export serves: the model directory's, or an override.
"""

import logging
import os

import tensorflow as tf
import tensorflow_text as tf_text

from albert_keras.errors import AlbertInputError

logger = logging.getLogger("albert_keras.export")

# The Unicode replacement character, put where the input is not valid UTF-8.
_REPLACEMENT_CHAR = 0xFFFD


def read_spm_model(spm_model):
    """The vocabulary file's bytes from a path, bytes or `Vocabulary` (either kind).

    Example:
    ```python
    proto = read_spm_model("spiece.model")
    ```
    """
    from albert_keras.tokenization.vocabulary import load_vocabulary

    return load_vocabulary(spm_model).data


def _max_token_chars(vocabulary):
    # WordPiece's "##" marks no characters of the text; SentencePiece's "▁" stands for a space.
    return max(len(token.removeprefix("##")) for token in vocabulary.tokens())


class AlbertTextPacker(tf.Module):
    """Raw strings -> `token_ids`, `segment_ids`, `padding_mask`, inside the graph.

    Args:
        vocabulary: the model's vocabulary: a `Vocabulary`, or a path to a SentencePiece `.model`
            or WordPiece `vocab.txt` (or a directory holding one), or its bytes.
        sequence_length: the longest packed sequence (the model's maximum length).
        lowercase: lowercase (and strip accents), as the model's vocabulary was built; None keeps
            the vocabulary's own casing.
        tflite_compatible: use only ops the LiteRT interpreter runs with tensorflow-text's op
            registrar: ALBERT's normalization is folded into the SentencePiece model's own rules
            (`albert_spm.folded_spm_model`) instead of the regex/ICU ops, and there is no UTF-8
            repair or length cap. Same ids as the official normalization on the embedded corpus
            and the hard-strings list (tests/export/test_albert_spm.py). A WordPiece vocabulary
            uses the TFLite-compatible WordPiece graph (`tokenization.wordpiece_graph`).

    Example:
    ```python
    packer = AlbertTextPacker("spiece.model", sequence_length=128)
    features = packer(tf.constant(["Hello world."]))
    features["token_ids"]  # [[2, ..., 3]]
    ```
    """

    def __init__(self, vocabulary, sequence_length, lowercase=None, tflite_compatible=False, name=None):
        from albert_keras.tokenization import AlbertTokenizer
        from albert_keras.tokenization.vocabulary import load_vocabulary

        super().__init__(name=name)
        if sequence_length < 3:
            raise AlbertInputError(f"sequence_length: must be at least 3, got {sequence_length}")
        self.vocabulary = load_vocabulary(vocabulary, lowercase=lowercase)
        self.sequence_length = int(sequence_length)
        self.lowercase = self.vocabulary.lowercase
        self.tflite_compatible = bool(tflite_compatible)
        sentencepiece = self.vocabulary.kind == "sentencepiece"
        # Bytes of a SentencePiece model (answer detokenization, MediaPipe metadata), else None.
        self.spm_proto = self.vocabulary.data if sentencepiece else None
        try:
            tokenizer_vocabulary = self.vocabulary
            if self.tflite_compatible and sentencepiece:
                # ALBERT's normalization folded into the SentencePiece model's own rules, which
                # FastSentencepieceTokenize applies inside TFLite: the same ids as training's.
                from albert_keras.export.albert_spm import folded_spm_model

                tokenizer_vocabulary = folded_spm_model(self.spm_proto, lowercase=self.lowercase)
            self.layer = AlbertTokenizer(
                tokenizer_vocabulary,
                sequence_length=self.sequence_length,
                lowercase=self.lowercase,
                pad_to_sequence_length=False,
                normalize=not self.tflite_compatible,
                use_fast_tokenizer=True,
            )
            if sentencepiece:
                # Only for turning answer spans back into text (SavedModel).
                self.detokenizer = tf_text.FastSentencepieceTokenizer(self.spm_proto)
        except AlbertInputError:
            raise
        except Exception as error:  # the SentencePiece converters raise bare RuntimeErrors
            raise AlbertInputError(f"{self.vocabulary.name}: not usable ({error})") from None
        if not self.tflite_compatible:
            # A piece never spans more than this many characters, so cutting the text after
            # 2 * (longest piece) * (sequence length) characters (2x for normalization that
            # shrinks text) keeps every piece the model can see.
            self.max_chars = 2 * _max_token_chars(self.vocabulary) * self.sequence_length

    def prepare(self, text):
        """Repair and cut (SavedModel) a `[B]` string tensor; TFLite takes it as it is."""
        if self.tflite_compatible:
            return text
        text = tf.strings.unicode_transcode(
            text, "UTF-8", "UTF-8", errors="replace", replacement_char=_REPLACEMENT_CHAR
        )
        return tf.strings.substr(text, 0, self.max_chars, unit="UTF8_CHAR")

    def token_lengths(self, text):
        """Token counts of a `[B]` string tensor, before truncation."""
        return tf.cast(self.layer.tokenize(self.prepare(text)).row_lengths(), tf.int32)

    def __call__(self, text, text_b=None):
        """Pack `text` (and `text_b`), string tensors `[B]`, into the model's feature dict."""
        if text_b is None:
            features = self.layer(self.prepare(text))
        else:
            features = self.layer((self.prepare(text), self.prepare(text_b)))
        # An empty batch packs to width 0, but the model reads position 0 ([CLS]) for the pooled
        # output; pad to the narrowest real row so an empty request returns empty outputs.
        narrowest = 2 if text_b is None else 3
        missing = tf.maximum(narrowest - tf.shape(features["token_ids"])[1], 0)
        return {key: tf.pad(value, [[0, 0], [0, missing]]) for key, value in features.items()}


def resolve_tokenizer(model_dir, spm_model=None, lowercase=None):
    """The vocabulary and casing to export: the directory's, unless overridden.

    Args:
        model_dir: a pretrained directory.
        spm_model: optional vocabulary file (SentencePiece `.model` or WordPiece `vocab.txt`)
            overriding the directory's.
        lowercase: optional casing overriding the directory's `tokenizer.json`.

    Returns:
        `(Vocabulary or None, settings)` with settings `{"kind", "lowercase", "sequence_length"}`;
        a warning is logged when an override disagrees with what the directory records.

    Example:
    ```python
    vocabulary, settings = resolve_tokenizer("runs/sentiment", lowercase=False)
    ```
    """
    from albert_keras.modeling.pretrained import TOKENIZER_FILE
    from albert_keras.tokenization.vocabulary import load_vocabulary
    from albert_keras.tokenization.vocabulary import read_tokenizer_settings
    from albert_keras.tokenization.vocabulary import vocabulary_path

    settings = read_tokenizer_settings(model_dir)
    own = load_vocabulary(model_dir) if vocabulary_path(model_dir) else None
    if spm_model is not None:
        if isinstance(spm_model, (str, os.PathLike)) and not os.path.exists(spm_model):
            raise AlbertInputError(f"--vocab: {os.fspath(spm_model)}: vocabulary not found")
        vocabulary = load_vocabulary(spm_model, lowercase=settings["lowercase"])
        if own is not None and own.sha256() != vocabulary.sha256():
            logger.warning("--vocab %s differs from %s, which the model was saved with", vocabulary.name, own.name)
    else:
        vocabulary = own
    if lowercase is not None:
        recorded = os.path.isfile(os.path.join(os.fspath(model_dir), TOKENIZER_FILE))
        if recorded and bool(lowercase) != settings["lowercase"]:
            logger.warning(
                "--%s: %s records %s; serving %s as asked", "uncased" if lowercase else "cased",
                os.path.join(os.fspath(model_dir), TOKENIZER_FILE),
                "lowercase" if settings["lowercase"] else "cased", "lowercased" if lowercase else "cased",
            )
        settings = {**settings, "lowercase": bool(lowercase)}
    if vocabulary is not None:
        vocabulary = vocabulary.with_casing(settings["lowercase"])
        settings = {**settings, "kind": vocabulary.kind}
    return vocabulary, settings
