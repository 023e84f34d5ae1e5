import sys

import numpy as np
import pytest

from albert_keras.errors import AlbertInputError
from tests.representations.conftest import run_cli

TEXT = "The for statement loops over a list."


def test_block_inputs_follow_the_encoders_own_computation(pretrainer_dir):
    from albert_keras.modeling.pretrained import load_encoder
    from albert_keras.representations.attention import block_inputs

    encoder = load_encoder(pretrainer_dir)
    ids = np.array([[2, 20, 30, 40, 3]], np.int32)
    features = {"token_ids": ids, "segment_ids": np.zeros_like(ids), "padding_mask": np.ones_like(ids)}
    states = list(block_inputs(encoder, features))
    assert len(states) == encoder.config.num_hidden_layers + 1
    np.testing.assert_allclose(np.asarray(states[-1][1]), np.asarray(encoder(features)["sequence_output"]),
                               atol=1e-5)


def test_attention_maps_are_probabilities_per_head(pretrainer_dir):
    from albert_keras.representations.attention import attention_maps

    pieces, probabilities = attention_maps(pretrainer_dir, TEXT, layer=0)
    assert pieces[0] == "[CLS]" and pieces[-1] == "[SEP]"
    assert probabilities.shape == (2, len(pieces), len(pieces))
    np.testing.assert_allclose(probabilities.sum(-1), 1.0, rtol=1e-5)
    _, last = attention_maps(pretrainer_dir, TEXT)
    _, minus_one = attention_maps(pretrainer_dir, TEXT, layer=-1)
    np.testing.assert_array_equal(last, minus_one)
    assert not np.allclose(last, probabilities)  # layer 1 sees another hidden state than layer 0
    with pytest.raises(AlbertInputError, match="outside 0..1"):
        attention_maps(pretrainer_dir, TEXT, layer=2)


def test_the_picture_is_a_png_with_one_panel_per_head(pretrainer_dir, tmp_path):
    import matplotlib.image

    from albert_keras.representations.attention import DPI
    from albert_keras.representations.attention import PANEL_INCHES
    from albert_keras.representations.attention import attention_picture
    from albert_keras.representations.attention import grid_shape
    from albert_keras.representations.attention import plot_attention

    output = tmp_path / "attn.png"
    summary = attention_picture(pretrainer_dir, TEXT, output, layer=1)
    assert output.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = matplotlib.image.imread(output)
    side = int(PANEL_INCHES * DPI)
    assert image.shape[:2] == (summary["rows"] * side, summary["columns"] * side) == (side, 2 * side)
    assert summary["panels"] == summary["heads"] == 2
    assert image[..., :3].std() > 0.05  # not a blank canvas
    # Six heads: a 2 x 4 grid with six heatmaps.
    six = plot_attention(["a", "b", "c"], np.full([6, 3, 3], 1 / 3, np.float32), tmp_path / "six.png")
    assert (six["rows"], six["columns"], six["panels"]) == (*grid_shape(6), 6) == (2, 4, 6)
    assert matplotlib.image.imread(tmp_path / "six.png").shape[:2] == (2 * side, 4 * side)


def test_attention_cli_and_missing_matplotlib(pretrainer_dir, tmp_path, monkeypatch):
    code, out, _ = run_cli("attention", "--model", pretrainer_dir, "--text", TEXT, "--output", tmp_path / "a.png",
                           "--layer", "0")
    assert code == 0 and "2 heads" in out and (tmp_path / "a.png").stat().st_size > 1000
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now raises ImportError
    code, _, err = run_cli("attention", "--model", pretrainer_dir, "--text", TEXT, "--output", tmp_path / "b.png")
    assert code == 2 and "pip install" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "b.png").exists()
