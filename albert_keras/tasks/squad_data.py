"""SQuAD-layout JSON files: reading them into `SquadExample`s and writing examples back.

The reading half of `albert_keras.tasks.squad`, below it so that the dialects that share SQuAD's
layout (`albert_keras.tasks.cmrc`) read through it without importing the task.
"""

import dataclasses
import json
import os

from albert_keras.errors import AlbertInputError

BAD_ANSWER = "answer text not at its answer_start"


@dataclasses.dataclass
class SquadExample:
    """One question with its context.

    Args:
        qid: the question id.
        question: the question text.
        context: the paragraph (answers are slices of it).
        answers: `[{"text", "answer_start"}]` (empty for an unanswerable 2.0 question).
        is_impossible: SQuAD 2.0's flag.
        where: the JSON location, for messages.
    """

    qid: str
    question: str
    context: str
    answers: list
    is_impossible: bool = False
    where: str = ""


def load_json(path):
    """A JSON file's content; unreadable or malformed files raise `AlbertInputError` (file:line:column)."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise AlbertInputError(f"{path}: file not found") from None
    except UnicodeDecodeError as error:
        raise AlbertInputError(f"{path}: not UTF-8 (byte {error.start})") from None
    except json.JSONDecodeError as error:
        raise AlbertInputError(f"{path}:{error.lineno}:{error.colno}: malformed JSON ({error.msg})") from None


def _field(record, key, kind, path, where, default=None, required=True):
    if not isinstance(record, dict):
        raise AlbertInputError(f"{path}: {where}: expected a JSON object")
    if key not in record:
        if required:
            raise AlbertInputError(f"{path}: {where}: missing {key!r}")
        return default
    value = record[key]
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise AlbertInputError(f"{path}: {where}.{key}: expected {getattr(kind, '__name__', kind)}")
    return value


def read_squad(path, skip_bad_answers=False, document=None):
    """Read a SQuAD 1.1 or 2.0 JSON file.

    Args:
        path: the file (`{"data": [{"paragraphs": [{"context", "qas": [...]}]}]}`).
        skip_bad_answers: leave out (and count) questions whose answer text is not at its
            `answer_start` in the context, instead of raising.
        document: the file's content when already loaded (and repaired: CMRC 2018's
            `albert_keras.tasks.cmrc.read_cmrc`); `path` then only names it in messages.

    Returns:
        `(examples, version_2, skipped)`: `SquadExample`s in file order, whether the file has
        unanswerable questions (or says `"version": "v2.0"`), and `{reason: count}`.

    Raises:
        AlbertInputError: malformed JSON (file:line:column), a missing or mistyped field, a
            question without context, a duplicate id, or a misplaced answer (file and location).

    Example:
    ```python
    examples, version_2, skipped = read_squad("dev-v2.0.json")
    examples[0].question, examples[0].answers[0]["text"]
    ```
    """
    path = os.fspath(path)
    document = load_json(path) if document is None else document
    if isinstance(document, list):
        document = {"data": document}
    articles = _field(document, "data", list, path, "top level")
    version_2 = str(document.get("version", "")).startswith(("v2", "2"))
    examples, seen, skipped = [], set(), {}
    for a, article in enumerate(articles):
        paragraphs = _field(article, "paragraphs", list, path, f"data[{a}]")
        for p, paragraph in enumerate(paragraphs):
            where_p = f"data[{a}].paragraphs[{p}]"
            qas = _field(paragraph, "qas", list, path, where_p)
            context = _field(paragraph, "context", str, path, where_p, required=False)
            if context is None or not context.strip():
                if qas:
                    raise AlbertInputError(f"{path}: {where_p}: {len(qas)} questions without a context")
                continue
            for q, qa in enumerate(qas):
                where = f"{where_p}.qas[{q}]"
                qid = _field(qa, "id", (str, int), path, where)
                qid = str(qid)
                if qid in seen:
                    raise AlbertInputError(f"{path}: {where}: duplicate question id {qid!r}")
                seen.add(qid)
                question = _field(qa, "question", str, path, where)
                impossible = _field(qa, "is_impossible", bool, path, where, default=False, required=False)
                version_2 = version_2 or "is_impossible" in qa
                answers = [] if impossible else _field(qa, "answers", list, path, where, default=[], required=False)
                checked, bad = [], False
                for n, answer in enumerate(answers):
                    text = _field(answer, "text", str, path, f"{where}.answers[{n}]")
                    start = _field(answer, "answer_start", int, path, f"{where}.answers[{n}]")
                    if context[start:start + len(text)] != text or not text:
                        if not skip_bad_answers:
                            raise AlbertInputError(
                                f"{path}: {where}.answers[{n}] (id {qid!r}): {BAD_ANSWER} {start} "
                                f"(context there: {context[start:start + len(text)]!r}, answer {text!r})"
                            )
                        bad = True
                    checked.append({"text": text, "answer_start": start})
                if bad:
                    skipped[BAD_ANSWER] = skipped.get(BAD_ANSWER, 0) + 1
                    continue
                if not checked and not impossible:
                    impossible = True  # 2.0 dev files mark some unanswerable ones only by [] answers
                    version_2 = True
                examples.append(SquadExample(qid, question, context, checked, impossible, where))
    if not examples:
        raise AlbertInputError(f"{path}: no questions")
    return examples, version_2, skipped


def squad_dataset(examples):
    """The examples as a SQuAD `data` list (what `evaluate` scores against).

    Example:
    ```python
    evaluate(squad_dataset(examples), predictions)
    ```
    """
    return [{"paragraphs": [{"context": e.context, "qas": [{"id": e.qid, "answers": e.answers}]}]}
            for e in examples]
