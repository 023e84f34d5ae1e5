"""The question-answering serving graph: windows and answers equal the Python SQuAD path; as a
SavedModel's `serving_default` it reloads in a fresh process with only tensorflow and
tensorflow_text and answers with slices of the cased, accented context it was sent."""

import textwrap

import numpy as np
import pytest
import tensorflow as tf

from albert_keras.tasks import squad
from tests.export.conftest import run_python
from tests.tasks.test_squad import rule_made_squad

T = 48
HARD_CONTEXTS = [
    "  Crème  ``brûlée''\u00a0costs 10,000, Ünïcödé  ﬁne ",
    "",
    "x",
    "中文字符测试，汉字。 emoji 😀👍🏽 and more words here",
    b"\xff\xfe broken \xc3 UTF-8 Bytecode words".decode("utf-8", errors="replace"),
]
INVALID = b"\xff\xfe broken \xc3 UTF-8 Bytecode words"  # sent as bytes: the graph repairs it like Python
# Every character cased or accented: a non-empty answer rebuilt from the lowercased, accent-stripped
# pieces could not equal its slice of this context.
CASED = "ÀÉÎ ÕÜÇ ÑÅÊ ÆØÐ ÈÏÔ ÛÝÂ ÃËÌ ÓÖÙ ÀÉÎ ÕÜÇ ÑÅÊ ÆØÐ"


@pytest.fixture(scope="module")
def qa_model():
    import keras

    from albert_keras import AlbertConfig, AlbertEncoder
    from albert_keras.modeling.task_models import AlbertQuestionAnswerer
    from tests.training.conftest import TINY_CONFIG

    keras.utils.set_random_seed(3)
    return AlbertQuestionAnswerer(AlbertEncoder(AlbertConfig(**TINY_CONFIG)))


@pytest.fixture(scope="module")
def examples():
    document = rule_made_squad(10, seed=7, long_fraction=0.6)
    found = [squad.SquadExample(qa["id"], qa["question"], p["context"], qa["answers"], qa["is_impossible"])
             for p in document["data"][0]["paragraphs"] for qa in p["qas"]]
    found += [squad.SquadExample(f"h{i}", "Which ``one''?", c, [], True) for i, c in enumerate(HARD_CONTEXTS)]
    return found


def server(model, spm_model_path, **arguments):
    from albert_keras.export.question_answering import QuestionAnsweringServer
    from albert_keras.tokenization import AlbertTokenizer

    return QuestionAnsweringServer(model, AlbertTokenizer(spm_model_path, sequence_length=T), T, **arguments)


def strings(examples):
    contexts = [INVALID if e.context == HARD_CONTEXTS[-1] else e.context.encode() for e in examples]
    return tf.constant([e.question for e in examples]), tf.constant(contexts)


@pytest.mark.parametrize("doc_stride", [16, 128])
def test_server_equals_python_windows_and_decoding(qa_model, examples, spm_model_path, doc_stride):
    from albert_keras.tokenization import load_sentencepiece

    features = squad.make_features(load_sentencepiece(spm_model_path), examples, max_seq_length=T,
                                   doc_stride=doc_stride)
    serving = server(qa_model, spm_model_path, doc_stride=doc_stride)
    got, window_example, spans = serving.windows(*strings(examples))
    x, _ = squad.feature_arrays(features)
    for key in x:
        np.testing.assert_array_equal(got[key].numpy(), x[key], err_msg=key)
    np.testing.assert_array_equal(window_example.numpy(), [f.example_index for f in features])
    np.testing.assert_array_equal(spans["starts"].numpy(), np.stack([f.starts for f in features]))
    np.testing.assert_array_equal(spans["ends"].numpy(), np.stack([f.ends for f in features]))
    np.testing.assert_array_equal(spans["max_context"].numpy(), np.stack([f.max_context for f in features]))
    if doc_stride == 16:
        assert len(features) > len(examples) + 5  # overlapping windows really happen
    outputs = qa_model(x)
    # A margin that answers some questions and not others.
    for threshold in (-1e9, 0.05, 1e9):
        expected = squad.decode(examples, features, outputs["start_logits"].numpy(), outputs["end_logits"].numpy(),
                                n_best_size=1000, version_2=True, null_score_diff_threshold=threshold)
        served = server(qa_model, spm_model_path, doc_stride=doc_stride, null_score_diff_threshold=threshold)
        result = {k: v.numpy() for k, v in served(*strings(examples)).items()}
        for k, example in enumerate(examples):
            want = expected[example.qid]
            assert result["answer_text"][k].decode() == want["text"], example.context
            assert (result["answer_start"][k], result["answer_end"][k]) == (want["start"], want["end"])
            assert bool(result["has_answer"][k]) == (want["start"] >= 0)
            if want["nbest"]:
                assert abs(result["score"][k] - want["score"]) < 1e-4
            assert abs(result["no_answer_score"][k] - want["null_score"]) < 1e-4
            if want["text"]:
                assert example.context[want["start"]:want["end"]] == want["text"]


def test_serving_default_answers_in_a_fresh_process(qa_model, examples, spm_model_path, tmp_path):
    from albert_keras.export.saved_model import export_saved_model
    from albert_keras.export.warmup import read_warmup_file
    from albert_keras.export.warmup import replay_warmup_file

    export_dir = export_saved_model(qa_model, str(tmp_path / "qa" / "1"), spm_model=spm_model_path, sequence_length=T)
    examples = examples + [squad.SquadExample("cased", "Which word?", CASED, [], True)]
    questions, contexts = strings(examples)
    expected = {k: v.numpy() for k, v in server(qa_model, spm_model_path)(questions, contexts).items()}
    inputs = tmp_path / "inputs.npy"  # bytes, so the invalid UTF-8 travels as it is
    np.save(inputs, np.array([questions.numpy(), contexts.numpy()], dtype=object), allow_pickle=True)
    out = tmp_path / "out.npz"
    run_python(textwrap.dedent(f"""
        import sys
        import numpy as np
        import tensorflow as tf
        import tensorflow_text  # registers the SentencePiece and normalization ops
        assert "albert_keras" not in sys.modules
        served = tf.saved_model.load({export_dir!r})
        answer = served.signatures["serving_default"]
        assert sorted(answer.structured_input_signature[1]) == ["context", "question"]
        questions, contexts = np.load({str(inputs)!r}, allow_pickle=True)
        result = answer(question=tf.constant(list(questions)), context=tf.constant(list(contexts)))
        empty = answer(question=tf.constant([], tf.string), context=tf.constant([], tf.string))
        assert all(v.shape[0] == 0 for v in empty.values()), empty
        np.savez({str(out)!r}, **{{k: v.numpy() for k, v in result.items()}})
    """))
    got = np.load(out, allow_pickle=True)
    assert sorted(got.files) == sorted(expected)
    for key, want in expected.items():
        if want.dtype.kind == "f":
            np.testing.assert_allclose(got[key], want, atol=1e-4, err_msg=key)
        else:
            np.testing.assert_array_equal(got[key], want, err_msg=key)
    hard = len(examples) - len(HARD_CONTEXTS) - 1
    assert got["answer_text"][hard].decode() in HARD_CONTEXTS[0] or not got["has_answer"][hard]
    assert not got["has_answer"][hard + 1] and got["answer_text"][hard + 1] == b""  # the empty context
    # Every answer is the slice of the original (repaired) context at its character offsets.
    assert got["has_answer"].sum() > len(examples) // 2
    for k, example in enumerate(examples):
        start, end = int(got["answer_start"][k]), int(got["answer_end"][k])
        text = got["answer_text"][k].decode()
        if got["has_answer"][k]:
            assert 0 <= start < end and text == example.context[start:end], (example.context, start, end)
        else:
            assert (start, end, text) == (-1, -1, ""), example.context
    cased = got["answer_text"][-1].decode()
    assert got["has_answer"][-1] and cased != cased.lower(), cased  # cased, accented: as sent
    # The warmup file asks the served signatures what TF Serving will, and replays.
    requests = {signature: sorted(inputs) for signature, _, inputs in read_warmup_file(export_dir)}
    assert requests["serving_default"] == ["context", "question"] and requests["serve_text_pair"] == ["text", "text_b"]
    replayed = dict(replay_warmup_file(export_dir))
    assert replayed["serving_default"]["answer_text"].shape == (2,) and "answer_text" not in replayed["serve_text_pair"]


def test_default_stride_is_half_of_a_short_window(qa_model, examples, spm_model_path):
    from albert_keras.tokenization import encode_for_albert, load_sentencepiece

    sp = load_sentencepiece(spm_model_path)
    same = [e for e in examples if e.question == examples[0].question]
    width = T - len(encode_for_albert(sp, same[0].question)) - 3
    features = squad.make_features(sp, same, max_seq_length=T, doc_stride=width // 2)
    _, window_example, spans = server(qa_model, spm_model_path).windows(*strings(same))
    np.testing.assert_array_equal(window_example.numpy(), [f.example_index for f in features])
    np.testing.assert_array_equal(spans["starts"].numpy(), np.stack([f.starts for f in features]))


def test_a_stride_that_never_advances_is_refused(qa_model, spm_model_path):
    for stride in (0, -4):
        with pytest.raises(ValueError, match="doc_stride must be positive"):
            server(qa_model, spm_model_path, doc_stride=stride)
