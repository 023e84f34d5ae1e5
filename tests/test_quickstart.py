import json
import os
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_quickstart_runs_every_stage_on_the_embedded_corpus(tmp_path):
    """The README's main command, shrunk: every stage runs and the SavedModel answers raw text."""
    output = tmp_path / "quickstart"
    command = [sys.executable, "-m", "albert_keras", "quickstart", "--output-dir", str(output),
               "--vocab-size", "1000", "--max-seq-length", "64", "--dupe-factor", "1",
               "--num-train-steps", "4", "--global-batch-size", "8"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout[result.stdout.index("{"):])
    assert summary["pretraining"]["step"] == 4
    assert summary["instances"] > 100
    for key in ("spm_model", "pretrained_dir", "saved_model"):
        assert os.path.exists(summary[key]), key

    check = (
        "import sys, tensorflow as tf, tensorflow_text, numpy as np\n"
        f"m = tf.saved_model.load({summary['saved_model']!r})\n"
        "out = m.signatures['serving_default'](text=tf.constant(['Lists are mutable sequences.', '']))\n"
        "assert all(np.isfinite(v.numpy()).all() for v in out.values()), out\n"
        "# `import tensorflow` itself imports keras when installed; our code and keras-hub must stay out.\n"
        "assert not any(name in sys.modules for name in ('keras_hub', 'albert_keras'))\n"
        "print(sorted(out))\n"
    )
    loaded = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, timeout=300)
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    assert "pooled_output" in loaded.stdout
