import os

import pytest

from albert_keras.corpus import embedded_corpus, split_sentences, write_embedded_corpus


@pytest.fixture(scope="module")
def corpus():
    return embedded_corpus()


def test_split_sentences_rule():
    text = (
        "It works, e.g. here.  Dr. Smith agreed!\nThen 3 more? \"Quoted.\" Next one (J. Doe) "
        "wrote v1.2 of it. lowercase. continues here."
    )
    assert split_sentences(text) == [
        "It works, e.g. here.",
        "Dr. Smith agreed!",
        "Then 3 more?",
        '"Quoted."',
        "Next one (J. Doe) wrote v1.2 of it. lowercase. continues here.",
    ]


def test_split_sentences_edge_cases():
    assert split_sentences("") == []
    assert split_sentences("   \n ") == []
    assert split_sentences("No final stop") == ["No final stop"]
    assert split_sentences("Ends here. ") == ["Ends here."]


def test_embedded_corpus_is_prose_and_deterministic(corpus):
    assert corpus == embedded_corpus()
    sentences = [s for doc in corpus for s in doc]
    assert len(corpus) >= 50 and len(sentences) >= 2000
    assert all(doc for doc in corpus)
    for sentence in sentences:
        assert sentence == sentence.strip() and "\n" not in sentence
        assert len(sentence.split()) >= 3
        assert "::=" not in sentence and not sentence.startswith(">>>")
    # Headings ("The "assert" statement") and their underlines are gone.
    assert not any(set(s) <= set("*=-~^ ") for s in sentences)
    assert not any(s.startswith('The "assert" statement') and s.endswith("statement") for s in sentences)
    # Real English: the commonest words show up everywhere.
    words = " ".join(sentences).lower().split()
    assert words.count("the") > 0.03 * len(words)


def test_write_embedded_corpus(tmp_path, corpus):
    path = write_embedded_corpus(tmp_path / "sub" / "corpus.txt")
    text = open(path, encoding="utf-8").read()
    documents = [doc.split("\n") for doc in text.rstrip("\n").split("\n\n")]
    assert documents == corpus
    assert sorted(os.listdir(tmp_path / "sub")) == ["corpus.txt"]  # no temporary file left


def test_split_sentences_long_runs_without_boundaries():
    # Many rejected boundaries in a row (lowercase after the stop, abbreviations) stay one sentence.
    text = "x. y. e.g. Z. " * 20000 + "End. Next one."
    sentences = split_sentences(text)
    assert sentences[-1] == "Next one." and len(sentences) == 2
    assert sentences[0].endswith("End.")
