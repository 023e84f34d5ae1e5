"""`FinetuneTask`: what `finetune`, `evaluate` and `predict` need to know about one kind of task.

`albert_keras.training.finetune` is one generic loop (the shared `TrainingLoop`: strategy,
optimizer, schedule, step-exact checkpoints, best checkpoint by the validation metric, early
stopping); everything task-specific sits behind this interface, one subclass per task family,
registered by name in `albert_keras.tasks.registry`. `tasks/` never imports `training/`.
"""

import abc
import dataclasses


@dataclasses.dataclass
class TaskData:
    """Examples read from one file, with what was learned from it.

    Args:
        path: the file (or GLUE directory) they came from, for messages.
        examples: a list of task-specific example objects (or, for files larger than memory, a
            zero-argument function returning a fresh iterator over them).
        metadata: what the model must remember (for example `{"labels": [...]}`); read from the
            training file, stored in the pretrained directory, reused for evaluation files.
        skipped: `{reason: count}` of records left out, reported at the end.
        cache: what a task derived from these examples and may reuse (features keyed by vocabulary
            and sequence length, a message already given), so a run's evaluations do not tokenize
            the file again; each task owns its keys. Options are not kept here: they reach
            `dataset`, `evaluate` and `predict` as arguments.

    Example:
    ```python
    data = TaskData("dev.csv", examples, metadata={"labels": ["neg", "pos"]})
    ```
    """

    path: str
    examples: object
    metadata: dict = dataclasses.field(default_factory=dict)
    skipped: dict = dataclasses.field(default_factory=dict)
    cache: dict = dataclasses.field(default_factory=dict, repr=False, compare=False)


class FinetuneTask(abc.ABC):
    """One task family (`--task NAME`). Subclasses implement every abstract method (a class that
    misses one cannot be instantiated); `evaluation` and `add_arguments` are optional hooks.

    Attributes:
        name: the `--task` value.
        primary_metric: the validation metric that picks the best checkpoint (higher is better).

    Example:
    ```python
    from albert_keras.tasks.registry import get_task
    task = get_task("classification")
    data = task.read("train.csv", options={"text_column": "sentence", "label_column": "label"})
    ```
    """

    name = None
    primary_metric = "accuracy"

    @abc.abstractmethod
    def read(self, path, options, metadata=None):
        """Read a file into `TaskData`; `metadata` is the training file's (None when reading it)."""

    @abc.abstractmethod
    def build_model(self, init_dir, metadata, options, dtype=None):
        """The Keras task model from a pretrained directory, carrying its preprocessor."""

    @abc.abstractmethod
    def compile_kwargs(self, metadata):
        """`compile` arguments other than the optimizer: `loss`, `metrics`."""

    @abc.abstractmethod
    def dataset(self, model, data, batch_size, shuffle=False, seed=0, repeat=False, options=None):
        """A `tf.data.Dataset` of `(x, y)` (or `(x, y, sample_weight)`) batches for `fit`/`evaluate`.

        `options` are the task options `data` was read with (`max_seq_length`, `doc_stride`,
        `vocab`, ...: the same dict `read` and `evaluate` take); None means the defaults."""

    @abc.abstractmethod
    def evaluate(self, model, data, options):
        """The task's official metrics as `{name: float}` (JSON-serializable)."""

    def evaluation(self, model, data, options):
        """`(metrics, predicted class ids or None)`: the ids let `finetune` warn when every
        validation prediction is one class. Optional; the default has no ids."""
        return self.evaluate(model, data, options), None

    @classmethod
    def add_arguments(cls, parser):
        """Optional: add this task's own flags to `albert-keras finetune/evaluate/predict`
        (they arrive in `options` under their dest names). The default adds none."""

    @abc.abstractmethod
    def predict(self, model, data, options):
        """An iterable of JSON-serializable prediction records, one per example."""


# The attribute `inference_function` keeps its traced function under (see there).
INFERENCE_FUNCTION_ATTRIBUTE = "_albert_inference_function"


def inference_function(model):
    """`model(x, training=False)` as one `tf.function` per model, traced once and reused by every
    evaluation of a run (a new `tf.function` per call would trace again each time).

    Example:
    ```python
    logits = inference_function(model)(batch_of_inputs)
    ```
    """
    forward = getattr(model, INFERENCE_FUNCTION_ATTRIBUTE, None)
    if forward is None:
        import tensorflow as tf

        forward = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
        # Past Keras' __setattr__ on purpose: on the TensorFlow backend an assigned tf.function
        # becomes a tracked child of the model, so it would join the checkpoints' object graph
        # and the exported SavedModel; Keras has no public untracked attribute.
        object.__setattr__(model, INFERENCE_FUNCTION_ATTRIBUTE, forward)
    return forward


def model_vocabulary(model, options, what):
    """The vocabulary a task's features are made with: the model's own, else the options' or its directory's.

    A model built by `from_pretrained` carries its preprocessor (whose tokenizer holds the
    vocabulary and casing), so features and serving use exactly the same one.

    Args:
        model: a task model.
        options: the task options (`spm_model`/`vocab`, `init_dir`).
        what: the task's name, for the error.

    Example:
    ```python
    vocabulary = model_vocabulary(AlbertQuestionAnswerer.from_pretrained("dir"), {}, "question-answering")
    ```
    """
    from albert_keras.errors import AlbertInputError
    from albert_keras.modeling.pretrained import source_directory
    from albert_keras.tokenization.vocabulary import load_vocabulary
    from albert_keras.tokenization.vocabulary import vocabulary_path

    explicit = options.get("vocab") or options.get("spm_model")
    if explicit:
        return load_vocabulary(explicit)
    preprocessor = getattr(model, "preprocessor", None)
    tokenizer = getattr(preprocessor, "tokenizer", preprocessor)
    if getattr(tokenizer, "vocabulary", None) is not None:
        return tokenizer.vocabulary
    directory = options.get("init_dir") or source_directory(model)
    if directory and vocabulary_path(directory):
        return load_vocabulary(directory)
    raise AlbertInputError(f"{what}: the model has no vocabulary (spiece.model or vocab.txt in its directory)")
