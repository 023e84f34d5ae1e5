"""SavedModel export for TF Serving: raw-text and token-id signatures, plus a warmup file.

Signatures (see `signatures.py` for the outputs of each model kind):

- `serving_default`: raw UTF-8 strings in: `text` `[B]`; multiple-choice models take `text` and
  `choices` `[B, C]`; question answerers take `question` and `context` and answer with a slice of
  the context (`question_answering.py`: `answer_text`, `answer_start`, `answer_end`, `score`,
  `no_answer_score`, `has_answer`).
- `serve_text_pair` (all but multiple choice): `text` and `text_b`; for question answerers
  (question, context) -> token positions `start_index`, `end_index`, `span_score`,
  `span_probability`, `no_answer_score` of one packed window.
- `serve_ids`: `token_ids`, `segment_ids`, `padding_mask` (int32 `[B, T]`, or `[B, C, T]`), for
  clients that tokenize themselves. It is `serving_default` when only ids are exported.
- `tokenize`: `text` -> the three features, to see what the model sees.

The text graph needs tensorflow-text's kernels at load time (`import tensorflow_text`); the stock
`tensorflow/serving` binary links them. Nothing of keras or albert_keras is needed to load it.
"""

import os

import keras
import tensorflow as tf

from albert_keras.errors import AlbertInputError
from albert_keras.export import signatures as sigs
from albert_keras.export.text import AlbertTextPacker
from albert_keras.io_utils import atomic_directory

SIGNATURE_CHOICES = ("text", "ids", "all")

# Used for the warmup requests when the caller gives none: short and long, ASCII and not.
DEFAULT_WARMUP_TEXTS = (
    "ALBERT shares parameters across layers.",
    "A much longer sentence, so that the warmup also runs a wider batch through every layer of "
    "the model before the server takes traffic; Ünïcödé and digits 1,234 included.",
)


def model_sequence_length(model, sequence_length=None):
    """The longest packed sequence to serve: `sequence_length`, capped by the model's positions.

    Example:
    ```python
    model_sequence_length(encoder)  # config.max_position_embeddings, e.g. 512
    ```
    """
    config = getattr(model, "config", None) or getattr(getattr(model, "encoder", None), "config", None)
    limit = getattr(config, "max_position_embeddings", None)
    if limit is None:  # keras-hub backbones
        backbone = getattr(model, "encoder", model)
        limit = getattr(backbone, "max_sequence_length", None)
    if sequence_length is None:
        if limit is None:
            raise AlbertInputError("sequence_length: the model does not say its maximum length; pass one")
        return int(limit)
    if limit is not None and sequence_length > limit:
        raise AlbertInputError(f"sequence_length: {sequence_length} exceeds the model's maximum {limit}")
    return int(sequence_length)


def build_export_archive(
    model,
    spm_model=None,
    signature="all",
    sequence_length=None,
    lowercase=True,
    max_answer_length=sigs.DEFAULT_MAX_ANSWER_LENGTH,
):
    """A `keras.export.ExportArchive` holding the serving signatures of `model`.

    Args: as `export_saved_model`.

    Returns:
        `(archive, endpoint_names)`.

    Example:
    ```python
    archive, names = build_export_archive(classifier, spm_model="spiece.model")
    archive.write_out("/tmp/classifier_savedmodel")
    ```
    """
    if signature not in SIGNATURE_CHOICES:
        raise AlbertInputError(f"signature: must be one of {SIGNATURE_CHOICES}, got {signature!r}")
    kind = sigs.model_kind(model)
    want_text = signature in ("text", "all")
    if want_text and spm_model is None:
        raise AlbertInputError(
            "spm_model: a SentencePiece model is required for the text signature "
            "(export with signature='ids' to serve token ids only)"
        )
    archive = keras.export.ExportArchive()
    archive.track(model)
    names = []

    ids_spec = sigs.ids_input_signature(model)

    def serve_ids(token_ids, segment_ids, padding_mask):
        features = {"token_ids": token_ids, "segment_ids": segment_ids, "padding_mask": padding_mask}
        return sigs.task_outputs(model, features, max_answer_length=max_answer_length)

    ids_arguments = [ids_spec[name] for name in sigs.FEATURES]

    if want_text:
        packer = AlbertTextPacker(
            spm_model, model_sequence_length(model, sequence_length), lowercase=lowercase
        )
        archive.track(packer)
        string = tf.TensorSpec([None], tf.string, name="text")
        string_b = tf.TensorSpec([None], tf.string, name="text_b")

        def serve_outputs(text, text_b=None):
            features = sigs.text_features(model, packer, text, text_b)
            return sigs.task_outputs(model, features, max_answer_length=max_answer_length)

        # The first endpoint added is also `serving_default` (ExportArchive's rule); naming it so
        # makes that explicit.
        if kind == sigs.MULTIPLE_CHOICE:
            choices = tf.TensorSpec([None, sigs.num_outputs(model)], tf.string, name="choices")

            def serve_choices(text, choices):
                return serve_outputs(text, choices)

            archive.add_endpoint("serving_default", serve_choices, input_signature=[string, choices])
        elif kind == sigs.QUESTION_ANSWERER:
            from albert_keras.export import question_answering

            # The answer as a slice of the context sent, strided over long contexts.
            question_answering.add_endpoint(
                archive, model, packer.vocabulary, packer.sequence_length, lowercase,
                name="serving_default", max_answer_length=max_answer_length)

            def serve_text_pair(text, text_b):
                return serve_outputs(text, text_b)

            archive.add_endpoint("serve_text_pair", serve_text_pair, input_signature=[string, string_b])
            names.append("serve_text_pair")
        elif kind == sigs.INTENT_SLOTS:
            from albert_keras.export import intent_slots

            # An utterance in; intent, probability and slots as spans of the text sent out.
            intent_slots.add_endpoint(archive, model, packer.vocabulary, packer.sequence_length, lowercase)
        else:

            def serve_text(text):
                return serve_outputs(text)

            def serve_text_pair(text, text_b):
                return serve_outputs(text, text_b)

            archive.add_endpoint("serving_default", serve_text, input_signature=[string])
            archive.add_endpoint("serve_text_pair", serve_text_pair, input_signature=[string, string_b])
            names.append("serve_text_pair")
        names.insert(0, "serving_default")

        def tokenize(text):
            return packer(text)

        archive.add_endpoint("tokenize", tokenize, input_signature=[string])
        names.append("tokenize")
        # Entities as spans of the text sent (offsets through the normalization).
        if kind == sigs.TOKEN_CLASSIFIER:
            from albert_keras.export import tagging

            names.append(tagging.add_endpoint(archive, model, packer.vocabulary, packer.sequence_length, lowercase))
        if signature == "all":
            archive.add_endpoint("serve_ids", serve_ids, input_signature=ids_arguments)
            names.append("serve_ids")
    else:
        archive.add_endpoint("serving_default", serve_ids, input_signature=ids_arguments)
        names.append("serving_default")
    return archive, names


def export_saved_model(
    model,
    export_dir,
    spm_model=None,
    signature="all",
    sequence_length=None,
    lowercase=True,
    max_answer_length=sigs.DEFAULT_MAX_ANSWER_LENGTH,
    warmup=True,
    warmup_texts=None,
    model_name="albert",
    overwrite=False,
    metadata=None,
):
    """Write `model` as a SavedModel with raw-text and/or token-id serving signatures.

    The directory is written under a temporary name and renamed when complete, so TF Serving
    (which polls for new version directories) never sees a half-written model.

    Args:
        model: an `AlbertEncoder` (or keras-hub `AlbertBackbone`) or an ALBERT task model.
        export_dir: the SavedModel directory, e.g. `saved_models/albert/1`.
        spm_model: the SentencePiece model (path or bytes); required unless `signature="ids"`.
        signature: `"text"` (raw-text signatures), `"ids"` (token ids only) or `"all"`.
        sequence_length: longest packed sequence; longer inputs are truncated. Defaults to the
            model's `max_position_embeddings`. Batches are padded only to their longest member.
        lowercase: lowercase and strip accents before SentencePiece, as the vocabulary expects.
        max_answer_length: longest answer span in tokens (question answerers).
        warmup: write `assets.extra/tf_serving_warmup_requests` (one request per signature).
        warmup_texts: texts for the warmup requests (defaults to two built-in sentences).
        model_name: the model name written into the warmup requests' `model_spec`.
        overwrite: replace an existing `export_dir`.
        metadata: optional JSON-able dict written as `assets.extra/albert_keras.json` (with the
            signature names added), which `albert-keras inspect` reads.

    Returns:
        `export_dir`.

    Example:
    ```python
    export_saved_model(classifier, "saved_models/sentiment/1", spm_model="spiece.model")
    # In a process with only tensorflow + tensorflow_text:
    #   served = tf.saved_model.load("saved_models/sentiment/1")
    #   served.signatures["serving_default"](text=tf.constant(["great movie"]))["label_ids"]
    ```
    """
    archive, names = build_export_archive(
        model,
        spm_model=spm_model,
        signature=signature,
        sequence_length=sequence_length,
        lowercase=lowercase,
        max_answer_length=max_answer_length,
    )
    with atomic_directory(export_dir, overwrite=overwrite) as tmp:
        archive.write_out(tmp, verbose=False)
        if warmup:
            from albert_keras.export import warmup as warmup_lib

            requests = warmup_lib.default_requests(
                model, names, texts=warmup_texts or DEFAULT_WARMUP_TEXTS, model_name=model_name,
                vocabulary=spm_model,
            )
            warmup_lib.write_warmup_file(tmp, requests)
        if metadata is not None:
            write_metadata(tmp, {**metadata, "signatures": names})
    return os.fspath(export_dir)


METADATA_PATH = os.path.join("assets.extra", "albert_keras.json")


def write_metadata(export_dir, metadata):
    """Write `metadata` as `export_dir/assets.extra/albert_keras.json` (next to TF Serving's warmup file).

    `assets.extra/` is copied with the SavedModel but not loaded by TensorFlow, so the record
    changes nothing the model computes.

    Example:
    ```python
    write_metadata("saved_models/sentiment/1", {"precision": "float32"})
    ```
    """
    import json

    path = os.path.join(os.fspath(export_dir), METADATA_PATH)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(metadata, f, indent=2, sort_keys=True)
