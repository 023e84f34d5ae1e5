"""SQuAD 1.1 and 2.0 scores, computed as the official evaluation scripts compute them.

`evaluate` follows "Official evaluation script for SQuAD version 2.0" (evaluate-v2.0.py): answer
normalization (lowercase, drop ASCII punctuation, drop the articles a/an/the, collapse
whitespace), exact match and bag-of-tokens F1, the maximum over gold answers, `[""]` as the gold
of an unanswerable question (and of one whose gold answers all normalize to nothing), the
no-answer threshold on `na_probs`, the `HasAns_*`/`NoAns_*` splits and the best-threshold search.
On a SQuAD 1.1 file (every question answerable) its `exact` and `f1` are what the v1.1 script
calls `exact_match` and `f1`; `evaluate_v1` returns those keys with the v1.1 script's arithmetic.
Scores are percentages (0-100), `*_total` counts, `*_thresh` no-answer probabilities.

Written here rather than imported because the official scripts are stand-alone files, not a
package; the tests check the definitions against hand-computed cases.
"""

import collections
import re
import string

from albert_keras.errors import AlbertInputError

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCTUATION = frozenset(string.punctuation)


def normalize_answer(text):
    """The official normalization: lowercase, no punctuation, no articles, single spaces.

    Args:
        text: an answer string.

    Returns:
        The normalized string (possibly empty).

    Example:
    ```python
    from albert_keras.tasks.squad_metrics import normalize_answer
    normalize_answer("  The Eiffel-Tower! ")  # "eiffeltower"
    ```
    """
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def _tokens(text):
    return normalize_answer(text).split() if text else []


def exact_score(gold, prediction):
    """1 when the normalized strings are equal, else 0.

    Args:
        gold: a gold answer ("" for no answer).
        prediction: the predicted answer ("" for no answer).

    Returns:
        0 or 1.

    Example:
    ```python
    from albert_keras.tasks.squad_metrics import exact_score
    exact_score("the Denver Broncos", "Denver Broncos.")  # 1
    ```
    """
    return int(normalize_answer(gold) == normalize_answer(prediction))


def _overlap_f1(gold_tokens, predicted_tokens):
    """F1 of the bag-of-tokens overlap, as both official scripts compute it (0 when none is shared)."""
    common = collections.Counter(gold_tokens) & collections.Counter(predicted_tokens)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision = same / len(predicted_tokens)
    recall = same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def f1_score(gold, prediction):
    """Token F1 between two answers (bag of normalized tokens), as evaluate-v2.0.py scores it.

    When either side has no tokens (no answer), it is 1 if both have none, else 0.

    Args:
        gold: a gold answer ("" for no answer).
        prediction: the predicted answer.

    Returns:
        A float in [0, 1].

    Example:
    ```python
    from albert_keras.tasks.squad_metrics import f1_score
    f1_score("Denver Broncos", "the Broncos won")  # precision 1/2, recall 1/2: 0.5
    ```
    """
    gold_tokens = _tokens(gold)
    predicted_tokens = _tokens(prediction)
    if not gold_tokens or not predicted_tokens:
        return float(gold_tokens == predicted_tokens)
    return _overlap_f1(gold_tokens, predicted_tokens)


def _questions(dataset):
    """(id, gold answer texts) for every question, checking the fields the scores need."""
    if isinstance(dataset, dict):
        if "data" not in dataset:
            raise AlbertInputError("SQuAD dataset: expected the file's JSON object with a 'data' list, or that list")
        dataset = dataset["data"]
    if not isinstance(dataset, list):
        raise AlbertInputError(f"SQuAD dataset: 'data' must be a list of articles, got {type(dataset).__name__}")
    questions = []
    seen = set()
    for a, article in enumerate(dataset):
        paragraphs = article.get("paragraphs") if isinstance(article, dict) else None
        if not isinstance(paragraphs, list):
            raise AlbertInputError(f"SQuAD dataset: data[{a}] has no 'paragraphs' list")
        for p, paragraph in enumerate(paragraphs):
            qas = paragraph.get("qas") if isinstance(paragraph, dict) else None
            if not isinstance(qas, list):
                raise AlbertInputError(f"SQuAD dataset: data[{a}].paragraphs[{p}] has no 'qas' list")
            for q, qa in enumerate(qas):
                where = f"data[{a}].paragraphs[{p}].qas[{q}]"
                if not isinstance(qa, dict) or "id" not in qa:
                    raise AlbertInputError(f"SQuAD dataset: {where} has no 'id'")
                answers = qa.get("answers")
                if not isinstance(answers, list) or not all(
                    isinstance(x, dict) and isinstance(x.get("text"), str) for x in answers
                ):
                    raise AlbertInputError(
                        f"SQuAD dataset: {where} (id {qa['id']!r}) needs 'answers': a list of {{'text': ...}}"
                    )
                if qa["id"] in seen:
                    raise AlbertInputError(f"SQuAD dataset: {where}: question id {qa['id']!r} appears twice")
                seen.add(qa["id"])
                questions.append((qa["id"], [x["text"] for x in answers]))
    if not questions:
        raise AlbertInputError("SQuAD dataset: no questions to score")
    return questions


def _check_predictions(predictions, questions, missing):
    if not isinstance(predictions, dict):
        raise AlbertInputError(
            f"SQuAD predictions: expected a {{question id: answer text}} object, got {type(predictions).__name__}"
        )
    for qid, text in predictions.items():
        if not isinstance(text, str):
            raise AlbertInputError(
                f"SQuAD predictions: the answer for {qid!r} must be a string, got {type(text).__name__}"
            )
    if missing not in ("error", "zero"):
        raise AlbertInputError(f"SQuAD evaluate: missing must be 'error' or 'zero', got {missing!r}")
    absent = [qid for qid, _ in questions if qid not in predictions]
    if absent and missing == "error":
        shown = ", ".join(repr(qid) for qid in absent[:5])
        raise AlbertInputError(
            f"SQuAD predictions: {len(absent)} of {len(questions)} questions have no prediction "
            f"(first: {shown}); pass missing='zero' to score them 0"
        )


def _best_threshold(predictions, scores, na_probs, has_answer, total):
    # evaluate-v2.0.py's find_best_thresh: start by abstaining everywhere (every unanswerable
    # question right), then answer questions in increasing no-answer probability. Questions
    # without a prediction (missing="zero") stay at 0 whatever the threshold.
    score = sum(1 for qid, has in has_answer.items() if not has and qid in predictions)
    best_score, best_threshold = score, 0.0
    for qid in sorted(na_probs, key=lambda k: na_probs[k]):
        if qid not in scores or qid not in predictions:
            continue
        if has_answer[qid]:
            score += scores[qid]
        elif predictions[qid]:
            score -= 1
        if score > best_score:
            best_score, best_threshold = score, na_probs[qid]
    return 100.0 * best_score / total, float(best_threshold)


def evaluate(dataset, predictions, na_probs=None, na_prob_thresh=1.0, missing="error"):
    """SQuAD scores with the official SQuAD 2.0 evaluation's keys and values.

    Args:
        dataset: the parsed SQuAD JSON (the whole object or its `"data"` list), 1.1 or 2.0.
        predictions: `{question id: predicted answer text}` ("" for no answer), as in
            `predictions.json`.
        na_probs: optional `{question id: no-answer probability}` (`null_odds.json`); a question
            whose probability is above `na_prob_thresh` counts as answered with "", and the
            best threshold is searched (`best_*` keys).
        na_prob_thresh: the no-answer threshold (official default 1.0).
        missing: `"error"` (default) raises `AlbertInputError` naming questions without a
            prediction; `"zero"` scores them 0 (the v1.1 script's rule) and keeps them in `total`.

    Returns:
        A dict: `exact`, `f1`, `total`; `HasAns_exact`, `HasAns_f1`, `HasAns_total` when some
        questions have answers; `NoAns_*` when some have none; with `na_probs` also
        `best_exact`, `best_exact_thresh`, `best_f1`, `best_f1_thresh`.

    Example:
    ```python
    from albert_keras.tasks.squad_metrics import evaluate
    data = [{"paragraphs": [{"context": "...", "qas": [
        {"id": "q1", "answers": [{"text": "Denver Broncos", "answer_start": 0}]},
        {"id": "q2", "answers": []}]}]}]
    evaluate(data, {"q1": "the Denver Broncos", "q2": ""})
    # {"exact": 100.0, "f1": 100.0, "total": 2, "HasAns_exact": 100.0, ..., "NoAns_total": 1}
    ```
    """
    questions = _questions(dataset)
    _check_predictions(predictions, questions, missing)
    has_answer = {qid: bool(answers) for qid, answers in questions}
    exact_raw, f1_raw = {}, {}
    for qid, answers in questions:
        gold = [text for text in answers if normalize_answer(text)] or [""]
        if qid in predictions:
            exact_raw[qid] = max(exact_score(text, predictions[qid]) for text in gold)
            f1_raw[qid] = max(f1_score(text, predictions[qid]) for text in gold)
        else:
            exact_raw[qid] = f1_raw[qid] = 0
    if na_probs is not None:
        if not isinstance(na_probs, dict):
            raise AlbertInputError("SQuAD na_probs: expected a {question id: probability} object")
        absent = [qid for qid in predictions if qid in has_answer and qid not in na_probs]
        if absent:
            raise AlbertInputError(
                f"SQuAD na_probs: no probability for {len(absent)} predicted questions (first: {absent[0]!r})"
            )
        for qid, value in na_probs.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise AlbertInputError(f"SQuAD na_probs: the value for {qid!r} must be a number, got {value!r}")
    thresholded = {}
    for name, raw in (("exact", exact_raw), ("f1", f1_raw)):
        scores = {}
        for qid, value in raw.items():
            if na_probs is not None and qid in predictions and na_probs[qid] > na_prob_thresh:
                value = float(not has_answer[qid])
            scores[qid] = value
        thresholded[name] = scores

    def summary(qids):
        total = len(qids)
        return {
            "exact": 100.0 * sum(thresholded["exact"][k] for k in qids) / total,
            "f1": 100.0 * sum(thresholded["f1"][k] for k in qids) / total,
            "total": total,
        }

    result = summary(list(has_answer))
    for prefix, wanted in (("HasAns", True), ("NoAns", False)):
        qids = [qid for qid, has in has_answer.items() if has == wanted]
        if qids:
            result.update({f"{prefix}_{key}": value for key, value in summary(qids).items()})
    if na_probs is not None:
        total = len(has_answer)
        for name, raw in (("exact", exact_raw), ("f1", f1_raw)):
            best, threshold = _best_threshold(predictions, raw, na_probs, has_answer, total)
            result[f"best_{name}"], result[f"best_{name}_thresh"] = best, threshold
    return result


def _exact_v1(gold, prediction):
    return normalize_answer(prediction) == normalize_answer(gold)


def _f1_v1(gold, prediction):
    # The v1.1 script has no special case for empty answers (v1.1 gold answers are never empty).
    predicted_tokens = normalize_answer(prediction).split()
    gold_tokens = normalize_answer(gold).split()
    return _overlap_f1(gold_tokens, predicted_tokens)


def evaluate_v1(dataset, predictions, missing="zero"):
    """SQuAD 1.1 scores with the v1.1 script's keys: `{"exact_match": ..., "f1": ...}` (0-100).

    The v1.1 script keeps every gold answer (also ones that normalize to "") and scores a
    question without a prediction 0; `missing="error"` raises instead.

    Args:
        dataset: the parsed SQuAD 1.1 JSON (the whole object or its `"data"` list).
        predictions: `{question id: predicted answer text}`.
        missing: `"zero"` (the script's rule, default) or `"error"`.

    Returns:
        `{"exact_match": float, "f1": float}`.

    Example:
    ```python
    from albert_keras.tasks.squad_metrics import evaluate_v1
    data = [{"paragraphs": [{"qas": [{"id": "q1", "answers": [{"text": "Denver Broncos"}]}]}]}]
    evaluate_v1(data, {"q1": "Broncos"})  # {"exact_match": 0.0, "f1": 66.66...}
    ```
    """
    questions = _questions(dataset)
    _check_predictions(predictions, questions, missing)
    exact = f1 = 0.0
    for qid, answers in questions:
        if qid not in predictions:
            continue
        if not answers:
            raise AlbertInputError(
                f"SQuAD 1.1 evaluation: question {qid!r} has no answers (a SQuAD 2.0 file? use evaluate)"
            )
        exact += max(_exact_v1(text, predictions[qid]) for text in answers)
        f1 += max(_f1_v1(text, predictions[qid]) for text in answers)
    return {"exact_match": 100.0 * exact / len(questions), "f1": 100.0 * f1 / len(questions)}
