"""Multiple-choice JSONL: RACE-style, SWAG-style, or plain `{"context", "choices", "label"}`.

One JSON object per line, in any of these layouts (detected per line):

- RACE: `{"article": str, "questions": [str], "options": [[str]], "answers": ["A", ...]}`; each
  question is one example, packed as `[CLS] article [SEP] question + option [SEP]` (run_race.py;
  a question with a `_` blank has the option written into the blank instead).
- SWAG: `{"sent1": str, "sent2": str, "ending0": str, ..., "label": int}`; context `sent1`,
  choices `sent2 + " " + ending_i` (HF's run_swag convention).
- Plain: `{"context": str, "choices": [str], "label": int or the choice's text}`.

Every example must have the same number of choices as the first (the model has one fixed
`num_choices`); a different count is an error naming the file and line.
"""

import dataclasses
import os

from albert_keras.errors import AlbertInputError
from albert_keras.text_files import read_json_lines


@dataclasses.dataclass
class ChoiceExample:
    """One multiple-choice question: `context`, its `choices`, the answer's index (or None)."""

    context: str
    choices: list
    label: int = None
    line: int = 0


def _race_choice(question, option):
    if "_" in question:
        return question.replace("_", option, 1)
    return f"{question} {option}".strip()


def _label_index(path, line, label, choices):
    if label is None:
        return None
    if isinstance(label, str):
        text = label.strip()
        if text in choices:  # the answer's text first: a one-letter choice is not a letter index
            index = choices.index(text)
        elif len(text) == 1 and "A" <= text.upper() <= "Z":
            index = ord(text.upper()) - ord("A")
        elif text.lstrip("-").isdigit():
            index = int(text)
        else:
            raise AlbertInputError(f"{path}:{line}: answer {label!r} is neither an index, a letter nor a choice")
    elif isinstance(label, bool) or not isinstance(label, int):
        raise AlbertInputError(f"{path}:{line}: answer {label!r} must be an integer index or a letter")
    else:
        index = label
    if not 0 <= index < len(choices):
        raise AlbertInputError(f"{path}:{line}: answer {label!r} is outside the {len(choices)} choices")
    return index


def _strings(path, line, values, what):
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise AlbertInputError(f"{path}:{line}: {what} must be a list of strings")
    return values


def _parse(path, line, record, require_label):
    """The `ChoiceExample`s of one JSON record."""
    if "article" in record:
        for key in ("questions", "options"):
            if key not in record:
                raise AlbertInputError(f"{path}:{line}: RACE record without {key!r}")
        questions = _strings(path, line, record["questions"], "'questions'")
        options = record["options"]
        answers = record.get("answers")
        if not isinstance(options, list) or len(options) != len(questions):
            raise AlbertInputError(f"{path}:{line}: 'options' must hold one list per question")
        if answers is not None and (not isinstance(answers, list) or len(answers) != len(questions)):
            raise AlbertInputError(f"{path}:{line}: 'answers' must hold one answer per question")
        if require_label and answers is None:
            raise AlbertInputError(f"{path}:{line}: no field 'answers'")
        examples = []
        for i, question in enumerate(questions):
            choices = [_race_choice(question, option) for option in _strings(path, line, options[i], "'options'")]
            label = _label_index(path, line, answers[i], options[i]) if answers is not None else None
            examples.append(ChoiceExample(record["article"], choices, label, line))
        return examples
    if "ending0" in record:
        endings = []
        while f"ending{len(endings)}" in record:
            endings.append(record[f"ending{len(endings)}"])
        _strings(path, line, endings, "'ending<i>'")
        stem = record.get("sent2", "")
        choices = [f"{stem} {ending}".strip() for ending in endings]
        context = record.get("sent1", record.get("startphrase", ""))
        label_key = "label"
    elif "context" in record and "choices" in record:
        choices = _strings(path, line, record["choices"], "'choices'")
        context = record["context"]
        label_key = "answer" if "answer" in record and "label" not in record else "label"
    else:
        raise AlbertInputError(
            f"{path}:{line}: not a multiple-choice record (expected RACE 'article'/'questions'/'options', "
            "SWAG 'sent1'/'ending0'..., or 'context'/'choices'/'label')"
        )
    if not isinstance(context, str):
        raise AlbertInputError(f"{path}:{line}: the context must be a string")
    label = record.get(label_key)
    if require_label and label is None:
        raise AlbertInputError(f"{path}:{line}: no field {label_key!r}")
    return [ChoiceExample(context, choices, _label_index(path, line, label, choices), line)]


def read_choices(path, num_choices=None, require_label=True):
    """Read a multiple-choice JSONL file into `ChoiceExample`s.

    Args:
        path: the JSONL file.
        num_choices: the required number of choices (the model's); default the first example's.
        require_label: every example must have its answer (training/evaluation files).

    Returns:
        `(examples, num_choices)`.

    Example:
    ```python
    examples, num_choices = read_choices("race_train.jsonl")
    ```
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise AlbertInputError(f"{path}: file not found")
    examples = []
    for line_number, record in read_json_lines(path):
        for example in _parse(path, line_number, record, require_label):
            if num_choices is None:
                num_choices = len(example.choices)
            if len(example.choices) != num_choices:
                raise AlbertInputError(
                    f"{path}:{line_number}: {len(example.choices)} choices, but the "
                    f"{'model' if examples == [] else 'file'} has {num_choices}; every example needs the same "
                    "number of choices"
                )
            examples.append(example)
    if not examples:
        raise AlbertInputError(f"{path}: no examples (empty file)")
    if num_choices < 2:
        raise AlbertInputError(f"{path}: multiple choice needs at least two choices, got {num_choices}")
    return examples, num_choices


def choices_dataset(examples):
    """`tf.data.Dataset` of `((context, choices [C]), label)` (or just the x) for the examples.

    Example:
    ```python
    dataset = choices_dataset(examples).batch(8)
    ```
    """
    import numpy as np
    import tensorflow as tf

    contexts = [e.context for e in examples]
    choices = np.array([list(e.choices) for e in examples], dtype=object)
    if examples[0].label is None:
        return tf.data.Dataset.from_tensor_slices((contexts, choices))
    labels = np.array([e.label for e in examples], dtype="int32")
    return tf.data.Dataset.from_tensor_slices(((contexts, choices), labels))
