"""Tokenization: ALBERT's vocabularies (SentencePiece and WordPiece), the official normalization,
the in-graph layer.

- `vocabulary`: `load_vocabulary(path)`, THE way a file or directory becomes a vocabulary
  (`SentencePieceVocabulary` or `WordPieceVocabulary`, with kind, casing and special ids).
- `wordpiece`: google-research/ALBERT's `FullTokenizer` without an spm model, in Python (no
  TensorFlow); `wordpiece_graph`: the same ids in-graph and in TFLite;
  `wordpiece_training`: `train_wordpiece`.
- `sentencepiece`: special ids, `preprocess_text` (Python) and `preprocess_text_tf` (in-graph),
  loading, checksums and the official tokenization (no TensorFlow import).
- `layer`: `AlbertTokenizer`, the Keras layer that normalizes, tokenizes and packs in-graph.
- `training`: `train_sentencepiece`.
- `commands`: `albert-keras train-tokenizer`.

`import albert_keras.tokenization` stays light: the layer (TensorFlow, Keras) and training are
imported on first use.
"""

from albert_keras.lazy import lazy_exports
from albert_keras.tokenization.sentencepiece import (  # noqa: F401
    CLS_ID,
    CLS_PIECE,
    MASK_ID,
    MASK_PIECE,
    OFFICIAL_USER_DEFINED_SYMBOLS,
    PAD_ID,
    PAD_PIECE,
    SEP_ID,
    SEP_PIECE,
    SPECIAL_IDS,
    SPECIAL_PIECES,
    SPIECE_UNDERLINE,
    UNK_ID,
    UNK_PIECE,
    check_albert_special_ids,
    convert_ids_to_pieces,
    convert_pieces_to_ids,
    digit_comma_expansions,
    encode_for_albert,
    load_sentencepiece,
    preprocess_text,
    preprocess_text_tf,
    sentencepiece_checksum,
    tokenize_for_albert,
)

from albert_keras.tokenization.vocabulary import SentencePieceVocabulary  # noqa: F401,E402
from albert_keras.tokenization.vocabulary import Vocabulary  # noqa: F401,E402
from albert_keras.tokenization.vocabulary import WordPieceVocabulary  # noqa: F401,E402
from albert_keras.tokenization.vocabulary import load_vocabulary  # noqa: F401,E402

__getattr__, __dir__ = lazy_exports(__name__, {
    "AlbertTokenizer": "albert_keras.tokenization.layer",
    "train_wordpiece": "albert_keras.tokenization.wordpiece_training",
    "train_sentencepiece": "albert_keras.tokenization.training",
})
