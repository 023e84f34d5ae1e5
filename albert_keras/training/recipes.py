"""`finetune --recipe NAME`: the ALBERT paper's per-task GLUE fine-tuning settings.

Source: google-research/ALBERT, `run_glue.sh` (commit 557c37b), whose `run_task` lines give, per
task, `--warmup_step`, `--learning_rate`, `--train_step` and `--train_batch_size` (with
`--optimizer=adamw --max_seq_length=512` for all):

    run_task SST-2 1256 1e-5 20935 100 32
    run_task MNLI  1000 3e-5 10000 100 128
    run_task CoLA   320 1e-5  5336 100 16
    run_task QNLI  1986 1e-5 33112 200 32
    run_task QQP   1000 5e-5 14000 100 128
    run_task RTE    200 3e-5   800 100 32
    run_task STS-B  214 2e-5  3598 100 16
    run_task MRPC   200 2e-5   800 100 32

Dropout is the official classifier's 0.1 on the pooled output (`run_classifier.py` /
`classifier_utils.py`), which is also this package's classifier head default; the recipe records
it. The official 512-token sequence length is not part of a recipe (this package's default 128 is
the common choice; `--max-seq-length 512` gives the official one). Explicit flags override a recipe.
"""

from albert_keras.errors import AlbertInputError

SOURCE = "google-research/ALBERT run_glue.sh"
# name: (warmup steps, learning rate, train steps, batch), exactly as run_glue.sh's run_task lines.
_RUN_GLUE = {
    "sst-2": (1256, 1e-5, 20935, 32),
    "mnli": (1000, 3e-5, 10000, 128),
    "cola": (320, 1e-5, 5336, 16),
    "qnli": (1986, 1e-5, 33112, 32),
    "qqp": (1000, 5e-5, 14000, 128),
    "rte": (200, 3e-5, 800, 32),
    "sts-b": (214, 2e-5, 3598, 16),
    "mrpc": (200, 2e-5, 800, 32),
}
CLASSIFIER_DROPOUT = 0.1
RECIPES = {
    name: {"num_warmup_steps": warmup, "learning_rate": rate, "num_train_steps": steps, "global_batch_size": batch,
           "optimizer": "adamw", "dropout": CLASSIFIER_DROPOUT}
    for name, (warmup, rate, steps, batch) in _RUN_GLUE.items()
}


def recipe_names():
    """The `--recipe` choices, sorted.

    Example:
    ```python
    recipe_names()  # ["cola", "mnli", "mrpc", "qnli", "qqp", "rte", "sst-2", "sts-b"]
    ```
    """
    return sorted(RECIPES)


def get_recipe(name):
    """One recipe's settings as `TrainingSettings` field names (plus `dropout`, informational), a fresh dict.

    Args:
        name: a GLUE task name, any case, `SST2` or `sst-2` alike.

    Raises:
        AlbertInputError: an unknown name, listing the known ones.

    Example:
    ```python
    get_recipe("RTE")
    # {"num_warmup_steps": 200, "learning_rate": 3e-05, "num_train_steps": 800, "global_batch_size": 32,
    #  "optimizer": "adamw", "dropout": 0.1}
    ```
    """
    key = str(name).lower().replace("_", "-")
    key = {"sst2": "sst-2", "stsb": "sts-b"}.get(key, key)
    if key not in RECIPES:
        raise AlbertInputError(f"--recipe {name}: unknown; the recipes ({SOURCE}) are {', '.join(recipe_names())}")
    return dict(RECIPES[key])
