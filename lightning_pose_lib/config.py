"""The one config loader.

A model config is a nested dict with the sections of ``configs/model.schema.yaml``. It is built by
layering, each layer overriding the one before: the schema's defaults, then any number of YAML files
or dicts, then dotted ``key=value`` overrides (``training.max_epochs=11``). Every layer is checked on
its own, so an unknown key or a wrong type is reported with the file (or command line) it came from.
"""

from __future__ import annotations

import copy
import os
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping

import yaml

from .errors import InputError

if TYPE_CHECKING:
    import jsonschema

Config = dict[str, Any]


@lru_cache(maxsize=1)
def schema() -> dict:
    return yaml.safe_load((Path(__file__).parent / "configs" / "model.schema.yaml").read_text())


def _defaults_of(node: Mapping) -> Any:
    if node.get("type") == "object" and "properties" in node:
        return {key: _defaults_of(child) for key, child in node["properties"].items()}
    return copy.deepcopy(node.get("default"))


def defaults() -> Config:
    """The full default config, read from the schema."""
    return _defaults_of(schema())


def merge(base: Mapping, update: Mapping) -> Config:
    """Deep-merge ``update`` into a copy of ``base``; dicts merge, everything else replaces."""
    out = copy.deepcopy(dict(base))
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def parse_overrides(items: Iterable[str]) -> Config:
    """``["training.max_epochs=11", "model.losses_to_use=[temporal]"]`` -> nested dict.

    Values are parsed as YAML, so numbers, booleans, null and lists work as expected.
    """
    out: Config = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise InputError("command line", f"override {item!r} is not of the form section.key=value")
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError as err:
            raise InputError("command line", f"override {item!r}: value is not valid YAML ({err})") from None
        node = out
        *parents, leaf = key.strip().split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise InputError("command line", f"override {item!r} conflicts with another override")
        node[leaf] = value
    return out


def _describe(error: jsonschema.ValidationError) -> str:
    where = ".".join(str(p) for p in error.absolute_path)
    if error.validator == "additionalProperties":
        known = sorted(error.schema.get("properties", {}))
        unknown = sorted(set(error.instance) - set(known))
        keys = ", ".join(f"'{where + '.' if where else ''}{k}'" for k in unknown)
        return f"unknown config key {keys} (known keys here: {', '.join(known)})"
    if error.validator == "type" and isinstance(error.instance, dict) is False and error.schema.get("type") == "object":
        return f"config key '{where}' must be a section (a mapping), got {error.instance!r}"
    return f"config key '{where}': {error.message}"


def validate(cfg: Mapping, source: str | os.PathLike = "config") -> None:
    """Raise :class:`InputError` naming ``source`` and the first offending key."""
    found = first_error(cfg, schema())
    if found is not None:
        raise InputError(source, found[1])


def first_error(cfg: Mapping, against: Mapping) -> tuple[list[str], str] | None:
    """The first place where ``cfg`` breaks the JSON schema ``against``: (the key's path, one line
    naming the key and the problem), or None."""
    import jsonschema  # here: a prediction job reads YAML through this module and validates nothing

    validator = jsonschema.Draft202012Validator(against)
    errors = sorted(validator.iter_errors(cfg), key=lambda e: (len(e.absolute_path), list(map(str, e.absolute_path))))
    if not errors:
        return None
    error = errors[0]
    path = [str(p) for p in error.absolute_path]
    if error.validator == "additionalProperties":
        path.append(sorted(set(error.instance) - set(error.schema.get("properties", {})))[0])
    return path, _describe(error)


def _check_consistency(cfg: Config, source: str) -> None:
    model = cfg["model"]
    if model["do_context"] != (model["model_type"] == "heatmap_mhcrnn"):
        raise InputError(
            source,
            f"model.do_context is {model['do_context']} but model.model_type is {model['model_type']}: "
            "do_context must be true exactly for heatmap_mhcrnn",
        )
    if model["model_type"] == "regression" and model["losses_to_use"]:
        raise InputError(source, "model.losses_to_use needs a heatmap model; regression models are supervised only")
    data = cfg["data"]
    views, csv_file = data["view_names"], data["csv_file"]
    if views is not None or isinstance(csv_file, list):
        if views is None or not isinstance(csv_file, list) or len(views) != len(csv_file):
            raise InputError(source, "several cameras need data.view_names and data.csv_file as lists of the same length (one label CSV per view)")
        if len(set(views)) != len(views):
            raise InputError(source, f"data.view_names has a name twice: {views}")
        if data["mirrored_column_matches"]:
            raise InputError(source, "data.mirrored_column_matches is for one mirrored frame; with data.view_names, pca_multiview covers every keypoint across the views")
    if data["calibration_file"] and views is None:
        raise InputError(source, "data.calibration_file needs data.view_names (the camera names)")
    train = cfg["training"]
    if train["train_prob"] + train["val_prob"] > 1 + 1e-9:
        raise InputError(source, "training.train_prob + training.val_prob must not exceed 1")
    if train["min_epochs"] > train["max_epochs"]:
        raise InputError(source, "training.min_epochs must not exceed training.max_epochs")


def load_config(*layers: str | os.PathLike | Mapping, overrides: Iterable[str] = ()) -> Config:
    """Defaults, then each layer (a YAML path or a dict), then dotted overrides; validated."""
    cfg = defaults()
    for layer in layers:
        if isinstance(layer, Mapping):
            source, data = "config", dict(layer)
        else:
            source, data = os.fspath(layer), read_yaml(layer)
        validate(data, source)
        cfg = merge(cfg, data)
    extra = parse_overrides(overrides)
    validate(extra, "command line")
    cfg = merge(cfg, extra)
    validate(cfg, "config")
    _check_consistency(cfg, "config")
    return cfg


def read_yaml(path: str | os.PathLike) -> dict:
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "config file not found")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise InputError(path, f"not valid YAML: {err}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InputError(path, "a config file must be a mapping of sections")
    return data


def dump(cfg: Mapping) -> str:
    return yaml.safe_dump(dict(cfg), sort_keys=False)
