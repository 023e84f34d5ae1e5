"""CMRC 2018 (Chinese extractive reading comprehension): the `answer_start` repair and its scorer.

CMRC 2018 ships in SQuAD's layout and goes through the SQuAD reader, windows and decoder
(`albert_keras.tasks.squad`); `--task question-answering --glue-task cmrc2018` adds two things:

- `read_cmrc`: some answers' `answer_start` is a few characters off. CLUE's preprocessing
  (cmrc2018_preprocess.py) moves such an answer left, one character at a time, up to 3 times,
  until the context there equals the text; `repair_answer_starts` does that, then (not in CLUE's
  script) tries up to 3 characters right, counts the repairs, and fails naming the file and the
  question id when neither finds the text.
- `evaluate`: the official evaluator (ymcui/cmrc2018, cmrc2018_evaluate.py, "v5 - special"):
  lowercase and strip; EM after removing the listed punctuation; F1 over a *mixed segmentation*
  (each CJK character U+4E00-U+9FA5 one segment, the listed punctuation removed, every other run
  word-tokenized) by the longest common contiguous run of segments (precision over the
  prediction, recall over the answer), the maximum over the gold answers; a missing prediction
  scores 0 and is counted in `SKIP`; `AVERAGE = (EM + F1) / 2`; percentages with 3 decimals, as
  the script prints them.

The official script tokenizes the non-CJK runs with `nltk.word_tokenize`, which splits sentences
with Punkt first: Punkt's model is a separate download (`nltk.download("punkt")`), and nltk is
no dependency here. `word_tokenize` below is a small Treebank-style tokenizer written for the
short Latin runs of answers (numbers, names, English words); docs/finetune.md gives its measured
agreement with the official script.
"""

import os
import re
import sys

from albert_keras.errors import AlbertInputError

# The official sp_char list. Its "……" is two characters and never equals one character, so the
# script never removes "…": kept as written to score the same.
PUNCTUATION = ("-", ":", "_", "*", "^", "/", "\\", "~", "`", "+", "=", "，", "。", "：", "？", "！", "“", "”", "；",
               "’", "《", "》", "……", "·", "、", "「", "」", "（", "）", "－", "～", "『", "』")
_PUNCTUATION = frozenset(PUNCTUATION)
_CJK = re.compile("[\u4e00-\u9fa5]")
REPAIR_WINDOW = 3  # CLUE's repeat_limit

# Treebank conventions (nltk's word_tokenize after its sentence split), for the runs without CJK
# characters: brackets, most symbols, the dashes U+2012-U+2015, period runs and curly quotes are
# tokens of their own; a comma or colon only when no digit follows ("13,000" stays one token); a
# period only at the very end ("3.5", "U.S" + "."); a straight double quote becomes `` when it
# opens, '' otherwise; clitics ('s 'm 'd 'll 're 've n't) and a few fused words (cannot, gonna,
# ...) are split. Applied in this order as space insertions, then split on whitespace. Written
# here because nltk's word_tokenize needs the Punkt download (module docstring).
_FUSED = re.compile(r"(?i)\b(can)(not)\b|\b(d)('ye)\b|\b(gim|lem)(me)\b|\b(gon)(na)\b|\b(got)(ta)\b|\b(more)('n)\b"
                    r"|\b(wan)(na)(?=\s)|(?<=\s)('t)(is|was)\b")
_RULES = [
    # Opening quotes first: whether a straight quote opens depends on what precedes it.
    (re.compile(r"([«“‘„]|`+)"), r" \1 "),  # then "```" -> "``", "`"
    (re.compile(r'^\s*"'), " `` "),
    (re.compile(r"``"), " `` "),
    (re.compile(r'(?<=[ (\[{<])("|\'\')'), " `` "),
    (re.compile(r"(?i)(?<!\w)'(?!(?:re|ve|ll|m|t|s|d|n)\b)(?=\w)"), "' "),
    # Then punctuation.
    (re.compile(r"(?<!\.)\.([\])}>\"'»”’ ]*)\s*$"), r" . \1 "),
    (re.compile(r"([:,])([^\d])"), r" \1 \2"),  # consumes the next character: ",,x" -> ",", ",x"
    (re.compile(r"([:,])\s*$"), r" \1 "),
    (re.compile(r"(\.{2,}|[;@#$%&?!*\[\](){}<>\u2012-\u2015]|--)"), r" \1 "),
    (re.compile(r"(?<=[^'])' "), " ' "),
    # Then closing quotes and clitics, on the text padded with spaces.
    (re.compile(r"^|$"), " "),
    (re.compile(r"([»”’])"), r" \1 "),
    (re.compile(r"''|\""), " '' "),
    (re.compile(r"(?i)(?<=[^' ])('s|'m|'d|'ll|'re|'ve|n't|')(?= )"), r" \1 "),
    (_FUSED, lambda m: " " + " ".join(g for g in m.groups() if g) + " "),
]


def word_tokenize(text):
    """Treebank-style tokens of a run of non-CJK text (see the rules above).

    Args:
        text: a string (CJK characters are segmented before this is called).

    Returns:
        A list of tokens; whitespace never is one.

    Example:
    ```python
    from albert_keras.tasks.cmrc import word_tokenize
    word_tokenize("Apple's iPhone (2007).")  # ["Apple", "'s", "iPhone", "(", "2007", ")", "."]
    ```
    """
    for pattern, replacement in _RULES:
        text = pattern.sub(replacement, text)
    return text.split()


def mixed_segmentation(text, remove_punctuation=False):
    """The official segmentation: each CJK character (and each listed punctuation mark, unless
    removed) one segment, the runs between them word-tokenized; lowercased and stripped first.

    Example:
    ```python
    from albert_keras.tasks.cmrc import mixed_segmentation
    mixed_segmentation("1998年NBA总决赛")  # ["1998", "年", "nba", "总", "决", "赛"]
    ```
    """
    segments, run = [], ""
    for char in str(text).lower().strip():
        if remove_punctuation and char in _PUNCTUATION:
            continue
        if _CJK.match(char) or char in _PUNCTUATION:
            if run:
                segments.extend(word_tokenize(run))
                run = ""
            segments.append(char)
        else:
            run += char
    if run:
        segments.extend(word_tokenize(run))
    return segments


def remove_punctuation(text):
    """Lowercased, stripped, without the listed punctuation (what EM compares).

    Example:
    ```python
    from albert_keras.tasks.cmrc import remove_punctuation
    remove_punctuation(" 《三国志》 ")  # "三国志"
    ```
    """
    return "".join(char for char in str(text).lower().strip() if char not in _PUNCTUATION)


def longest_common_run(first, second):
    """The length of the longest common contiguous run of two segment lists (the official `find_lcs`).

    Example:
    ```python
    from albert_keras.tasks.cmrc import longest_common_run
    longest_common_run(list("上海市"), list("在上海"))  # 2
    ```
    """
    best, previous = 0, [0] * (len(second) + 1)
    for a in first:
        current = [0] * (len(second) + 1)
        for j, b in enumerate(second):
            if a == b:
                current[j + 1] = previous[j] + 1
                best = max(best, current[j + 1])
        previous = current
    return best


def f1_score(answers, prediction):
    """The best longest-common-run F1 of `prediction` over the gold `answers` (0 to 1).

    Both sides are segmented with the punctuation removed; no common segment gives 0.

    Example:
    ```python
    from albert_keras.tasks.cmrc import f1_score
    f1_score(["北京大学"], "北京")  # precision 2/2, recall 2/4: 0.667
    ```
    """
    predicted = mixed_segmentation(prediction, remove_punctuation=True)
    scores = []
    for answer in answers:
        gold = mixed_segmentation(answer, remove_punctuation=True)
        common = longest_common_run(gold, predicted)
        if common == 0:
            scores.append(0.0)
            continue
        precision, recall = common / len(predicted), common / len(gold)
        scores.append(2 * precision * recall / (precision + recall))
    return max(scores)


def exact_score(answers, prediction):
    """1 when `prediction` equals one of `answers` once both lose the listed punctuation, else 0.

    Example:
    ```python
    from albert_keras.tasks.cmrc import exact_score
    exact_score(["《红楼梦》"], "红楼梦")  # 1
    ```
    """
    predicted = remove_punctuation(prediction)
    return int(any(remove_punctuation(answer) == predicted for answer in answers))


def _questions(dataset):
    if isinstance(dataset, dict):
        dataset = dataset.get("data")
    if not isinstance(dataset, list):
        raise AlbertInputError("CMRC 2018 dataset: expected the file's JSON object with a 'data' list, or that list")
    for a, article in enumerate(dataset):
        for p, paragraph in enumerate(article.get("paragraphs", []) if isinstance(article, dict) else []):
            for q, qa in enumerate(paragraph.get("qas", [])):
                answers = [answer["text"] for answer in qa.get("answers", []) if isinstance(answer, dict)]
                if not answers:  # the official script fails here (max of no scores)
                    raise AlbertInputError(
                        f"CMRC 2018 dataset: data[{a}].paragraphs[{p}].qas[{q}] (id {qa.get('id')!r}) has no answers"
                    )
                yield str(qa["id"]).strip(), answers


def evaluate(dataset, predictions):
    """CMRC 2018's official scores of `predictions` (`{question id: answer text}`).

    Args:
        dataset: the SQuAD-layout JSON (the file's object or its `data` list).
        predictions: answer text by question id; a question without a prediction scores 0 and
            is counted in `SKIP` (the official "Unanswered question", reported on stderr).

    Returns:
        `{"AVERAGE", "F1", "EM"}` percentages rounded to 3 decimals, as the official script prints
        them, and the counts `TOTAL` and `SKIP`.

    Example:
    ```python
    from albert_keras.tasks.cmrc import evaluate
    dataset = [{"paragraphs": [{"context": "...", "qas": [{"id": "q1", "answers": [{"text": "北京"}]}]}]}]
    evaluate(dataset, {"q1": "北京市"})  # {"AVERAGE": 40.0, "F1": 80.0, "EM": 0.0, "TOTAL": 1, "SKIP": 0}
    ```
    """
    f1 = em = total = skipped = 0
    for qid, answers in _questions(dataset):
        total += 1
        if qid not in predictions:
            skipped += 1
            continue
        prediction = predictions[qid]
        f1 += f1_score(answers, prediction)
        em += exact_score(answers, prediction)
    if total == 0:
        raise AlbertInputError("CMRC 2018 dataset: no questions")
    if skipped:
        print(f"cmrc2018: {skipped} of {total} questions have no prediction (scored 0)", file=sys.stderr)
    f1, em = 100.0 * f1 / total, 100.0 * em / total
    return {"AVERAGE": round((em + f1) * 0.5, 3), "F1": round(f1, 3), "EM": round(em, 3),
            "TOTAL": total, "SKIP": skipped}


def repair_answer_starts(document, path, window=REPAIR_WINDOW):
    """Move misplaced `answer_start`s in a SQuAD-layout document, in place (see the module docstring),
    and take out the answers that are no span of the context.

    CMRC 2018's dev file has extra annotator answers with `answer_start` -1 whose text is not in
    the context (193 of its 9,657 answers); they are gold texts for scoring but no training span,
    so they are removed from the document and returned by question id.

    Args:
        document: the loaded JSON (`{"data": [...]}`).
        path: the file, for messages.
        window: how many characters to look left (CLUE's way), then right.

    Returns:
        `(repairs, free)`: the number of answers moved, and `{question id: [answer texts]}` of the
        answers taken out (`answer_start` below 0; one found in the context is moved there instead).

    Raises:
        AlbertInputError: an answer whose text is not within `window` characters of its
            `answer_start`, naming the file and the question id.

    Example:
    ```python
    document = json.load(open("cmrc2018_dev.json"))
    repairs, free = repair_answer_starts(document, "cmrc2018_dev.json")  # 7, {"DEV_6_QUERY_2": [...], ...}
    ```
    """
    repairs, free = 0, {}
    data = document.get("data", []) if isinstance(document, dict) else document
    for article in data if isinstance(data, list) else []:
        for paragraph in article.get("paragraphs", []) if isinstance(article, dict) else []:
            context = paragraph.get("context") if isinstance(paragraph, dict) else None
            if not isinstance(context, str):
                continue  # the SQuAD reader reports it
            for qa in paragraph.get("qas", []):
                answers = qa.get("answers") if isinstance(qa, dict) else None
                kept = []
                for answer in answers if isinstance(answers, list) else []:
                    text, start = (0, 0) if not isinstance(answer, dict) else (answer.get("text"),
                                                                                answer.get("answer_start"))
                    if not isinstance(text, str) or not isinstance(start, int) or not text:
                        kept.append(answer)  # the SQuAD reader reports it
                        continue
                    if start < 0 and text not in context:
                        free.setdefault(str(qa.get("id")), []).append(text)
                        continue
                    kept.append(answer)
                    if start < 0:
                        answer["answer_start"] = context.index(text)
                        repairs += 1
                        continue
                    if context[start:start + len(text)] == text:
                        continue
                    for moved in [start - k for k in range(1, window + 1)] + [start + k for k in range(1, window + 1)]:
                        if moved >= 0 and context[moved:moved + len(text)] == text:
                            answer["answer_start"] = moved
                            repairs += 1
                            break
                    else:
                        raise AlbertInputError(
                            f"{path}: question {qa.get('id')!r}: answer {text!r} is not within {window} characters of "
                            f"answer_start {start} (context there: {context[start:start + len(text)]!r})"
                        )
                if isinstance(answers, list):
                    qa["answers"] = kept
    return repairs, free


NO_SPAN = "no answer is a span of the context"


def read_cmrc(path, skip_bad_answers=False, training=False):
    """A CMRC 2018 file through `albert_keras.tasks.squad_data.read_squad`, answer starts repaired.

    Answers that are no span (`repair_answer_starts`) follow the span answers of their question
    with `answer_start` -1: scored, never trained on. In a training file a question with no span
    answer at all is left out and counted.

    Returns:
        `(examples, skipped, repairs)`: the `SquadExample`s, `{reason: count}` and the number of
        answers moved.

    Example:
    ```python
    examples, skipped, repairs = read_cmrc("cmrc2018_train.json", training=True)
    ```
    """
    from albert_keras.tasks.squad_data import load_json
    from albert_keras.tasks.squad_data import read_squad

    path = os.fspath(path)
    document = load_json(path)
    repairs, free = repair_answer_starts(document, path)
    examples, _, skipped = read_squad(path, skip_bad_answers=skip_bad_answers, document=document)
    kept = []
    for example in examples:
        extra = [{"text": text, "answer_start": -1} for text in free.get(example.qid, [])]
        if extra and not example.answers:
            if training:
                skipped[NO_SPAN] = skipped.get(NO_SPAN, 0) + 1
                continue
            example.is_impossible = False  # answerable, by text only
        example.answers = example.answers + extra
        kept.append(example)
    if not kept:
        raise AlbertInputError(f"{path}: no questions with an answer in the context")
    return kept, skipped, repairs
