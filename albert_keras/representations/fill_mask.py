"""Fill-mask: what the pretrained masked-LM head predicts at each `[MASK]` of a sentence.

`[MASK]` in raw text needs care. In ALBERT's SentencePiece model `[MASK]` is a control symbol,
which SentencePiece never produces from text, and the official normalization lowercases first:
"The [MASK] statement" tokenizes to `▁the ▁[ mask ] ▁statement`, with no mask id at all (tested).
So the text is split on the literal `[MASK]`, each part is normalized and tokenized as the
official tokenizer does, and `MASK_ID` is put between the parts, where the data pipeline puts it
when it masks a whole piece (leading `▁` included).
"""

import os
import re

import numpy as np

from albert_keras.errors import AlbertInputError

MASK_TOKEN = "[MASK]"
_MASK_PATTERN = re.compile(re.escape(MASK_TOKEN))


def mask_token_ids(vocabulary, text, lowercase=None):
    """`[CLS] ... [SEP]` ids of `text` with the mask id at every literal `[MASK]`, and their positions.

    Args:
        vocabulary: the model's `Vocabulary` (or anything `load_vocabulary` takes).
        text: raw text containing `[MASK]` (upper case, as written in ALBERT's vocabularies).
        lowercase: override the vocabulary's casing (None keeps it).

    Returns:
        `(ids, mask_positions)`, two lists of ints.

    Example:
    ```python
    ids, positions = mask_token_ids(load_vocabulary("spiece.model"), "The [MASK] statement returns a value.")
    ids[positions[0]]  # 4
    ```
    """
    from albert_keras.tokenization.vocabulary import load_vocabulary

    vocabulary = load_vocabulary(vocabulary, lowercase=lowercase)
    parts = _MASK_PATTERN.split(text)
    if len(parts) == 1:
        raise AlbertInputError(f"text: no {MASK_TOKEN} in {text!r}; write {MASK_TOKEN} where a piece should be predicted")
    ids, positions = [vocabulary.cls_id], []
    for i, part in enumerate(parts):
        if i > 0:
            positions.append(len(ids))
            ids.append(vocabulary.mask_id)
        if part.strip():
            ids.extend(vocabulary.encode(part))
    ids.append(vocabulary.sep_id)
    return ids, positions


def _load_pretrainer(model):
    from albert_keras.modeling.pretrained import load_pretrained
    from albert_keras.modeling.pretrained import read_model_description

    directory = os.fspath(model)
    if not os.path.isdir(directory):
        raise AlbertInputError(f"{directory}: pretrained directory not found")
    kind = read_model_description(directory)["class"]
    if kind != "AlbertPretrainer":
        raise AlbertInputError(
            f"{directory}: holds an {kind}, which has no masked-LM head; fill-mask needs an AlbertPretrainer's "
            "directory (the output of albert-keras pretrain or quickstart)"
        )
    return load_pretrained(directory)


def fill_mask(model, text, top_k=5, spm_model=None, lowercase=None):
    """The `top_k` most likely pieces at each `[MASK]` of `text`, from the masked-LM head.

    Args:
        model: a pretraining output directory (an `AlbertPretrainer` with its tied-decoder MLM
            head), or an `AlbertPretrainer` object (then `spm_model` is needed).
        text: raw text with one or more `[MASK]`.
        top_k: predictions per mask.
        spm_model: the vocabulary (default: the directory's `spiece.model` or `vocab.txt`).
        lowercase: default: the directory's tokenizer.json (True without one).

    Returns:
        one list per `[MASK]`, in order, of `{"token_id", "piece", "probability"}` dicts, most
        likely first (`piece` as in the vocabulary, `▁` marking a word start).

    Raises:
        AlbertInputError: no `[MASK]`, a model without an MLM head, a mask past the model's
        maximum length.

    Example:
    ```python
    for guess in fill_mask("runs/quickstart/pretrain/pretrained", "The [MASK] statement returns a value.")[0]:
        print(guess["piece"], round(guess["probability"], 3))
    ```
    """
    from albert_keras.tokenization.vocabulary import load_vocabulary
    from albert_keras.tokenization.vocabulary import vocabulary_path

    if top_k < 1:
        raise AlbertInputError(f"top_k: must be at least 1, got {top_k}")
    if isinstance(model, (str, os.PathLike)):
        directory = model
        model = _load_pretrainer(directory)
        if spm_model is None:
            if vocabulary_path(directory) is None:
                raise AlbertInputError(f"{directory}: no vocabulary; fill-mask needs one (spiece.model or vocab.txt)")
            spm_model = load_vocabulary(directory)
    elif type(model).__name__ != "AlbertPretrainer":
        raise AlbertInputError(f"model: a {type(model).__name__} has no masked-LM head; fill-mask needs an AlbertPretrainer")
    if spm_model is None:
        raise AlbertInputError("spm_model: needed with a model object")
    vocabulary = load_vocabulary(spm_model, lowercase=lowercase)
    ids, positions = mask_token_ids(vocabulary, text)
    limit = model.encoder.config.max_position_embeddings
    if positions[-1] >= limit:
        raise AlbertInputError(f"text: a {MASK_TOKEN} falls after the model's maximum length ({limit} pieces)")
    ids = ids[:limit]
    batch = [
        np.array([ids], np.int32),
        np.ones([1, len(ids)], np.int32),
        np.zeros([1, len(ids)], np.int32),
        np.array([positions], np.int32),
    ]
    logits = np.asarray(model(batch, training=False)["mlm_logits"])[0].astype(np.float64)
    logits -= logits.max(axis=-1, keepdims=True)
    probabilities = np.exp(logits)
    probabilities /= probabilities.sum(axis=-1, keepdims=True)
    results = []
    for row in probabilities:
        # Stable sort: equal probabilities keep the lower id first.
        best = np.argsort(-row, kind="stable")[:top_k]
        results.append(
            [{"token_id": int(i), "piece": vocabulary.id_to_token(int(i)), "probability": float(row[i])} for i in best]
        )
    return results
