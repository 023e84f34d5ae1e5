"""`distill`: a fine-tuned classifier teacher -> a smaller student classifier (knowledge distillation).

The student learns the teacher's softened output distribution (Hinton et al., 2015: softmax at a
temperature T, loss scaled by T^2 so its gradients keep their size as T changes) together with the
hard labels, weighted `alpha * hard + (1 - alpha) * soft`. Unlabelled texts (`transfer`) are
labelled by the teacher and add soft targets only: what lets a small student learn much more than
the few labels would teach it (DistilBERT and TinyBERT distil on large unlabelled sets).

The student is a config (random weights, the teacher's vocabulary) or a pretrained directory with
the teacher's vocabulary; another vocabulary is refused, as the teacher's targets are per example,
and both read the same packed ids. The result is a normal fine-tuned directory (`finetune.json`,
labels, vocabulary): `albert-keras evaluate`, `predict` and `export` take it as they are.

Output directory:
```
OUTPUT/
  pretrained/     the student with the best validation accuracy (the teacher's labels and tokenizer)
  summary.json    teacher and student accuracy, per-epoch validation accuracy, settings
```

Own loop over `model.fit`, one epoch at a time: the fine-tuning loop's resume and distribution
strategies do not apply yet (the student and data are small; see docs/mobile.md).
"""

import json
import os
import sys
import tempfile

import numpy as np

from albert_keras.errors import AlbertInputError

SUMMARY_FILE = "summary.json"
DEFAULT_TEMPERATURE = 2.0
DEFAULT_ALPHA = 0.5
DEFAULT_EPOCHS = 10
DEFAULT_LEARNING_RATE = 1e-3
STUDENT_INITS = ("random", "teacher")


def _teacher_record(teacher_dir):
    from albert_keras.training.finetune import TASK_FILE

    path = os.path.join(os.fspath(teacher_dir), TASK_FILE)
    if not os.path.isfile(path):
        raise AlbertInputError(f"--teacher {teacher_dir}: not a fine-tuned directory (no {TASK_FILE})")
    with open(path, encoding="utf-8") as f:
        record = json.load(f)
    if record.get("task") != "classification":
        raise AlbertInputError(
            f"--teacher {teacher_dir}: a {record.get('task')!r} model; distill takes classification teachers so far "
            "(the student is a classifier)"
        )
    return record


def _student_directory(student, teacher_dir, work_dir):
    """A pretrained directory for the student: `student` itself, or a config saved with the teacher's vocabulary."""
    from albert_keras.config import AlbertConfig
    from albert_keras.modeling.pretrained import save_pretrained
    from albert_keras.tokenization.vocabulary import load_vocabulary
    from albert_keras.tokenization.vocabulary import read_tokenizer_settings
    from albert_keras.tokenization.vocabulary import vocabulary_path

    teacher_vocabulary = load_vocabulary(teacher_dir)
    student = os.fspath(student)
    if os.path.isdir(student):
        if not vocabulary_path(student):
            raise AlbertInputError(f"--student {student}: no vocabulary (spiece.model or vocab.txt)")
        vocabulary = load_vocabulary(student)
        if vocabulary.sha256() != teacher_vocabulary.sha256():
            raise AlbertInputError(
                f"--student {student}: its vocabulary {vocabulary.name} differs from the teacher's (sha256 "
                f"{vocabulary.sha256()[:12]} vs {teacher_vocabulary.sha256()[:12]}); the student must read the teacher's ids"
            )
        return student
    from albert_keras.config import PRESETS

    if student in PRESETS:  # a released shape; its vocabulary is the teacher's
        config = AlbertConfig.from_preset(student, vocab_size=len(teacher_vocabulary))
    elif not os.path.isfile(student):
        raise AlbertInputError(f"--student {student}: neither a pretrained directory, a preset nor a config file")
    else:
        config = AlbertConfig.from_json_file(student)
    from albert_keras.modeling.encoder import AlbertEncoder

    if config.vocab_size != len(teacher_vocabulary):
        raise AlbertInputError(
            f"--student {student}: vocab_size {config.vocab_size}, the teacher's vocabulary has "
            f"{len(teacher_vocabulary)} pieces"
        )
    directory = os.path.join(work_dir, "student_init")
    save_pretrained(AlbertEncoder(config), directory, vocabulary=teacher_vocabulary,
                    tokenizer_settings=read_tokenizer_settings(teacher_dir))
    return directory


def _features(model, dataset):
    """Packed `{name: [N, T]}` arrays and the label ids (or None) of a dataset of texts."""
    columns, labels = {}, []
    for batch in model.text_dataset(dataset.batch(64)):
        x = batch[0] if isinstance(batch, tuple) else batch
        for name, value in x.items():
            columns.setdefault(name, []).append(np.asarray(value))
        if isinstance(batch, tuple):
            labels.append(np.asarray(batch[1]))
    if not columns:
        return None, None
    width = max(v.shape[1] for parts in columns.values() for v in parts)
    features = {k: np.concatenate([np.pad(v, ((0, 0), (0, width - v.shape[1]))) for v in parts])
                for k, parts in columns.items()}
    return features, (np.concatenate(labels) if labels else None)


def truncate_weights(teacher, student):
    """Initialize `student` from `teacher`: every weight truncated to the student's shape.

    The rule: the student's weight at a path (`group_0_inner_layer_0/self_attention_layer/query/kernel`,
    `token_embedding/embeddings`, `logits/kernel`, ...) is the teacher's weight at the same path
    with every axis cut to the student's size from its start, `teacher[:s0, :s1, ...]`: the first
    `embedding_size` embedding dimensions, the first `hidden_size` hidden units, the first heads
    and the first dimensions of each head, the first `intermediate_size` feed-forward units, the
    first positions. ALBERT shares one block across layers, so a student with fewer layers takes
    the same (truncated) block; the number of layers does not change the weights.

    Args:
        teacher: the built teacher model.
        student: the built student model, with the same weight paths and no axis larger than the teacher's.

    Returns:
        the number of weights copied.

    Raises:
        AlbertInputError: a student weight the teacher lacks, or one larger than the teacher's (one line).

    Example:
    ```python
    truncate_weights(teacher_classifier, student_classifier)
    ```
    """
    found = {w.path: w for w in teacher.weights}
    values = []
    for weight in student.weights:
        key = weight.path
        source = found.get(key)
        if source is None:
            raise AlbertInputError(f"--student-init teacher: the teacher has no weight {key} (another block layout: "
                                   "give the student the teacher's num_hidden_groups and inner_group_num)")
        if len(source.shape) != len(weight.shape) or any(s > t for s, t in zip(weight.shape, source.shape)):
            raise AlbertInputError(f"--student-init teacher: {key} is {tuple(weight.shape)} in the student, "
                                   f"{tuple(source.shape)} in the teacher; the student must be no larger on any axis")
        values.append(np.asarray(source.numpy())[tuple(slice(0, size) for size in weight.shape)])
    for weight, value in zip(student.weights, values):
        weight.assign(value.astype(weight.dtype))
    return len(values)


def _logits(model, features, batch_size=256):
    count = len(features["token_ids"])
    return np.concatenate([
        np.asarray(model({k: v[i : i + batch_size] for k, v in features.items()}, training=False), np.float32)
        for i in range(0, count, batch_size)
    ])


def distillation_loss(num_classes, temperature, alpha):
    """The loss for `model.fit` on targets `[teacher logits | one-hot label | has label]` (width 2C+1).

    Per example: `alpha * CE(label) + (1 - alpha) * T^2 * KL(teacher_T || student_T)` with a label,
    `T^2 * KL` without (transfer texts).

    Example:
    ```python
    student.compile("adam", loss=distillation_loss(2, temperature=2.0, alpha=0.5))
    ```
    """
    import tensorflow as tf

    def loss(targets, logits):
        logits = tf.cast(logits, tf.float32)
        teacher = targets[:, :num_classes] / temperature
        one_hot, labelled = targets[:, num_classes : 2 * num_classes], targets[:, 2 * num_classes]
        soft_targets = tf.nn.softmax(teacher, axis=-1)
        soft = tf.reduce_sum(
            soft_targets * (tf.nn.log_softmax(teacher, -1) - tf.nn.log_softmax(logits / temperature, -1)), -1
        ) * (temperature**2)
        hard = -tf.reduce_sum(one_hot * tf.nn.log_softmax(logits, -1), -1)
        return labelled * (alpha * hard + (1.0 - alpha) * soft) + (1.0 - labelled) * soft

    return loss


def distill(teacher_dir, student, train, validation, output, temperature=DEFAULT_TEMPERATURE, alpha=DEFAULT_ALPHA,
            transfer=None, epochs=DEFAULT_EPOCHS, learning_rate=DEFAULT_LEARNING_RATE, batch_size=32, seed=0,
            options=None, student_init="random", verbose=True):
    """Distil a fine-tuned classifier (`teacher_dir`) into `student`; write `output/pretrained`.

    Args:
        teacher_dir: a fine-tuned classification directory (`albert-keras finetune --task classification`).
        student: an `AlbertConfig` JSON file or a preset name (`albert-base-v2`, ...; the teacher's
            vocabulary size), with weights as `student_init` says, or a pretrained directory with
            the teacher's vocabulary (its own weights).
        train: the labelled training file (read as the teacher was: its `finetune.json` columns).
        validation: the labelled validation file; the student with the best accuracy is kept.
        output: the output directory.
        temperature: softmax temperature of the soft targets (T >= 1).
        alpha: weight of the hard-label loss (0: soft targets only; 1: labels only, plain fine-tuning).
        transfer: optional one-text-a-line file of unlabelled texts the teacher labels (soft targets);
            for a pair teacher, `text A<TAB>text B` a line.
        epochs, learning_rate, batch_size, seed: Adam training settings.
        options: reader options overriding the teacher's (`text_column`, `label_column`, ...).
        student_init: a config's or preset's starting weights: `"random"`, or `"teacher"`: the
            teacher's weights truncated to the student's sizes (`truncate_weights` states the rule).
        verbose: print one line per epoch.

    Returns:
        the summary dict (also `output/summary.json`).

    Raises:
        AlbertInputError: a teacher of another task, a student with another vocabulary or size,
            bad files, bad settings (one line; nothing written).

    Example:
    ```python
    summary = distill("runs/sentiment/pretrained", "tiny_config.json", "train.csv", "dev.csv", "runs/sentiment_tiny",
                      transfer="unlabelled.txt")
    summary["student"]["accuracy"], summary["teacher"]["accuracy"]
    ```
    """
    import keras

    from albert_keras.tasks.registry import get_task
    from albert_keras.text_files import read_lines
    from albert_keras.training.finetune import PRETRAINED_DIR
    from albert_keras.training.finetune import save_finetuned

    if not temperature or temperature < 1:
        raise AlbertInputError(f"--temperature: must be at least 1, got {temperature}")
    if not 0 <= alpha <= 1:
        raise AlbertInputError(f"--alpha: must be between 0 and 1, got {alpha}")
    if student_init not in STUDENT_INITS:
        raise AlbertInputError(f"--student-init: must be one of {', '.join(STUDENT_INITS)}, got {student_init!r}")
    if student_init == "teacher" and os.path.isdir(os.fspath(student)):
        raise AlbertInputError(f"--student-init teacher: takes a config or preset student; {os.fspath(student)} is a "
                               "pretrained directory with weights of its own")
    record = _teacher_record(teacher_dir)
    options = {**record.get("options", {}), **{k: v for k, v in (options or {}).items() if v is not None}}
    task = get_task("classification")
    metadata = dict(record["metadata"])
    train_data = task.read(train, options, metadata=metadata)
    validation_data = task.read(validation, options, metadata=metadata)
    transfer_texts = read_lines(transfer, skip_blank=True) if transfer else []
    if transfer_texts and metadata.get("pair"):
        transfer_texts = _transfer_pairs(transfer, transfer_texts)
    output = os.fspath(output)
    keras.utils.set_random_seed(seed)
    teacher = task.build_model(os.fspath(teacher_dir), metadata, options)
    labels = list(metadata["labels"])
    with tempfile.TemporaryDirectory(prefix="albert_distill_") as work_dir:
        student_dir = _student_directory(student, teacher_dir, work_dir)
        model = task.build_model(student_dir, metadata, options)
    if student_init == "teacher":
        truncate_weights(teacher, model)
    import tensorflow as tf

    train_x, train_y = _features(teacher, _texts(train_data))
    val_x, val_y = _features(teacher, _texts(validation_data))
    if transfer_texts:
        if metadata.get("pair"):  # (a, b) string pairs: the packer reads them as text A and text B
            extra, _ = _features(teacher, tf.data.Dataset.from_tensor_slices(tuple(map(list, zip(*transfer_texts)))))
        else:
            extra, _ = _features(teacher, tf.data.Dataset.from_tensor_slices(transfer_texts))
        width = max(train_x["token_ids"].shape[1], extra["token_ids"].shape[1])
        pad = lambda v: np.pad(v, ((0, 0), (0, width - v.shape[1])))  # noqa: E731
        train_x = {k: np.concatenate([pad(train_x[k]), pad(extra[k])]) for k in train_x}
    limit = getattr(getattr(model.encoder, "config", None), "max_position_embeddings", None)
    if limit is not None and max(train_x["token_ids"].shape[1], val_x["token_ids"].shape[1]) > limit:
        raise AlbertInputError(
            f"--student {os.fspath(student)}: {limit} positions, but the teacher packs up to "
            f"{max(train_x['token_ids'].shape[1], val_x['token_ids'].shape[1])} tokens; give the student more "
            "max_position_embeddings or a shorter --max-seq-length when fine-tuning the teacher"
        )
    num_classes, labelled_count = len(labels), len(train_y)
    count = len(train_x["token_ids"])
    one_hot = np.zeros((count, num_classes), np.float32)
    one_hot[np.arange(labelled_count), train_y] = 1.0
    has_label = (np.arange(count) < labelled_count).astype(np.float32)[:, None]
    targets = np.concatenate([_logits(teacher, train_x), one_hot, has_label], axis=1)
    teacher_accuracy = float(np.mean(np.argmax(_logits(teacher, val_x), -1) == val_y))

    model.compile(keras.optimizers.Adam(learning_rate), loss=distillation_loss(num_classes, temperature, alpha))
    history, best, best_weights = [], -1.0, None
    for epoch in range(1, int(epochs) + 1):
        model.fit(train_x, targets, batch_size=batch_size, epochs=1, shuffle=True, verbose=0)
        accuracy = float(np.mean(np.argmax(_logits(model, val_x), -1) == val_y))
        history.append({"epoch": epoch, "accuracy": accuracy})
        if accuracy > best:
            best, best_weights = accuracy, model.get_weights()
        if verbose:
            print(f"distill: epoch {epoch}/{epochs}: validation accuracy {accuracy:.4f} "
                  f"(teacher {teacher_accuracy:.4f})", file=sys.stderr)
    model.set_weights(best_weights)
    result_dir = os.path.join(output, PRETRAINED_DIR)
    distilled = {**metadata, "distilled_from": os.path.abspath(os.fspath(teacher_dir))}
    save_finetuned(model, result_dir, task, options, distilled)
    summary = {
        "teacher": {"dir": os.path.abspath(os.fspath(teacher_dir)), "accuracy": teacher_accuracy,
                    "parameters": int(teacher.count_params())},
        "student": {"accuracy": best, "parameters": int(model.count_params()), "source": os.fspath(student),
                    "init": student_init},
        "validation": history,
        "settings": {"temperature": temperature, "alpha": alpha, "epochs": int(epochs), "learning_rate": learning_rate,
                     "batch_size": batch_size, "seed": seed, "labelled_examples": labelled_count,
                     "transfer_texts": len(transfer_texts)},
        "pretrained_dir": result_dir,
    }
    from albert_keras.io_utils import atomic_write

    with atomic_write(os.path.join(output, SUMMARY_FILE), "w") as f:
        json.dump(summary, f, indent=2, sort_keys=True)
    if verbose:
        print(f"distill: student accuracy {best:.4f} ({summary['student']['parameters']:,} parameters), teacher "
              f"{teacher_accuracy:.4f} ({summary['teacher']['parameters']:,}); wrote {result_dir}", file=sys.stderr)
    return summary


def _transfer_pairs(path, lines):
    """`(a, b)` from `a<TAB>b` lines: a pair teacher's transfer texts (a line without a tab is named)."""
    pairs = []
    for line in lines:
        if "\t" not in line:
            with open(path, encoding="utf-8") as f:
                number = next(i for i, raw in enumerate(f, 1) if raw.rstrip("\r\n") == line)
            raise AlbertInputError(f"--transfer {os.fspath(path)}: line {number}: no tab; the teacher classifies "
                                   "sentence pairs, so each line is 'text A<TAB>text B'")
        first, second = line.split("\t", 1)
        pairs.append((first, second))
    return pairs


def _texts(data):
    """The `(text, label id)` dataset of a classification file (pairs as `(a, b)`)."""
    from albert_keras.tasks.readers import examples_dataset

    return examples_dataset(data.examples, labels=data.metadata.get("labels"), pair=bool(data.metadata.get("pair")))
