"""Full-integer TFLite: calibration texts, integer-friendly tracing, and which ops stayed float.

`full-int8` quantizes weights and activations to int8 with ranges measured on a representative
set of texts (TFLite's post-training full-integer quantization); `int16x8` keeps activations in
16 bits and weights in 8 (TFLite's `EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8`),
for the LayerNorm statistics and softmax inputs that 8 bits resolve coarsely. Both allow the
converter's float fallback for ops without an integer kernel; `float_ops` lists those, with why.

Two parts of the Keras graph defeat integer quantization and are traced differently for these
modes only (the float computation is the same, so the float model's numbers do not change):

- Attention masking. Keras writes the padding mask into the scores as a huge negative number
  before the softmax, so the calibrated range of the masked scores spans ~1e9 and every real score
  rounds to the same int8 value: measured on a trained tiny classifier, its int8 file gave the
  float model's label on 50 % of held-out sentences. Here the softmax runs on the unmasked scores
  and the probabilities of padding positions are zeroed and the rest renormalized, which is the
  same distribution (exp(s_i) m_i / sum_j exp(s_j) m_j) with scores in their natural range
  (100 % agreement on the same sentences).
- LayerNorm. Keras computes the variance with `SQUARED_DIFFERENCE` and the centring with `NEG`,
  which have no int16 kernel in LiteRT (a 16x8 file then fails to run) and no int8 one for `NEG`
  (kept float); here the same statistics are traced as `x - mean` and `mean(d * d)`.
- Embedding lookups. Keras' `take` wraps negative ids with an int32 `ADD`/`SELECT`, which the 16x8
  quantizer tries to calibrate as an activation and fails on ("Max and min for dynamic tensors
  should be recorded ... segment_ids"); ids are never negative here, so a plain gather is traced.
"""

import contextlib
import functools

import numpy as np

from albert_keras.errors import AlbertInputError

FULL_INTEGER = ("full-int8", "int16x8")
CALIBRATION_SENTENCES = 200

# Why an op stays float in a full-integer file, by TFLite builtin name (the converter says nothing).
_REASONS = {
    "QUANTIZE": "boundary: float values entering the integer graph",
    "DEQUANTIZE": "boundary: integer values leaving for a float op or a float output",
    "NEG": "TFLite has no integer NEG kernel (LayerNorm's mean subtraction): the converter kept it float",
}
_OUTPUT_REASON = "computes a float32 output of the signature (probabilities, scores, embeddings)"
_DEFAULT_REASON = "no integer kernel for this op with these inputs in TFLite's builtins: the converter kept it float"


def calibration_texts(path=None, count=CALIBRATION_SENTENCES):
    """The texts whose activation ranges a full-integer file is calibrated on.

    Args:
        path: a one-text-a-line file of the user's texts (`albert_keras.text_files.read_lines`,
            blank lines skipped); None: `count` sentences of the embedded corpus, taken between
            the sentences `tflite.verification_texts` checks on, so the gate sees texts the
            calibration did not.
        count: how many texts to use at most (the file's first `count`).

    Raises:
        AlbertInputError: the file is missing, not UTF-8 or has no texts (one line).

    Example:
    ```python
    texts = calibration_texts("my_texts.txt")
    ```
    """
    if path is not None:
        from albert_keras.text_files import read_lines

        return read_lines(path, skip_blank=True)[:count]
    from albert_keras.data.corpus import embedded_corpus

    sentences = [s for document in embedded_corpus() for s in document if s.strip()]
    step = max(len(sentences) // count, 1)
    return sentences[step // 2 :: step][:count]


def packed_features(texts, spm_model, sequence_length, lowercase=True, pairs=False):
    """`{token_ids, segment_ids, padding_mask}` int32 arrays `[N, sequence_length]` for `texts`.

    Args:
        texts: strings.
        spm_model: the vocabulary (path, bytes or `Vocabulary`).
        sequence_length: the packed length.
        lowercase: the model's casing.
        pairs: pack each text with itself reversed as a second segment (question answerers and
            multiple choice read pairs; the calibration then sees both segment ids).

    Example:
    ```python
    features = packed_features(["A text."], "spiece.model", 64)
    ```
    """
    import tensorflow as tf

    from albert_keras.export.text import AlbertTextPacker

    packer = AlbertTextPacker(spm_model, int(sequence_length), lowercase=lowercase)
    text = tf.constant(list(texts))
    features = packer(text, tf.reverse(text, [0]) if pairs else None)
    return {name: value.numpy().astype(np.int32) for name, value in features.items()}


def packed_inputs(model, texts, spm_model, sequence_length, lowercase=True):
    """The ids inputs of `model`'s TFLite signature for `texts` (pairs for QA, choices repeated).

    Example:
    ```python
    inputs = packed_inputs(classifier, ["A text."], "spiece.model", 32)
    ```
    """
    from albert_keras.export import signatures as sigs

    kind = sigs.model_kind(model)
    texts = [t if isinstance(t, str) else t.decode("utf-8", "replace") for t in texts]
    features = packed_features(texts, spm_model, sequence_length, lowercase=lowercase, pairs=kind in sigs.PAIR_KINDS)
    if kind == sigs.MULTIPLE_CHOICE:
        features = {k: np.repeat(v[:, None, :], sigs.num_outputs(model), axis=1) for k, v in features.items()}
    return features


def representative_dataset(features, input_signature, num_choices=None):
    """A converter's `representative_dataset`: one example per call, shaped as the signature wants.

    Args:
        features: packed `{name: [N, T]}` arrays (`packed_features`).
        input_signature: the serving function's `tf.TensorSpec`s (a static length is padded or cut to).
        num_choices: multiple choice: each example repeated over `[1, C, T]`.

    Example:
    ```python
    converter.representative_dataset = representative_dataset(features, signature)
    ```
    """
    names = [spec.name for spec in input_signature]
    length = input_signature[0].shape[-1]

    def examples():
        for row in range(len(features[names[0]])):
            example = {}
            for name in names:
                value = features[name][row : row + 1]
                if length is not None:
                    value = np.pad(value, ((0, 0), (0, max(length - value.shape[1], 0))))[:, :length]
                if num_choices:
                    value = np.repeat(value[:, None, :], num_choices, axis=1)
                example[name] = value.astype(np.int32)
            yield example

    return examples


def configure_converter(converter, quantize, dataset):
    """Set a `tf.lite.TFLiteConverter` up for `quantize` (`"full-int8"` or `"int16x8"`).

    Inputs (token ids) and outputs stay int32 / float32, so the file is called as the float one is.

    Example:
    ```python
    configure_converter(converter, "full-int8", representative_dataset(features, signature))
    ```
    """
    import tensorflow as tf

    if quantize not in FULL_INTEGER:
        raise AlbertInputError(f"quantize: {quantize!r} is not a full-integer mode {FULL_INTEGER}")
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = dataset
    first = (tf.lite.OpsSet.TFLITE_BUILTINS_INT8 if quantize == "full-int8"
             else tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8)
    converter.target_spec.supported_ops = [first, tf.lite.OpsSet.TFLITE_BUILTINS]


def _masked_softmax_attention(layer, query, key, value, attention_mask, training, scale):
    """Dot-product attention whose mask zeroes probabilities instead of adding -1e9 to scores."""
    import tensorflow as tf

    if len(query.shape) != 4 or (attention_mask is not None and len(attention_mask.shape) not in (3, 4)):
        return None
    scores = tf.einsum("BTNH,BSNH->BNTS", query * tf.cast(scale, query.dtype), key)
    probabilities = tf.nn.softmax(scores, axis=-1)
    if attention_mask is not None:
        mask = tf.cast(attention_mask, probabilities.dtype)
        if len(mask.shape) == 3:  # [batch, T, S] -> one mask for every head
            mask = tf.expand_dims(mask, 1)
        probabilities = probabilities * mask
        # The floor keeps the divisor off the int8 zero point: LiteRT's integer DIV refuses a zero
        # divisor (`div.cc: data[i] != zero_point`), which a padded row whose real positions hold
        # under 1/256 of the softmax mass rounds to. Such rows (and rows with nothing to attend to)
        # are scaled down instead of renormalized; the agreement gate judges the file.
        probabilities = probabilities / tf.maximum(tf.reduce_sum(probabilities, -1, keepdims=True), 1.0 / 128)
    return tf.einsum("BNTS,BSNH->BTNH", probabilities, value)


def _layer_norm_call(self, inputs):
    import tensorflow as tf

    if list(self.axis) not in ([-1], [len(inputs.shape) - 1]) or self.rms_scaling:
        return super(type(self), self).call(inputs)
    mean = tf.reduce_mean(inputs, axis=-1, keepdims=True)
    centered = inputs - mean
    outputs = centered * tf.math.rsqrt(tf.reduce_mean(centered * centered, axis=-1, keepdims=True) + self.epsilon)
    if self.scale:
        outputs = outputs * tf.cast(self.gamma, outputs.dtype)
    if self.center:
        outputs = outputs + tf.cast(self.beta, outputs.dtype)
    return outputs


def _gather_call(self, inputs, *args, **kwargs):
    import tensorflow as tf

    if args or kwargs:  # e.g. a reversible embedding's `reverse=True`: Keras' own code
        return super(type(self), self).call(inputs, *args, **kwargs)
    return tf.cast(tf.gather(self.embeddings, tf.cast(inputs, tf.int32)), self.compute_dtype)


@functools.cache  # one class per bases: Keras and tf.function see the same class on every export
def _subclass(bases, name, members_key):
    members = {"gather": {"call": _gather_call}, "layer_norm": {"call": _layer_norm_call}}.get(members_key, {})
    return type(name, bases, {"__module__": __name__, **members})


@contextlib.contextmanager
def integer_friendly_tracing(model):
    """Inside this block, `model`'s attention, LayerNorm and embedding layers trace as described above.

    The layers keep their objects and weights; their classes are restored on exit. Models whose
    encoder is not albert-keras' (keras-hub backbones) are traced as they are.

    Example:
    ```python
    with integer_friendly_tracing(classifier):
        archive.add_endpoint("serving_default", serve, input_signature=signature)
    ```
    """
    import keras

    from albert_keras import compat

    encoder = getattr(model, "encoder", model)
    swapped = []
    attention = compat.attention_class_with(_masked_softmax_attention, "MaskedSoftmaxAttention")
    for group in getattr(encoder, "transformer_layers", []):
        for block in group:
            layer = compat.transformer_block_layers(block)["attention"]
            if not isinstance(layer, attention):
                # Before the layer's own class in the method order: this attention, else its own.
                swapped.append((layer, type(layer), _subclass((attention, type(layer)), "MaskedSoftmaxAttention", None)))
    norms = [getattr(encoder, "embeddings_layer_norm", None)]
    for group in getattr(encoder, "transformer_layers", []):
        for block in group:
            norms.extend(compat.transformer_block_layers(block)["layer_norms"])
    for layer in norms:
        if isinstance(layer, keras.layers.LayerNormalization):
            swapped.append((layer, type(layer), _subclass((type(layer),), "IntegerLayerNormalization", "layer_norm")))
    for name in ("token_embedding", "segment_embedding"):
        layer = getattr(encoder, name, None)
        if isinstance(layer, keras.layers.Embedding):
            swapped.append((layer, type(layer), _subclass((type(layer),), "GatherEmbedding", "gather")))
    try:
        for layer, _, cls in swapped:
            compat.replace_layer_class(layer, cls)
        yield
    finally:
        for layer, original, _ in swapped:
            compat.replace_layer_class(layer, original)


def float_ops(tflite_model):
    """The ops of a (full-integer) `.tflite` file that compute in float32, with why.

    Read from the flatbuffer (`ai_edge_litert.schema_py_generated`): an op is float when one of its
    inputs or outputs is a float32 tensor.

    Returns:
        a list of `{"op", "count", "reason"}`, most frequent first.

    Example:
    ```python
    float_ops(open("model.tflite", "rb").read())  # [{"op": "DEQUANTIZE", "count": 3, "reason": ...}]
    ```
    """
    from ai_edge_litert import schema_py_generated as schema

    if isinstance(tflite_model, str):
        with open(tflite_model, "rb") as f:
            tflite_model = f.read()
    names = {value: key for key, value in vars(schema.BuiltinOperator).items() if not key.startswith("_")}
    model = schema.Model.GetRootAsModel(tflite_model, 0)
    graph = model.Subgraphs(0)
    outputs = set(int(i) for i in graph.OutputsAsNumpy())
    # Tensors that only feed the float outputs: walked back from the outputs through float ops.
    producers = {}
    for index in range(graph.OperatorsLength()):
        for tensor in graph.Operators(index).OutputsAsNumpy():
            producers[int(tensor)] = index
    tail, stack = set(), [producers[t] for t in outputs if t in producers]
    while stack:
        index = stack.pop()
        op = graph.Operators(index)
        if index in tail or names.get(_code(model, op)) == "DEQUANTIZE":
            continue
        tail.add(index)
        stack.extend(producers[int(t)] for t in op.InputsAsNumpy() if t >= 0 and int(t) in producers)
    counts = {}
    for index in range(graph.OperatorsLength()):
        op = graph.Operators(index)
        tensors = [int(t) for t in list(op.InputsAsNumpy()) + list(op.OutputsAsNumpy()) if t >= 0]
        if not any(graph.Tensors(t).Type() == schema.TensorType.FLOAT32 for t in tensors):
            continue
        name = names.get(_code(model, op), "CUSTOM")
        reason = _REASONS.get(name) or (_OUTPUT_REASON if index in tail else _DEFAULT_REASON)
        counts[(name, reason)] = counts.get((name, reason), 0) + 1
    rows = [{"op": name, "count": count, "reason": reason} for (name, reason), count in counts.items()]
    return sorted(rows, key=lambda row: (-row["count"], row["op"]))


def _code(model, op):
    code = model.OperatorCodes(op.OpcodeIndex())
    # Codes above 127 live in BuiltinCode; the deprecated byte field holds the rest.
    return max(code.BuiltinCode(), code.DeprecatedBuiltinCode())


def describe_float_ops(rows):
    """One line for `float_ops`: `"NEG x4 (why); ..."` or `"none"`.

    Example:
    ```python
    describe_float_ops(float_ops("model.tflite"))
    ```
    """
    return "; ".join(f"{row['op']} x{row['count']} ({row['reason']})" for row in rows) or "none"
