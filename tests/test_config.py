import json

import pytest

from albert_keras.config import PRESETS, AlbertConfig
from albert_keras.errors import AlbertInputError


def test_presets_cover_the_eight_released_models():
    assert sorted(PRESETS) == sorted(
        f"albert-{size}-{version}" for size in ("base", "large", "xlarge", "xxlarge") for version in ("v1", "v2")
    )
    assert AlbertConfig.from_preset("albert-base-v1").hidden_dropout_prob == 0.1
    assert AlbertConfig.from_preset("albert-xxlarge-v1").hidden_dropout_prob == 0.0
    assert AlbertConfig.from_preset("albert-large-v2").attention_probs_dropout_prob == 0.0
    xlarge = AlbertConfig.from_preset("albert-xlarge-v2")
    assert (xlarge.hidden_size, xlarge.num_attention_heads, xlarge.head_size) == (2048, 16, 128)


def test_json_round_trip_and_ignored_release_keys(tmp_path):
    released = dict(PRESETS["albert-xxlarge-v2"], net_structure_type=0, gap_size=0, num_memory_blocks=0,
                    down_scale_factor=1, layers_to_keep=[])
    path = tmp_path / "albert_config.json"
    path.write_text(json.dumps(released))
    config = AlbertConfig.from_json_file(path)
    assert config == AlbertConfig.from_preset("albert-xxlarge-v2")
    config.to_json_file(tmp_path / "out.json")
    assert AlbertConfig.from_json_file(tmp_path / "out.json") == config
    assert set(json.loads((tmp_path / "out.json").read_text())) == set(PRESETS["albert-base-v2"])


def test_group_of_layer_follows_the_official_formula():
    config = AlbertConfig.from_preset("albert-base-v2", num_hidden_groups=3)
    assert [config.group_of_layer(l) for l in range(12)] == [0] * 4 + [1] * 4 + [2] * 4


def test_resolve_accepts_presets_files_and_directories(tmp_path):
    config = AlbertConfig.from_preset("albert-base-v2", vocab_size=123)
    config.to_json_file(tmp_path / "albert_config.json")
    assert AlbertConfig.resolve(tmp_path).vocab_size == 123
    assert AlbertConfig.resolve(str(tmp_path / "albert_config.json")).vocab_size == 123
    assert AlbertConfig.resolve("albert-large-v1").num_hidden_layers == 24
    with pytest.raises(AlbertInputError, match="neither a preset"):
        AlbertConfig.resolve("albert-huge")


def _write(tmp_path, values):
    path = tmp_path / "albert_config.json"
    path.write_text(json.dumps(values))
    return path


@pytest.mark.parametrize(
    "change, message",
    [
        ({"hidden_size": None}, "missing key 'hidden_size'"),
        ({"num_hidden_layers": "12"}, "key 'num_hidden_layers' must be an integer"),
        ({"vocab_size": 0}, "key 'vocab_size' must be positive"),
        ({"hidden_size": 770}, "key 'hidden_size' \\(770\\) must be divisible by 'num_attention_heads' \\(12\\)"),
        ({"num_hidden_groups": 5}, "key 'num_hidden_layers' \\(12\\) must be divisible by 'num_hidden_groups' \\(5\\)"),
        ({"hidden_act": "swishy"}, "key 'hidden_act' is 'swishy'"),
        ({"hidden_dropout_prob": 1.5}, "key 'hidden_dropout_prob' must be in"),
        ({"initializer_range": "x"}, "key 'initializer_range' must be a number"),
        ({"hiden_size": 3}, "unknown key 'hiden_size'"),
    ],
)
def test_bad_configs_name_the_key_and_the_file(tmp_path, change, message):
    values = dict(PRESETS["albert-base-v2"])
    for key, value in change.items():
        if value is None:
            del values[key]
        else:
            values[key] = value
    path = _write(tmp_path, values)
    with pytest.raises(AlbertInputError, match=message) as error:
        AlbertConfig.from_json_file(path)
    assert str(path) in str(error.value)
    assert "\n" not in str(error.value)


def test_unreadable_json_names_the_file_and_position(tmp_path):
    path = tmp_path / "albert_config.json"
    path.write_text('{"vocab_size": 30000,\n "hidden_size": }')
    with pytest.raises(AlbertInputError, match=r"invalid JSON at line 2"):
        AlbertConfig.from_json_file(path)
    with pytest.raises(AlbertInputError, match="config file not found"):
        AlbertConfig.from_json_file(tmp_path / "missing.json")
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(AlbertInputError, match="not UTF-8"):
        AlbertConfig.from_json_file(path)
