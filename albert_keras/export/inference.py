"""Fast batch prediction on raw text: precision chosen for the machine, length bucketing.

- Precision: `mixed_bfloat16` where the hardware runs bfloat16 matmuls natively (CPUs with AMX or
  AVX-512-BF16, via oneDNN; GPUs), float32 elsewhere. On CPUs without those units bfloat16 is
  emulated and slower than float32, so "auto" never picks it there. XLA is not used: on CPU it
  bypasses oneDNN, so it is slower in float32 and much slower in bfloat16
  (docs/export.md, "Inference speed").
- Length bucketing: texts are sorted by token count and batched with their neighbours, and each
  batch is padded only to its own longest member, so short texts do not pay for long ones.

Example:
```python
predictor = Predictor(classifier, "spiece.model", sequence_length=128)
outputs = predictor.predict(["great movie", "terrible plot"], batch_size=32)
outputs["label_ids"]
```
"""

import numpy as np

from albert_keras.export import signatures as sigs

PRECISIONS = ("auto", "float32", "bfloat16")

# /proc/cpuinfo flags of units that run bfloat16 / float16 matmuls natively (oneDNN uses them).
BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")
FP16_CPU_FLAGS = ("amx_fp16", "avx512_fp16")
# Where CPU flags are read; tests point it at a file describing another machine.
CPUINFO_PATH = "/proc/cpuinfo"
# Policies for the reduced precisions (variables stay float32, matmuls run in the low precision).
POLICIES = {"bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}


def cpu_flags(cpuinfo_path=None):
    """The set of CPU feature flags (empty where /proc/cpuinfo does not exist).

    Example:
    ```python
    "amx_bf16" in cpu_flags()
    ```
    """
    try:
        with open(cpuinfo_path or CPUINFO_PATH) as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def native_support(precision, cpuinfo_path=None):
    """Why this machine runs `precision` ("bfloat16" or "float16") natively, or None if it would emulate it.

    Example:
    ```python
    native_support("bfloat16")  # "CPU has amx_bf16", or None on an AVX2-only CPU
    ```
    """
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        return "GPU present"
    wanted = {"bfloat16": BF16_CPU_FLAGS, "float16": FP16_CPU_FLAGS}[precision]
    flags = cpu_flags(cpuinfo_path) & set(wanted)
    return f"CPU has {', '.join(sorted(flags))}" if flags else None


def choose_precision(precision="auto", cpuinfo_path=None):
    """Resolve `"auto"` to `"bfloat16"` or `"float32"` for this machine.

    Returns:
        `(precision, reason)`.

    Example:
    ```python
    precision, reason = choose_precision()
    ```
    """
    if precision not in PRECISIONS:
        from albert_keras.errors import AlbertInputError

        raise AlbertInputError(f"precision: must be one of {PRECISIONS}, got {precision!r}")
    if precision != "auto":
        return precision, "requested"
    reason = native_support("bfloat16", cpuinfo_path)
    if reason:
        return "bfloat16", reason
    return "float32", "CPU lacks amx_bf16/avx512_bf16 (bfloat16 would be emulated, slower)"


def with_precision(model, precision):
    """`model` itself for float32, or a `mixed_bfloat16` / `mixed_float16` copy with the same weights.

    Example:
    ```python
    fast = with_precision(classifier, "bfloat16")
    ```
    """
    if precision == "float32":
        return model
    if precision not in POLICIES:
        raise ValueError(f"precision: {precision!r}")
    import tempfile

    policy = POLICIES[precision]
    if hasattr(model, "save_pretrained"):
        from albert_keras.modeling.pretrained import load_pretrained

        with tempfile.TemporaryDirectory(prefix="albert_lowp_") as tmp:
            model.save_pretrained(tmp)
            return load_pretrained(tmp, dtype=policy)
    # keras-hub backbones take the policy as a constructor argument.
    copy = type(model).from_config({**model.get_config(), "dtype": policy})
    copy.set_weights(model.get_weights())
    return copy


def length_buckets(lengths, batch_size):
    """Batches of indices with similar lengths: sorted by length, cut every `batch_size`.

    Example:
    ```python
    length_buckets([5, 1, 9, 2], batch_size=2)  # [array([1, 3]), array([0, 2])]
    ```
    """
    order = np.argsort(np.asarray(lengths), kind="stable")
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


class Predictor:
    """Raw text -> task outputs with the fastest correct settings for this machine.

    Args:
        model: an ALBERT encoder or task model (float32 weights).
        spm_model: the SentencePiece model (path or bytes).
        sequence_length: longest packed sequence (default: the model's maximum).
        precision: `"auto"`, `"float32"` or `"bfloat16"`.
        lowercase: lowercase and strip accents before SentencePiece.

    Attributes:
        precision, precision_reason: what was chosen, and why.

    Example:
    ```python
    predictor = Predictor(encoder, "spiece.model", sequence_length=128)
    embeddings = predictor.predict(texts)["sentence_embedding"]
    ```
    """

    def __init__(self, model, spm_model, sequence_length=None, precision="auto", lowercase=True):
        import tensorflow as tf

        from albert_keras.export.saved_model import model_sequence_length
        from albert_keras.export.text import AlbertTextPacker

        self.precision, self.precision_reason = choose_precision(precision)
        self.model = with_precision(model, self.precision)
        self.kind = sigs.model_kind(model)
        self.packer = AlbertTextPacker(
            spm_model, model_sequence_length(model, sequence_length), lowercase=lowercase
        )
        string = tf.TensorSpec([None], tf.string)
        if self.kind == sigs.MULTIPLE_CHOICE:
            second = tf.TensorSpec([None, sigs.num_outputs(model)], tf.string)
        else:
            second = string
        self._single = tf.function(self._serve, input_signature=[string])
        self._pair = tf.function(self._serve, input_signature=[string, second])
        self._lengths = tf.function(self.packer.token_lengths, input_signature=[string])

    @classmethod
    def from_pretrained(cls, directory, sequence_length=None, precision="auto"):
        """A predictor for a pretrained directory, tokenizing as the directory records.

        The vocabulary, casing and sequence length come from the directory's vocabulary file and
        `tokenizer.json` (as for `albert-keras export`); a pretrainer's directory predicts with
        its encoder.

        Example:
        ```python
        predictor = Predictor.from_pretrained("runs/sentiment")
        predictor.predict(["a fine film."])["probabilities"]
        ```
        """
        from albert_keras.errors import AlbertInputError
        from albert_keras.export.text import resolve_tokenizer
        from albert_keras.modeling.pretrained import load_pretrained

        model = load_pretrained(directory)
        spm_model, settings = resolve_tokenizer(directory)
        if spm_model is None:
            raise AlbertInputError(f"{directory}: no vocabulary; predicting on raw text needs one (spiece.model or vocab.txt)")
        if type(model).__name__ == "AlbertPretrainer":
            model = model.encoder
        return cls(model, spm_model, sequence_length or settings["sequence_length"], precision=precision,
                   lowercase=settings["lowercase"])

    def _serve(self, text, text_b=None):
        features = sigs.text_features(self.model, self.packer, text, text_b)
        return sigs.task_outputs(self.model, features)

    def token_lengths(self, texts, chunk=1024):
        """SentencePiece token counts of `texts` (before truncation)."""
        counts = [self._lengths(np.asarray(texts[i : i + chunk], dtype=object)).numpy() for i in range(0, len(texts), chunk)]
        return np.concatenate(counts) if counts else np.zeros([0], np.int32)

    def predict(self, texts, texts_b=None, batch_size=32, bucketing=True):
        """Predict on lists of strings, returning numpy outputs in the input order.

        Args:
            texts: list of strings (or bytes).
            texts_b: optional second segments (a list of lists of choices for multiple choice).
            batch_size: sequences per model call.
            bucketing: batch texts of similar length together (output order is unchanged).

        Returns:
            dict of numpy arrays; per-token outputs are padded (with 0) to the longest batch.
        """
        texts = [t.encode("utf-8") if isinstance(t, str) else t for t in texts]
        if texts_b is not None:
            texts_b = np.asarray(texts_b, dtype=object)
        if bucketing and texts:
            lengths = self.token_lengths(texts)
            if texts_b is not None and self.kind != sigs.MULTIPLE_CHOICE:
                lengths = lengths + self.token_lengths(list(texts_b))
            batches = length_buckets(lengths, batch_size)
        else:
            batches = [np.arange(i, min(i + batch_size, len(texts))) for i in range(0, len(texts), batch_size)]
        text_array = np.asarray(texts, dtype=object)
        pieces, order = [], []
        for indices in batches:
            if texts_b is None:
                out = self._single(text_array[indices])
            else:
                out = self._pair(text_array[indices], texts_b[indices])
            pieces.append({key: value.numpy() for key, value in out.items()})
            order.append(indices)
        if not pieces:
            return {}
        return _merge(pieces, np.concatenate(order))


def _merge(pieces, order):
    """Concatenate per-batch outputs (padding per-token ones) and undo the bucketing order."""
    merged = {}
    for key in pieces[0]:
        parts = [p[key] for p in pieces]
        if parts[0].ndim >= 2 and key not in ("pooled_output", "sentence_embedding", "probabilities"):
            width = max(p.shape[1] for p in parts)
            parts = [np.pad(p, [(0, 0), (0, width - p.shape[1])] + [(0, 0)] * (p.ndim - 2)) for p in parts]
        values = np.concatenate(parts)
        result = np.empty_like(values)
        result[order] = values
        merged[key] = result
    return merged


def precision_cost(model, spm_model, texts, sequence_length=None, batch_size=32):
    """Measure what bfloat16 costs in accuracy: max |diff| and label agreement vs float32.

    Example:
    ```python
    precision_cost(classifier, "spiece.model", texts)  # {'max_diff': 0.01, 'label_agreement': 1.0}
    ```
    """
    f32 = Predictor(model, spm_model, sequence_length, precision="float32").predict(texts, batch_size=batch_size)
    bf16 = Predictor(model, spm_model, sequence_length, precision="bfloat16").predict(texts, batch_size=batch_size)
    from albert_keras.export.tflite import compare_outputs

    max_diff, agreement, _ = compare_outputs(f32, bf16)
    return {"max_diff": max_diff, "label_agreement": agreement}

