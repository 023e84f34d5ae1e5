"""A SentencePiece model whose own normalization rules are ALBERT's normalization.

Runtimes that only run a SentencePiece model (MediaPipe's and the Task Library's tokenizers,
tensorflow-text's `FastSentencepieceTokenizer` inside TFLite) cannot run `preprocess_text`'s
regex and ICU steps. But a SentencePiece model carries a normalization table
(`normalizer_spec.precompiled_charsmap`: longest-match rules from input code-point sequences to
output strings) that every one of them applies. `folded_spm_model` builds that table from the
Python normalization itself, code point by code point: the rule for `c` is
`spm_normalize(preprocess_text(c))` (ALBERT's steps, then the model's own NFKC rules, in the
order training used), plus the multi-character rules ``` `` ``` -> `"`, `''` -> `"` and, for
uncased models, Greek final sigma. Piece ids and scores do not change: the folded model gives the
ids of the original after `preprocess_text`, with a table SentencePiece compiles itself
(`SentencePieceNormalizer(rule_tsv=...)`).

What per-code-point rules cannot express (measured in tests/export/test_albert_spm.py and
docs/export.md): whitespace is collapsed by SentencePiece's own `remove_extra_whitespaces` on
the table's output (the same result for Python's whitespace set, mapped to a space);
decomposed sequences that NFKC would re-compose (rare in real text: input is nearly always
NFC); and final sigma is decided by the next character only.

The protobuf edit is done on the wire format: the `sentencepiece_model_pb2` module that ships with
sentencepiece 0.2 refuses to load under TensorFlow 2.21's protobuf 6 runtime (gencode 7 > 6).
"""

import functools
import hashlib
import os
import sys
import tempfile
import unicodedata

from albert_keras.tokenization.sentencepiece import preprocess_text

# ModelProto.normalizer_spec and the NormalizerSpec fields replaced (sentencepiece_model.proto).
_NORMALIZER_SPEC = 3
_NAME, _CHARSMAP, _RULE_TSV = 1, 2, 6
FOLDED_NAME = "albert_folded"


def _varint(value):
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _read_varint(data, pos):
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos


def _fields(data):
    """`[(field number, raw bytes of the whole field)]` of a serialized protobuf message."""
    fields, pos = [], 0
    while pos < len(data):
        start = pos
        key, pos = _read_varint(data, pos)
        wire = key & 7
        if wire == 0:
            _, pos = _read_varint(data, pos)
        elif wire == 1:
            pos += 8
        elif wire == 2:
            length, pos = _read_varint(data, pos)
            pos += length
        elif wire == 5:
            pos += 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        fields.append((key >> 3, bytes(data[start:pos])))
    return fields


def _payload(field):
    """The content of a length-delimited field."""
    _, pos = _read_varint(field, 0)
    _, pos = _read_varint(field, pos)
    return field[pos:]


def _length_delimited(number, payload):
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def precompiled_charsmap(spm_proto):
    """The normalization table (`normalizer_spec.precompiled_charsmap`) of a SentencePiece model.

    Read from the wire format, because sentencepiece's own protobuf module does not load under
    TensorFlow's protobuf runtime (see the module docstring).

    Args:
        spm_proto: the serialized model (the bytes of a `.model` file).

    Returns:
        The table's bytes, or `None` when the model has none.

    Example:
    ```python
    table = precompiled_charsmap(open("spiece.model", "rb").read())
    ```
    """
    charsmap = None
    for number, field in _fields(spm_proto):
        if number == _NORMALIZER_SPEC:
            for inner, value in _fields(_payload(field)):
                if inner == _CHARSMAP:
                    charsmap = _payload(value)
    return charsmap


def _greek_cased():
    """Characters of the Greek blocks whose ALBERT form is a cased letter (sigma contexts)."""
    chars = []
    for c in list(range(0x370, 0x400)) + list(range(0x1F00, 0x2000)):
        out = preprocess_text(chr(c), lowercase=True)
        if out and unicodedata.category(out[0]) in ("Ll", "Lu", "Lt"):
            chars.append(chr(c))
    return chars


def folding_rules(spm_proto, lowercase=True):
    """`{input string: output string}`: the normalization rules folded into the model.

    Args:
        spm_proto: serialized SentencePiece model (its own NFKC rules run after ALBERT's steps).
        lowercase: the model's casing (as `preprocess_text`'s `lowercase`).

    Example:
    ```python
    folding_rules(open("spiece.model", "rb").read())["É"]  # "e"
    ```
    """
    import sentencepiece

    model_norm = sentencepiece.SentencePieceNormalizer(
        model_proto=spm_proto, add_dummy_prefix=False, remove_extra_whitespaces=False, escape_whitespaces=False
    )
    chars, albert = [], []
    for c in range(sys.maxunicode + 1):
        if 0xD800 <= c <= 0xDFFF:
            continue
        char = chr(c)
        chars.append(char)
        # A whitespace character alone strips to ""; inside text it is one space (collapsed
        # again by SentencePiece's remove_extra_whitespaces, as " ".join(text.split()) does).
        albert.append(" " if char.isspace() else preprocess_text(char, lowercase))
    normalized = model_norm.normalize(albert)
    rules = {char: out for char, out in zip(chars, normalized) if out != char}
    quote = model_norm.normalize('"')
    rules["``"] = rules["''"] = quote
    if lowercase:
        # Python lowercases a capital sigma at the end of a word to final sigma; here "the end"
        # is decided by the next character: another Greek letter keeps the medial form.
        for follower in _greek_cased():
            rules["\u03a3" + follower] = "\u03c3" + rules.get(follower, follower)
        rules["\u03a3"] = "\u03c2"
    return rules


def _rules_tsv(rules, path):
    with open(path, "w", encoding="utf-8") as f:
        for source, target in sorted(rules.items()):
            # An empty target removes the input; SentencePiece reads it as an empty field.
            source_hex = " ".join(f"{ord(ch):X}" for ch in source)
            target_hex = " ".join(f"{ord(ch):X}" for ch in target)
            f.write(f"{source_hex}\t{target_hex}\n")


def folded_spm_model(spm_proto, lowercase=True):
    """The SentencePiece model proto `spm_proto` with ALBERT's normalization as its rules.

    Args:
        spm_proto: serialized SentencePiece model (bytes).
        lowercase: the model's casing (as `preprocess_text`'s `lowercase`).

    Returns:
        serialized model bytes: same pieces, ids and scores; `normalizer_spec` named
        `albert_folded` with the folded table, the original's whitespace settings kept.

    Example:
    ```python
    folded = folded_spm_model(open("spiece.model", "rb").read())
    sentencepiece.SentencePieceProcessor(model_proto=folded).encode("Crème Brûlée")
    ```
    """
    return _folded_cached(hashlib.sha256(spm_proto).hexdigest(), bytes(spm_proto), bool(lowercase))


@functools.lru_cache(maxsize=4)
def _folded_cached(digest, spm_proto, lowercase):
    import sentencepiece

    del digest  # the cache key only
    rules = folding_rules(spm_proto, lowercase)
    with tempfile.TemporaryDirectory(prefix="albert_spm_") as tmp:
        path = os.path.join(tmp, "rules.tsv")
        _rules_tsv(rules, path)
        compiled = sentencepiece.SentencePieceNormalizer(rule_tsv=path).serialized_normalizer_spec()
    charsmap = [f for number, f in _fields(compiled) if number == _CHARSMAP]
    out = bytearray()
    for number, field in _fields(spm_proto):
        if number != _NORMALIZER_SPEC:
            out += field
            continue
        spec = _length_delimited(_NAME, FOLDED_NAME.encode()) + charsmap[0]
        spec += b"".join(f for n, f in _fields(_payload(field)) if n not in (_NAME, _CHARSMAP, _RULE_TSV))
        out += _length_delimited(_NORMALIZER_SPEC, spec)
    return bytes(out)
