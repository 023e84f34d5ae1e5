"""Generation for `AlbertSeq2Seq`: the source/target preprocessor, keras-hub samplers, detokenization.

Decoding is keras-hub's: `keras_hub.samplers` (greedy, beam, top-k, top-p) run the loop over a
`next(prompt, cache, index)` function, as in keras-hub's `Seq2SeqLM`. This module supplies that
function, with the decoder's key/value cache (`AlbertSeq2Seq.decode_with_cache`) or without it
(the whole prefix again every step: the reference the cache is tested against), and two things
the samplers leave to the model:

- after `[SEP]` a row is finished: its only possible next token is padding, with probability 1,
  so a finished beam keeps its exact log-probability (keras-hub's `BeamSampler` keeps extending
  finished beams otherwise) and every sampler pads the rest of the row;
- padding, `[CLS]` and `[MASK]` are never generated.

Beam search returns all beams and picks the best by GNMT's length penalty (Wu et al., 2016):
`log p / ((5 + length) / 6) ** length_penalty`, `length_penalty=0` being plain log-probability.
"""

import keras
import numpy as np

from albert_keras.compat import accept_any_call_arguments
from albert_keras.errors import AlbertInputError
from albert_keras.modeling.preprocessing import PreprocessorSlot
from albert_keras.tokenization.layer import AlbertTokenizer

SAMPLERS = ("greedy", "beam", "top_k", "top_p")
DEFAULT_SOURCE_LENGTH = 128
# A logit no token survives (softmax gives exactly 0); finite, so no inf - inf NaNs.
NEVER = -1e9


@keras.saving.register_keras_serializable(package="albert_keras")
class Seq2SeqPreprocessor(keras.layers.Layer):
    """Source strings (and target strings) to `AlbertSeq2Seq` inputs, in-graph.

    Sources are packed `[CLS] source [SEP]` to `tokenizer.sequence_length`; targets
    `[CLS] target [SEP]` to `target_length + 1` pieces, shifted for teacher forcing: the decoder
    reads the first `target_length` and learns to predict the last `target_length`.

    Args:
        tokenizer: an `AlbertTokenizer` (the source length is its `sequence_length`).
        target_length: decoder positions (`AlbertSeq2Seq.max_target_length`).
        **kwargs: `keras.layers.Layer` arguments.

    Call arguments:
        sources: strings `[B]`.
        targets: optional strings `[B]`.

    Returns:
        A dict with `encoder_token_ids` and `encoder_padding_mask`, or, with targets, `(x, labels,
        label_weights)` where x adds `decoder_token_ids` and `decoder_padding_mask` `[B, T]`.

    Example:
    ```python
    preprocessor = Seq2SeqPreprocessor(AlbertTokenizer("spiece.model", sequence_length=32), target_length=16)
    x, labels, weights = preprocessor(["ein satz ."], ["a sentence ."])
    ```
    """

    def __init__(self, tokenizer, target_length, **kwargs):
        kwargs.setdefault("dtype", "int32")
        super().__init__(**kwargs)
        accept_any_call_arguments(self)
        self.tokenizer = tokenizer
        self.target_length = int(target_length)
        self.target_tokenizer = AlbertTokenizer(tokenizer.vocabulary, sequence_length=self.target_length + 1,
                                                lowercase=tokenizer.lowercase, name="target_tokenizer")
        self.built = True

    @property
    def vocabulary(self):
        return self.tokenizer.vocabulary

    def call(self, sources, targets=None):
        encoded = self.tokenizer(sources)
        x = {"encoder_token_ids": encoded["token_ids"], "encoder_padding_mask": encoded["padding_mask"]}
        if targets is None:
            return x
        packed = self.target_tokenizer(targets)
        ids, mask = packed["token_ids"], packed["padding_mask"]
        x["decoder_token_ids"], x["decoder_padding_mask"] = ids[..., :-1], mask[..., :-1]
        return x, ids[..., 1:], keras.ops.cast(mask[..., 1:], "float32")

    def get_config(self):
        config = super().get_config()
        config.update({"tokenizer": keras.saving.serialize_keras_object(self.tokenizer),
                       "target_length": self.target_length})
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["tokenizer"] = keras.saving.deserialize_keras_object(config["tokenizer"])
        return cls(**config)

    @classmethod
    def from_directory(cls, directory, source_length=None, target_length=64, max_positions=None):
        """The preprocessor of a pretrained directory (None without a vocabulary).

        Example:
        ```python
        Seq2SeqPreprocessor.from_directory("runs/translation/pretrained", target_length=32)
        ```
        """
        from albert_keras.modeling.preprocessing import preprocessor_from_directory

        text = preprocessor_from_directory(directory, sequence_length=source_length, max_positions=max_positions)
        if text is None:
            return None
        return cls(text.tokenizer, target_length, name="seq2seq_preprocessor")


def detokenize(vocabulary, ids):
    """Text from generated ids (special ids dropped): SentencePiece decodes; WordPiece joins words,
    glues `##` pieces to the one before and writes CJK characters without spaces between them.

    Example:
    ```python
    detokenize(load_vocabulary("albert_base_zh"), [2769, 4263, 1266, 776])  # "我爱北京"
    ```
    """
    ids = [int(i) for i in ids if not vocabulary.is_special(int(i))]
    if vocabulary.kind == "sentencepiece":
        return vocabulary.processor.decode_ids(ids)
    text = ""
    for token in (vocabulary.id_to_token(i) for i in ids):
        if token.startswith("##"):
            text += token[2:]
        elif text and not (_is_cjk(text[-1]) and _is_cjk(token[0])):
            text += " " + token
        else:
            text += token
    return text


def _is_cjk(character):
    code = ord(character)
    return 0x4E00 <= code <= 0x9FFF or 0x3400 <= code <= 0x4DBF or 0xF900 <= code <= 0xFAFF or 0x20000 <= code <= 0x2FA1F


def make_sampler(sampler="greedy", num_beams=4, top_k=10, top_p=0.9, temperature=1.0, seed=None):
    """A `keras_hub.samplers.Sampler` by name (an instance passes through).

    Beam search returns all its beams (`return_all_beams=True`) so that the length penalty can
    rank them.

    Example:
    ```python
    make_sampler("beam", num_beams=4)  # keras_hub.samplers.BeamSampler
    ```
    """
    from keras_hub import samplers

    if isinstance(sampler, samplers.Sampler):
        return sampler
    if sampler == "greedy":
        return samplers.GreedySampler(temperature=temperature)
    if sampler == "beam":
        return samplers.BeamSampler(num_beams=int(num_beams), return_all_beams=True, temperature=temperature)
    if sampler == "top_k":
        return samplers.TopKSampler(k=int(top_k), seed=seed, temperature=temperature)
    if sampler == "top_p":
        return samplers.TopPSampler(p=float(top_p), seed=seed, temperature=temperature)
    raise AlbertInputError(f"sampler: unknown {sampler!r}; choose one of {', '.join(SAMPLERS)}")


def _best_beams(prompts, log_probs, end_id, length_penalty):
    """The best of `[B, K, T]` beams by `log p / ((5 + length) / 6) ** length_penalty`."""
    ops = keras.ops
    generated = prompts[..., 1:]
    ends = ops.cast(ops.equal(generated, end_id), "int32")
    length = ops.where(ops.any(ends > 0, axis=-1), ops.argmax(ends, axis=-1) + 1, ops.shape(generated)[-1])
    penalty = ops.power((5.0 + ops.cast(length, "float32")) / 6.0, float(length_penalty))
    best = ops.argmax(log_probs / penalty, axis=-1)
    return ops.take_along_axis(prompts, best[:, None, None], axis=1)[:, 0, :]


class GenerationMixin(PreprocessorSlot):
    """`generate` (text) and `generate_ids` (ids) for `AlbertSeq2Seq`, with its `preprocessor` slot."""

    def _special_generation_ids(self):
        preprocessor = self.preprocessor
        if preprocessor is not None:
            special = preprocessor.vocabulary.special_ids
        else:
            special = {"pad": 0, "unk": 1, "cls": 2, "sep": 3, "mask": 4}  # no vocabulary: ALBERT's SentencePiece ids
        return special

    def generation_tensor(self, encoder_token_ids, encoder_padding_mask, max_length, sampler, use_cache=True,
                          length_penalty=0.6):
        """The decoding graph: int32 `[B, max_length]` rows `[CLS] generated ... [SEP] pad ...`.

        Traceable (`tf.function`, a SavedModel signature); `generate_ids` wraps it.

        Args:
            encoder_token_ids, encoder_padding_mask: int32 `[B, S]`.
            max_length: decoder positions, `[CLS]` included (a Python int).
            sampler: a `keras_hub.samplers.Sampler` (`make_sampler`).
            use_cache: the key/value cache (else every step decodes the whole prefix again).
            length_penalty: GNMT's alpha for ranking beams (beam search only).
        """
        ops = keras.ops
        config = self.encoder.config
        special = self._special_generation_ids()
        start, end, pad = special["cls"], special["sep"], special["pad"]
        vocab_size = config.vocab_size
        banned = np.zeros([vocab_size], "float32")
        banned[[pad, start, special["mask"]]] = NEVER
        finished_row = np.full([vocab_size], NEVER, "float32")
        finished_row[pad] = 0.0
        banned, finished_row = ops.convert_to_tensor(banned), ops.convert_to_tensor(finished_row)

        memory = self.encode(encoder_token_ids, encoder_padding_mask)
        batch = ops.shape(encoder_token_ids)[0]
        prompt = ops.concatenate([ops.full((batch, 1), start, "int32"), ops.full((batch, max_length - 1), pad, "int32")],
                                 axis=1)
        mask = ops.concatenate([ops.ones((batch, 1), "bool"), ops.zeros((batch, max_length - 1), "bool")], axis=1)

        def constrain(logits, prompt, index):
            previous = ops.take(prompt, index - 1, axis=1)
            finished = ops.logical_or(ops.equal(previous, end), ops.equal(previous, pad))
            return ops.where(finished[:, None], finished_row[None, :], logits + banned[None, :])

        if use_cache:
            heads = config.num_attention_heads
            head_size = config.hidden_size // heads
            dtype = self.decoder_blocks[0][0].compute_dtype
            layers, blocks = len(self.applied_blocks()), config.num_hidden_groups * config.inner_group_num
            self_cache = ops.zeros((batch, layers, 2, max_length, heads, head_size), dtype)
            cross_cache = ops.zeros((batch, blocks, 2, ops.shape(memory)[1], heads, head_size), dtype)
            _, self_cache, cross_cache = self.decode_with_cache(
                prompt[:, :1], memory, encoder_padding_mask, self_cache, 0, cross_cache, fill_cross_cache=True)
            cache = (self_cache, cross_cache, memory, encoder_padding_mask)

            def next(prompt, cache, index):
                self_cache, cross_cache, memory, memory_mask = cache
                token = ops.slice(prompt, [0, index - 1], [ops.shape(prompt)[0], 1])
                logits, self_cache, _ = self.decode_with_cache(token, memory, memory_mask, self_cache, index - 1,
                                                               cross_cache)
                return constrain(logits[:, 0, :], prompt, index), None, (self_cache, cross_cache, memory, memory_mask)
        else:
            cache = (memory, encoder_padding_mask)

            def next(prompt, cache, index):
                memory, memory_mask = cache
                logits = self.decode(prompt, memory, memory_mask, training=False)
                return constrain(ops.take(logits, index - 1, axis=1), prompt, index), None, cache

        result = sampler(next=next, prompt=prompt, cache=cache, index=1, mask=mask, stop_token_ids=(end,), model=self)
        if isinstance(result, tuple):  # BeamSampler(return_all_beams=True)
            return _best_beams(result[0], result[1], end, length_penalty)
        return result

    def _generation_function(self, max_length, sampler, use_cache, length_penalty, settings):
        import tensorflow as tf

        # Past Keras' __setattr__ on purpose: an assigned dict is wrapped for tracking, and
        # `tf.saved_model.save` then refuses the model ("a dictionary wrapper constructed
        # automatically on attribute assignment ... contains a non-string key"); Keras has no public
        # untracked attribute.
        functions = self.__dict__.setdefault("_generation_functions", {})
        # A sampler named by its settings is made once and its traced loop reused on every call
        # (new samplers would retrace the loop for each batch); an instance is keyed by identity.
        named = isinstance(sampler, str)
        key = (max_length, settings if named else id(sampler), use_cache, length_penalty)
        if key not in functions:
            if named:
                sampler = make_sampler(sampler, **dict(settings[1:]))
            # Kept outside Keras' tracking; holding the sampler keeps its id unique.
            functions[key] = (sampler, tf.function(
                lambda ids, mask: self.generation_tensor(ids, mask, max_length, sampler, use_cache, length_penalty),
                reduce_retracing=True))
        return functions[key][1]

    def generate_ids(self, encoder_token_ids, encoder_padding_mask, max_length=None, sampler="greedy",
                     num_beams=4, length_penalty=0.6, top_k=10, top_p=0.9, temperature=1.0, seed=None,
                     use_cache=True):
        """Generated ids for a batch of packed sources: one list per row, without `[CLS]` and `[SEP]`.

        Args:
            encoder_token_ids, encoder_padding_mask: int32 `[B, S]` (`[CLS] source [SEP]`).
            max_length: decoder positions, `[CLS]` included (default: `max_target_length`).
            sampler: `"greedy"`, `"beam"`, `"top_k"`, `"top_p"` or a `keras_hub.samplers.Sampler`.
            num_beams, length_penalty: beam search's width and GNMT length penalty.
            top_k, top_p, temperature, seed: the random samplers' settings.
            use_cache: decode with the key/value cache (same tokens, faster).

        Example:
        ```python
        model.generate_ids(ids, np.ones_like(ids), sampler="beam", num_beams=4)
        ```
        """
        max_length = int(max_length or self.max_target_length)
        limit = self.encoder.config.max_position_embeddings
        if not 2 <= max_length <= limit:
            raise AlbertInputError(f"max_length: {max_length} is outside [2, max_position_embeddings={limit}]")
        if isinstance(sampler, str) and sampler not in SAMPLERS:
            raise AlbertInputError(f"sampler: unknown {sampler!r}; choose one of {', '.join(SAMPLERS)}")
        settings = (sampler, ("num_beams", int(num_beams)), ("top_k", int(top_k)), ("top_p", float(top_p)),
                    ("temperature", float(temperature)), ("seed", seed))
        function = self._generation_function(max_length, sampler, bool(use_cache), float(length_penalty), settings)
        rows = np.asarray(function(np.asarray(encoder_token_ids, "int32"), np.asarray(encoder_padding_mask, "int32")))
        end = self._special_generation_ids()["sep"]
        results = []
        for row in rows[:, 1:].tolist():
            results.append(row[: row.index(end)] if end in row else row)
        return results

    def generate(self, sources, max_length=None, batch_size=32, **options):
        """Generated text for source strings (the model's preprocessor tokenizes and detokenizes).

        Args:
            sources: a string or a list of strings (a dialogue context already joined).
            max_length: decoder positions (default: `max_target_length`).
            batch_size: sources decoded together.
            **options: `generate_ids` options (`sampler`, `num_beams`, `length_penalty`, ...).

        Returns:
            A list of strings (a string for a string).

        Example:
        ```python
        model = AlbertSeq2Seq.from_pretrained("runs/translation/pretrained")
        model.generate(["the cat sees the dog ."], sampler="beam", num_beams=4)
        ```
        """
        single = isinstance(sources, str)
        sources = [sources] if single else [str(s) for s in sources]
        preprocessor = self.preprocessor
        if preprocessor is None:
            raise AlbertInputError(f"{self.name}: no preprocessor; build the model with from_pretrained on a directory "
                                   "holding spiece.model or vocab.txt, or call generate_ids")
        outputs = []
        for begin in range(0, len(sources), int(batch_size)):
            x = preprocessor(sources[begin:begin + int(batch_size)])
            ids = self.generate_ids(x["encoder_token_ids"], x["encoder_padding_mask"], max_length=max_length, **options)
            outputs.extend(detokenize(preprocessor.vocabulary, row) for row in ids)
        return outputs[0] if single else outputs
