"""The original TF1 checkpoints of google-research/albert (`albert_base_v2.tar.gz` and friends).

A released archive holds `albert_config.json`, `model.ckpt-best.{index,data-*}` and
`30k-clean.model`. Variables are read by name with `tf.train.load_checkpoint`; the mapping table
below covers every variable the official `modeling.py` and `run_pretraining.py` create (all groups
and inner groups, the MLM and SOP heads), plus the fine-tuning heads of `run_classifier.py`
(`output_weights`, `output_bias`) and `run_squad_v1.py` (`cls/squad/...`). Optimizer slots
(`adam_m`, `adam_v`, `lamb_m`, `lamb_v`) and `global_step` are skipped.

The Chinese archives (`albert_*_zh`) use the same variable names with `vocab_chinese.txt` (a
WordPiece vocabulary, carried as `vocab.txt`), `hidden_act: relu` and their own head counts; their
configs' legacy keys are ignored by `AlbertConfig`. brightmart's native models are refused by name.
"""

import glob
import os
import re
import shutil
import tempfile

from albert_keras.convert import common
from albert_keras.convert.common import COPY
from albert_keras.convert.common import HEADS_BIAS
from albert_keras.convert.common import HEADS_IN
from albert_keras.convert.common import HEADS_OUT
from albert_keras.convert.common import TRANSPOSE
from albert_keras.convert.common import Rule
from albert_keras.errors import AlbertInputError

_BLOCK = "bert/encoder/transformer/group_{g}/inner_group_{i}/"
_OURS = "group_{g}_inner_layer_{i}/"

# One row per variable of google-research/albert (modeling.py), in the order its checkpoints list them.
RULES = (
    Rule("token_embedding/embeddings", "bert/embeddings/word_embeddings"),
    Rule("position_embedding/embeddings", "bert/embeddings/position_embeddings"),
    Rule("segment_embedding/embeddings", "bert/embeddings/token_type_embeddings"),
    Rule("embeddings_layer_norm/gamma", "bert/embeddings/LayerNorm/gamma"),
    Rule("embeddings_layer_norm/beta", "bert/embeddings/LayerNorm/beta"),
    Rule("embedding_projection/kernel", "bert/encoder/embedding_hidden_mapping_in/kernel"),
    Rule("embedding_projection/bias", "bert/encoder/embedding_hidden_mapping_in/bias"),
    *(
        rule
        for proj in ("query", "key", "value")
        for rule in (
            Rule(f"{_OURS}self_attention_layer/{proj}/kernel", f"{_BLOCK}attention_1/self/{proj}/kernel", HEADS_IN),
            Rule(f"{_OURS}self_attention_layer/{proj}/bias", f"{_BLOCK}attention_1/self/{proj}/bias", HEADS_BIAS),
        )
    ),
    Rule(f"{_OURS}self_attention_layer/attention_output/kernel", f"{_BLOCK}attention_1/output/dense/kernel", HEADS_OUT),
    Rule(f"{_OURS}self_attention_layer/attention_output/bias", f"{_BLOCK}attention_1/output/dense/bias"),
    Rule(f"{_OURS}self_attention_layer_norm/gamma", f"{_BLOCK}LayerNorm/gamma"),
    Rule(f"{_OURS}self_attention_layer_norm/beta", f"{_BLOCK}LayerNorm/beta"),
    Rule(f"{_OURS}feedforward_intermediate_dense/kernel", f"{_BLOCK}ffn_1/intermediate/dense/kernel"),
    Rule(f"{_OURS}feedforward_intermediate_dense/bias", f"{_BLOCK}ffn_1/intermediate/dense/bias"),
    Rule(f"{_OURS}feedforward_output_dense/kernel", f"{_BLOCK}ffn_1/intermediate/output/dense/kernel"),
    Rule(f"{_OURS}feedforward_output_dense/bias", f"{_BLOCK}ffn_1/intermediate/output/dense/bias"),
    Rule(f"{_OURS}feedforward_layer_norm/gamma", f"{_BLOCK}LayerNorm_1/gamma"),
    Rule(f"{_OURS}feedforward_layer_norm/beta", f"{_BLOCK}LayerNorm_1/beta"),
    Rule("pooled_dense/kernel", "bert/pooler/dense/kernel"),
    Rule("pooled_dense/bias", "bert/pooler/dense/bias"),
    Rule("mlm/intermediate_dense/kernel", "cls/predictions/transform/dense/kernel"),
    Rule("mlm/intermediate_dense/bias", "cls/predictions/transform/dense/bias"),
    Rule("mlm/intermediate_layer_norm/gamma", "cls/predictions/transform/LayerNorm/gamma"),
    Rule("mlm/intermediate_layer_norm/beta", "cls/predictions/transform/LayerNorm/beta"),
    Rule("mlm/output_bias", "cls/predictions/output_bias"),
    # The SOP weights are stored [2, H] and used as `x @ W^T`.
    Rule("sop/kernel", "cls/seq_relationship/output_weights", TRANSPOSE),
    Rule("sop/bias", "cls/seq_relationship/output_bias", COPY),
)

# Fine-tuning heads, stored [units, H] like the SOP head.
CLASSIFIER_RULES = (
    Rule("task/kernel", "output_weights", TRANSPOSE),
    Rule("task/bias", "output_bias"),
)
SQUAD_RULES = (
    Rule("task/kernel", "cls/squad/output_weights", TRANSPOSE),
    Rule("task/bias", "cls/squad/output_bias"),
)

_OPTIMIZER = re.compile(
    r"(^|/)(adam_m|adam_v|lamb_m|lamb_v|Adam|Adam_1|Momentum|beta1_power|beta2_power|global_step|"
    r"good_steps|loss_scale|current_loss_scale)$"
)


def is_optimizer_variable(name):
    """True for optimizer slots and counters that released checkpoints carry."""
    return bool(_OPTIMIZER.search(name)) or "AdamWeightDecayOptimizer" in name


class CheckpointArrays:
    """A lazy mapping over a name-based TF checkpoint: shapes from the index, tensors on access.

    Names lose a leading `module/` (checkpoints exported through TF-Hub carry it).
    """

    def __init__(self, prefix):
        import tensorflow as tf

        self.prefix = prefix
        self._errors = tf.errors
        try:
            self._reader = tf.train.load_checkpoint(prefix)
            shapes = self._reader.get_variable_to_shape_map()
            self._names = self._index(shapes)
        except AlbertInputError:
            raise
        except (tf.errors.OpError, ValueError, IndexError, RuntimeError) as error:
            raise AlbertInputError(f"{prefix}: unreadable {self.kind} ({_first_line(error)})") from None

    kind = "checkpoint"

    def _index(self, shapes):
        """`{name used for mapping: (key in the checkpoint, shape)}`."""
        names = {}
        for name, shape in shapes.items():
            short = name[len("module/"):] if name.startswith("module/") else name
            names[short] = (name, tuple(shape))
        return names

    def keys(self):
        return self._names.keys()

    def shape_of(self, name):
        return self._names[name][1]

    def __getitem__(self, name):
        try:
            return self._reader.get_tensor(self._names[name][0])
        except (self._errors.OpError, ValueError, IndexError, RuntimeError) as error:
            raise AlbertInputError(
                f"{self.prefix}: cannot read variable '{name}' (truncated or corrupt checkpoint: "
                f"{_first_line(error)})"
            ) from None


def _first_line(error):
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def find_checkpoint(directory):
    """The checkpoint prefix in `directory`: `model.ckpt-best`, the `checkpoint` file's, or the only/latest one."""
    if os.path.exists(directory + ".index"):
        return directory
    best = os.path.join(directory, "model.ckpt-best")
    if os.path.exists(best + ".index"):
        return best
    state = os.path.join(directory, "checkpoint")
    if os.path.isfile(state):
        import tensorflow as tf

        latest = tf.train.latest_checkpoint(directory)
        if latest and os.path.exists(latest + ".index"):
            return latest
    prefixes = [path[: -len(".index")] for path in glob.glob(os.path.join(directory, "*.index"))]
    if not prefixes:
        raise AlbertInputError(f"{directory}: no TF checkpoint (*.index) found")

    def step(prefix):
        match = re.search(r"-(\d+)$", prefix)
        return int(match.group(1)) if match else -1

    return max(prefixes, key=lambda prefix: (step(prefix), prefix))


def _find_in_tree(root, predicate):
    """The first directory (breadth-first, sorted) under `root` for which `predicate(dir)` holds."""
    queue = [root]
    while queue:
        directory = queue.pop(0)
        if predicate(directory):
            return directory
        queue.extend(sorted(os.path.join(directory, d) for d in os.listdir(directory)
                            if os.path.isdir(os.path.join(directory, d)) and not os.path.islink(os.path.join(directory, d))))
    return None


def _config_in(directory):
    """`albert_config.json`, else the only `albert_config*.json` (brightmart names theirs
    `albert_config_base_google_fast.json` and the like)."""
    found = _file_if_exists(directory, "albert_config.json")
    if found:
        return found
    named = sorted(glob.glob(os.path.join(directory, "albert_config*.json")))
    return named[0] if len(named) == 1 else None


def _vocabulary_in(directory):
    """The vocabulary file in `directory`: a released/canonical name (`30k-clean.model`,
    `vocab_chinese.txt`, ...) via `vocabulary_path`, else any `*.model`."""
    from albert_keras.tokenization.vocabulary import vocabulary_path

    found = vocabulary_path(directory)
    if found:
        return found
    models = sorted(glob.glob(os.path.join(directory, "*.model")))
    return models[0] if models else None


# brightmart/albert_zh's own models (albert_tiny_zh ... albert_xlarge_zh, not the `*_google` ones) keep
# BERT's layer scopes (`layer_shared`, or `layer_N`) and project the factorized word embeddings
# (`word_embeddings_2`) before adding position embeddings: another architecture, so naming it beats
# listing a hundred "unexpected variable" lines.
_BRIGHTMART_NATIVE = re.compile(r"^bert/(embeddings/word_embeddings_2$|encoder/layer_(shared|\d+)/)")


def check_not_brightmart_native(names, source):
    """Refuse a brightmart/albert_zh native checkpoint with one line saying what loads instead.

    Args:
        names: the checkpoint's variable names.
        source: named in the error.

    Raises:
        AlbertInputError: when a name only brightmart's own modeling code creates is present.

    Example:
    ```python
    check_not_brightmart_native(["bert/embeddings/word_embeddings"], "ckpt")  # passes
    ```
    """
    hit = next((name for name in sorted(names) if _BRIGHTMART_NATIVE.search(name)), None)
    if hit is not None:
        raise AlbertInputError(
            f"{source}: a brightmart/albert_zh native checkpoint (variable '{hit}'; BERT-style layer scopes and an "
            "embedding projection before the position embeddings), not the ALBERT architecture; convert "
            "brightmart's albert_*_zh_google checkpoints or Google's albert_*_zh instead"
        )


def _file_if_exists(directory, name):
    path = os.path.join(directory, name)
    return path if os.path.isfile(path) else None


def _nearby(directory, root, find):
    """`find(d)` for the checkpoint's directory, then each parent up to `root`, then all of `root`.

    TF-Hub module archives keep the checkpoint in `variables/` and the SentencePiece model in
    `assets/`, so files are not always next to the checkpoint.
    """
    current = os.path.abspath(directory)
    root = os.path.abspath(root)
    while True:
        found = find(current)
        if found or current == root or not current.startswith(root):
            break
        current = os.path.dirname(current)
    if not found:
        where = _find_in_tree(root, lambda d: bool(find(d)))
        found = find(where) if where else None
    return found


def read_official(source, config=None, spm_model=None):
    """Read an official checkpoint into canonical weights.

    Args:
        source: a directory, a checkpoint prefix (`.../model.ckpt-best`), or an extracted archive.
        config: optional `AlbertConfig` or path; defaults to `albert_config.json` next to the checkpoint.
        spm_model: optional vocabulary path (SentencePiece model or WordPiece `vocab.txt`); defaults
            to `30k-clean.model`/`spiece.model`/`vocab_chinese.txt`/`vocab.txt`/`*.model` near the checkpoint.

    Returns:
        `(config, canonical weights, spm path or None, task or None, do_lower_case or None)`; the last
        is the config's `do_lower_case` when it has one.
    """
    source = os.fspath(source)
    if os.path.isdir(source):
        directory = _find_in_tree(source, lambda d: bool(glob.glob(os.path.join(d, "*.index")))) or source
        prefix = find_checkpoint(directory)
    elif os.path.exists(source + ".index"):
        prefix, directory = source, os.path.dirname(source) or "."
    else:
        raise AlbertInputError(f"{source}: neither a directory, a .tar.gz archive nor a checkpoint prefix")
    root = source if os.path.isdir(source) else directory
    if config is None:
        config_path = _nearby(directory, root, _config_in)
        if config_path is None:
            raise AlbertInputError(f"{source}: albert_config.json not found (pass --config)")
        config = config_path
    config, do_lower_case = common.read_config_with_casing(config)
    if spm_model is None:
        spm_model = _nearby(directory, root, _vocabulary_in)

    arrays = CheckpointArrays(prefix)
    names = set(arrays.keys())
    check_not_brightmart_native(names, prefix)
    rules = list(RULES)
    task, task_units = None, None
    for head_rules, class_name in ((CLASSIFIER_RULES, "AlbertClassifier"), (SQUAD_RULES, "AlbertQuestionAnswerer")):
        weights_name = head_rules[0].foreign
        if weights_name in names:
            task_units = arrays.shape_of(weights_name)[0]
            rules += head_rules
            task = (class_name, {"num_classes": task_units} if class_name == "AlbertClassifier" else {})
            break
    optional = ()
    if config.embedding_size == config.hidden_size and "bert/encoder/embedding_hidden_mapping_in/kernel" not in names:
        optional = ("embedding_projection/kernel", "embedding_projection/bias")
    canonical = common.foreign_to_canonical(
        arrays, rules, config, prefix, ignore=is_optimizer_variable, optional_names=optional, task_units=task_units
    )
    if optional:
        canonical.update(common.identity_projection(config))
    if task is not None:
        # A fine-tuned checkpoint: the pretraining heads (if still there) do not belong to the task model.
        canonical = {k: v for k, v in canonical.items() if common.part_of(k) in ("encoder", "task")}
    return config, canonical, spm_model, task, do_lower_case


def from_official(source, output, config=None, spm_model=None, lowercase=None, overwrite=False):
    """Convert an official TF1 ALBERT checkpoint to a pretrained directory.

    Args:
        source: the released `.tar.gz`, a directory holding `albert_config.json` and
            `model.ckpt-*` files (searched recursively), or a checkpoint prefix.
        output: the pretrained directory to write (an `AlbertPretrainer` with both heads for a
            pretraining checkpoint; an `AlbertClassifier`/`AlbertQuestionAnswerer` for a
            fine-tuned `run_classifier.py`/`run_squad_v1.py` one).
        config: optional config (path, preset or `AlbertConfig`) overriding `albert_config.json`.
        spm_model: optional vocabulary (SentencePiece model or WordPiece `vocab.txt`) overriding the
            one found next to the checkpoint.
        lowercase: the tokenizer's casing (`run_classifier.py`'s `--do_lower_case`); default: the
            config's `do_lower_case` if it has one, else True (the released models are uncased).
            Recorded in `tokenizer.json`.
        overwrite: replace a non-empty `output`.

    Returns:
        the output directory.

    Raises:
        AlbertInputError: unreadable archive or checkpoint, unsafe archive member, or weights that
            do not fit the config (every missing, unexpected and mismatched variable listed).

    Example:
    ```python
    from_official("albert_base_v2.tar.gz", "albert_base_v2")
    model = load_pretrained("albert_base_v2")
    ```
    """
    from albert_keras.convert.archive import is_archive
    from albert_keras.convert.archive import safe_extract

    source = os.fspath(source)
    common.check_output(output, overwrite)
    if not os.path.exists(source) and not os.path.exists(source + ".index"):
        raise AlbertInputError(f"{source}: not found")
    if is_archive(source):
        scratch = tempfile.mkdtemp(prefix="albert_official_")
        try:
            safe_extract(source, scratch)
            return _write(source, read_official(scratch, config, spm_model), output, overwrite, lowercase)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    return _write(source, read_official(source, config, spm_model), output, overwrite, lowercase)


def _write(source, read, output, overwrite, lowercase):
    config, canonical, spm, task, do_lower_case = read
    settings = common.casing_settings(lowercase, do_lower_case, source, "albert_config.json do_lower_case")
    return common.write_pretrained(config, canonical, output, source, spm, overwrite, task, tokenizer_settings=settings)
