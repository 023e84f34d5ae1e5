"""Chinese pretraining data: a WordPiece vocabulary, the official word-start rule, whole-word masking with jieba."""

import json
import os
import random
import sys

import numpy as np
import pytest

from albert_keras.errors import AlbertInputError
from tests.data.conftest import parse_records

WORDS = ("我们", "今天", "北京", "天气", "非常", "喜欢", "学习", "中国", "电影", "音乐", "朋友", "公司", "工作",
         "时间", "问题", "上海", "大学", "老师", "学生", "医院")
SINGLE = ("的", "了", "很", "也", "在", "是", "和", "去", "看", "好")


def chinese_corpus(path, documents=40, seed=0):
    """Documents of made-up sentences (blank line between documents) built from common words."""
    rng = random.Random(seed)
    lines = []
    for _ in range(documents):
        for _ in range(rng.randint(3, 6)):
            parts = [rng.choice(WORDS) if rng.random() < 0.7 else rng.choice(SINGLE) for _ in range(rng.randint(4, 9))]
            lines.append("".join(parts) + "。")
        lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def zh_setup(tmp_path_factory):
    from albert_keras.tokenization.wordpiece_training import train_wordpiece

    root = tmp_path_factory.mktemp("zh_data")
    corpus = chinese_corpus(root / "corpus.txt")
    vocab = train_wordpiece([str(corpus)], root / "vocab.txt", vocab_size=300)
    return corpus, vocab, root


def _create(corpus, vocab, output, **kwargs):
    from albert_keras.data.create import create_pretraining_data

    return create_pretraining_data([str(corpus)], str(vocab), str(output), max_seq_length=32,
                                   max_predictions_per_seq=6, dupe_factor=2, seed=3, **kwargs)


def _words(segment_ids, boundary, mask):
    """The masking groups of one record, as position sets: the official candidate grouping (every
    position but [CLS] and the two [SEP]s; a group starts at a word-start position)."""
    length = int(mask.sum())
    middle_sep = int(np.flatnonzero(segment_ids[:length] == 0)[-1])
    groups = []
    for p in range(1, length - 1):
        if p == middle_sep:
            continue
        if boundary[p] or not groups:
            groups.append({p})
        else:
            groups[-1].add(p)
    return groups

def test_whole_word_masking_masks_segmented_words_whole_and_stores_plain_ids(zh_setup, tmp_path):
    pytest.importorskip("jieba")
    from albert_keras.tokenization.vocabulary import load_vocabulary

    corpus, vocab_path, _ = zh_setup
    vocabulary = load_vocabulary(vocab_path)
    marked_ids = {i for i, t in enumerate(vocabulary.tokens()) if t.startswith("##")}
    per_char = _create(corpus, vocab_path, tmp_path / "per_char")
    wwm = _create(corpus, vocab_path, tmp_path / "wwm", whole_word_segmenter="jieba")
    assert wwm["settings"]["whole_word_segmenter"] == "jieba"
    assert "whole_word_segmenter" not in per_char["settings"]
    assert wwm["statistics"]["whole_words_segmented"] > 100
    assert per_char["statistics"]["whole_words_segmented"] == 0
    assert wwm["vocabulary"]["kind"] == "wordpiece" and wwm["vocabulary"]["special_ids"]["cls"] == 101

    plain = parse_records(tmp_path / "per_char", 32, 6)
    records = parse_records(tmp_path / "wwm", 32, 6)
    # The official WordPiece rule: every Chinese character starts a word; with jieba, word continuations do not.
    for p in range(len(plain["input_ids"])):
        length = int(plain["input_mask"][p].sum())
        assert plain["token_boundary"][p][:length].all()
    continued = 0
    two_char_masked = 0
    for r in range(len(records["input_ids"])):
        ids, boundary, mask = records["input_ids"][r], records["token_boundary"][r], records["input_mask"][r]
        positions = {int(p) for p, w in zip(records["masked_lm_positions"][r], records["masked_lm_weights"][r]) if w}
        # Inputs and labels hold the plain (unmarked) ids; only a random replacement may draw a "##" id.
        unmasked = {int(i) for p, i in enumerate(ids) if p not in positions}
        assert not (unmasked | set(records["masked_lm_ids"][r].tolist())) & marked_ids
        for span in _words(records["segment_ids"][r], boundary, mask):
            assert not (span & positions) or span <= positions, (r, span)  # a word is masked whole or not
            continued += len(span) - 1
            two_char_masked += len(span) > 1 and span <= positions
    assert continued > 0 and two_char_masked > 0


def test_dynamic_masking_reads_the_wordpiece_special_ids_from_the_manifest(zh_setup, tmp_path):
    from albert_keras.data.batches import global_batches
    from albert_keras.data.batches import match_files

    corpus, vocab_path, _ = zh_setup
    manifest = _create(corpus, vocab_path, tmp_path / "records")
    vocab_size = manifest["vocabulary"]["vocab_size"]
    files = match_files(str(tmp_path / "records" / "part-*"))
    batch = next(iter(global_batches(files, 8, 32, 6, dynamic_masking=True, vocab_size=vocab_size)))
    ids = batch["input_ids"].numpy()
    weights = batch["masked_lm_weights"].numpy()
    masked = np.take_along_axis(ids, batch["masked_lm_positions"].numpy(), axis=1)[weights > 0]
    assert (ids[:, 0] == 101).all()  # [CLS] of the BERT layout: not ALBERT's SentencePiece 2
    assert 103 in masked  # [MASK] = 103 here
    replaced = set(masked.tolist()) - {103} - set(batch["masked_lm_ids"].numpy()[weights > 0].tolist())
    assert not {i for i in replaced if i < 104}  # random replacements never draw a special or [unused] id


def test_bad_segmenter_settings_are_one_line_errors_and_write_nothing(zh_setup, spm_model_path, tmp_path):
    corpus, vocab_path, _ = zh_setup
    with pytest.raises(AlbertInputError, match="needs a WordPiece vocabulary"):
        _create(corpus, spm_model_path, tmp_path / "a", whole_word_segmenter="jieba")
    with pytest.raises(AlbertInputError, match="'ltp' is not supported"):
        _create(corpus, vocab_path, tmp_path / "b", whole_word_segmenter="ltp")
    assert not os.path.exists(tmp_path / "a") and not os.path.exists(tmp_path / "b")
    bad = tmp_path / "bad.txt"
    bad.write_text("hello\nworld\n")
    with pytest.raises(AlbertInputError, match="neither"):
        _create(corpus, bad, tmp_path / "c")
    assert not os.path.exists(tmp_path / "c")
    json.dumps(_create(corpus, vocab_path, tmp_path / "ok"))  # the manifest is JSON


def jieba_reference(corpus, vocab_path, path):
    """A Hugging Face `run_chinese_ref.py`-style file made with jieba in place of LTP: per non-blank
    line, the token positions ([CLS] at 0) of the Chinese characters that continue a word."""
    import jieba

    from albert_keras.tokenization.vocabulary import load_vocabulary

    vocabulary = load_vocabulary(vocab_path)
    lines = []
    for line in corpus.read_text(encoding="utf-8").split("\n"):
        if not line.strip():
            continue
        _, starts, _ = vocabulary.encode_with_offsets(line)
        token_at = {start: i for i, start in enumerate(starts)}
        positions = [token_at[c] + 1 for _, s, e in jieba.tokenize(line) if e - s > 1 for c in range(s + 1, e)
                     if c in token_at]
        lines.append(json.dumps(sorted(positions)))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _shards(directory):
    names = sorted(n for n in os.listdir(directory) if n.startswith("part-"))
    return [open(os.path.join(directory, n), "rb").read() for n in names]


def test_chinese_ref_made_from_jieba_gives_the_jieba_records_for_any_worker_count(zh_setup, tmp_path):
    pytest.importorskip("jieba")
    corpus, vocab_path, _ = zh_setup
    reference = jieba_reference(corpus, vocab_path, tmp_path / "ref.txt")
    wwm = _create(corpus, vocab_path, tmp_path / "jieba", whole_word_segmenter="jieba")
    one = _create(corpus, vocab_path, tmp_path / "ref1", chinese_ref=[str(reference)])
    two = _create(corpus, vocab_path, tmp_path / "ref2", chinese_ref=str(reference), workers=2, chunk_bytes=300)
    assert one["settings"]["chinese_ref"] == [str(reference)]
    assert one["statistics"]["whole_words_segmented"] == wwm["statistics"]["whole_words_segmented"] > 100
    assert one["statistics"]["chinese_ref_rejected_positions"] == 0
    # The same segmentation from a file or from jieba: the same records; and for 1 or 2 workers.
    assert _shards(tmp_path / "ref1") == _shards(tmp_path / "jieba") == _shards(tmp_path / "ref2")
    # Paragraph input: a line's positions run over all its sentences' tokens (every character here
    # is in the vocabulary, so no position falls back).
    paragraphs = tmp_path / "paragraphs.txt"
    paragraphs.write_text("我们今天去北京. It was GREAT. 朋友很喜欢上海。\n\n今天天气非常好。\n", encoding="utf-8")
    paragraph_ref = jieba_reference(paragraphs, vocab_path, tmp_path / "paragraphs_ref.txt")
    for name, extra in (("p_jieba", {"whole_word_segmenter": "jieba"}), ("p_ref", {"chinese_ref": paragraph_ref})):
        made = _create(paragraphs, vocab_path, tmp_path / name, input_format="paragraphs", **extra)
        assert made["statistics"]["chinese_ref_rejected_positions"] == 0
    assert _shards(tmp_path / "p_ref") == _shards(tmp_path / "p_jieba")
    again = _create(corpus, vocab_path, tmp_path / "ref1", chinese_ref=[str(reference)])
    assert again == one  # up to date: a rerun does nothing
    reference.write_text(reference.read_text(encoding="utf-8").replace("[", "[1, ", 1), encoding="utf-8")
    with pytest.raises(AlbertInputError, match="made with other inputs"):  # an edited reference is new data
        _create(corpus, vocab_path, tmp_path / "ref1", chinese_ref=[str(reference)])


def test_chinese_ref_positions_that_disagree_with_the_tokens_fall_back_per_character(zh_setup, tmp_path):
    from albert_keras.tokenization.vocabulary import load_vocabulary

    _, vocab_path, _ = zh_setup
    vocabulary = load_vocabulary(vocab_path)
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("我们喜欢北京。\n\n  \n今天天气很好。\n", encoding="utf-8")
    reference = tmp_path / "ref.txt"
    # Line 1: 们(2) 欢(4) 京(6) continue words; 0 ([CLS]), 1 (a line's first token), 7 (。) and 99
    # (past the end) cannot. Line 2 (after a blank and a whitespace-only line): 今天 and 天气.
    reference.write_text("[2, 4, 6, 0, 1, 7, 99]\n\n[2, 4]\n", encoding="utf-8")
    from albert_keras.data.create import create_pretraining_data

    manifest = create_pretraining_data([str(corpus)], str(vocab_path), str(tmp_path / "out"), max_seq_length=16,
                                       max_predictions_per_seq=4, chinese_ref=str(reference))
    stats = manifest["statistics"]
    assert stats["chinese_ref_rejected_positions"] == 4
    assert stats["whole_words_segmented"] == 5
    records = parse_records(tmp_path / "out", 16, 4)
    words = set()
    for r in range(len(records["input_ids"])):
        ids = records["input_ids"][r].copy()  # masked positions: restore the originals to read the text
        for p, i, w in zip(records["masked_lm_positions"][r], records["masked_lm_ids"][r],
                           records["masked_lm_weights"][r]):
            if w:
                ids[p] = i
        tokens = [vocabulary.tokens()[i] for i in ids[: int(records["input_mask"][r].sum())]]
        for group in _words(records["segment_ids"][r], records["token_boundary"][r], records["input_mask"][r]):
            words.add("".join(tokens[p] for p in sorted(group)))
    assert {"我们", "喜欢", "北京", "今天", "天气", "很", "好", "。"} <= words
    assert not {"京。", "很好", "我"} & words


def test_chinese_ref_bad_files_are_one_line_errors_and_write_nothing(zh_setup, tmp_path):
    corpus, vocab_path, _ = zh_setup
    non_blank = sum(1 for line in corpus.read_text(encoding="utf-8").split("\n") if line.strip())
    cases = {
        "short": ("[]\n" * (non_blank - 1), "has more"),
        "long": ("[]\n" * (non_blank + 1), "has more non-blank lines than"),
        "json": ("[]\n" * 5 + "[2, 'x']\n" + "[]\n" * non_blank, r"ref_json.txt:6: not a JSON list"),
    }
    for name, (text, message) in cases.items():
        reference = tmp_path / f"ref_{name}.txt"
        reference.write_text(text, encoding="utf-8")
        with pytest.raises(AlbertInputError, match=message):
            _create(corpus, vocab_path, tmp_path / name, chinese_ref=[str(reference)])
        assert not os.path.exists(tmp_path / name)
    with pytest.raises(AlbertInputError, match="1 input file"):
        _create(corpus, vocab_path, tmp_path / "two", chinese_ref=[str(reference), str(reference)])
    with pytest.raises(AlbertInputError, match="reference file not found"):
        _create(corpus, vocab_path, tmp_path / "missing", chinese_ref=str(tmp_path / "nope.txt"))
    with pytest.raises(AlbertInputError, match="one or the other"):
        _create(corpus, vocab_path, tmp_path / "both", chinese_ref=str(reference), whole_word_segmenter="jieba")
    assert sorted(os.listdir(tmp_path)) == sorted(f"ref_{name}.txt" for name in cases)


def _dynamic_masks(directory, seq, predictions, vocab_size, seed):
    """Per record (file order): the set of positions dynamic masking chose, reading as `pretrain` does."""
    from albert_keras.data.batches import global_batches
    from albert_keras.data.batches import match_files

    files = match_files(str(directory))
    chosen = []
    for batch in global_batches(files, 1, seq, predictions, seed=seed, shuffle=False, repeat=False,
                                dynamic_masking=True, vocab_size=vocab_size):
        weights = batch["masked_lm_weights"].numpy()[0]
        chosen.append({int(p) for p, w in zip(batch["masked_lm_positions"].numpy()[0], weights) if w})
    return chosen


def _assert_dynamic_masks_keep_words_whole(directory, seq, predictions, vocab_size):
    records = parse_records(directory, seq, predictions)
    multi = 0
    for seed in (1, 2):
        masks = _dynamic_masks(directory, seq, predictions, vocab_size, seed)
        assert len(masks) == len(records["input_ids"])
        for r, positions in enumerate(masks):
            assert positions
            for span in _words(records["segment_ids"][r], records["token_boundary"][r], records["input_mask"][r]):
                assert not (span & positions) or span <= positions, (seed, r, span, positions)
                multi += len(span) > 1 and span <= positions
    assert multi > 20  # words of several tokens were masked, whole


def test_dynamic_masking_never_splits_a_jieba_word(zh_setup, tmp_path):
    pytest.importorskip("jieba")
    corpus, vocab_path, _ = zh_setup
    manifest = _create(corpus, vocab_path, tmp_path / "wwm", whole_word_segmenter="jieba")
    _assert_dynamic_masks_keep_words_whole(tmp_path / "wwm", 32, 6, manifest["vocabulary"]["vocab_size"])


def test_dynamic_masking_never_splits_a_wordpiece_word(tmp_path):
    from tests.tokenization.wordpiece_fixtures import make_chinese_style_vocab

    from albert_keras.tokenization.vocabulary import load_vocabulary

    vocab_path = make_chinese_style_vocab(tmp_path)
    vocabulary = load_vocabulary(vocab_path)
    rng = random.Random(5)
    words = ["unaffable", "playing", "played", "player", "database", "tokenizer", "albert", "the", "new", "york"]
    lines = []
    for _ in range(30):
        lines += [" ".join(rng.choice(words) for _ in range(rng.randint(4, 8))) + "." for _ in range(4)] + [""]
    corpus = tmp_path / "english.txt"
    corpus.write_text("\n".join(lines), encoding="utf-8")
    manifest = _create(corpus, vocab_path, tmp_path / "records")
    records = parse_records(tmp_path / "records", 32, 6)
    tokens = vocabulary.tokens()
    # The stored boundaries are the official WordPiece rule: a "##" piece continues its word.
    for r in range(len(records["input_ids"])):
        ids = records["input_ids"][r].copy()
        ids[records["masked_lm_positions"][r][records["masked_lm_weights"][r] > 0]] = \
            records["masked_lm_ids"][r][records["masked_lm_weights"][r] > 0]
        length = int(records["input_mask"][r].sum())
        continues = np.array([tokens[i].startswith("##") for i in ids[:length]])
        assert (records["token_boundary"][r][:length] == ~continues).all()
    _assert_dynamic_masks_keep_words_whole(tmp_path / "records", 32, 6, manifest["vocabulary"]["vocab_size"])


def _main(capsys, *argv):
    """`albert-keras ARGV` in this process: (exit status, stdout, the stderr lines the CLI wrote)."""
    from albert_keras.cli import main

    status = main([os.fspath(a) for a in argv])
    captured = capsys.readouterr()
    return status, captured.out, [line for line in captured.err.splitlines() if line.startswith("albert-keras")]


def test_create_data_command_masks_whole_chinese_words(zh_setup, tmp_path, capsys):
    pytest.importorskip("jieba")
    corpus, vocab_path, root = zh_setup
    reference = jieba_reference(corpus, vocab_path, tmp_path / "ref.txt")
    common = ("--input", corpus, "--max-seq-length", "32", "--max-predictions-per-seq", "6", "--dupe-factor", "2",
              "--seed", "3", "--num-shards", "2", "--quiet")
    # --vocab takes the vocab.txt itself or the directory holding it.
    status, out, _ = _main(capsys, "create-data", *common, "--vocab", root, "--output", tmp_path / "jieba",
                           "--whole-word-segmenter", "jieba")
    assert status == 0
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["whole_words_segmented"] > 100
    status, out, _ = _main(capsys, "create-data", *common, "--vocab", vocab_path, "--output", tmp_path / "ref",
                           "--chinese-ref", reference)
    assert status == 0 and json.loads(out.strip().splitlines()[-1]) == {**summary, "output": str(tmp_path / "ref")}
    assert _shards(tmp_path / "ref") == _shards(tmp_path / "jieba")
    with pytest.raises(SystemExit):  # argparse: one or the other
        _main(capsys, "create-data", *common, "--vocab", vocab_path, "--output", tmp_path / "x",
              "--chinese-ref", reference, "--whole-word-segmenter", "jieba")


def test_create_data_without_jieba_is_one_line_and_writes_nothing(zh_setup, tmp_path, capsys, monkeypatch):
    corpus, vocab_path, _ = zh_setup
    monkeypatch.setitem(sys.modules, "jieba", None)  # `import jieba` now raises ImportError
    status, out, errors = _main(capsys, "create-data", "--input", corpus, "--vocab", vocab_path,
                                "--output", tmp_path / "out", "--whole-word-segmenter", "jieba", "--quiet")
    assert status == 2 and out == ""
    assert errors == ["albert-keras create-data: error: --whole-word-segmenter jieba: jieba is not installed "
                      "(pip install 'albert-keras[zh]')"]
    assert os.listdir(tmp_path) == []
    status, _, errors = _main(capsys, "create-data", "--input", corpus, "--vocab", vocab_path, "--output",
                              tmp_path / "beam", "--runner", "beam", "--chinese-ref", corpus, "--quiet")
    assert status == 2 and len(errors) == 1 and "use the local runner" in errors[0]
    assert os.listdir(tmp_path) == []


def test_beam_runner_segments_with_jieba_too(zh_setup, tmp_path):
    pytest.importorskip("jieba")
    pytest.importorskip("apache_beam")
    import collections

    import tensorflow as tf

    from albert_keras.data.beam import create_pretraining_data_beam

    corpus, vocab_path, _ = zh_setup
    local = _create(corpus, vocab_path, tmp_path / "local", whole_word_segmenter="jieba")
    beam = create_pretraining_data_beam([str(corpus)], str(vocab_path), str(tmp_path / "beam"), max_seq_length=32,
                                        max_predictions_per_seq=6, dupe_factor=2, seed=3, split_bytes=2000,
                                        whole_word_segmenter="jieba")

    def records(directory):
        files = sorted(str(p) for p in directory.glob("part-*"))
        return collections.Counter(r.numpy() for r in tf.data.TFRecordDataset(files))

    assert beam["settings"]["whole_word_segmenter"] == "jieba"
    assert beam["statistics"]["whole_words_segmented"] == local["statistics"]["whole_words_segmented"] > 100
    assert records(tmp_path / "beam") == records(tmp_path / "local")  # the same multiset of records
