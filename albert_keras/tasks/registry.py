"""The fine-tuning tasks by `--task` name, each a `FinetuneTask` imported on first use."""

import importlib

from albert_keras.errors import AlbertInputError

# name -> "module:attribute" of a `FinetuneTask` subclass. One line per task family.
TASKS = {
    "classification": "albert_keras.tasks.classification:ClassificationTask",
    "regression": "albert_keras.tasks.classification:RegressionTask",
    "multiple-choice": "albert_keras.tasks.classification:MultipleChoiceTask",
    "sentence-embedding": "albert_keras.tasks.embedding:SentenceEmbeddingTask",
    "question-answering": "albert_keras.tasks.squad:QuestionAnsweringTask",
    "token-classification": "albert_keras.tasks.tagging:TokenClassificationTask",
    "intent-slots": "albert_keras.tasks.intent_slots:IntentSlotTask",
    "translation": "albert_keras.tasks.translation:TranslationTask",
    "response-selection": "albert_keras.tasks.response_selection:ResponseSelectionTask",
}


def task_names():
    """The registered `--task` names, sorted."""
    return sorted(TASKS)


def get_task(name):
    """An instance of the `FinetuneTask` registered as `name`.

    Example:
    ```python
    task = get_task("classification")
    ```
    """
    if name not in TASKS:
        raise AlbertInputError(f"--task: unknown {name!r}; choose one of {', '.join(task_names())}")
    module_name, attribute = TASKS[name].split(":")
    return getattr(importlib.import_module(module_name), attribute)()
