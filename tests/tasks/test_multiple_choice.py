import pytest

from albert_keras.errors import AlbertInputError
from albert_keras.tasks.multiple_choice import choices_dataset
from albert_keras.tasks.multiple_choice import read_choices
from tests.finetune_data import write_jsonl


def test_race_style_one_example_per_question(tmp_path):
    path = write_jsonl(tmp_path / "race.jsonl", [{
        "article": "Tom has a red ball.", "questions": ["What colour is the ball?", "Tom has a _ ball."],
        "options": [["red", "blue"], ["red", "green"]], "answers": ["A", "B"],
    }])
    examples, num_choices = read_choices(path)
    assert num_choices == 2 and len(examples) == 2
    assert examples[0].choices == ["What colour is the ball? red", "What colour is the ball? blue"]
    assert examples[1].choices == ["Tom has a red ball.", "Tom has a green ball."] and examples[1].label == 1


def test_swag_and_plain_styles(tmp_path):
    path = write_jsonl(tmp_path / "swag.jsonl", [
        {"sent1": "She opens the door.", "sent2": "She", "ending0": "walks in.", "ending1": "flies.", "label": 0},
        {"context": "Pick one.", "choices": ["x", "y"], "label": "y"},
    ])
    examples, num_choices = read_choices(path)
    assert examples[0].context == "She opens the door." and examples[0].choices == ["She walks in.", "She flies."]
    assert examples[1].label == 1 and num_choices == 2
    ((context, choices), label), = choices_dataset(examples[1:]).as_numpy_iterator()
    assert context == b"Pick one." and list(choices) == [b"x", b"y"] and label == 1


@pytest.mark.parametrize("records, message", [
    ([{"context": "c", "choices": ["a", "b"], "label": 0}, {"context": "c", "choices": ["a", "b", "c"], "label": 0}],
     r"m\.jsonl:2: 3 choices, but the file has 2"),
    ([{"context": "c", "choices": ["a", "b"], "label": 2}], r"m\.jsonl:1: answer 2 is outside the 2 choices"),
    ([{"context": "c", "choices": ["a", "b"]}], r"m\.jsonl:1: no field 'label'"),
    ([{"text": "c"}], r"m\.jsonl:1: not a multiple-choice record"),
    ([], r"m\.jsonl: no examples"),
])
def test_bad_input_names_file_and_line(tmp_path, records, message):
    path = write_jsonl(tmp_path / "m.jsonl", records)
    with pytest.raises(AlbertInputError, match=message):
        read_choices(path)


def test_model_choice_count_is_enforced(tmp_path):
    path = write_jsonl(tmp_path / "m.jsonl", [{"context": "c", "choices": ["a", "b"], "label": 0}])
    with pytest.raises(AlbertInputError, match="2 choices, but the model has 4"):
        read_choices(path, num_choices=4)
