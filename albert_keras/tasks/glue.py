"""The GLUE tasks by name, as google-research/ALBERT's classifier_utils.py reads them.

Each task fixes its TSV layout (0-based columns; header or not), its label list and its official
metric. `--glue-task NAME --train DIR` reads `DIR/train.tsv`; a directory as `--validation` reads
the task's dev file (`dev.tsv`; MNLI `dev_matched.tsv`, `mnli-mm` `dev_mismatched.tsv`).

| task | text_a | text_b | label | labels | official metric |
|---|---|---|---|---|---|
| cola | 3 (no header) | - | 1 | 0, 1 | Matthews correlation |
| sst-2 | 0 | - | 1 | 0, 1 | accuracy |
| mrpc | 3 | 4 | 0 | 0, 1 | F1 and accuracy |
| sts-b | 7 | 8 | -1 (float 0-5) | regression | Pearson and Spearman |
| qqp | 3 | 4 | 5 | 0, 1 | accuracy and F1 |
| mnli, mnli-mm | 8 | 9 | -1 | contradiction, entailment, neutral | accuracy |
| qnli, rte | 1 | 2 | -1 | entailment, not_entailment | accuracy |
| wnli | 1 | 2 | -1 | 0, 1 | accuracy |
"""

import dataclasses
import os

from albert_keras.errors import AlbertInputError
from albert_keras.tasks.readers import ColumnSpec


@dataclasses.dataclass(frozen=True)
class GlueTask:
    """One GLUE task's layout, labels and metrics.

    Example:
    ```python
    get_glue_task("mrpc").metrics  # ("f1", "accuracy")
    ```
    """

    name: str
    text_a: int
    text_b: int
    label: int
    labels: tuple
    metrics: tuple
    header: bool = True
    train_file: str = "train.tsv"
    dev_file: str = "dev.tsv"

    @property
    def regression(self):
        return not self.labels

    @property
    def primary_metric(self):
        return self.metrics[0]

    def spec(self):
        """The `ColumnSpec` of the train and dev files."""
        return ColumnSpec(self.text_a, self.text_b, self.label, header=self.header, format="tsv")

    def resolve(self, path, split):
        """A file, or the split's file inside a GLUE task directory."""
        path = os.fspath(path)
        if os.path.isdir(path):
            path = os.path.join(path, self.train_file if split == "train" else self.dev_file)
        return path


BINARY = ("0", "1")
NLI = ("entailment", "not_entailment")
MNLI = ("contradiction", "entailment", "neutral")

GLUE_TASKS = {
    task.name: task
    for task in (
        GlueTask("cola", 3, None, 1, BINARY, ("matthews_corrcoef", "accuracy"), header=False),
        GlueTask("sst-2", 0, None, 1, BINARY, ("accuracy",)),
        GlueTask("mrpc", 3, 4, 0, BINARY, ("f1", "accuracy")),
        GlueTask("sts-b", 7, 8, -1, (), ("pearson", "spearman")),
        GlueTask("qqp", 3, 4, 5, BINARY, ("accuracy", "f1")),
        GlueTask("mnli", 8, 9, -1, MNLI, ("accuracy",), dev_file="dev_matched.tsv"),
        GlueTask("mnli-mm", 8, 9, -1, MNLI, ("accuracy",), dev_file="dev_mismatched.tsv"),
        GlueTask("qnli", 1, 2, -1, NLI, ("accuracy",)),
        GlueTask("rte", 1, 2, -1, NLI, ("accuracy",)),
        GlueTask("wnli", 1, 2, -1, BINARY, ("accuracy",)),
    )
}
ALIASES = {"sst2": "sst-2", "stsb": "sts-b", "sts": "sts-b", "mnli-m": "mnli", "mnli_matched": "mnli",
           "mnli_mismatched": "mnli-mm"}


def get_glue_task(name):
    """The `GlueTask` called `name` (case-insensitive; `sst2`, `stsb` also accepted), or the
    CLUE task of that name (`albert_keras.tasks.clue.ClueTask`: tnews, afqmc, c3, cmrc2018, ...)."""
    from albert_keras.tasks.clue import CLUE_TASKS
    from albert_keras.tasks.clue import get_clue_task

    key = str(name).lower()
    key = ALIASES.get(key, key)
    if key not in GLUE_TASKS:
        clue = get_clue_task(name)
        if clue is not None:
            return clue
        raise AlbertInputError(
            f"--glue-task: unknown {name!r}; choose one of {', '.join(GLUE_TASKS)} (GLUE) or "
            f"{', '.join(CLUE_TASKS)} (CLUE)"
        )
    return GLUE_TASKS[key]


def score(metric_names, y_true, y_pred):
    """The named metrics (`accuracy`, `f1`, `matthews_corrcoef`, `pearson`, `spearman`,
    `macro_f1`) of predictions: class ids (or logits) for classification, floats for regression.

    Example:
    ```python
    score(("f1", "accuracy"), [0, 1, 1], [0, 1, 0])  # {"f1": 0.667, "accuracy": 0.667}
    ```
    """
    from albert_keras.tasks import metrics

    functions = {
        "accuracy": metrics.accuracy,
        "f1": lambda t, p: metrics.f1(t, p, average="binary", positive_label=1),
        "macro_f1": lambda t, p: metrics.f1(t, p, average="macro"),
        "matthews_corrcoef": metrics.matthews_corrcoef,
        "pearson": metrics.pearson,
        "spearman": metrics.spearman,
    }
    return {name: float(functions[name](y_true, y_pred)) for name in metric_names}
