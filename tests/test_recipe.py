"""Recipes: strict schema, errors with file, line and key path, --set, starter, CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from augmentgan.errors import ConfigError, OutputExistsError
from augmentgan.recipe import STARTER, check_recipe, load_recipe, recipe_schema, starter, write_starter

MINIMAL = {"data": {"path": "builtin:digits-lt"}, "output": {"path": "out"}}


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "r.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_unknown_key_names_file_line_path_and_valid_keys(tmp_path: Path) -> None:
    path = _write(tmp_path, "data:\n  path: builtin:digits\ngan:\n  preset: sngan\n  stpes: 300\noutput:\n  path: o\n")
    with pytest.raises(ConfigError) as info:
        load_recipe(path)
    message = str(info.value)
    assert message.startswith(f"{path} line 5: gan.stpes: unknown key (valid: preset, overrides, steps,")
    assert "\n" not in message


def test_bad_value_line_and_missing_section(tmp_path: Path) -> None:
    path = _write(tmp_path, "seed: 1\ndata:\n  path: x\nholdout:\n  fraction: 1.5\n")
    with pytest.raises(ConfigError) as info:
        load_recipe(path)
    message = str(info.value)
    assert f"{path} line 5: holdout.fraction: Input should be less than 1" in message
    assert "output: required key missing" in message


def test_set_overrides_and_their_errors() -> None:
    recipe = load_recipe(MINIMAL, ["gan.steps=300", "data.path=/some/dir", "gan.overrides.model.g_ch=8", "plan.target=0.5", "plan.mix={copy: 1.0}"])
    assert recipe.gan.steps == 300 and recipe.data.path == "/some/dir" and recipe.plan.target == 0.5
    assert recipe.gan.overrides == {"model": {"g_ch": 8}} and recipe.plan.mix == {"copy": 1.0}
    with pytest.raises(ConfigError, match=r"^--set: gan.steps: Input should be a valid integer"):
        load_recipe(MINIMAL, ["gan.steps=many"])
    with pytest.raises(ConfigError, match=r"--set: gan.stepz: unknown key"):
        load_recipe(MINIMAL, ["gan.stepz=3"])
    with pytest.raises(ConfigError, match="key=value"):
        load_recipe(MINIMAL, ["gan.steps"])


def test_checkpoint_and_truncation_are_checked_when_read(tmp_path: Path) -> None:
    # both were checked only when the GAN had trained; a step number may be written as a number
    assert load_recipe(_write(tmp_path, "data: {path: builtin:digits-lt}\ngan: {checkpoint: 800}\noutput: {path: o}\n")).gan.checkpoint == "800"
    for good in ("auto", "last", "best", "1200"):
        assert load_recipe(MINIMAL, [f"gan.checkpoint={good}"]).gan.checkpoint == good
    # a .pt file is the GAN to reuse (README's `checkpoint: path.pt`), as gan.run; with a run folder as well it is ambiguous
    # `none` is no truncation, as README's recipe and `generate --truncation none` say (YAML reads it as a string)
    assert load_recipe(MINIMAL, ["generate.truncation=none"]).generate.truncation is None
    assert load_recipe(MINIMAL, ['generate.truncation={"7": 0.5, "8": None}']).generate.truncation == {"7": 0.5, "8": None}
    pt = load_recipe(MINIMAL, ["gan.checkpoint=runs/x/checkpoints/step-000100.pt"]).gan
    assert (pt.run, pt.checkpoint) == ("runs/x/checkpoints/step-000100.pt", "auto")
    with pytest.raises(ConfigError, match=r"gan.run 'runs/x' and gan.checkpoint 'y.pt' both name a GAN: give the .pt file as gan.run"):
        load_recipe(MINIMAL, ["gan.run=runs/x", "gan.checkpoint=y.pt"])
    for bad in ("bogus", "true", "-3"):
        with pytest.raises(ConfigError, match=r"^--set: gan.checkpoint: .*use auto, best, final, last, a step number or a .pt file$"):
            load_recipe(MINIMAL, [f"gan.checkpoint={bad}"])
    for bad, why in [("-1", "threshold -1.0 must be a positive number"), ("0", "threshold 0.0 must be a positive number"),
                     ('{"7": -0.5}', "class 7: threshold -0.5 must be a positive number"), ("nan", "threshold nan must be a positive number"),
                     ("abc", "'abc': use a positive number (e.g. 1.0), auto, {class: threshold}, none or null"), ("true", "True: use a positive number")]:
        with pytest.raises(ConfigError) as info:
            load_recipe(MINIMAL, [f"generate.truncation={bad}"])
        assert str(info.value).startswith(f"--set: generate.truncation: {why}") and "\n" not in str(info.value), info.value
    for good, value in [("auto", "auto"), ("null", None), ("0.7", 0.7), ('{"7": 0.5, "8": null}', {"7": 0.5, "8": None})]:
        assert load_recipe(MINIMAL, [f"generate.truncation={good}"]).generate.truncation == value


def test_deep_checks_gan_overrides_and_classical_pipeline() -> None:
    with pytest.raises(ConfigError, match=r"gan.overrides: .*model.g_chh"):
        check_recipe(load_recipe(MINIMAL, ["gan.overrides.model.g_chh=8"]))
    with pytest.raises(ConfigError, match="unknown GAN preset 'stylegan'"):
        check_recipe(load_recipe(MINIMAL, ["gan.preset=stylegan"]))
    bad = {**MINIMAL, "classical": {"pipeline": [{"name": "GaussNoise", "params": {"var_limit": [10, 50]}}]}}
    with pytest.raises(ConfigError, match=r"GaussNoise.*var_limit"):
        check_recipe(load_recipe(bad))


def test_a_key_given_twice_is_an_error_naming_both_lines(tmp_path: Path) -> None:
    text = "data: {path: builtin:digits-lt}\nplan:\n  mix: {classical: 1.0}\noutput: {path: o}\nplan:\n  mix: {copy: 1.0}\n"
    with pytest.raises(ConfigError, match=r"r\.yaml line 5: plan: given twice \(first on line 2\); keep one of them$"):
        load_recipe(_write(tmp_path, text))  # the second plan silently won
    with pytest.raises(ConfigError, match=r"line 2: gan\.steps: given twice \(first on line 2\)"):
        load_recipe(_write(tmp_path, "data: {path: builtin:digits-lt}\ngan: {steps: 10, steps: 20}\noutput: {path: o}\n"))


def test_yaml_syntax_error_has_a_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"line \d+: not valid YAML"):
        load_recipe(_write(tmp_path, "data:\n  path: [unclosed\n"))
    with pytest.raises(ConfigError, match="not found"):
        load_recipe(tmp_path / "missing.yaml")


def test_schema_forbids_unknown_keys_everywhere() -> None:
    schema = recipe_schema()
    assert schema["additionalProperties"] is False
    assert set(schema["properties"]) == {"seed", "data", "holdout", "gan", "generate", "classical", "smote", "latent_smote", "plan", "output"}
    for name, definition in schema["$defs"].items():
        if definition.get("type") == "object" and "properties" in definition:
            assert definition.get("additionalProperties") is False, name


def test_starter_is_valid_and_not_overwritten(tmp_path: Path) -> None:
    check_recipe(load_recipe(yaml.safe_load(STARTER)))
    path = write_starter(tmp_path / "recipe.yaml")
    assert path.read_text(encoding="utf-8") == starter(path) and load_recipe(path).output.path == "expanded/recipe"
    path.write_text("mine", encoding="utf-8")
    with pytest.raises(OutputExistsError):
        write_starter(path)
    assert path.read_text(encoding="utf-8") == "mine"
    write_starter(path, force=True)
    assert path.read_text(encoding="utf-8") == starter(path)
    (tmp_path / "d" / "sub").mkdir(parents=True)
    (tmp_path / "d" / "sub" / "keep.txt").write_text("x", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"is a folder; give the recipe's file name, e\.g\. .*recipe\.yaml"):
        write_starter(tmp_path / "d", force=True)  # --force replaced the whole folder with one YAML file
    assert (tmp_path / "d" / "sub" / "keep.txt").read_text(encoding="utf-8") == "x"


def test_cli_recipe_commands(tmp_path: Path) -> None:
    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "augmentgan", "recipe", *args], capture_output=True, text=True, timeout=120, cwd=tmp_path)

    r = run("schema")
    assert r.returncode == 0 and json.loads(r.stdout)["additionalProperties"] is False
    assert run("init", "r.yaml").returncode == 0 and (tmp_path / "r.yaml").read_text(encoding="utf-8") == starter("r.yaml")
    assert run("init", "r.yaml").returncode == 5
    r = run("validate", "r.yaml", "--set", "gan.steps=7", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["recipe"]["gan"]["steps"] == 7
    (tmp_path / "bad.yaml").write_text("data: {path: x}\noutput: {path: o}\nsmote: {method: smoote}\n", encoding="utf-8")
    r = run("validate", "bad.yaml")
    assert r.returncode == 4 and "bad.yaml line 3: smote.method" in r.stderr


def test_one_override_string_is_one_override() -> None:
    # iterated, "gan.steps=3" was one override per character: "override 'g' is not of the form key=value"
    assert load_recipe(MINIMAL, "gan.steps=3").gan.steps == 3


def test_a_joint_encoder_the_gan_will_not_have_is_refused_when_read() -> None:
    # it was refused only after the GAN had trained (minutes at the recipe's 3,200 steps)
    joint = [*("plan.mix={latent-smote: 1.0}", "latent_smote.encoder=joint")]
    with pytest.raises(ConfigError, match=r"^latent_smote.encoder joint needs the encoder a BiGAN trains beside G, and the GAN of gan.preset 'small-data' "
                                          r"has bigan.weight=0.0: set gan.overrides bigan.weight: 1, or latent_smote.encoder: fitted$"):
        check_recipe(load_recipe(MINIMAL, joint))
    with pytest.raises(ConfigError, match="latent_smote.encoder joint"):  # auto may choose latent-smote
        check_recipe(load_recipe(MINIMAL, ["plan.mix=auto", "plan.auto.sources=[copy, latent-smote]", "latent_smote.encoder=joint"]))
    check_recipe(load_recipe(MINIMAL, [*joint, "gan.overrides.bigan.weight=1"]))
    check_recipe(load_recipe(MINIMAL, [*joint, "gan.run=runs/x"]))  # a given run is checked when its checkpoint is read
    check_recipe(load_recipe(MINIMAL, ["plan.mix={copy: 1.0}", "latent_smote.encoder=joint"]))  # not used: nothing to refuse


def test_a_recipe_or_overrides_of_the_wrong_type_get_a_config_error_not_a_type_error() -> None:
    with pytest.raises(ConfigError, match="a recipe is a YAML file path, a mapping of its keys or a Recipe, not int"):
        load_recipe(123)  # type: ignore[arg-type]
    for bad in (42, [1]):
        with pytest.raises(ConfigError, match="overrides are 'key=value' strings"):
            load_recipe(MINIMAL, bad)  # type: ignore[arg-type]


def test_the_starter_recipe_has_the_settings_of_recipes_small_data() -> None:
    # `recipe init` is where a user's own recipe begins: the regime measured best for small data, not an older one
    shipped = load_recipe(Path(__file__).parent.parent / "recipes" / "small-data.yaml").model_dump(mode="json")
    mine = load_recipe(yaml.safe_load(starter("x.yaml"))).model_dump(mode="json")
    shipped.pop("output"), mine.pop("output")  # where it writes; latent-smote's options too (a probe found partners differing)
    assert mine == shipped


def test_validate_names_the_file_of_every_error_and_the_key_of_a_bad_preset(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("data: {path: builtin:digits-lt}\ngan: {preset: dcgann}\noutput: {path: o}\n", encoding="utf-8")
    (tmp_path / "b.yaml").write_text("data: {path: builtin:digits-lt}\nclassical: {pipeline: lite}\noutput: {path: o}\n", encoding="utf-8")
    r = subprocess.run([sys.executable, "-m", "augmentgan", "recipe", "validate", "a.yaml", "b.yaml"], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    lines = r.stderr.splitlines()
    assert r.returncode == 4 and lines[0].startswith("error: a.yaml: gan.preset: unknown GAN preset 'dcgann'") and lines[1].startswith("error: b.yaml: "), r.stderr


def test_an_empty_data_or_output_path_is_refused_not_read_as_the_current_folder() -> None:
    for key in ("data.path", "output.path"):
        with pytest.raises(ConfigError, match=rf"{key}: empty; give "):
            load_recipe(MINIMAL, [f"{key}="])


def test_validate_json_reports_a_bad_file_as_every_command_reports_an_error(tmp_path: Path) -> None:
    # probe: validate --json gave only {"valid": false, "files": [...]} and nothing on stderr; scripts read error/type/exit_code
    (tmp_path / "bad.yaml").write_text("data: {path: x}\noutput: {path: o}\nsmote: {method: smoote}\n", encoding="utf-8")
    r = subprocess.run([sys.executable, "-m", "augmentgan", "recipe", "validate", "bad.yaml", "--json"], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    out = json.loads(r.stdout)
    assert r.returncode == 4 and out["valid"] is False and out["exit_code"] == 4 and out["type"] == "ConfigError"
    assert "smote.method" in out["error"] and out["files"][0]["error"] == out["error"]
    assert len(r.stderr.strip().splitlines()) == 1 and r.stderr.startswith("error: bad.yaml line 3: smote.method")
