"""Dotted overrides applied to the GAN config."""

import pytest

from augmentgan.errors import ConfigError
from augmentgan.gan.config import GANConfig
from augmentgan.overrides import apply_overrides, parse_pairs


def test_values_are_parsed_as_yaml_scalars():
    assert parse_pairs(["a=32", "b=true", "c=1e-4", "d=[0, 0.9]", "e=null", "f=hello", "g="]) == {
        "a": 32, "b": True, "c": 1e-4, "d": [0, 0.9], "e": None, "f": "hello", "g": ""
    }


def test_nested_override_returns_validated_copy():
    cfg = GANConfig()
    new = apply_overrides(cfg, ["model.g_ch=32", "optim.lr_g=1e-4", "tricks.diffaug=color,cutout", "reg.clip=0.01"])
    assert new.model.g_ch == 32 and new.optim.lr_g == 1e-4 and new.tricks.diffaug == "color,cutout"
    assert new.reg.clip == 0.01
    assert cfg.model.g_ch == 64  # original untouched


@pytest.mark.parametrize(
    "pair, match",
    [
        ("model.gch=32", r"unknown key 'model.gch': 'gch' is not one of \[.*'g_ch'"),
        ("modle.g_ch=32", r"'modle' is not one of"),
        ("model.g_ch.x=1", "has no sub-keys"),
        ("model.g_ch=wide", r"--set: model.g_ch: .*integer"),
        ("loss.name=wgan", r"loss.name"),
        ("tricks.diffaug=colour", "unknown DiffAugment op"),
        ("loss.label_smoothing=0.1", "label_smoothing applies to bce"),
        ("noequals", "not of the form key=value"),
    ],
)
def test_bad_overrides_name_the_key(pair, match):
    with pytest.raises(ConfigError, match=match):
        apply_overrides(GANConfig(), [pair])


def test_unknown_top_level_key_in_dict_form():
    with pytest.raises(ConfigError, match="'optimizer' is not one of"):
        apply_overrides(GANConfig(), {"optimizer.lr": 1})


def test_true_or_false_is_refused_where_a_number_is_meant():
    # pydantic reads true as 1: `--set data.size=true` trained on 1x1 images, gan.steps=true ran one step
    from augmentgan.recipe import load_recipe

    minimal = {"data": {"path": "builtin:digits-lt"}, "output": {"path": "o"}}
    for pair in ("data.size=true", "gan.steps=true", "seed=false", "holdout.fraction=true", "plan.max_synthetic_ratio=true"):
        with pytest.raises(ConfigError, match=r"(true|false) is a yes/no value; this key takes a number or a name"):
            load_recipe(minimal, [pair])
    with pytest.raises(ConfigError, match="model.g_ch: .*true is a yes/no value"):
        apply_overrides(GANConfig(), parse_pairs(["model.g_ch=true"]))
    recipe = load_recipe(minimal, ["data.skip_bad=true", "latent_smote.classical=true", "plan.undersample=false"])  # real yes/no keys
    assert recipe.data.skip_bad and recipe.latent_smote.classical and not recipe.plan.undersample
    assert apply_overrides(GANConfig(), parse_pairs(["tricks.ema=true", "model.d_sn=false"])).tricks.ema
