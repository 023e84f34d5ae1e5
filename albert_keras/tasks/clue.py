"""The CLUE benchmark tasks by name, read as CLUEbenchmark/CLUE's baselines read them.

`--glue-task NAME` accepts these names as it accepts GLUE's (`albert_keras.tasks.glue`): a task
directory as `--train` / `--validation` reads `train.json` / `dev.json` (`test.json` for
`predict`), JSON lines as distributed; each task fixes its fields, label list and metric.

| task | `--task` | text_a | text_b | labels |
|---|---|---|---|---|
| afqmc | classification | sentence1 | sentence2 | 0, 1 |
| tnews | classification | sentence | - | 100..116 without 105, 111 (15) |
| iflytek | classification | sentence | - | 0..118 (119) |
| ocnli, cmnli | classification | sentence1 | sentence2 | contradiction, entailment, neutral; "-" rows skipped |
| csl | classification | keywords joined by spaces | abst | 0, 1 |
| cluewsc2020 | classification | text with `_span1_` and `[span2]` marked | - | true, false |
| c3 | multiple-choice | dialogue lines joined by newlines | question + " " + choice | 4 choices |
| cmrc2018 | question-answering | `albert_keras.tasks.cmrc` | | |
| cluener | token-classification | `albert_keras.tasks.cluener` | | |

Every classification task is scored by accuracy, CLUE's metric. Test files have no labels:
`albert-keras predict` on them writes CLUE's submission lines, `{"id": ..., "label": ...}`.
"""

import dataclasses
import json
import os

from albert_keras.errors import AlbertInputError
from albert_keras.tasks.readers import ColumnSpec

NLI = ("contradiction", "entailment", "neutral")
TNEWS = tuple(str(100 + i) for i in range(17) if i not in (5, 11))
IFLYTEK = tuple(str(i) for i in range(119))
BINARY = ("0", "1")
WSC = ("true", "false")  # CLUE's order (classifier_utils.WSCProcessor.get_labels)
# CLUE's C3 baseline (run_c3.py) pads questions with fewer than 4 choices with this "invalid
# answer" choice, which it found steadies training; the model keeps one fixed choice count.
C3_CHOICES = 4
C3_PADDING = "无效答案"
NLI_SKIP = "label '-' (no annotator majority)"


def _text(record, key, where):
    value = record.get(key)
    if not isinstance(value, str):
        raise AlbertInputError(f"{where}: field {key!r} must be a string, got {value!r}")
    return value


def _wsc_text(record, where):
    """The text with span1 (the candidate) as `_span1_` and span2 (the pronoun) as `[span2]`:
    how CLUE's WSCProcessor shows both spans to a single-sentence classifier."""
    text = _text(record, "text", where)
    target = record.get("target")
    if not isinstance(target, dict):
        raise AlbertInputError(f"{where}: field 'target' must be an object with span1/span2 text and index")
    spans = []
    for number, (left, right) in ((1, ("_", "_")), (2, ("[", "]"))):
        surface, start = target.get(f"span{number}_text"), target.get(f"span{number}_index")
        if not isinstance(surface, str) or isinstance(start, bool) or not isinstance(start, int):
            raise AlbertInputError(f"{where}: target needs span{number}_text (string) and span{number}_index (int)")
        if text[start:start + len(surface)] != surface:
            raise AlbertInputError(
                f"{where}: target span{number}_text {surface!r} is not at span{number}_index {start} "
                f"(text there: {text[start:start + len(surface)]!r})"
            )
        spans.append((start, start + len(surface), left, right))
    (s1, e1, _, _), (s2, e2, _, _) = spans
    if s1 < e2 and s2 < e1:
        raise AlbertInputError(f"{where}: target spans overlap")
    for start, end, left, right in sorted(spans, reverse=True):  # the later span first: offsets stay valid
        text = text[:start] + left + text[start:end] + right + text[end:]
    return text


@dataclasses.dataclass(frozen=True)
class ClueTask:
    """One CLUE task: its `--task` family, fields, labels and metric.

    Has the same interface as `albert_keras.tasks.glue.GlueTask` (`regression`, `labels`,
    `metrics`, `spec()`, `resolve()`), so `--glue-task NAME` selects it the same way.

    Example:
    ```python
    from albert_keras.tasks.clue import get_clue_task
    task = get_clue_task("tnews")
    len(task.labels), task.resolve("data/tnews", "train")  # 15, "data/tnews/train.json"
    ```
    """

    name: str
    kind: str = "classification"
    text_a: str = "sentence"
    text_b: str = None
    labels: tuple = ()
    metrics: tuple = ("accuracy",)
    skip_dash: bool = False

    regression = False

    @property
    def primary_metric(self):
        return self.metrics[0]

    def check_kind(self, kind):
        """Raise unless the task is fine-tuned by `--task kind`."""
        if kind != self.kind:
            raise AlbertInputError(f"--glue-task {self.name} is a {self.kind} task; use --task {self.kind}")

    def prepare(self, record, labelled, where):
        """A JSON line as `{"text_a", "text_b", "label", "id"}`, or the reason to skip it."""
        label = record.get("label")
        if labelled and label is None:
            raise AlbertInputError(f"{where}: no field 'label' (fields: {', '.join(sorted(record))})")
        if labelled and self.skip_dash and str(label).strip() == "-":
            return NLI_SKIP
        if self.name == "csl":
            keywords = record.get("keyword")
            if not isinstance(keywords, list) or not all(isinstance(k, str) for k in keywords):
                raise AlbertInputError(f"{where}: field 'keyword' must be a list of strings")
            text_a, text_b = " ".join(keywords), _text(record, "abst", where)
        elif self.name == "cluewsc2020":
            text_a, text_b = _wsc_text(record, where), None
        else:
            text_a = _text(record, self.text_a, where)
            text_b = _text(record, self.text_b, where) if self.text_b else None
        return {"text_a": text_a, "text_b": text_b, "label": label, "id": record.get("id")}

    def spec(self):
        """The `ColumnSpec` reading this task's JSON lines (through `prepare`)."""
        self.check_kind("classification")
        return ColumnSpec("text_a", "text_b" if self.text_b else None, "label",
                          format="jsonl", id_column="id", prepare=self.prepare)

    def resolve(self, path, split):
        """A file, or the split's file (`train.json`, `dev.json`, `test.json`) in a task directory."""
        path = os.fspath(path)
        if os.path.isdir(path):
            path = os.path.join(path, f"{split}.json")
        return path


CLUE_TASKS = {
    task.name: task
    for task in (
        ClueTask("afqmc", text_a="sentence1", text_b="sentence2", labels=BINARY),
        ClueTask("tnews", labels=TNEWS),
        ClueTask("iflytek", labels=IFLYTEK),
        ClueTask("ocnli", text_a="sentence1", text_b="sentence2", labels=NLI, skip_dash=True),
        ClueTask("cmnli", text_a="sentence1", text_b="sentence2", labels=NLI, skip_dash=True),
        ClueTask("csl", text_a="keyword", text_b="abst", labels=BINARY),
        ClueTask("cluewsc2020", text_a="text", labels=WSC),
        ClueTask("c3", kind="multiple-choice", labels=tuple(str(i) for i in range(C3_CHOICES))),
        ClueTask("cmrc2018", kind="question-answering", metrics=("F1", "EM", "AVERAGE")),
        ClueTask("cluener", kind="token-classification", metrics=("macro_f1",)),
    )
}
ALIASES = {"wsc": "cluewsc2020", "cluewsc": "cluewsc2020", "cmrc": "cmrc2018", "cluener2020": "cluener"}


def get_clue_task(name):
    """The `ClueTask` called `name` (case-insensitive), or None when it is not a CLUE task.

    Example:
    ```python
    get_clue_task("OCNLI").labels  # ("contradiction", "entailment", "neutral")
    ```
    """
    key = str(name).lower().replace("_", "-")
    return CLUE_TASKS.get(ALIASES.get(key, key))


def benchmark(options, metadata=None):
    """The CLUE task named by a task's `glue_task` option (or stored in its metadata), or None."""
    name = (metadata or {}).get("glue_task") or (options or {}).get("glue_task")
    return get_clue_task(name) if name else None


# ---------------------------------------------------------------------------------------------
# C3 (multiple choice)
# ---------------------------------------------------------------------------------------------


def c3_files(path, split):
    """C3's files for a split: `path` itself, or in a directory as c3_public.zip unpacks
    (`d-train.json` + `m-train.json`, `d-dev.json` + `m-dev.json`, `test1.1.json` or
    `test1.0.json`; a `c3-` prefix, as the baseline renames them, is accepted too).

    Example:
    ```python
    c3_files("data/c3", "dev")  # ["data/c3/d-dev.json", "data/c3/m-dev.json"]
    ```
    """
    path = os.fspath(path)
    if not os.path.isdir(path):
        return [path]
    names = ["test1.1.json", "test1.0.json", "test.json"] if split == "test" else []
    names += [f"{prefix}{kind}-{split}.json" for prefix in ("", "c3-") for kind in ("d", "m")]
    found = [os.path.join(path, n) for n in names if os.path.isfile(os.path.join(path, n))]
    if split == "test" and found and os.path.basename(found[0]).startswith("test"):
        found = found[:1]
    if not found:
        raise AlbertInputError(f"{path}: no C3 {split} file (expected {' or '.join(names[:4])})")
    return found


def read_c3(path, split="train", require_label=True):
    """C3's questions as `ChoiceExample`s of exactly 4 choices (CLUE's `无效答案` padding).

    Each file is one JSON list of `[[dialogue lines], [{"question", "choice": [...], "answer"}], id]`;
    the context is the lines joined by newlines (as CLUE's run_c3.py), each choice the question, a
    space and the choice (run_c3.py packs `question [SEP] choice`; text has no `[SEP]`).

    Args:
        path: a C3 file or a directory with the split's files (`c3_files`).
        split: `train`, `dev` or `test` (which files a directory gives).
        require_label: every question must have its answer among its choices.

    Returns:
        `(examples, skipped)`: the `ChoiceExample`s (`line` is the question's 1-based number in
        the split) and `{reason: count}` (always empty: no C3 question is left out).

    Example:
    ```python
    examples, _ = read_c3("data/c3", "dev")
    examples[0].choices  # 4 strings, padded with "无效答案"
    ```
    """
    from albert_keras.tasks.multiple_choice import ChoiceExample

    examples = []
    for file in c3_files(path, split):
        try:
            with open(file, encoding="utf-8") as f:
                document = json.load(f)
        except FileNotFoundError:
            raise AlbertInputError(f"{file}: file not found") from None
        except json.JSONDecodeError as error:
            raise AlbertInputError(f"{file}:{error.lineno}:{error.colno}: malformed JSON ({error.msg})") from None
        if not isinstance(document, list):
            raise AlbertInputError(f"{file}: expected a JSON list of [dialogue, questions, id] entries")
        for d, entry in enumerate(document):
            where = f"{file}: [{d}]"
            if not isinstance(entry, list) or len(entry) < 2 or not isinstance(entry[1], list):
                raise AlbertInputError(f"{where}: expected [dialogue lines, questions, id]")
            lines = entry[0]
            if not isinstance(lines, list) or not all(isinstance(x, str) for x in lines):
                raise AlbertInputError(f"{where}: the dialogue must be a list of strings")
            context = "\n".join(lines)
            for q, item in enumerate(entry[1]):
                here = f"{where}[1][{q}]"
                question, choices = item.get("question") if isinstance(item, dict) else None, None
                if isinstance(item, dict):
                    choices = item.get("choice")
                if not isinstance(question, str) or not isinstance(choices, list) or not all(
                        isinstance(c, str) for c in choices):
                    raise AlbertInputError(f"{here}: expected 'question' (string) and 'choice' (list of strings)")
                if not 1 <= len(choices) <= C3_CHOICES:
                    raise AlbertInputError(f"{here}: {len(choices)} choices; C3 has 2 to {C3_CHOICES}")
                answer = item.get("answer")
                label = None
                if require_label or answer:
                    if not isinstance(answer, str) or answer not in choices:
                        raise AlbertInputError(f"{here}: answer {answer!r} is not one of the choices {choices}")
                    label = choices.index(answer)
                padded = choices + [C3_PADDING] * (C3_CHOICES - len(choices))
                examples.append(ChoiceExample(context, [f"{question} {c}" for c in padded], label, len(examples) + 1))
    if not examples:
        raise AlbertInputError(f"{path}: no C3 questions")
    return examples, {}


# ---------------------------------------------------------------------------------------------
# Submissions
# ---------------------------------------------------------------------------------------------


def write_submission(records, output_path):
    """Write CLUE's submission lines `{"id": ..., "label": ...}` from `predict` records.

    A record without an `id` (a test file without ids) uses its 0-based position, which is what
    CLUE's ids are for the classification test files.

    Returns:
        The number of lines written.

    Example:
    ```python
    write_submission(task.predict(model, data, options), "tnews_predict.json")
    ```
    """
    from albert_keras.io_utils import atomic_write

    count = 0
    with atomic_write(os.fspath(output_path), "w") as f:
        for record in records:
            identifier = record.get("id")
            f.write(json.dumps({"id": count if identifier is None else identifier, "label": record["label"]},
                               ensure_ascii=False) + "\n")
            count += 1
    return count
