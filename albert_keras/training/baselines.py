"""The trivial baseline of a validation set, and the verdict on a fine-tuning run measured against it.

Fine-tuning ALBERT fails without saying so (keras-hub #831: IMDb stuck at 50 %; Mosbach et al.,
ICLR 2021: vanishing gradients early in training, decided by the seed). A run whose best
validation score is not above what a model that ignores its input would score has learned nothing,
whatever its loss did. The baseline is computed from the validation data with the task's own
metric, so it is exactly what "learned nothing" scores:

| task | trivial prediction |
|---|---|
| classification, pairs, multiple choice | the majority class (answer index) of the validation set |
| regression | the validation mean for every example (correlations of a constant: 0) |
| token classification | `O` for every word (no entity: F1 0) |
| intent-slots | the majority intent with every slot `O` |
| a task with `trivial_baseline(data, primary)` | what that method returns (e.g. chance for ranking) |

Tasks not listed (question answering, sentence embeddings) have no baseline: their runs are not judged.
"""

import collections
import math

# A run counts as degenerate "at or below" the baseline; the margin absorbs float noise only.
MARGIN = 1e-6


def _examples(data):
    examples = data.examples
    return list(examples() if callable(examples) else examples)


def _majority(values):
    counts = collections.Counter(values)
    value, count = max(counts.items(), key=lambda item: (item[1], str(item[0])))
    return value, count


def trivial_baseline(task, data, primary):
    """The score of the trivial prediction on labelled validation data, by the task's own metric.

    Args:
        task: a `FinetuneTask`.
        data: the validation `TaskData` (read with the training file's metadata).
        primary: the metric the run is judged by (e.g. `"accuracy"`, `"pearson"`, `"f1"`).

    Returns:
        `{"metric", "value", "prediction"}` (`prediction` says in words what the trivial model
        predicts), or None when the task has no baseline or the data have no labels.

    Example:
    ```python
    trivial_baseline(get_task("classification"), dev, "accuracy")
    # {"metric": "accuracy", "value": 0.53, "prediction": "'negative' (the majority class) for every example"}
    ```
    """
    hook = getattr(task, "trivial_baseline", None)
    if hook is not None:  # a task that knows its own (e.g. chance for ranking)
        return hook(data, primary)
    examples = _examples(data)
    if not examples:
        return None
    first = examples[0]
    if hasattr(first, "intent") and hasattr(first, "tags"):
        return _intent_slots(examples, primary)
    if hasattr(first, "tags"):
        return _tagging(examples, primary)
    if not hasattr(first, "label") or any(e.label is None for e in examples):
        return None
    import numpy as np

    from albert_keras.tasks.glue import score

    if getattr(task, "regression", False):
        targets = np.asarray([float(e.label) for e in examples])
        mean = float(targets.mean())
        with np.errstate(all="ignore"):
            value = score([primary], targets, np.full_like(targets, mean))[primary]
        # A constant has no correlation with anything; numpy says nan.
        value = 0.0 if math.isnan(value) else value
        return {"metric": primary, "value": round(value, 6),
                "prediction": f"the validation mean {mean:.4g} for every example"}
    labels = data.metadata.get("labels")
    if labels is not None and not isinstance(first.label, int):
        index = {label: i for i, label in enumerate(labels)}
        targets = np.asarray([index[e.label] for e in examples])
    else:  # multiple choice: the answer's index
        targets = np.asarray([int(e.label) for e in examples])
    majority, _ = _majority(targets.tolist())
    value = score([primary], targets, np.full_like(targets, majority))[primary]
    name = repr(labels[majority]) if labels is not None and majority < len(labels) else f"answer {majority}"
    return {"metric": primary, "value": round(float(value), 6),
            "prediction": f"{name} (the majority class) for every example"}


def _tagging(examples, primary):
    # Predicting `O` everywhere finds no entity: precision and recall (hence F1) are 0, and
    # word accuracy is the share of `O` tags.
    tags = [tag for e in examples for tag in (e.tags or [])]
    if not tags:
        return None
    value = sum(tag == "O" for tag in tags) / len(tags) if primary == "accuracy" else 0.0
    return {"metric": primary, "value": round(value, 6), "prediction": "'O' (no entity) for every word"}


def _intent_slots(examples, primary):
    if any(e.intent is None for e in examples):
        return None
    intent, count = _majority([e.intent for e in examples])
    if primary == "frame_accuracy":
        value = sum(e.intent == intent and all(t == "O" for t in (e.tags or [])) for e in examples) / len(examples)
    elif primary == "intent_accuracy":
        value = count / len(examples)
    else:  # slot scores: no slot found
        value = 0.0
    return {"metric": primary, "value": round(value, 6),
            "prediction": f"intent {intent!r} (the majority) with every slot 'O' for every example"}


def judge(records, baseline, primary):
    """Whether a run learned anything: None, or `{"step", "why"}` when its best validation score is
    at or below the trivial baseline.

    Args:
        records: the run's evaluation records (`{"step", "metrics", "one_class"?}`), in order.
        baseline: `trivial_baseline(...)` (None: nothing to judge by; the run is not judged).
        primary: the metric.

    Example:
    ```python
    judge([{"step": 12, "metrics": {"accuracy": 0.5}, "one_class": "negative"}],
          {"metric": "accuracy", "value": 0.5, "prediction": "..."}, "accuracy")
    # {"step": 12, "why": "predicts 'negative' for every validation example ..."}
    ```
    """
    if baseline is None or not records:
        return None
    scored = [r for r in records if r["metrics"].get(primary) is not None
              and not math.isnan(r["metrics"][primary])]
    if not scored:
        last = records[-1]
        return {"step": last["step"], "why": f"no validation {primary} at all (the predictions are constant or "
                                             "not numbers)"}
    best = max(scored, key=lambda r: r["metrics"][primary])
    value = best["metrics"][primary]
    if value > baseline["value"] + MARGIN:
        return None
    last = records[-1]
    why = (f"its best validation {primary} {value:.4f} (step {best['step']}) is not above the trivial baseline "
           f"{baseline['value']:.4f}, which predicts {baseline['prediction']}")
    if last.get("one_class") is not None:
        why = f"predicts {last['one_class']!r} for every validation example at step {last['step']}; " + why
    return {"step": last["step"], "why": why}
