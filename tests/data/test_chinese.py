"""Chinese pretraining data: a WordPiece vocabulary, the official word-start rule, whole-word masking with jieba."""

import json
import os
import random

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
