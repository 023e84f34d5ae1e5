"""Chinese ALBERT end to end on made-up Chinese text: a WordPiece vocabulary, whole-word-masked
pretraining data, pretraining, fine-tuning from raw text, export, and an answer from a process that
imports only `tensorflow` and `tensorflow_text`.

Each stage is the `albert-keras` command that docs/zh/README.md shows (run here through
`albert_keras.cli.main`), except fine-tuning, which is the article's few lines of Keras:

    albert-keras train-tokenizer --type wordpiece --input corpus.txt --output vocab/vocab.txt --vocab-size 400
    albert-keras create-data --input corpus.txt --vocab vocab/vocab.txt --output tfrecords \
        --whole-word-segmenter jieba
    albert-keras pretrain --config albert_config.json --train-files tfrecords --vocab vocab/vocab.txt \
        --output pretrain --dynamic-masking
    (fine-tune AlbertClassifier on raw Chinese reviews)
    albert-keras export --model classifier --output saved_models/zh_sentiment

Nothing is downloaded: the text is built here from a few words, so the model learns the templates
and nothing else. Needs jieba (`pip install 'albert-keras[zh]'`). With the defaults it runs in
about a minute on two CPU cores:

    python examples/chinese.py --output-dir runs/chinese
"""

import argparse
import json
import os
import random
import subprocess
import sys

POSITIVE = ["精彩", "感人", "出色", "好看", "有趣", "温暖"]
NEGATIVE = ["无聊", "糟糕", "乏味", "难看", "拖沓", "失望"]
THINGS = ["电影", "故事", "剧情", "演员", "结局", "音乐", "画面"]
# Everyday sentences for the pretraining corpus, beside the reviews.
TOPICS = ["我们", "今天", "北京", "上海", "天气", "朋友", "公司", "学校", "老师", "学生", "时间", "城市"]
VERBS = ["喜欢", "认为", "知道", "希望", "觉得", "发现"]

# What a serving process runs: tensorflow and tensorflow_text (its ops), nothing else.
QUERY = r"""
import json, sys
import tensorflow as tf
import tensorflow_text  # noqa: F401  (registers the WordPiece and normalization ops)

serve = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
outputs = serve(text=tf.constant(sys.argv[2:]))
labels = [label.decode("utf-8") for label in outputs["labels"].numpy().tolist()]
loaded = sorted(name for name in ("albert_keras", "keras_hub") if name in sys.modules)
print(json.dumps({"labels": labels, "imported": loaded}, ensure_ascii=False))
"""


def made_up_reviews(count, seed, positive_share=0.6):
    """`(texts, labels)`: Chinese movie reviews, `positive_share` of them positive.

    Example:
    ```python
    made_up_reviews(2, seed=0)  # (['这部电影的剧情非常精彩，真的很感人。', ...], ['positive', ...])
    ```
    """
    rng = random.Random(seed)
    texts, labels = [], []
    for _ in range(count):
        positive = rng.random() < positive_share
        words = POSITIVE if positive else NEGATIVE
        texts.append(f"这部{rng.choice(THINGS)}的{rng.choice(THINGS)}非常{rng.choice(words)}，真的很{rng.choice(words)}。")
        labels.append("positive" if positive else "negative")
    return texts, labels


def made_up_corpus(path, documents, seed):
    """A pretraining corpus: documents of everyday sentences and reviews, blank lines between them."""
    rng = random.Random(seed)
    lines = []
    for _ in range(documents):
        reviews, _ = made_up_reviews(rng.randint(1, 3), rng.randrange(1 << 30))
        for _ in range(rng.randint(2, 4)):
            lines.append(f"{rng.choice(TOPICS)}{rng.choice(VERBS)}{rng.choice(TOPICS)}的{rng.choice(THINGS)}。")
        lines += reviews + [""]
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))
    return path


def albert_keras(*argv):
    """Run one `albert-keras` command in this process; an exit status other than 0 stops the example."""
    from albert_keras.cli import main

    argv = [os.fspath(a) for a in argv]
    print("$ albert-keras", " ".join(argv))
    status = main(argv)
    if status:
        raise SystemExit(f"albert-keras {argv[0]} failed with status {status}")


def query(saved_model, texts):
    """Run `QUERY` in a fresh interpreter; returns its answer as a dict."""
    result = subprocess.run([sys.executable, "-c", QUERY, saved_model, *texts], capture_output=True, text=True,
                            encoding="utf-8", env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    if result.returncode:
        raise RuntimeError(f"query failed:\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", default="runs/chinese")
    parser.add_argument("--documents", type=int, default=300, help="pretraining documents")
    parser.add_argument("--pretrain-steps", type=int, default=40)
    parser.add_argument("--pretrain-learning-rate", type=float, default=5e-4,
                        help="higher rates (2e-3) leave this tiny relu model a [CLS] that fine-tuning cannot move")
    parser.add_argument("--examples", type=int, default=256, help="labelled reviews to fine-tune on")
    parser.add_argument("--epochs", type=int, default=8)
    args = parser.parse_args(argv)
    out = args.output_dir
    os.makedirs(out, exist_ok=True)

    corpus = made_up_corpus(os.path.join(out, "corpus.txt"), args.documents, seed=0)
    vocab = os.path.join(out, "vocab", "vocab.txt")
    albert_keras("train-tokenizer", "--type", "wordpiece", "--input", corpus, "--output", vocab, "--vocab-size", "400")
    records = os.path.join(out, "tfrecords")
    albert_keras("create-data", "--input", corpus, "--vocab", vocab, "--output", records, "--whole-word-segmenter",
                 "jieba", "--max-seq-length", "64", "--max-predictions-per-seq", "10", "--dupe-factor", "2",
                 "--num-shards", "2", "--overwrite", "--quiet")
    with open(os.path.join(records, "manifest.json"), encoding="utf-8") as f:
        statistics = json.load(f)["statistics"]
    print(f"whole words masked from {statistics['whole_words_segmented']} jieba words; "
          f"{statistics['instances']} pretraining records")

    from albert_keras import AlbertConfig
    from albert_keras.tokenization import load_vocabulary

    config = AlbertConfig(vocab_size=load_vocabulary(vocab).vocabulary_size(), embedding_size=32, hidden_size=64,
                          num_hidden_layers=2, num_attention_heads=2, intermediate_size=128,
                          hidden_act="relu",  # as Google's albert_*_zh configs
                          hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, max_position_embeddings=64)
    config_path = os.path.join(out, "albert_config.json")
    config.to_json_file(config_path)
    albert_keras("pretrain", "--config", config_path, "--train-files", records, "--vocab", vocab,
                 "--output", os.path.join(out, "pretrain"), "--batch-size", "16", "--num-train-steps",
                 str(args.pretrain_steps), "--warmup", "0.2", "--optimizer", "adamw",
                 "--learning-rate", str(args.pretrain_learning_rate),
                 "--checkpoint-every", str(args.pretrain_steps), "--dynamic-masking", "--quiet")

    # --- the article's example, in Chinese: about ten lines of API -------------------------------
    import keras

    from albert_keras import AlbertClassifier

    train_texts, train_labels = made_up_reviews(args.examples, seed=1)
    dev_texts, dev_labels = made_up_reviews(max(40, args.examples // 4), seed=2)
    classifier = AlbertClassifier.from_pretrained(os.path.join(out, "pretrain", "pretrained"),
                                                  labels=["negative", "positive"], sequence_length=32)
    classifier.compile(optimizer=keras.optimizers.AdamW(1e-3),
                       loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    classifier.fit(train_texts, train_labels, batch_size=16, epochs=args.epochs, verbose=2)
    accuracy = classifier.evaluate(dev_texts, dev_labels, verbose=0, return_dict=True)["accuracy"]
    reviews = ["这部电影的结局非常精彩，真的很感人。", "这部电影的剧情非常无聊，真的很失望。"]
    keras_labels = classifier.predict_labels(reviews)
    # ---------------------------------------------------------------------------------------------

    majority = max(dev_labels.count(label) for label in set(dev_labels)) / len(dev_labels)
    print(f"validation accuracy {accuracy:.3f} on {len(dev_texts)} reviews (majority class: {majority:.3f})")
    classifier_dir = os.path.join(out, "classifier")
    classifier.save_pretrained(classifier_dir)
    saved_models = os.path.join(out, "saved_models", "zh_sentiment")
    albert_keras("export", "--model", classifier_dir, "--output", saved_models, "--overwrite", "--quiet")
    answer = query(os.path.join(saved_models, "1"), reviews)
    for review, label in zip(reviews, answer["labels"]):
        print(f"{review} -> {label}  (served without albert_keras or keras_hub: {not answer['imported']})")
    return {"accuracy": accuracy, "majority": majority, "keras_labels": list(keras_labels),
            "served_labels": answer["labels"], "served_imports": answer["imported"],
            "whole_words_segmented": statistics["whole_words_segmented"]}


if __name__ == "__main__":
    main()
