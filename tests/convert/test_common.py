import numpy as np
import pytest

from albert_keras.convert import common
from albert_keras.convert import huggingface
from albert_keras.convert import official
from albert_keras.errors import AlbertInputError
from tests.convert.conftest import random_canonical
from tests.convert.conftest import tiny_config


def test_canonical_names_and_shapes_are_exactly_our_models_variables():
    from albert_keras.modeling.encoder import AlbertEncoder
    from albert_keras.modeling.pretrainer import AlbertPretrainer
    from albert_keras.modeling.task_models import AlbertQuestionAnswerer

    config = tiny_config()
    encoder = AlbertEncoder(config)
    variables = common.model_variables(AlbertPretrainer(encoder))
    shapes = common.canonical_shapes(config)
    assert {name: tuple(v.shape) for name, v in variables.items()} == shapes
    qa = common.model_variables(AlbertQuestionAnswerer(AlbertEncoder(config)))
    assert tuple(qa["task/kernel"].shape) == (32, 2)
    assert "sop/kernel" not in qa


@pytest.mark.parametrize(
    "transform, keras_shape",
    [
        (common.COPY, (3, 5)),
        (common.TRANSPOSE, (3, 5)),
        (common.HEADS_IN, (8, 2, 4)),
        (common.HEADS_BIAS, (2, 4)),
        (common.HEADS_OUT, (2, 4, 8)),
        (common.TRANSPOSE_HEADS_IN, (8, 2, 4)),
        (common.TRANSPOSE_HEADS_OUT, (2, 4, 8)),
    ],
)
def test_transforms_are_exact_inverses(transform, keras_shape):
    keras_value = np.random.default_rng(0).standard_normal(keras_shape).astype(np.float32)
    foreign = transform.from_keras(keras_value, keras_shape)
    assert foreign.shape == transform.foreign_shape(keras_shape)
    np.testing.assert_array_equal(transform.to_keras(foreign, keras_shape), keras_value)


def test_attention_kernel_layout_follows_the_heads():
    # TF1 stores query kernels [H, N*D] with head n in columns n*D:(n+1)*D.
    flat = np.arange(8 * 8, dtype=np.float32).reshape(8, 8)
    split = common.HEADS_IN.to_keras(flat, (8, 2, 4))
    np.testing.assert_array_equal(split[:, 1, :], flat[:, 4:8])


@pytest.mark.parametrize("module", [official, huggingface])
def test_mapping_tables_cover_every_canonical_name_once(module):
    config = tiny_config()
    table = common.expand_rules(module.RULES, config)
    canonical_names = [row[0] for row in table]
    foreign_names = [row[1] for row in table]
    assert sorted(canonical_names) == sorted(common.canonical_shapes(config))
    assert len(set(foreign_names)) == len(foreign_names)


def test_all_problems_are_reported_in_one_error():
    config = tiny_config()
    foreign = common.canonical_to_foreign(random_canonical(config), official.RULES, config)
    del foreign["bert/pooler/dense/bias"]
    del foreign["bert/encoder/transformer/group_1/inner_group_1/LayerNorm_1/gamma"]
    foreign["bert/encoder/transformer/group_0/inner_group_0/ffn_1/intermediate/dense/kernel"] = np.zeros((32, 38))
    foreign["bert/some/stray_variable"] = np.zeros(3)
    foreign["bert/pooler/dense/kernel/adam_m"] = np.zeros((32, 32))
    with pytest.raises(AlbertInputError) as error:
        common.foreign_to_canonical(foreign, official.RULES, config, "ckpt", ignore=official.is_optimizer_variable)
    message = str(error.value)
    assert "\n" not in message
    for name in ("bert/pooler/dense/bias", "group_1/inner_group_1/LayerNorm_1/gamma",
                 "ffn_1/intermediate/dense/kernel [32, 38] (config wants [32, 37])", "bert/some/stray_variable"):
        assert name in message
    assert "adam_m" not in message


def test_a_partly_present_head_is_an_error_but_an_absent_one_is_not():
    config = tiny_config()
    canonical = random_canonical(config)
    foreign = common.canonical_to_foreign(canonical, official.RULES, config)
    no_heads = {k: v for k, v in foreign.items() if not k.startswith("cls/")}
    assert set(common.foreign_to_canonical(no_heads, official.RULES, config, "x")) == {
        n for n in canonical if common.part_of(n) == "encoder"
    }
    partial = dict(no_heads, **{"cls/predictions/output_bias": foreign["cls/predictions/output_bias"]})
    with pytest.raises(AlbertInputError, match="cls/predictions/transform/dense/kernel"):
        common.foreign_to_canonical(partial, official.RULES, config, "x")


def test_assign_weights_lists_every_mismatch():
    from albert_keras.modeling.encoder import AlbertEncoder

    config = tiny_config()
    canonical = random_canonical(config, parts=("encoder",))
    canonical["pooled_dense/bias"] = np.zeros(31, np.float32)
    del canonical["embedding_projection/bias"]
    canonical["extra/weight"] = np.zeros(1, np.float32)
    with pytest.raises(AlbertInputError) as error:
        common.assign_weights(AlbertEncoder(config), canonical, "src")
    for part in ("pooled_dense/bias [31]", "embedding_projection/bias", "extra/weight"):
        assert part in str(error.value)
