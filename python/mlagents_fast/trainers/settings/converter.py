"""Structuring of settings: the converter every settings class goes through, and the helpers
that turn a bad value into a :class:`TrainerConfigError` naming its key.

The bottom of the settings package: it knows no settings class. Each module that defines
classes with special YAML forms (reward signals, samplers, behaviors) registers its hooks on
:data:`settings_converter` when it is imported; cattrs tries the most recently registered
predicate first, so those hooks take precedence over the generic rules registered here.
"""

import collections
import contextlib
import enum
import typing
from collections.abc import Callable, Iterator, Mapping
from enum import Enum
from typing import Any, TypeVar

import attr
import cattrs

from mlagents_fast.trainers.exception import MissingOptionError, TrainerConfigError

__all__ = [
    "EXTENSION_METADATA",
    "ExportableSettings",
    "check_and_structure",
    "deep_update_dict",
    "defaultdict_to_dict",
    "settings_converter",
    "strict_to_cls",
    "validate_key",
]

_EnumT = TypeVar("_EnumT", bound=Enum)


# STRUCTURING HELPERS ##################################################################
@contextlib.contextmanager
def _at_key(key: Any) -> Iterator[None]:
    """Prefix the key path of a TrainerConfigError raised inside with ``key``."""
    try:
        yield
    except TrainerConfigError as error:
        error.key_path.insert(0, str(key))
        raise


def _describe(value: Any) -> str:
    text = repr(value)
    if len(text) > 80:
        text = text[:77] + "..."
    return f"{text} ({type(value).__name__})"


def _structure_int(value: Any, _: type) -> int:
    # bool is an int subclass; `batch_size: true` is a mistake, not 1.
    if isinstance(value, bool):
        raise TrainerConfigError(f"expected an integer, got {_describe(value)}")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        # Command-line values without a type (--timeout-wait 30) and YAML 1.1 numbers such as
        # `1.0e4` (a string to PyYAML) arrive as text.
        try:
            return int(value)
        except ValueError:
            try:
                value = float(value)
            except ValueError:
                raise TrainerConfigError(f"expected an integer, got {_describe(value)}") from None
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise TrainerConfigError(f"expected an integer, got {_describe(value)}")


def _structure_float(value: Any, _: type) -> float:
    if isinstance(value, bool):
        raise TrainerConfigError(f"expected a number, got {_describe(value)}")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        # `1e-3` has no dot, so PyYAML (YAML 1.1) reads it as a string.
        try:
            return float(value)
        except ValueError:
            pass
    raise TrainerConfigError(f"expected a number, got {_describe(value)}")


def _structure_bool(value: Any, _: type) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise TrainerConfigError(f"expected true or false, got {_describe(value)}")


def _structure_str(value: Any, _: type) -> str:
    if isinstance(value, str):
        return value
    # A run id or lesson name written as a number (`run_id: 42`) is meant as text.
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise TrainerConfigError(f"expected a string, got {_describe(value)}")


def _structure_enum(value: Any, enum_type: type[_EnumT]) -> _EnumT:
    if isinstance(value, enum_type):
        return value
    try:
        return enum_type(value)
    except ValueError:
        allowed = ", ".join(repr(member.value) for member in enum_type)
        raise TrainerConfigError(f"invalid value {value!r}; expected one of {allowed}") from None


def _structure_list(value: Any, list_type: type) -> list:
    (item_type,) = typing.get_args(list_type) or (Any,)
    if not isinstance(value, (list, tuple)):
        raise TrainerConfigError(f"expected a list, got {_describe(value)}")
    result = []
    for index, item in enumerate(value):
        with _at_key(f"[{index}]"):
            result.append(settings_converter.structure(item, item_type))
    return result


def _structure_tuple(value: Any, tuple_type: type) -> tuple:
    item_types = typing.get_args(tuple_type)
    if not isinstance(value, (list, tuple)):
        raise TrainerConfigError(
            f"expected a list of {len(item_types)} values, got {_describe(value)}"
        )
    if len(item_types) == 2 and item_types[1] is Ellipsis:
        item_types = (item_types[0],) * len(value)
    if len(value) != len(item_types):
        raise TrainerConfigError(
            f"expected exactly {len(item_types)} values, got {len(value)}: {value!r}"
        )
    result = []
    for index, (item, item_type) in enumerate(zip(value, item_types)):
        with _at_key(f"[{index}]"):
            result.append(settings_converter.structure(item, item_type))
    return tuple(result)


def _structure_dict(value: Any, dict_type: type) -> dict:
    key_type, value_type = typing.get_args(dict_type) or (Any, Any)
    if not isinstance(value, Mapping):
        raise TrainerConfigError(f"expected a mapping, got {_describe(value)}")
    result = {}
    for key, item in value.items():
        with _at_key(key):
            result[settings_converter.structure(key, key_type)] = settings_converter.structure(
                item, value_type
            )
    return result


def _structure_any(value: Any, _: type) -> Any:
    return value


def check_and_structure(key: str, value: Any, class_type: type) -> Any:
    """Structure the value of option ``key`` of attrs class ``class_type``.

    Raises TrainerConfigError when ``class_type`` has no such option; the message lists the
    options it has.
    """
    fields = attr.fields_dict(class_type)
    if key not in fields:
        known = ", ".join(sorted(fields))
        raise TrainerConfigError(
            f"unknown option {key!r} for {class_type.__name__} (valid options: {known})",
            key_path=[key],
        )
    field_type = fields[key].type
    assert field_type is not None, "settings fields are all annotated"
    with _at_key(key):
        return settings_converter.structure(value, field_type)


def _instantiate(cls: type, values: dict[str, Any]) -> Any:
    """``cls(**values)``, with a missing required field or a failed validator reported as
    a TrainerConfigError (a MissingOptionError, also a TypeError as in ML-Agents, for a
    missing field)."""
    missing = [
        field.name
        for field in attr.fields(cls)
        if field.init and field.default is attr.NOTHING and field.name not in values
    ]
    if missing:
        raise MissingOptionError(
            f"missing required option{'s' if len(missing) > 1 else ''} "
            f"{', '.join(repr(name) for name in missing)} for {cls.__name__}"
        )
    try:
        return cls(**values)
    except TrainerConfigError:
        raise
    except (TypeError, ValueError) as error:
        raise TrainerConfigError(f"invalid {cls.__name__}: {error}") from None


def validate_key(
    *checks: Callable[[Any, Any], str | None],
    at: tuple[str, ...] = (),
) -> Callable[[Any, attr.Attribute, Any], None]:
    """The validator of every settings option: ``check(instance, value)`` returns None when
    the value is fine, or what is wrong with it. The first problem found becomes a
    TrainerConfigError at this option's key, followed by ``at`` when the problem is deeper
    inside the value (callers higher up prefix the rest of the path)."""

    def _validator(instance: Any, attribute: attr.Attribute, value: Any) -> None:
        for check in checks:
            problem = check(instance, value)
            if problem is not None:
                raise TrainerConfigError(problem, key_path=[attribute.name, *at])

    return _validator


def strict_to_cls(d: Mapping, t: type) -> Any:
    """Build attrs class ``t`` from mapping ``d``, rejecting keys ``t`` does not have."""
    if not isinstance(d, Mapping):
        raise TrainerConfigError(f"expected a mapping for {t.__name__}, got {_describe(d)}")
    values: dict[str, Any] = {}
    for key, val in d.items():
        values[key] = check_and_structure(key, val, t)
    return _instantiate(t, values)


def defaultdict_to_dict(d: collections.defaultdict) -> dict:
    return {key: settings_converter.unstructure(val) for key, val in d.items()}


def deep_update_dict(d: dict, update_d: Mapping) -> None:
    """Like ``dict.update()``, but merges nested mappings key by key instead of replacing them."""
    for key, val in update_d.items():
        if key in d and isinstance(d[key], Mapping) and isinstance(val, Mapping):
            deep_update_dict(d[key], val)
        else:
            d[key] = val


@attr.s(auto_attribs=True)
class ExportableSettings:
    """Settings that can be written out as plain dicts (``configuration.yaml``)."""

    def as_dict(self) -> dict[str, Any]:
        """Plain dicts, lists, strings and numbers; loading it again gives equal settings."""
        return settings_converter.unstructure(self)


# CONVERTER ############################################################################
EXTENSION_METADATA = "mlagents_fast_extension"
"""Field metadata key of an option ML-Agents does not have (``--env-workers``, ...): written
by ``as_dict`` only when it differs from its default, so that a run not using it writes
exactly what ML-Agents writes, and one using it round-trips."""


def _unstructure_attrs(obj: Any) -> dict[str, Any]:
    # By the runtime class: `hyperparameters` is declared HyperparamSettings but holds a
    # PPOSettings, whose fields must all be written.
    return {
        field.name: settings_converter.unstructure(getattr(obj, field.name))
        for field in attr.fields(type(obj))
        if not (
            field.metadata.get(EXTENSION_METADATA) and getattr(obj, field.name) == field.default
        )
    }


def _unstructure_mapping(obj: Mapping) -> dict[Any, Any]:
    return {
        settings_converter.unstructure(key): settings_converter.unstructure(value)
        for key, value in obj.items()
    }


def _unstructure_sequence(obj: Any) -> list[Any]:
    return [settings_converter.unstructure(item) for item in obj]


def _is_enum_type(t: Any) -> bool:
    return isinstance(t, type) and issubclass(t, enum.Enum)


def _origin_is(annotation: object, origin: type) -> bool:
    """Whether ``annotation`` is ``origin[...]`` (``list[int]`` is a list annotation)."""
    return typing.get_origin(annotation) is origin


def _make_converter() -> cattrs.Converter:
    converter = cattrs.Converter(forbid_extra_keys=True, detailed_validation=False)
    # Generic rules first: cattrs tries the most recently registered predicate first.
    converter.register_structure_hook_func(
        lambda t: isinstance(t, type) and attr.has(t), lambda d, t: strict_to_cls(d, t)
    )
    converter.register_structure_hook_func(lambda t: _origin_is(t, list), _structure_list)
    converter.register_structure_hook_func(lambda t: _origin_is(t, tuple), _structure_tuple)
    converter.register_structure_hook_func(lambda t: _origin_is(t, dict), _structure_dict)
    converter.register_structure_hook_func(_is_enum_type, _structure_enum)
    converter.register_structure_hook(int, _structure_int)
    converter.register_structure_hook(float, _structure_float)
    converter.register_structure_hook(bool, _structure_bool)
    converter.register_structure_hook(str, _structure_str)
    converter.register_structure_hook_func(lambda t: t is Any, _structure_any)
    converter.register_unstructure_hook_func(
        lambda t: isinstance(t, type) and attr.has(t), _unstructure_attrs
    )
    converter.register_unstructure_hook_func(
        lambda t: isinstance(t, type) and issubclass(t, Mapping), _unstructure_mapping
    )
    converter.register_unstructure_hook_func(
        lambda t: isinstance(t, type) and issubclass(t, (list, tuple)), _unstructure_sequence
    )
    converter.register_unstructure_hook_func(_is_enum_type, lambda e: e.value)
    return converter


settings_converter: cattrs.Converter = _make_converter()
