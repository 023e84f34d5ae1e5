"""`convert_from` / `convert_to`: pick a converter by format name (what the CLI calls)."""

import importlib

from albert_keras.errors import AlbertInputError

# format -> (module, function, keyword arguments it accepts besides source/output/overwrite)
FROM_FORMATS = {
    "official": ("albert_keras.convert.official", "from_official", ("config", "spm_model", "lowercase")),
    "huggingface": ("albert_keras.convert.huggingface", "from_huggingface", ("spm_model", "num_choices", "lowercase")),
    "keras-hub": ("albert_keras.convert.keras_hub_preset", "from_keras_hub", ("spm_model", "lowercase")),
    "model-garden": ("albert_keras.convert.model_garden", "from_model_garden", ("config", "spm_model", "lowercase")),
}
TO_FORMATS = {
    "huggingface": ("albert_keras.convert.huggingface", "to_huggingface", ()),
    "keras-hub": ("albert_keras.convert.keras_hub_preset", "to_keras_hub", ()),
}
ALIASES = {
    "tf1": "official",
    "hf": "huggingface",
    "transformers": "huggingface",
    "keras_hub": "keras-hub",
    "model_garden": "model-garden",
    "tf-models": "model-garden",
}


def _resolve(fmt, table, flag):
    name = ALIASES.get(str(fmt).lower(), str(fmt).lower())
    if name not in table:
        raise AlbertInputError(f"{flag}: unknown format {fmt!r}; choose from {', '.join(table)}")
    module, function, accepted = table[name]
    return getattr(importlib.import_module(module), function), accepted


def _call(function, accepted, source, output, overwrite, options, flag):
    unsupported = [key for key, value in options.items() if value is not None and key not in accepted]
    if unsupported:
        raise AlbertInputError(f"{flag}: option(s) {', '.join(unsupported)} do not apply to this format")
    kwargs = {key: value for key, value in options.items() if value is not None}
    return function(source, output, overwrite=overwrite, **kwargs)


def convert_from(fmt, source, output, overwrite=False, **options):
    """Convert a foreign checkpoint to a pretrained directory.

    Args:
        fmt: `"official"`, `"huggingface"`, `"keras-hub"` or `"model-garden"` (aliases: `tf1`, `hf`,
            `keras_hub`, `tf-models`).
        source: the foreign checkpoint (directory, archive or prefix; see each converter).
        output: the pretrained directory to write.
        overwrite: replace a non-empty `output`.
        **options: `config`, `spm_model`, `num_choices`, `lowercase` (the tokenizer's casing,
            recorded in `tokenizer.json`), where the format takes them.

    Example:
    ```python
    convert_from("huggingface", "albert-base-v2", "albert_base_v2")
    ```
    """
    function, accepted = _resolve(fmt, FROM_FORMATS, "--from")
    return _call(function, accepted, source, output, overwrite, options, "--from " + str(fmt))


def convert_to(fmt, source, output, overwrite=False):
    """Write a pretrained directory in a foreign format (`"huggingface"` or `"keras-hub"`).

    Example:
    ```python
    convert_to("huggingface", "albert_base_v2", "albert_base_v2_hf")
    ```
    """
    function, accepted = _resolve(fmt, TO_FORMATS, "--to")
    _call(function, accepted, source, output, overwrite, {}, "--to " + str(fmt))
    return output
