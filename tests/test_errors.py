"""The errors' hints (errors.Flag): one message, named in each front end's terms."""

from __future__ import annotations

import pickle

import pytest

from augmentgan.errors import ConfigError, DataError, Flag, in_terms
from augmentgan.recipe import in_recipe_terms


def _corrupt() -> DataError:
    return DataError("cannot read image a/b.png", Flag("skip_bad", before=" (or ", after=" to skip unreadable images)"))


def test_a_hint_names_the_commands_flag_by_default_and_the_recipe_key_in_a_recipe() -> None:
    err = _corrupt()
    assert str(err) == "cannot read image a/b.png (or pass --skip-bad to skip unreadable images)"
    assert in_recipe_terms(err) == "cannot read image a/b.png (or set data.skip_bad: true to skip unreadable images)"
    sized = ConfigError("the images are 8x12, not square", Flag("size", "N", before="; "))
    assert in_recipe_terms(sized) == "the images are 8x12, not square; set data.size: N"


def test_a_hint_left_out_takes_its_words_with_it_and_the_error_keeps_its_kind() -> None:
    try:
        try:
            raise KeyError("inner")
        except KeyError as cause:
            raise _corrupt() from cause
    except DataError as err:
        plain = err.in_terms(lambda flag: None, prefix="DATA: ")
    assert type(plain) is DataError and plain.exit_code == 3 and isinstance(plain.__cause__, KeyError)
    assert str(plain) == "DATA: cannot read image a/b.png"
    assert str(in_terms(ValueError("not ours"), lambda flag: None, "x: ")) == "x: not ours"


def test_an_error_pickles_with_its_message_and_hints() -> None:
    err = pickle.loads(pickle.dumps(_corrupt()))
    assert str(err) == str(_corrupt()) and err.parts == _corrupt().parts


@pytest.mark.parametrize("option", ["size", "skip_bad", "split", "keys", "channels", "device", "precision", "resume"])
def test_every_option_the_readers_and_trainer_name_has_a_recipe_key(option: str) -> None:
    text = in_recipe_terms(ConfigError("x", Flag(option, before="; ")))
    assert text.startswith("x; ") and "--" not in text and "pass " not in text


def test_an_interrupted_expansion_says_to_run_it_again_not_to_pass_a_flag_expand_lacks() -> None:
    from augmentgan.errors import TrainingInterrupted

    err = TrainingInterrupted("interrupted at step 7; checkpoint c.pt written", Flag("resume", before="; ", after=" to continue"))
    assert str(err).endswith("written; pass --resume to continue")
    assert in_recipe_terms(err).endswith("written; run the same expansion again to continue")
