"""Recipes: one YAML file that makes an expansion repeatable (the one source of configuration truth).

Top-level sections: ``seed``, ``data``, ``holdout``, ``gan``, ``generate``, ``classical``,
``smote``, ``latent_smote``, ``plan``, ``output``. Every section forbids unknown keys; an error names the file,
the line and the dotted key (``recipe.yaml line 12: gan.stpes: unknown key (valid: ...)``).
``--set a.b=value`` overrides any key by its dotted path before validation, so one recipe runs
on other data (``--set data.path=DIR --set output.path=OUT``). Paths are relative to the
working directory. ``augmentgan recipe schema`` prints the JSON Schema of :class:`Recipe`.

An expansion resolves its recipe once (:func:`resolve_recipe`) into a :class:`ResolvedRecipe`:
the validated recipe, its GAN configuration (preset + ``gan.overrides``) and its YAML text; every
stage of :mod:`augmentgan.pipeline` receives that object instead of deriving them again.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Literal, Mapping, Optional, Union

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from augmentgan.data.atomic import staged_output
from augmentgan.errors import ConfigError, Flag, in_terms
from augmentgan.gan.config import GANConfig
from augmentgan.overrides import StrictModel, parse_pairs
from augmentgan.planner import PlanConfig

SMOTE_METHOD_NAMES = ("smote", "borderline-smote", "adasyn", "svm-smote", "kmeans-smote")


# `augmentgan generate`'s flags, which the sampler's and the filters' advice names, as recipe keys
_GENERATE_KEYS = (("--filter ", ""), ("--max-tries", "generate.max_tries"), ("--truncation", "generate.truncation"), ("--checkpoint", "gan.checkpoint"))
# the readers' and the trainer's options (errors.Flag) as recipe keys, and the value a switch is set to
RECIPE_KEYS = {
    "size": "data.size", "skip_bad": "data.skip_bad", "split": "data.split", "keys": "data.keys", "channels": "data.channels",
    "device": "gan.device", "precision": "gan.precision",
}


def recipe_terms(flag: Flag) -> str:
    """A reader's or the trainer's hint as the recipe key that does it (``set data.size: N``)."""
    if flag.option == "resume":  # expand resumes its cached GAN run by itself
        return "run the same expansion again"
    value = flag.value or ("true" if flag.option == "skip_bad" else "")
    key = RECIPE_KEYS[flag.option]
    return f"set {key}: {value}" if value else f"set {key}"


def in_recipe_terms(err: BaseException | str) -> str:
    """The message of an error of the readers, the trainer, the sampler or the filters, which name the
    commands' flags (`augmentgan generate`, `train`, `convert`), with the recipe keys an `expand` user
    sets instead (``--skip-bad`` -> ``data.skip_bad: true``, ``--max-tries`` -> ``generate.max_tries``)."""
    message = err if isinstance(err, str) else str(in_terms(err, recipe_terms))
    for flag, key in _GENERATE_KEYS:
        message = message.replace(flag, key)
    return message


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _not_blank(path: str, what: str) -> str:
    """A path key that names something (an empty one would be the current folder)."""
    if not path.strip():
        raise ValueError(f"empty; give {what}")
    return path


class DataSection(StrictModel):
    path: str = Field(..., description="folder of class subfolders, .h5/.hdf5, .npz, or builtin:digits / builtin:digits-lt")
    channels: Literal["auto", 1, 3] = Field("auto", description="auto, 1 (gray) or 3 (RGB)")

    @field_validator("path")
    @classmethod
    def _named(cls, path: str) -> str:
        return _not_blank(path, "a folder of class subfolders, an .h5/.npz file or builtin:NAME")
    size: Optional[int] = Field(None, ge=1, description="center-crop and resize to size x size; null keeps the size")
    split: str = Field("train", description="NPZ only: which x_<split>/y_<split> arrays")
    keys: Optional[str] = Field(None, description="HDF5/NPZ only: IMAGES,LABELS[,CLASS_NAMES] dataset names")
    skip_bad: bool = Field(False, description="folders: leave out unreadable images (with a warning)")
    unlabeled: Optional[str] = Field(
        None, description="unlabeled images for a semi-supervised GAN (gan.preset ssgan): a folder without class subfolders or .h5/.npz[:KEY], "
        "read with this section's channels and size; they train the GAN, and reach the output only through the pseudo source (plan.mix pseudo), never the holdout"
    )


class HoldoutSection(StrictModel):
    fraction: float = Field(0.2, ge=0.0, lt=1.0, description="share of every class kept out (stratified, seeded, never augmented); 0 = none")


class GanSection(StrictModel):
    preset: str = Field("small-data", description="GAN preset (augmentgan train --help lists them)")
    overrides: dict[str, Any] = Field(default_factory=dict, description="GANConfig overrides, nested ({model: {g_ch: 16}}) or dotted ({model.g_ch: 16})")
    steps: int = Field(2000, ge=1, description="G steps of training")
    batch: int = Field(64, ge=1, description="images per D step")
    img_size: Optional[Literal[16, 32, 64, 128]] = Field(None, description="training size; null = smallest supported size >= the data's")
    fit: Literal["auto", "scale", "pad", "resize"] = Field(
        "auto", description="how images reach the training size and samples come back: scale (whole multiple), pad (the image fills >= 3/4), resize (bilinear); auto = the first that applies"
    )
    device: str = Field("auto", description="auto, cpu, cuda, cuda:N, mps")
    precision: Literal["auto", "fp32", "bf16", "fp16"] = Field("auto", description="auto: bf16 autocast where the CPU/GPU computes bf16 natively (decided at run time), else fp32")
    eval_every: int = Field(50, ge=0, description="G steps between quality evaluations (per-class diversity + KID); the best step is generated from; 0 = off")
    run: Optional[str] = Field(None, description="reuse this run folder or .pt checkpoint instead of training")
    checkpoint: str = Field("auto", description="auto (best.pt when the run has one, else final), best, final, last, a step number, or a .pt file (the GAN to reuse, as gan.run)")
    cache: bool = Field(True, description="reuse a cached run trained on the same data with the same GAN settings")
    train_on: Literal["real", "classical"] = Field(
        "real", description="what the GAN trains on: real = the training images; classical = the training images with every class filled up to "
        "the largest by classical.pipeline's samples of its own images (a rare class's few images seen as many deformations, not "
        "repeated; the quality monitor scores against that set too)"
    )

    @model_validator(mode="before")
    @classmethod
    def _checkpoint_file_is_the_run(cls, data: Any) -> Any:
        """``checkpoint: path.pt`` reuses that file, as ``generate --checkpoint path.pt`` does: it is the run."""
        if isinstance(data, dict) and isinstance(data.get("checkpoint"), str) and data["checkpoint"].endswith(".pt"):
            if data.get("run") is not None:
                raise ValueError(
                    f"gan.run {data['run']!r} and gan.checkpoint {data['checkpoint']!r} both name a GAN: give the .pt file as gan.run, "
                    f"or a run folder as gan.run with gan.checkpoint auto, best, final, last or a step number"
                )
            data = {**data, "run": data["checkpoint"], "checkpoint": "auto"}
        return data

    @field_validator("checkpoint", mode="before")
    @classmethod
    def _checkpoint_form(cls, value: Any) -> Any:
        """A step number may be written as one (checkpoint: 800); the form is checked when the recipe is read, not after training."""
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return str(value)
        if not isinstance(value, str) or not (value in ("auto", "best", "final", "last") or value.isdigit() or value.endswith(".pt")):
            raise ValueError(f"{value!r}: use auto, best, final, last, a step number or a .pt file")
        return value


class GenerateSection(StrictModel):
    truncation: Union[None, float, Literal["auto"], dict[Union[int, str], Optional[float]]] = Field(
        None, description="truncation threshold, auto (per class), {class: threshold}, or null (none)"
    )
    filters: list[Union[str, dict[str, Any]]] = Field(default_factory=list, description="quality filters, e.g. [confidence:p=0.5, memorization]")
    max_tries: int = Field(10, ge=1, description="candidates per requested sample before giving up on a class")
    ema: bool = Field(True, description="sample the EMA generator when the run kept one")

    @field_validator("truncation", mode="before")
    @classmethod
    def _one_of_the_forms(cls, value: Any) -> Any:
        # `none` means no truncation, as in `generate --truncation none` (YAML reads it as a string, not null)
        def none(v: Any) -> Any:
            return None if isinstance(v, str) and v.strip().lower() == "none" else v

        value = {k: none(v) for k, v in value.items()} if isinstance(value, dict) else none(value)
        # otherwise pydantic lists why the value is none of the union's forms, one by one
        if isinstance(value, bool) or isinstance(value, (list, tuple)) or isinstance(value, str) and value != "auto" and not _is_number(value):
            raise ValueError(f"{value!r}: use a positive number (e.g. 1.0), auto, {{class: threshold}}, none or null (no truncation)")
        return value

    @field_validator("truncation")
    @classmethod
    def _thresholds(cls, value: Any) -> Any:
        """Thresholds are checked when the recipe is read (not after the GAN has trained); class names are checked against the data later."""
        from augmentgan.generate.sampler import parse_threshold

        try:
            for key, t in (value.items() if isinstance(value, dict) else [(None, value)]):
                if not (key is None and t == "auto"):  # auto is for every class at once, not one class's
                    parse_threshold(t, "@" if key is None else f"class {key}")
        except ConfigError as err:  # pydantic puts the key in front
            raise ValueError(str(err).removeprefix("@: ")) from None
        return value

    @field_validator("filters")
    @classmethod
    def _filters_build(cls, filters: list[Union[str, dict[str, Any]]]) -> list[Union[str, dict[str, Any]]]:
        """Checked when the recipe is read (not after the GAN has trained), in the recipe's terms."""
        if filters:
            from augmentgan.generate.filters import build_filters

            try:
                build_filters(filters)
            except ConfigError as err:
                raise ValueError(in_recipe_terms(err)) from None
        return filters


class ClassicalSection(StrictModel):
    pipeline: Union[str, list[Any], dict[str, Any]] = Field(
        "light", description="named pipeline (light, geometric, photometric, grayscale-scan, strokes, flips; join with +), A.to_dict output, or [{name, params}]"
    )


class SmoteSection(StrictModel):
    method: Literal["smote", "borderline-smote", "adasyn", "svm-smote", "kmeans-smote"] = "smote"
    k_neighbors: int = Field(5, ge=1, description="lowered (with a warning) for classes with fewer than k + 1 images")


class LatentSmoteSection(StrictModel):
    """The ``latent-smote`` source (SMOTE between GAN latent codes of real images; smote.method and
    smote.k_neighbors apply to it too); see :mod:`augmentgan.generate.latent_smote`."""

    quantile: Optional[float] = Field(
        None, gt=0, le=1, description="a real image is a parent only when its reconstruction error is at most this quantile of its class's errors "
        "(1: all); null: 1 with anchor residual, 0.9 with anchor none"
    )
    encoder_steps: int = Field(300, ge=0, description="training steps of the encoder on the generator's own (image, code) pairs")
    refine_steps: int = Field(50, ge=0, description="per-image latent optimisation steps after the encoder's guess")
    feature_weight: float = Field(1.0, ge=0, description="weight of the domain-feature distance in the reconstruction loss (pixels weigh 1)")
    encoder: Literal["fitted", "joint"] = Field(
        "fitted", description="initial codes: fitted = an encoder fitted to the generator after training (encoder_steps), joint = the encoder "
        "trained with the GAN (needs gan bigan.weight > 0, BiGAN)"
    )
    anchor: Literal["none", "residual"] = Field(
        "residual", description="none = a sample is G's decoding of the new code; residual = the nearer parent plus (G(new code) - G(parent's "
        "code)), so the real image's detail G cannot draw is kept and G supplies only the change"
    )
    partners: Literal["class", "all"] = Field(
        "class", description="the second end of each segment: class = a nearest neighbour of the same class (SMOTE on the codes); all = a real "
        "image of another class, moved towards by U(0, step) (a rare class borrows the head classes' styles; smote.method and k_neighbors do not apply)"
    )
    step: Optional[float] = Field(
        None, gt=0, le=1, description="partners all only: the largest fraction of the way from the parent's code towards the other class's code "
        "(null: 0.35)"
    )
    classical: bool = Field(
        False, description="pass every latent-smote sample once through classical.pipeline: the pipeline's geometry on top of G's change "
        "(mnist-lt with strokes: latent-smote 0.916 -> 0.928, still under strokes on the real images alone, 0.937)"
    )

    @model_validator(mode="after")
    def _step_needs_partners_all(self) -> "LatentSmoteSection":
        if self.step is not None and self.partners != "all":
            raise ValueError("latent_smote.step applies to partners all only (with partners class imbalanced-learn's SMOTE draws the step); "
                             "remove it or set latent_smote.partners: all")
        return self


class OutputSection(StrictModel):
    path: str = Field(..., description="output folder: train.h5 (or train/), holdout, recipe.yaml, lock.json, counts.csv")

    @field_validator("path")
    @classmethod
    def _named(cls, path: str) -> str:
        return _not_blank(path, "a new folder for the expansion (e.g. expanded/mine)")
    format: Literal["h5", "folder"] = Field("h5", description="h5 (HDF5 files) or folder (ImageFolder trees)")
    compression: Literal["gzip", "lzf", "none"] = "gzip"


class Recipe(StrictModel):
    seed: int = Field(0, ge=0, description="the one seed every stage derives its own from")
    data: DataSection
    holdout: HoldoutSection = Field(default_factory=HoldoutSection)
    gan: GanSection = Field(default_factory=GanSection)
    generate: GenerateSection = Field(default_factory=GenerateSection)
    classical: ClassicalSection = Field(default_factory=ClassicalSection)
    smote: SmoteSection = Field(default_factory=SmoteSection)
    latent_smote: LatentSmoteSection = Field(default_factory=LatentSmoteSection)
    plan: PlanConfig = Field(default_factory=PlanConfig)
    output: OutputSection

    @field_validator("seed")
    @classmethod
    def _seed_fits(cls, value: int) -> int:
        if value >= 2**32:
            raise ValueError("seed must be < 2**32")
        return value


# --- loading -------------------------------------------------------------------------------------
def _node_at(root: Optional[yaml.Node], loc: Iterable[Any]) -> Optional[yaml.Node]:
    """The deepest YAML node along ``loc`` (mapping keys: the key node of the last step)."""
    node, found = root, root
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if str(key.value) == str(part):
                    found, node = key, value
                    break
            else:
                return found
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = found = node.value[part]
        else:
            return found
    return found


def _valid_keys(loc: tuple[Any, ...]) -> Optional[list[str]]:
    model: Any = Recipe
    for part in loc:
        field = model.model_fields.get(str(part)) if isinstance(model, type) and issubclass(model, BaseModel) else None
        if field is None:
            return None
        model = field.annotation
    if isinstance(model, type) and issubclass(model, BaseModel):
        return list(model.model_fields)
    return None


def _describe(err: ValidationError, where: str, root: Optional[yaml.Node], overridden: set[str], set_name: str = "--set") -> str:
    parts = []
    for e in err.errors():
        loc = tuple(p for p in e["loc"] if not (isinstance(p, str) and ("[" in p or p in {"str", "int", "float", "list", "dict", "none"})))
        dotted = ".".join(str(p) for p in loc) or "(top level)"
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            valid = _valid_keys(loc[:-1])
            msg = "unknown key" + (f" (valid: {', '.join(valid)})" if valid else "")
        elif e["type"] == "missing":
            msg = "required key missing"
        if any(dotted == k or dotted.startswith(k + ".") or k.startswith(dotted + ".") for k in overridden):
            place = set_name
        else:
            node = _node_at(root, loc)
            place = f"{where} line {node.start_mark.line + 1}" if node is not None else where
        parts.append(f"{place}: {dotted}: {msg}")
    return "; ".join(parts)


def _set_dotted(data: dict[str, Any], dotted: str, value: Any, set_name: str = "--set") -> None:
    keys = dotted.split(".")
    node = data
    for i, key in enumerate(keys[:-1]):
        if not isinstance(node.get(key), dict):
            if key in node and node[key] is not None:
                raise ConfigError(f"{set_name} {dotted}: {'.'.join(keys[: i + 1])} is not a section")
            node[key] = {}
        node = node[key]
    node[keys[-1]] = value


def _parse_yaml(text: str, where: str) -> tuple[dict[str, Any], Optional[yaml.Node]]:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{where}{line}: not valid YAML ({getattr(err, 'problem', None) or err}); fix the syntax") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: a recipe is a mapping of sections (seed, data, gan, ...), got {type(data).__name__}")
    _no_repeated_keys(root, where)
    return data, root


def _no_repeated_keys(node: Optional[yaml.Node], where: str, path: str = "") -> None:
    """A key given twice in one mapping is an error naming both lines (YAML loaders keep the last one silently)."""
    if isinstance(node, yaml.MappingNode):
        first: dict[Any, int] = {}
        for key, value in node.value:
            name = key.value if isinstance(key, yaml.ScalarNode) else None
            dotted = f"{path}.{name}" if path else str(name)
            if name is not None and name in first and name != "<<":
                raise ConfigError(f"{where} line {key.start_mark.line + 1}: {dotted}: given twice (first on line {first[name]}); keep one of them")
            if name is not None:
                first[name] = key.start_mark.line + 1
            _no_repeated_keys(value, where, dotted)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _no_repeated_keys(item, where, f"{path}[{i}]")


def load_recipe(source: Union[str, os.PathLike, Mapping[str, Any], Recipe], overrides: Union[Mapping[str, Any], Iterable[str]] = ()) -> Recipe:
    """A validated and checked :class:`Recipe` from a YAML file, a mapping or a Recipe, with ``--set`` overrides
    (``key=value`` strings, one string being one override, or a ``{dotted.key: value}`` mapping): the schema,
    then :func:`check_recipe` (the GAN preset and overrides, the classical pipeline), as `augmentgan recipe validate` does."""
    return check_recipe(_validated(source, overrides))


IN_MEMORY = "(in memory)"  # data.path / output.path of a recipe for rows already held (expand_data), which reads and writes neither


def _validated(source: Union[str, os.PathLike, Mapping[str, Any], Recipe], overrides: Union[Mapping[str, Any], Iterable[str]], in_memory: bool = False,
               set_name: str = "--set") -> Recipe:
    """:func:`load_recipe` without the checks beyond the schema; ``in_memory``: the data and output sections may be left out;
    ``set_name``: what the overrides are called in errors (``--set``; the API's parameter name where it has another)."""
    if not isinstance(source, (str, os.PathLike, Mapping, Recipe)):
        raise ConfigError(f"a recipe is a YAML file path, a mapping of its keys or a Recipe, not {type(source).__name__}")
    if isinstance(overrides, str):  # iterated, one string would be one override per character
        overrides = [overrides]
    if not isinstance(overrides, Mapping):
        overrides = list(overrides) if isinstance(overrides, Iterable) else [overrides]
        if not all(isinstance(o, str) for o in overrides):
            raise ConfigError(f"overrides are 'key=value' strings (as --set takes them) or a {{dotted.key: value}} mapping, not {overrides!r}")
    root: Optional[yaml.Node] = None
    if isinstance(source, Recipe):
        data, where = source.model_dump(mode="json"), "recipe"
    elif isinstance(source, Mapping):
        data, where = copy.deepcopy(dict(source)), "recipe"
    else:
        path = Path(source)
        if not path.is_file():
            raise ConfigError(f"recipe {path} not found; write one with `augmentgan recipe init {path}`")
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            raise ConfigError(f"recipe {path} cannot be read ({err}); it must be a UTF-8 YAML file") from None
        where = str(path)
        data, root = _parse_yaml(text, where)
    pairs = dict(overrides) if isinstance(overrides, Mapping) else parse_pairs(overrides)
    if in_memory and isinstance(data, dict):
        for section in ("data", "output"):
            if data.get(section) is None:
                data[section] = {"path": IN_MEMORY}
    for dotted, value in pairs.items():
        _set_dotted(data, dotted, value, set_name)
    try:
        return Recipe.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_describe(err, where, root, set(pairs), set_name)) from None


def _flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(_flatten(value, dotted + "."))
        else:
            out[dotted] = value
    return out


def gan_config(recipe: Recipe) -> GANConfig:
    """The recipe's :class:`~augmentgan.gan.config.GANConfig`: its preset with ``gan.overrides``."""
    from augmentgan.gan.presets import PRESETS, get_preset

    key = "gan.overrides" if recipe.gan.preset in PRESETS else "gan.preset"
    try:
        return get_preset(recipe.gan.preset, _flatten(recipe.gan.overrides))
    except ConfigError as err:
        raise ConfigError(f"{key}: {err}") from None


def _checked_gan_config(recipe: Recipe) -> GANConfig:
    from augmentgan.augment.classical import build_pipeline

    gan = gan_config(recipe)
    _check_pseudo(recipe, gan)
    _check_joint_encoder(recipe, gan)
    if recipe.data.unlabeled is not None and recipe.gan.run is None and gan.model.d_cond != "kplus1":
        raise ConfigError(
            f"data.unlabeled needs a GAN whose discriminator can learn from unlabeled images, and gan.preset {recipe.gan.preset!r} has "
            f"model.d_cond={gan.model.d_cond!r}: set gan.preset: ssgan (or gan.overrides model.d_cond: kplus1), or drop data.unlabeled"
        )
    build_pipeline(recipe.classical.pipeline, seed=recipe.seed)
    return gan


def _check_pseudo(recipe: Recipe, gan: GANConfig) -> None:
    """``plan.mix`` with pseudo needs unlabeled images to label and a GAN with a K+1 discriminator to label them
    (a ``gan.run`` is checked when its checkpoint is read)."""
    mix = recipe.plan.mix
    if isinstance(mix, str) or mix.get("pseudo", 0.0) <= 0:
        return
    if recipe.data.unlabeled is None:
        raise ConfigError("plan.mix pseudo needs unlabeled images to label: set data.unlabeled: PATH (or --unlabeled PATH), or drop pseudo from plan.mix")
    if recipe.gan.run is None and gan.model.d_cond != "kplus1":
        raise ConfigError(
            f"plan.mix pseudo needs a GAN whose discriminator labels images (model.d_cond=kplus1), and gan.preset {recipe.gan.preset!r} has "
            f"model.d_cond={gan.model.d_cond!r}: set gan.preset: ssgan (or gan.overrides model.d_cond: kplus1), or drop pseudo from plan.mix"
        )


def _check_joint_encoder(recipe: Recipe, gan: GANConfig) -> None:
    """``latent_smote.encoder: joint`` needs the BiGAN encoder of the GAN the recipe trains; refused before
    training when that GAN has none (a ``gan.run`` is checked when its checkpoint is read)."""
    mix = recipe.plan.mix
    uses = "latent-smote" in recipe.plan.auto.sources if mix == "auto" else mix.get("latent-smote", 0.0) > 0
    if uses and recipe.latent_smote.encoder == "joint" and recipe.gan.run is None and not gan.bigan.active:
        raise ConfigError(
            f"latent_smote.encoder joint needs the encoder a BiGAN trains beside G, and the GAN of gan.preset {recipe.gan.preset!r} has "
            f"bigan.weight={gan.bigan.weight}: set gan.overrides bigan.weight: 1, or latent_smote.encoder: fitted"
        )


def check_recipe(recipe: Recipe) -> Recipe:
    """Deeper checks than the schema: the GAN preset and overrides, the classical pipeline."""
    _checked_gan_config(recipe)
    return recipe


@dataclass(frozen=True)
class ResolvedRecipe:
    """A recipe validated and checked once, with what the stages of an expansion derive from it."""

    recipe: Recipe
    gan: GANConfig  # the preset with gan.overrides applied (:func:`gan_config`)
    text: str  # the resolved recipe as YAML (:func:`dump_recipe`): recipe.yaml, the outputs' attributes, the lock's hash


def resolve_recipe(
    source: Union[str, os.PathLike, Mapping[str, Any], Recipe, ResolvedRecipe], overrides: Union[Mapping[str, Any], Iterable[str]] = (),
    *, in_memory: bool = False, set_name: str = "--set",
) -> ResolvedRecipe:
    """Load, validate and check a recipe (:func:`load_recipe`, :func:`check_recipe`) and resolve its
    GAN configuration, once. A :class:`ResolvedRecipe` without ``overrides`` is returned as it is.
    ``in_memory``: for rows already held (:func:`~augmentgan.pipeline.expand_data`), the ``data`` and
    ``output`` sections may be left out (their paths are :data:`IN_MEMORY` then). ``set_name``: what errors
    call the overrides (``--set``; e.g. ``recipe_overrides`` for :class:`~augmentgan.sampler.GANOverSampler`)."""
    if isinstance(source, ResolvedRecipe):
        if not overrides:
            return source
        source = source.recipe
    recipe = _validated(source, overrides, in_memory, set_name)
    return ResolvedRecipe(recipe, _checked_gan_config(recipe), dump_recipe(recipe))


def dump_recipe(recipe: Recipe) -> str:
    """The resolved recipe as YAML (every key, defaults included)."""
    return yaml.safe_dump(recipe.model_dump(mode="json"), sort_keys=False, allow_unicode=True)


def recipe_schema() -> dict[str, Any]:
    """The JSON Schema of a recipe."""
    schema = Recipe.model_json_schema()
    schema["title"] = "augmentgan recipe"
    return schema


STARTER = """\
# augmentgan recipe: `augmentgan expand THIS_FILE [--set key=value ...] [--dry-run]`.
# Every key below is optional except data.path and output.path; `augmentgan recipe schema`
# lists them all. Paths are relative to the working directory. The settings are those of
# recipes/small-data.yaml, the regime measured best for a small dataset on a CPU (its comments
# and benchmarks/RESULTS.md say why): ~5-15 min on 2 cores, a few on a GPU.

seed: 0                      # the one seed: holdout split, GAN, sampling, augmentation, SMOTE

data:
  path: builtin:digits-lt    # folder of class subfolders, .h5/.hdf5, .npz, or builtin:NAME
  channels: auto             # auto, 1 or 3
  size: 32                   # center-crop + resize to size x size (null: keep); the GAN trains at 16, 32, 64 or 128

holdout:
  fraction: 0.2              # per class, stratified; written beside the output, never augmented

gan:
  preset: dcgan              # dcgan, wgan-gp, sngan, biggan, small-data (BigGAN: slow on a CPU), ...
  steps: 3200                # G steps (cached: the same data + settings train only once)
  overrides:                 # on top of the preset: small widths, minibatch std, DiffAugment, EMA, LeCam
    model: {g_ch: 32, d_ch: 32, mbstd: 4, d_sn: true}
    loss: {name: hinge}
    tricks: {diffaug: "color,translation,cutout", ema: true, ema_start: 200}
    reg: {class_loss: 0.0, mode_seeking: 0.1, lecam: 0.3, lecam_start: 100}
  eval_every: 50             # quality (per-class diversity + KID) every N steps; generation uses the best step
  run: null                  # reuse a run folder or .pt checkpoint instead of training

generate:
  truncation: null           # e.g. 1.0, auto, or {classname: 0.5}
  filters: []                # e.g. [confidence:p=0.5, memorization]

classical:
  pipeline: light            # light, geometric, photometric, grayscale-scan, strokes (+flips for photos), or [{name, params}]

smote:
  method: smote              # smote, borderline-smote, adasyn, svm-smote, kmeans-smote
  k_neighbors: 5

latent_smote:                # used when the mix names latent-smote: --set 'plan.mix={latent-smote: 1.0}'
  partners: all              # a small step towards a real image of another class (class: SMOTE within the class)

plan:
  target: max                # max, a count (500), a ratio of the majority (0.5; at most 10), or {class: count}
  mix: auto                  # chosen by cross-validation (the GAN gets a share only where it helps),
                             # or fixed shares of each class's deficit, e.g. {gan: 0.5, classical: 0.3, smote: 0.2}
  max_synthetic_ratio: null  # e.g. 5: at most 5 new samples per real one
  undersample: false

output:
  path: expanded/NAME        # a folder: train.h5, holdout.h5, recipe.yaml, lock.json, counts.csv, report.html
  format: h5                 # h5 or folder (ImageFolder trees)
"""


def starter(path: Union[str, os.PathLike]) -> str:
    """The starter recipe for the file ``path``: :data:`STARTER` writing to ``expanded/<its name>``."""
    return STARTER.replace("expanded/NAME", f"expanded/{Path(path).stem or 'expansion'}")


def write_starter(path: Union[str, os.PathLike], *, force: bool = False) -> Path:
    """Write the commented starter recipe to ``path`` (OutputExistsError without ``force``; a folder is never replaced by it)."""
    if Path(path).is_dir():
        raise ConfigError(f"{path} is a folder; give the recipe's file name, e.g. {Path(path) / 'recipe.yaml'}")
    with staged_output(path, force=force) as tmp:
        tmp.write_text(starter(path), encoding="utf-8")
    return Path(path)
