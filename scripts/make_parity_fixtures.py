"""Write the small parity fixtures in `tests/convert/fixtures/` (run by hand, not in CI).

It needs torch, transformers (< 5, for `load_tf_weights_in_albert`), safetensors and tensorflow,
none of which the tests need:

    python3 -m venv /tmp/hfvenv
    /tmp/hfvenv/bin/pip install torch==2.13.0 "transformers<5" safetensors numpy tensorflow==2.21.0
    /tmp/hfvenv/bin/python scripts/make_parity_fixtures.py

Fixtures (all float32, under 2 MB together):

* `hf_tiny/`: a random-weight Hugging Face `AlbertForPreTraining` (2 groups x 2 inner groups,
  E != H, `hidden_act="gelu_new"`) saved with `save_pretrained` (config.json + model.safetensors),
  and `expected.npz` with its inputs and outputs.
* `official_tiny/`: a TF1 checkpoint with the official variable names (`bert/...`, `cls/...`, a few
  optimizer slots and `global_step`), written by a TF1 `Saver`, its `albert_config.json`, and in
  `expected.npz` the outputs Hugging Face computes after loading it with its own
  `load_tf_weights_in_albert`.

`expected.npz` keys: `input_ids`, `token_type_ids`, `attention_mask` (int32 [B,T]) and
`sequence_output` [B,T,H], `pooled_output` [B,H], `mlm_logits` [B,T,V] (every position),
`sop_logits` [B,2]. Positions where `attention_mask` is 0 differ between implementations (each uses
its own large negative mask value); compare real positions only.

Activation names: Hugging Face's `"gelu"` is the exact erf form and its `"gelu_new"` the tanh form that
ALBERT uses. The official `albert_config.json` says `"gelu"` and means tanh, so the script tells
Hugging Face `"gelu_new"` when it reads that file.
"""

import argparse
import json
import os
import shutil
import tempfile

import numpy as np

SEED = 1234
BATCH, LENGTH = 2, 12


def tiny_config(**overrides):
    config = dict(
        vocab_size=100,
        embedding_size=16,
        hidden_size=32,
        num_hidden_layers=4,
        num_hidden_groups=2,
        num_attention_heads=2,
        intermediate_size=37,
        inner_group_num=2,
        hidden_act="gelu",  # Official meaning: tanh GELU.
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        max_position_embeddings=64,
        type_vocab_size=2,
        initializer_range=0.02,
    )
    config.update(overrides)
    return config


def make_inputs(rng, vocab_size):
    input_ids = rng.integers(5, vocab_size, size=(BATCH, LENGTH)).astype(np.int32)
    input_ids[:, 0] = 2  # [CLS]
    token_type_ids = np.zeros((BATCH, LENGTH), np.int32)
    attention_mask = np.ones((BATCH, LENGTH), np.int32)
    # Row 0: [CLS] a a a a [SEP] b b b b b [SEP]; row 1 is padded after 8 tokens.
    input_ids[0, 5] = input_ids[0, 11] = 3
    token_type_ids[0, 6:] = 1
    input_ids[1, 4] = input_ids[1, 7] = 3
    token_type_ids[1, 5:8] = 1
    input_ids[1, 8:] = 0
    attention_mask[1, 8:] = 0
    return dict(input_ids=input_ids, token_type_ids=token_type_ids, attention_mask=attention_mask)


def hf_outputs(model, inputs):
    import torch

    model.eval()
    with torch.no_grad():
        tensors = {k: torch.from_numpy(v.astype(np.int64)) for k, v in inputs.items()}
        base = model.albert(**tensors)
        out = model(**tensors)
    return dict(
        sequence_output=base.last_hidden_state.numpy(),
        pooled_output=base.pooler_output.numpy(),
        mlm_logits=out.prediction_logits.numpy(),
        sop_logits=out.sop_logits.numpy(),
        **inputs,
    )


def hf_config(official):
    import transformers

    values = dict(official)
    values["hidden_act"] = {"gelu": "gelu_new", "gelu_exact": "gelu"}.get(values["hidden_act"], values["hidden_act"])
    return transformers.AlbertConfig(**values, layer_norm_eps=1e-12, classifier_dropout_prob=0.1)


def make_hf_fixture(directory):
    """Random-weight `AlbertForPreTraining`: every parameter random, LayerNorms included."""
    import torch
    import transformers

    torch.manual_seed(SEED)
    config = hf_config(tiny_config())
    config._attn_implementation = "eager"
    model = transformers.AlbertForPreTraining(config)
    generator = torch.Generator().manual_seed(SEED)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            noise = torch.randn(parameter.shape, generator=generator)
            if "LayerNorm" in name and name.endswith("weight"):
                parameter.copy_(1.0 + 0.1 * noise)
            else:
                parameter.copy_(0.2 * noise)
    model.save_pretrained(directory, safe_serialization=True)
    inputs = make_inputs(np.random.default_rng(SEED), config.vocab_size)
    np.savez_compressed(os.path.join(directory, "expected.npz"), **hf_outputs(model, inputs))


def official_variables(config, rng):
    """Random arrays under the official TF1 names and shapes (google-research/albert modeling.py)."""
    V, E, H = config["vocab_size"], config["embedding_size"], config["hidden_size"]
    I = config["intermediate_size"]

    def rand(*shape, scale=0.2):
        return (scale * rng.standard_normal(shape)).astype(np.float32)

    def layer_norm(prefix, width):
        return {prefix + "/gamma": 1.0 + rand(width, scale=0.1), prefix + "/beta": rand(width)}

    variables = {
        "bert/embeddings/word_embeddings": rand(V, E),
        "bert/embeddings/token_type_embeddings": rand(config["type_vocab_size"], E),
        "bert/embeddings/position_embeddings": rand(config["max_position_embeddings"], E),
        **layer_norm("bert/embeddings/LayerNorm", E),
        "bert/encoder/embedding_hidden_mapping_in/kernel": rand(E, H),
        "bert/encoder/embedding_hidden_mapping_in/bias": rand(H),
    }
    for g in range(config["num_hidden_groups"]):
        for i in range(config["inner_group_num"]):
            block = f"bert/encoder/transformer/group_{g}/inner_group_{i}/"
            for proj in ("query", "key", "value"):
                variables[f"{block}attention_1/self/{proj}/kernel"] = rand(H, H)
                variables[f"{block}attention_1/self/{proj}/bias"] = rand(H)
            variables[f"{block}attention_1/output/dense/kernel"] = rand(H, H)
            variables[f"{block}attention_1/output/dense/bias"] = rand(H)
            variables.update(layer_norm(f"{block}LayerNorm", H))
            variables[f"{block}ffn_1/intermediate/dense/kernel"] = rand(H, I)
            variables[f"{block}ffn_1/intermediate/dense/bias"] = rand(I)
            variables[f"{block}ffn_1/intermediate/output/dense/kernel"] = rand(I, H)
            variables[f"{block}ffn_1/intermediate/output/dense/bias"] = rand(H)
            variables.update(layer_norm(f"{block}LayerNorm_1", H))
    variables.update(
        {
            "bert/pooler/dense/kernel": rand(H, H),
            "bert/pooler/dense/bias": rand(H),
            "cls/predictions/transform/dense/kernel": rand(H, E),
            "cls/predictions/transform/dense/bias": rand(E),
            **layer_norm("cls/predictions/transform/LayerNorm", E),
            "cls/predictions/output_bias": rand(V),
            "cls/seq_relationship/output_weights": rand(2, H),
            "cls/seq_relationship/output_bias": rand(2),
        }
    )
    return variables


def write_tf1_checkpoint(variables, prefix, slots=()):
    """A name-based TF1 checkpoint, as `tf.compat.v1.train.Saver` writes for the official code."""
    import tensorflow as tf

    graph = tf.Graph()
    with graph.as_default():
        tf_vars = [tf.compat.v1.Variable(value, name=name) for name, value in variables.items()]
        for name in slots:  # Optimizer slots, as LAMB/AdamW leave them in released checkpoints.
            for slot in ("adam_m", "adam_v"):
                tf_vars.append(tf.compat.v1.Variable(np.zeros_like(variables[name]), name=f"{name}/{slot}"))
        tf_vars.append(tf.compat.v1.Variable(np.int64(125000), name="global_step"))
        saver = tf.compat.v1.train.Saver(tf_vars)
        with tf.compat.v1.Session(graph=graph) as session:
            session.run(tf.compat.v1.global_variables_initializer())
            saver.save(session, prefix, write_meta_graph=False, write_state=False)


def make_official_fixture(directory):
    import torch
    import transformers

    config = tiny_config(num_hidden_layers=6, num_hidden_groups=3, inner_group_num=2)
    with open(os.path.join(directory, "albert_config.json"), "w") as f:
        json.dump(config, f, indent=2)
    rng = np.random.default_rng(SEED + 1)
    variables = official_variables(config, rng)
    prefix = os.path.join(directory, "model.ckpt-best")
    write_tf1_checkpoint(
        variables, prefix, slots=("bert/pooler/dense/kernel", "cls/predictions/output_bias")
    )

    model = transformers.AlbertForPreTraining(hf_config(config))
    with torch.no_grad():  # NaN everywhere first: a parameter the loader misses cannot hide.
        for parameter in model.parameters():
            parameter.fill_(float("nan"))
    transformers.load_tf_weights_in_albert(model, model.config, prefix)
    missed = [n for n, p in model.named_parameters() if torch.isnan(p).any()]
    if missed:
        raise SystemExit(f"load_tf_weights_in_albert left parameters unset: {missed}")
    inputs = make_inputs(np.random.default_rng(SEED + 2), config["vocab_size"])
    np.savez_compressed(os.path.join(directory, "expected.npz"), **hf_outputs(model, inputs))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "convert", "fixtures")
    parser.add_argument("--output", default=os.path.normpath(default))
    args = parser.parse_args()
    for name, make in (("hf_tiny", make_hf_fixture), ("official_tiny", make_official_fixture)):
        final = os.path.join(args.output, name)
        tmp = tempfile.mkdtemp(prefix=f".{name}.", dir=os.path.dirname(final) if os.path.isdir(os.path.dirname(final)) else None)
        make(tmp)
        if os.path.exists(final):
            shutil.rmtree(final)
        os.makedirs(os.path.dirname(final), exist_ok=True)
        shutil.move(tmp, final)
        os.chmod(final, 0o755)  # mkdtemp makes 0700 directories.
        for file in os.listdir(final):
            os.chmod(os.path.join(final, file), 0o644)
        size = sum(os.path.getsize(os.path.join(final, f)) for f in os.listdir(final))
        print(f"{final}: {sorted(os.listdir(final))} ({size / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
