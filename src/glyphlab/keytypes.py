"""The types of a data option's keys, checked before any work: ``data.samples_per_class=1.5`` is one line
naming the key, the type its builder takes and the value given, not the builder's TypeError from deep
inside Hydra's ``instantiate``.

What a key takes comes from its builder (the ``_target_``): the annotation of its parameter, else the type
of the parameter's default, else (a key the builder takes through ``**kwargs``) the type of the key's value
in the option's own YAML file (``conf/data/<name>.yaml``). A key no builder parameter takes is refused too.
"""
from __future__ import annotations

import functools
import importlib
import inspect
import re
import types
import typing

from omegaconf import OmegaConf

from glyphlab.data import USAGE_KEYS
from glyphlab.errors import ConfigError

WORDS = {"int": "an integer", "number": "a number", "str": "a string", "bool": "true or false", "list": "a list",
         "dict": "a mapping", "none": "null"}
NOT_PASSED = USAGE_KEYS  # keys of a data config that are not builder arguments (Hydra's own start with _)


def check_data_keys(node, key: str = "data") -> None:
    """Raise :class:`ConfigError` for a key of data config ``node`` (at config key ``key``: ``data`` or
    ``eval_data``) whose value is not of the type its builder takes, or that the builder does not take."""
    if node is None or not node.get("_target_"):
        return
    builder = _builder(str(node._target_))
    if not callable(builder):
        raise ConfigError(f"{key}._target_ must name a data set builder (package.module.function), "
                          f"got {node._target_!r}")
    try:
        signature = inspect.signature(builder)
    except (TypeError, ValueError):
        return
    hints = _hints(builder)
    yaml_defaults = _yaml_defaults(str(node.get("name", "")), str(node._target_))
    takes_more = any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())
    values = OmegaConf.to_container(node, resolve=True)
    written = OmegaConf.to_container(node, resolve=False)  # `seed: ${seed}`: the key the user set is `seed`
    for name, value in values.items():
        if name.startswith("_") or name in NOT_PASSED:
            continue
        parameter = signature.parameters.get(name)
        if parameter is None and not takes_more:
            taken = ", ".join(p for p, v in signature.parameters.items() if v.kind is v.KEYWORD_ONLY
                              or v.kind is v.POSITIONAL_OR_KEYWORD)
            raise ConfigError(f"{key}.{name} is not a key of data option {node.get('name')} ({node._target_} "
                              f"takes: {taken})")
        group = _group_of(yaml_defaults.get(name))
        if group is not None and isinstance(value, dict):  # a config group's node (handwriting: ${handwriting})
            for sub, sub_value in value.items():
                _check(f"{group}.{sub}", sub_value, _group_kinds(group).get(sub, set()))
            continue
        source = re.fullmatch(r"\$\{([\w.]+)\}", str(written.get(name)))
        _check(source.group(1) if source else f"{key}.{name}", value,
               _kinds(parameter, hints.get(name), yaml_defaults.get(name)))


def _check(key: str, value, kinds: set[str]) -> None:
    if kinds and not any(_matches(value, kind) for kind in kinds):
        words = " or ".join(WORDS[k] for k in sorted(kinds, key=list(WORDS).index))
        raise ConfigError(f"{key} must be {words}, got {value!r} ({type(value).__name__})")


def _group_of(raw) -> str | None:
    """``handwriting`` for a YAML value ``${handwriting}`` that names a config group (a folder of conf/)."""
    match = re.fullmatch(r"\$\{(\w+)\}", raw) if isinstance(raw, str) else None
    return match.group(1) if match and (_conf() / match.group(1)).is_dir() else None


@functools.cache
def _group_kinds(group: str) -> dict[str, set[str]]:
    """Per key, the kinds of value the options of config group ``group`` give it (any of them goes)."""
    kinds: dict[str, set[str]] = {}
    for option in _options(group).values():
        for key, value in option.items():
            kinds.setdefault(key, set()).update(_kinds_of_value(value) or {"any"})
    return {key: set() if "any" in found else found for key, found in kinds.items()}


def _builder(target: str):
    module, _, name = target.rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError):
        return None


def _hints(builder) -> dict:
    try:
        return typing.get_type_hints(builder)
    except Exception:  # noqa: BLE001 - an annotation that does not evaluate: fall back on the defaults
        return {}


def _kinds(parameter, hint, yaml_default) -> set[str]:
    """The kinds of value a key takes; empty when anything goes (or nothing says)."""
    if hint is not None:
        return _kinds_of_hint(hint)
    if parameter is not None and parameter.default is not inspect.Parameter.empty:
        return _kinds_of_value(parameter.default)
    return _kinds_of_value(yaml_default)


def _kinds_of_hint(hint) -> set[str]:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        parts = [_kinds_of_hint(h) for h in typing.get_args(hint)]
        return set() if any(not p for p in parts) else set().union(*parts)
    hint = origin or hint
    simple = {bool: "bool", int: "int", float: "number", str: "str", type(None): "none", list: "list",
              tuple: "list", dict: "dict", None: "none"}
    try:
        return {simple[hint]} if hint in simple else set()
    except TypeError:  # an unhashable annotation
        return set()


def _kinds_of_value(value) -> set[str]:
    if value is None or (isinstance(value, str) and "${" in value):  # null, or an interpolation: says nothing
        return set()
    if isinstance(value, bool):
        return {"bool"}
    if isinstance(value, (int, float)):
        return {"number"}  # a YAML `10` may well take 12.5 (degrees); an integer-only key says so in its annotation
    if isinstance(value, str):
        return {"str"}
    if isinstance(value, (list, tuple)):
        return {"list"}
    return {"dict"} if isinstance(value, dict) else set()


def _matches(value, kind: str) -> bool:
    if kind in ("int", "number"):
        return isinstance(value, int if kind == "int" else (int, float)) and not isinstance(value, bool)
    return isinstance(value, {"str": str, "bool": bool, "list": (list, tuple), "dict": dict, "none": type(None)}[kind])


def _conf():
    """The config folder: a checkout's conf/ (as glyphlab.cli.config_path), else the installed copy."""
    from importlib import resources
    from pathlib import Path

    folder = Path(__file__).resolve().parents[2] / "conf"
    return folder if (folder / "config.yaml").is_file() else resources.files("glyphlab.conf")


@functools.cache
def _options(group: str) -> dict:
    """``{option: its values}`` of config group ``group`` (interpolations as written, no defaults list)."""
    options = {}
    for entry in _conf().joinpath(group).iterdir():
        if not entry.name.endswith(".yaml"):
            continue
        try:
            node = OmegaConf.create(entry.read_text(encoding="utf-8"))
        except Exception:  # noqa: BLE001, S112 - a file Hydra would refuse anyway
            continue
        raw = OmegaConf.to_container(node, resolve=False)
        options[entry.name[:-5]] = {k: v for k, v in raw.items() if k != "defaults"}
    return options


@functools.cache
def _yaml_defaults(name: str, target: str) -> dict:
    """The values of the data option of ``name`` and ``target`` in conf/data/ (interpolations as written)."""
    options = _options("data")
    chosen = options.get(name)
    if chosen is None or chosen.get("_target_") != target:
        chosen = next((o for o in options.values() if o.get("_target_") == target), None)
    return chosen or {}
