"""Property tests: any input either loads or fails with TrainerConfigError, and whatever loads
round-trips through as_dict() and YAML unchanged."""

import copy
import os
import warnings

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mlagents_fast.trainers.cli_utils import load_config
from mlagents_fast.trainers.exception import TrainerConfigError, TrainerConfigWarning
from mlagents_fast.trainers.settings import RunOptions
from repo_paths import CONFIG_DIR

BASES = [
    load_config(os.path.join(CONFIG_DIR, name))
    for name in (
        "ppo/WallJump_curriculum.yaml",
        "sac/Hallway.yaml",
        "imitation/Pyramids.yaml",
        "poca/SoccerTwos.yaml",
        "ppo/3DBall_randomize.yaml",
    )
]

# Anything YAML can hold.
yaml_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(max_size=12) | st.integers(-5, 5), children, max_size=4)
    ),
    max_leaves=12,
)


def _key_paths(value, prefix=()):
    """Every path of keys (and list indexes) into a loaded config."""
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _key_paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _key_paths(item, (*prefix, index))


def _replace(config, path, new_value):
    if not path:
        return new_value
    copied = copy.deepcopy(config)
    holder = copied
    for key in path[:-1]:
        holder = holder[key]
    holder[path[-1]] = new_value
    return copied


def _load_or_config_error(config):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TrainerConfigWarning)
        try:
            return RunOptions.from_dict(config)
        except TrainerConfigError as error:
            assert error.message  # every refusal says what is wrong
            return None


@st.composite
def mutated_configs(draw):
    base = draw(st.sampled_from(BASES))
    paths = list(_key_paths(base))
    path = draw(st.sampled_from(paths))
    return _replace(base, path, draw(yaml_values))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_configs())
def test_any_value_anywhere_loads_or_is_a_config_error(config):
    options = _load_or_config_error(config)
    if options is not None:
        dumped = yaml.safe_dump(options.as_dict())
        assert RunOptions.from_dict(yaml.safe_load(dumped)) == options


@st.composite
def valid_behaviors(draw):
    trainer_type = draw(st.sampled_from(["ppo", "sac", "poca"]))
    batch_size = draw(st.integers(1, 4096))
    hyperparameters = {
        "batch_size": batch_size,
        "learning_rate": draw(st.floats(1e-6, 1.0)),
        "learning_rate_schedule": draw(st.sampled_from(["constant", "linear"])),
    }
    network = {
        "hidden_units": draw(st.integers(1, 1024)),
        "num_layers": draw(st.integers(1, 4)),
        "normalize": draw(st.booleans()),
        "vis_encode_type": draw(
            st.sampled_from(["simple", "nature_cnn", "resnet", "match3", "fully_connected"])
        ),
    }
    if draw(st.booleans()):
        network["memory"] = {
            "sequence_length": draw(st.integers(1, batch_size)),
            "memory_size": 2 * draw(st.integers(1, 256)),
        }
    behavior = {
        "trainer_type": trainer_type,
        "hyperparameters": hyperparameters,
        "network_settings": network,
        "max_steps": draw(st.integers(1, 10**8)),
        "time_horizon": draw(st.integers(1, 2000)),
    }
    if draw(st.booleans()):
        behavior["reward_signals"] = {
            "extrinsic": {"gamma": draw(st.floats(0, 1))},
            "gail": {"demo_path": draw(st.text(min_size=1, max_size=8)), "use_vail": True},
        }
    if draw(st.booleans()):
        behavior["self_play"] = {"save_steps": draw(st.integers(1, 10**6))}
    return behavior


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.text(min_size=1, max_size=10), valid_behaviors(), max_size=3))
def test_valid_behaviors_load_and_round_trip(behaviors):
    options = RunOptions.from_dict({"behaviors": behaviors})
    assert set(options.behaviors) == set(behaviors)
    for name, behavior in behaviors.items():
        loaded = options.behaviors[name]
        assert loaded.trainer_type == behavior["trainer_type"]
        assert loaded.hyperparameters.batch_size == behavior["hyperparameters"]["batch_size"]
        assert loaded.network_settings.hidden_units == behavior["network_settings"]["hidden_units"]
    reloaded = RunOptions.from_dict(yaml.safe_load(yaml.safe_dump(options.as_dict())))
    assert reloaded == options
    assert reloaded.as_dict() == options.as_dict()
