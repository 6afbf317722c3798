"""Convert trainer configurations of ML-Agents before 0.19 to today's format.

    python -m mlagents_fast.trainers.upgrade_config OLD.yaml [--curriculum C.yaml]
        [--sampler S.yaml] NEW.yaml

(the counterpart of ``mlagents.trainers.upgrade_config``). Two old layouts are recognised:

- up to 0.16: one flat mapping per behavior (``trainer: ppo``, ``batch_size``, ``hidden_units``,
  ``use_recurrent`` ... side by side, shared values under ``default``), the curriculum and the
  parameter randomization in separate files (``--curriculum``, ``--sampler``, whose samplers
  use ``sampler-type``);
- 0.17 and 0.18: ``behaviors`` already in today's layout, but ``curriculum`` (per behavior:
  ``measure``, ``thresholds``, per-parameter lists of lesson values) and
  ``parameter_randomization`` beside them.

Both become ``behaviors`` plus ``environment_parameters`` (samplers and one curriculum per
parameter, lessons named ``Lesson0``, ``Lesson1``, ...). Each behavior is checked by loading
it and written with every setting resolved. Unlike ML-Agents
1.1.0's script, the lessons are written in the form that RunOptions loads.
"""

from __future__ import annotations

import argparse
import copy
import sys
from collections.abc import Mapping
from typing import Any

import attrs
import yaml

from mlagents_fast.atomic_io import write_text_atomically
from mlagents_fast.trainers.exception import TrainerConfigError
from mlagents_fast.trainers.settings import (
    NetworkSettings,
    RunOptions,
    TrainerSettings,
    load_config,
)

__all__ = [
    "convert",
    "convert_behaviors",
    "convert_samplers",
    "convert_samplers_and_curriculum",
    "main",
    "parse_args",
    "remove_nones",
    "write_to_yaml_file",
]

# Keys of a sampler's own parameters when they sit beside ``sampler_type``.
_SAMPLER_ARGUMENTS = ("seed", "min_value", "max_value", "mean", "st_dev", "intervals")
_RESAMPLING_INTERVAL = "resampling-interval"
# Sampler type names that changed with the new format.
_RENAMED_SAMPLER_TYPES = {"multirange_uniform": "multirangeuniform"}


def _hyperparameter_fields(trainer_type: str) -> set[str]:
    """Field names of the hyperparameters of ``trainer_type`` (ppo, sac or a plugin's type)."""
    defaults = RunOptions.from_dict({"behaviors": {"_": {"trainer_type": trainer_type}}})
    return set(attrs.fields_dict(type(defaults.behaviors["_"].hyperparameters)))


def _convert_behavior(name: str, flat: Mapping[str, Any]) -> dict[str, Any]:
    """One flat old-format behavior mapping in today's nested layout."""
    trainer_type = flat.get("trainer")
    if trainer_type is None:
        raise TrainerConfigError(
            f"behavior '{name}' names no trainer: add 'trainer: ppo' (or sac) to it or to default"
        )
    hyperparameters = _hyperparameter_fields(trainer_type)
    network_fields = set(attrs.fields_dict(NetworkSettings)) - {"memory"}
    trainer_fields = set(attrs.fields_dict(TrainerSettings)) - {
        "trainer_type",
        "hyperparameters",
        "network_settings",
    }
    behavior: dict[str, Any] = {
        "trainer_type": trainer_type,
        "hyperparameters": {k: v for k, v in flat.items() if k in hyperparameters},
        "network_settings": {k: v for k, v in flat.items() if k in network_fields},
    }
    if flat.get("use_recurrent"):
        memory = {key: flat[key] for key in ("sequence_length", "memory_size") if key in flat}
        behavior["network_settings"]["memory"] = memory
    behavior.update({k: copy.deepcopy(v) for k, v in flat.items() if k in trainer_fields})
    return behavior


def convert_behaviors(old_trainer_config: Mapping[str, Any]) -> dict[str, Any]:
    """Behaviors of an old (<= 0.16) trainer configuration, in today's layout.

    Each behavior starts from ``default`` and overrides it with its own values; keys that
    no longer exist (``use_recurrent``, ``trainer``, ...) are folded in or dropped.
    """
    default = old_trainer_config.get("default") or {}
    return {
        name: _convert_behavior(name, {**default, **(values or {})})
        for name, values in old_trainer_config.items()
        if name != "default"
    }


def convert_samplers(old_sampler_config: Mapping[str, Any]) -> dict[str, Any]:
    """Old samplers (``sampler-type`` beside the arguments) as ``sampler_type`` plus
    ``sampler_parameters``; ``resampling-interval`` is no longer used and is dropped, and
    ``multirange_uniform`` is today's ``multirangeuniform``."""
    converted: dict[str, Any] = {}
    for parameter, sampler in old_sampler_config.items():
        if parameter == _RESAMPLING_INTERVAL:
            print(f"{_RESAMPLING_INTERVAL} is no longer used by parameter randomization: ignored.")
            continue
        arguments = {k: v for k, v in sampler.items() if k != "sampler-type"}
        sampler_type = sampler["sampler-type"]
        converted[parameter] = {
            "sampler_type": _RENAMED_SAMPLER_TYPES.get(sampler_type, sampler_type),
            "sampler_parameters": arguments,
        }
    return converted


def _curriculum_lessons(behavior: str, curriculum: Mapping[str, Any], values: list) -> list:
    thresholds = list(curriculum["thresholds"])
    if len(values) != len(thresholds) + 1:
        raise TrainerConfigError(
            f"curriculum of '{behavior}': {len(thresholds)} thresholds need "
            f"{len(thresholds) + 1} lesson values, got {len(values)}"
        )
    lessons: list[dict[str, Any]] = []
    for index, threshold in enumerate(thresholds):
        lessons.append(
            {
                "name": f"Lesson{index}",
                "completion_criteria": {
                    "measure": curriculum["measure"],
                    "behavior": behavior,
                    "signal_smoothing": curriculum.get("signal_smoothing", False),
                    "min_lesson_length": curriculum.get("min_lesson_length", 1),
                    "threshold": threshold,
                },
                "value": values[index],
            }
        )
    lessons.append({"name": f"Lesson{len(thresholds)}", "value": values[-1]})
    return lessons


def convert_samplers_and_curriculum(
    parameter_dict: Mapping[str, Any], curriculum: Mapping[str, Any]
) -> dict[str, Any]:
    """``environment_parameters`` from 0.17/0.18 samplers and per-behavior curricula.

    A parameter with both a sampler and a curriculum keeps the sampler (as ML-Agents).
    """
    parameters: dict[str, Any] = {}
    for name, sampler in parameter_dict.items():
        sampler = dict(sampler)
        arguments = dict(sampler.pop("sampler_parameters", None) or {})
        for key in _SAMPLER_ARGUMENTS:
            if key in sampler:
                arguments[key] = sampler.pop(key)
        parameters[name] = {**sampler, "sampler_parameters": arguments}
    for behavior, behavior_curriculum in curriculum.items():
        for name, values in behavior_curriculum["parameters"].items():
            if name in parameters:
                print(
                    f"The parameter {name} has both a sampler and a curriculum: keeping the sampler."
                )
                continue
            parameters[name] = {
                "curriculum": _curriculum_lessons(behavior, behavior_curriculum, list(values))
            }
    return parameters


def convert(
    config: Mapping[str, Any],
    old_curriculum: Mapping[str, Any] | None,
    old_param_random: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """Today's configuration from an old one (a new one is returned unchanged)."""
    converted: dict[str, Any] = copy.deepcopy(dict(config))
    if "behaviors" not in converted:
        print("Config file format version: version <= 0.16.X")
        converted = {"behaviors": convert_behaviors(config)}
        if old_curriculum is not None:
            converted["curriculum"] = copy.deepcopy(dict(old_curriculum))
        if old_param_random is not None:
            converted["parameter_randomization"] = convert_samplers(old_param_random)
    if "curriculum" in converted or "parameter_randomization" in converted:
        print("Config file format version: 0.16.X < version <= 0.18.X")
        samplers = dict(converted.pop("parameter_randomization", None) or {})
        samplers.pop(_RESAMPLING_INTERVAL, None)
        if any("sampler-type" in sampler for sampler in samplers.values()):
            samplers = convert_samplers(samplers)
        curriculum = converted.pop("curriculum", None) or {}
        environment_parameters = convert_samplers_and_curriculum(samplers, curriculum)
        if environment_parameters:
            converted["environment_parameters"] = environment_parameters
    return _resolved(converted)


def _resolved(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` with its behaviors checked by loading them and every setting written out.

    (The rest is checked when mlagents-fast-learn loads the file.)
    """
    options = RunOptions.from_dict({"behaviors": copy.deepcopy(config.get("behaviors") or {})})
    resolved = dict(config)
    resolved["behaviors"] = {
        name: settings.as_dict() for name, settings in options.behaviors.items()
    }
    return resolved


def remove_nones(config: Mapping[Any, Any]) -> dict[Any, Any]:
    """``config`` without the keys whose value is None, at every depth."""
    return {
        key: remove_nones(value) if isinstance(value, Mapping) else value
        for key, value in config.items()
        if value is not None
    }


def write_to_yaml_file(unstructured_config: Mapping[str, Any], output_config: str) -> None:
    """Write ``unstructured_config`` as YAML, keys in the order given."""
    write_text_atomically(output_config, yaml.dump(dict(unstructured_config), sort_keys=False))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m mlagents_fast.trainers.upgrade_config",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "trainer_config_path", help="Path to old format (<=0.18.X) trainer configuration YAML."
    )
    parser.add_argument(
        "--curriculum",
        default=None,
        help="Path to old format (<=0.16.X) curriculum configuration YAML.",
    )
    parser.add_argument(
        "--sampler",
        default=None,
        help="Path to old format (<=0.16.X) parameter randomization configuration YAML.",
    )
    parser.add_argument("output_config_path", help="Path to write converted YAML file.")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    print(f"Converting {args.trainer_config_path} and saving to {args.output_config_path}.")
    try:
        old_config = load_config(args.trainer_config_path)
        curriculum = load_config(args.curriculum) if args.curriculum is not None else None
        sampler = load_config(args.sampler) if args.sampler is not None else None
        new_config = convert(old_config, curriculum, sampler)
    except TrainerConfigError as err:
        print(f"upgrade_config: {err}", file=sys.stderr)
        raise SystemExit(2) from err
    write_to_yaml_file(remove_nones(new_config), args.output_config_path)


if __name__ == "__main__":
    main()
