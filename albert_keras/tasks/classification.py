"""The `classification`, `regression` and `multiple-choice` fine-tuning tasks.

Each reads its files (`tasks/readers.py`, `tasks/glue.py`, `tasks/multiple_choice.py`), builds
its task model with the pretrained directory's tokenizer attached, feeds raw strings through
`tf.data` (tokenized by the model's preprocessor), and scores predictions with the official
metrics (`tasks/metrics.py`). Options are the `albert-keras finetune` flags as a dict
(`text_column`, `pair_column`, `label_column`, `header`, `format`, `labels`, `glue_task`,
`max_seq_length`).
"""

import os

import numpy as np

from albert_keras.errors import AlbertInputError
from albert_keras.tasks import readers
from albert_keras.tasks.base import FinetuneTask
from albert_keras.tasks.base import inference_function
from albert_keras.tasks.base import TaskData

SHUFFLE_BUFFER = 10000


def batch_logits(model, dataset):
    """Concatenated float32 model outputs over a finite dataset of `x` or `(x, y, ...)` batches.

    A plain loop over one `tf.function` instead of `model.predict`: it runs the same way under
    every strategy (each worker scores the whole set itself; under MultiWorkerMirroredStrategy
    `predict` would need every worker in lockstep) and returns targets alongside.

    Returns:
        `(outputs [N, ...], targets [N, ...] or None)`.
    """
    forward = inference_function(model)  # one trace across all the model's evaluations

    outputs, targets = [], []
    for batch in dataset:
        x = batch[0] if isinstance(batch, tuple) else batch
        outputs.append(forward(x).numpy())
        if isinstance(batch, tuple) and len(batch) > 1:
            targets.append(np.asarray(batch[1]))
    if not outputs:
        raise AlbertInputError("evaluation: no examples")
    return np.concatenate(outputs), (np.concatenate(targets) if targets else None)


def _options_spec(options):
    def column(name, default):
        value = options.get(name)
        return default if value is None else value

    return readers.ColumnSpec(
        text_column=column("text_column", "text"),
        pair_column=options.get("pair_column"),
        label_column=column("label_column", "label") if options.get("labelled", True) else None,
        header=options.get("header"),
        format=options.get("format"),
    )


def _check_tokenizer(init_dir):
    from albert_keras.tokenization.vocabulary import vocabulary_path

    if vocabulary_path(init_dir) is None:
        raise AlbertInputError(
            f"{init_dir}: no vocabulary; fine-tuning on text needs the directory's spiece.model or vocab.txt "
            "(pretrain with --vocab, or copy the vocabulary file in)"
        )


class ClassificationTask(FinetuneTask):
    """Single-sentence or sentence-pair classification (`--task classification`).

    Metrics: accuracy and F1 (binary F1 of label index 1 for two labels, macro F1 otherwise), or
    the GLUE task's official metrics with `glue_task`.

    Example:
    ```python
    task = ClassificationTask()
    data = task.read("train.csv", {"text_column": "sentence", "label_column": "label"})
    model = task.build_model("pretrained_dir", data.metadata, {"max_seq_length": 128})
    ```
    """

    name = "classification"
    primary_metric = "accuracy"
    regression = False

    def _layout(self, path, options, split):
        glue_name = options.get("glue_task")
        if glue_name:
            from albert_keras.tasks.glue import get_glue_task

            glue = get_glue_task(glue_name)
            if glue.regression != self.regression:
                raise AlbertInputError(
                    f"--glue-task {glue.name} is a {'regression' if glue.regression else 'classification'} task; "
                    f"use --task {'regression' if glue.regression else 'classification'}"
                )
            spec = glue.spec()
            if not options.get("labelled", True):
                spec.label_column = None
            return glue.resolve(path, split), spec, (list(glue.labels) or None), list(glue.metrics)
        labels = options.get("labels")
        if isinstance(labels, str):
            labels = [label.strip() for label in labels.split(",") if label.strip()]
        return path, _options_spec(options), labels, None

    def default_metrics(self, labels):
        if self.regression:
            return ["pearson", "spearman"]
        return ["accuracy", "f1" if len(labels) == 2 else "macro_f1"]

    def read(self, path, options, metadata=None):
        split = "train" if metadata is None else "dev" if options.get("labelled", True) else "test"
        path, spec, labels, metric_names = self._layout(path, options, split)
        if metadata is not None and metadata.get("labels") is not None:
            labels = list(metadata["labels"])
        examples, labels = readers.read_labelled(path, spec, labels=labels, regression=self.regression)
        if metadata is None:
            metadata = {
                "labels": labels,
                "pair": spec.pair_column is not None,
                "metrics": metric_names or self.default_metrics(labels),
            }
            if options.get("glue_task"):
                metadata["glue_task"] = options["glue_task"]
        return TaskData(path=path, examples=examples, metadata=dict(metadata))

    def build_model(self, init_dir, metadata, options, dtype=None):
        from albert_keras.modeling.task_models import AlbertClassifier

        _check_tokenizer(init_dir)
        arguments = {"num_classes": 1} if self.regression else {"labels": list(metadata["labels"])}
        return AlbertClassifier.from_pretrained(
            init_dir, dtype=dtype, sequence_length=options.get("max_seq_length"), **arguments
        )

    def compile_kwargs(self, metadata):
        import keras

        from albert_keras.tasks import metrics

        if self.regression:
            return {"loss": keras.losses.MeanSquaredError(), "metrics": [metrics.PearsonCorrelation(name="pearson")]}
        return {
            "loss": keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            "metrics": [keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
        }

    def _examples_dataset(self, data):
        return readers.examples_dataset(
            data.examples, labels=None if self.regression else data.metadata.get("labels"),
            regression=self.regression, pair=bool(data.metadata.get("pair")),
        )

    def dataset(self, model, data, batch_size, shuffle=False, seed=0, repeat=False, options=None):
        dataset = self._examples_dataset(data)
        if shuffle:
            dataset = dataset.shuffle(SHUFFLE_BUFFER, seed=seed, reshuffle_each_iteration=True)
        if repeat:
            dataset = dataset.repeat()
        # Whole batches while training: the same shapes on every replica and step.
        dataset = dataset.batch(batch_size, drop_remainder=repeat)
        return model.text_dataset(dataset)

    def evaluation(self, model, data, options):
        outputs, targets = batch_logits(model, self.dataset(model, data, options.get("batch_size") or 32))
        if targets is None:
            raise AlbertInputError(f"{data.path}: no labels to evaluate against (--label-column)")
        from albert_keras.tasks.glue import score

        names = data.metadata.get("metrics") or self.default_metrics(data.metadata.get("labels"))
        if self.regression:
            return score(names, targets, outputs[:, 0]), None
        predicted = np.argmax(outputs, axis=-1)
        return score(names, targets, predicted), predicted

    def evaluate(self, model, data, options):
        return self.evaluation(model, data, options)[0]

    def predict(self, model, data, options):
        import tensorflow as tf

        outputs, _ = batch_logits(model, self.dataset(model, data, options.get("batch_size") or 32))
        if self.regression:
            for example, output in zip(_iterate(data.examples), outputs):
                yield {"line": example.line, "score": float(output[0])}
            return
        labels = list(model.labels or data.metadata.get("labels") or range(outputs.shape[-1]))
        probabilities = tf.nn.softmax(outputs, axis=-1).numpy()
        for example, row in zip(_iterate(data.examples), probabilities):
            record = {
                "line": example.line,
                "label": labels[int(np.argmax(row))],
                "probabilities": {str(label): round(float(p), 6) for label, p in zip(labels, row)},
            }
            if example.id is not None:  # benchmark test files (CLUE) are submitted by id
                record["id"] = example.id
            yield record

    def write_predictions(self, records, output_path, metadata=None):
        """Write `predict`'s records to `output_path`: CLUE's submission lines (`{"id", "label"}`)
        for a CLUE task, else one JSON record per line. `albert-keras predict` calls this.

        Returns:
            The number of records.

        Example:
        ```python
        task.write_predictions(task.predict(model, data, {}), "tnews_predict.json", data.metadata)
        ```
        """
        import json

        from albert_keras.io_utils import atomic_write
        from albert_keras.tasks.clue import benchmark
        from albert_keras.tasks.clue import write_submission

        if benchmark({}, metadata) is not None:
            return write_submission(records, output_path)
        count = 0
        with atomic_write(output_path, "w") as f:
            for record in records:
                f.write(json.dumps(record, ensure_ascii=False) + "\n")
                count += 1
        return count


def _iterate(examples):
    return examples() if callable(examples) else iter(examples)


class RegressionTask(ClassificationTask):
    """Sentence (pair) regression on float targets (`--task regression`; STS-B).

    Metrics: Pearson and Spearman correlation. The model is an `AlbertClassifier` with one output.

    Example:
    ```python
    task = RegressionTask()
    data = task.read("train.tsv", {"glue_task": "sts-b"})
    ```
    """

    name = "regression"
    primary_metric = "pearson"
    regression = True


class MultipleChoiceTask(FinetuneTask):
    """Multiple choice on RACE-, SWAG- or plain-style JSONL (`--task multiple-choice`).

    Metric: accuracy. Every example has the same number of choices (the model's `num_choices`).

    Example:
    ```python
    task = MultipleChoiceTask()
    data = task.read("race_train.jsonl", {})
    model = task.build_model("pretrained_dir", data.metadata, {"max_seq_length": 256})
    ```
    """

    name = "multiple-choice"
    primary_metric = "accuracy"

    def read(self, path, options, metadata=None):
        from albert_keras.tasks.clue import benchmark
        from albert_keras.tasks.multiple_choice import read_choices

        clue = benchmark(options, metadata)
        if clue is not None:  # C3: its own JSON layout, padded to 4 choices
            from albert_keras.tasks.clue import C3_CHOICES
            from albert_keras.tasks.clue import read_c3

            clue.check_kind(self.name)
            labelled = options.get("labelled", True)
            examples, _ = read_c3(path, "train" if metadata is None else "dev" if labelled else "test", labelled)
            metadata = metadata or {"num_choices": C3_CHOICES, "metrics": ["accuracy"], "glue_task": clue.name}
            return TaskData(path=os.fspath(path), examples=examples, metadata=dict(metadata))
        num_choices = metadata.get("num_choices") if metadata else options.get("num_choices")
        examples, num_choices = read_choices(path, num_choices=num_choices,
                                             require_label=options.get("labelled", True))
        return TaskData(path=path, examples=examples,
                        metadata=dict(metadata or {"num_choices": num_choices, "metrics": ["accuracy"]}))

    def build_model(self, init_dir, metadata, options, dtype=None):
        from albert_keras.modeling.task_models import AlbertMultipleChoice

        _check_tokenizer(init_dir)
        return AlbertMultipleChoice.from_pretrained(
            init_dir, dtype=dtype, sequence_length=options.get("max_seq_length"),
            num_choices=int(metadata["num_choices"]),
        )

    def compile_kwargs(self, metadata):
        import keras

        return {
            "loss": keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            "metrics": [keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
        }

    def dataset(self, model, data, batch_size, shuffle=False, seed=0, repeat=False, options=None):
        from albert_keras.tasks.multiple_choice import choices_dataset

        dataset = choices_dataset(data.examples)
        if shuffle:
            dataset = dataset.shuffle(SHUFFLE_BUFFER, seed=seed, reshuffle_each_iteration=True)
        if repeat:
            dataset = dataset.repeat()
        return model.text_dataset(dataset.batch(batch_size, drop_remainder=repeat))

    def evaluation(self, model, data, options):
        from albert_keras.tasks.glue import score

        outputs, targets = batch_logits(model, self.dataset(model, data, options.get("batch_size") or 32))
        if targets is None:
            raise AlbertInputError(f"{data.path}: no answers to evaluate against")
        predicted = np.argmax(outputs, axis=-1)
        return score(["accuracy"], targets, predicted), predicted

    def evaluate(self, model, data, options):
        return self.evaluation(model, data, options)[0]

    def predict(self, model, data, options):
        import tensorflow as tf

        outputs, _ = batch_logits(model, self.dataset(model, data, options.get("batch_size") or 32))
        probabilities = tf.nn.softmax(outputs, axis=-1).numpy()
        for example, row in zip(data.examples, probabilities):
            yield {"line": example.line, "label": int(np.argmax(row)),
                   "probabilities": [round(float(p), 6) for p in row]}
