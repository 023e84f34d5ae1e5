"""Convert a Hugging Face ALBERT checkpoint to a pretrained directory, then use it.

Reads `config.json` plus `model.safetensors` (or `pytorch_model.bin`) from a local directory; the
default is the tiny random `AlbertForPreTraining` fixture in the tests, which also stores what
`transformers` computed on two id sequences, so the converted model can be checked against it.

    python examples/convert_huggingface.py --source path/to/albert-base-v2 --output runs/albert_base_v2

With a real checkpoint (one with `spiece.model`), it also embeds two sentences and compares them.
"""

import argparse
import os

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURE = os.path.join(HERE, os.pardir, "tests", "convert", "fixtures", "hf_tiny")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default=FIXTURE, help="a local Hugging Face ALBERT directory")
    parser.add_argument("--output", default="runs/converted_hf")
    args = parser.parse_args(argv)

    from albert_keras.convert.dispatch import convert_from
    from albert_keras.modeling.pretrained import load_pretrained
    from albert_keras.modeling.pretrained import spm_model_path

    convert_from("huggingface", args.source, args.output, overwrite=True)
    model = load_pretrained(args.output)
    encoder = getattr(model, "encoder", model)
    print(f"converted {args.source} -> {args.output}: {type(model).__name__}, "
          f"{encoder.count_params():,} encoder parameters")
    result = {"model": model}

    expected_path = os.path.join(args.source, "expected.npz")
    if os.path.exists(expected_path):  # the fixture: compare with what transformers computed
        expected = np.load(expected_path)
        outputs = encoder({"token_ids": expected["input_ids"], "segment_ids": expected["token_type_ids"],
                           "padding_mask": expected["attention_mask"]})
        real = expected["attention_mask"].astype(bool)
        diff = float(np.max(np.abs(np.asarray(outputs["sequence_output"])[real] - expected["sequence_output"][real])))
        print(f"max |ours - transformers| on the sequence output: {diff:.2e}")
        result["max_diff"] = diff

    if spm_model_path(args.output):  # a real checkpoint with its vocabulary: embed sentences
        from albert_keras.tokenization import AlbertTokenizer

        tokenizer = AlbertTokenizer(spm_model_path(args.output), sequence_length=64)
        texts = ["A list is a mutable sequence.", "Tuples are immutable sequences."]
        features = tokenizer(texts)
        sequence = np.asarray(encoder(features)["sequence_output"])
        mask = np.asarray(features["padding_mask"], "float32")[..., None]
        vectors = (sequence * mask).sum(1) / mask.sum(1)  # mean over real tokens
        vectors /= np.linalg.norm(vectors, axis=-1, keepdims=True)
        print(f"cosine({texts[0]!r}, {texts[1]!r}) = {float(vectors[0] @ vectors[1]):.3f}")
    return result


if __name__ == "__main__":
    main()
