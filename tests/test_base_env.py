"""mlagents_fast.envs.base_env follows mlagents_envs 1.1.0's API and behavior."""

from __future__ import annotations

import numpy as np
import pytest
from mlagents_fast.envs.base_env import (
    ActionSpec,
    ActionTuple,
    BaseEnv,
    BehaviorMapping,
    BehaviorSpec,
    DecisionStep,
    DecisionSteps,
    DimensionProperty,
    ObservationSpec,
    ObservationType,
    TerminalStep,
    TerminalSteps,
)
from mlagents_fast.envs.exception import UnityActionException, UnityException
from mlagents_fast.exceptions import MlagentsFastError


def make_spec(action_spec: ActionSpec) -> BehaviorSpec:
    return BehaviorSpec(
        observation_specs=[
            ObservationSpec((3,), (DimensionProperty.NONE,), ObservationType.DEFAULT, "vec"),
            ObservationSpec(
                (3, 4, 5),
                (
                    DimensionProperty.NONE,
                    DimensionProperty.TRANSLATIONAL_EQUIVARIANCE,
                    DimensionProperty.TRANSLATIONAL_EQUIVARIANCE,
                ),
                ObservationType.DEFAULT,
                "cam",
            ),
        ],
        action_spec=action_spec,
    )


def test_decision_steps_index_by_agent_id():
    obs = [np.arange(12, dtype=np.float32).reshape(3, 4)]
    masks = [np.array([[True, False], [False, False], [False, True]])]
    steps = DecisionSteps(
        obs=obs,
        reward=np.array([0.5, 1.0, -1.0], dtype=np.float32),
        agent_id=np.array([10, 20, 30], dtype=np.int32),
        action_mask=masks,
        group_id=np.array([0, 1, 1], dtype=np.int32),
        group_reward=np.array([0.0, 2.0, 2.0], dtype=np.float32),
    )
    assert len(steps) == 3
    assert list(steps) == [10, 20, 30]
    assert steps.agent_id_to_index == {10: 0, 20: 1, 30: 2}
    step = steps[30]
    assert isinstance(step, DecisionStep)
    np.testing.assert_array_equal(step.obs[0], [8, 9, 10, 11])
    assert step.reward == pytest.approx(-1.0)
    assert step.agent_id == 30
    np.testing.assert_array_equal(step.action_mask[0], [False, True])
    assert step.group_id == 1 and step.group_reward == pytest.approx(2.0)
    with pytest.raises(KeyError, match="agent_id 99 is not present in the DecisionSteps"):
        steps[99]
    assert 20 in steps and 99 not in steps


def test_terminal_steps_index_by_agent_id():
    steps = TerminalSteps(
        obs=[np.array([[1.0], [2.0]], dtype=np.float32)],
        reward=np.array([1.0, -1.0], dtype=np.float32),
        interrupted=np.array([True, False]),
        agent_id=np.array([7, 8], dtype=np.int32),
        group_id=np.array([0, 0], dtype=np.int32),
        group_reward=np.array([0.0, 0.0], dtype=np.float32),
    )
    step = steps[8]
    assert isinstance(step, TerminalStep)
    assert step.obs[0][0] == 2.0 and step.reward == -1.0 and not step.interrupted
    assert bool(steps[7].interrupted)
    with pytest.raises(KeyError):
        steps[1]


def test_empty_steps_have_spec_shapes():
    spec = make_spec(ActionSpec.create_discrete((2, 3)))
    decision = DecisionSteps.empty(spec)
    terminal = TerminalSteps.empty(spec)
    for steps in (decision, terminal):
        assert len(steps) == 0
        assert [o.shape for o in steps.obs] == [(0, 3), (0, 3, 4, 5)]
        assert all(o.dtype == np.float32 for o in steps.obs)
        assert steps.agent_id.dtype == np.int32 and steps.reward.dtype == np.float32
        assert steps.group_id.dtype == np.int32 and steps.group_reward.dtype == np.float32
    assert decision.action_mask is None
    assert terminal.interrupted.dtype == bool


def test_action_spec_constructors_and_sizes():
    continuous = ActionSpec.create_continuous(3)
    discrete = ActionSpec.create_discrete((2, 5))
    hybrid = ActionSpec.create_hybrid(2, (4,))
    assert continuous == ActionSpec(3, ())
    assert continuous.is_continuous() and not continuous.is_discrete()
    assert discrete.discrete_size == 2 and discrete.is_discrete()
    assert hybrid.continuous_size == 2 and hybrid.discrete_branches == (4,)
    assert not hybrid.is_discrete() and not hybrid.is_continuous()
    assert str(hybrid) == "Continuous: 2, Discrete: (4,)"
    assert ActionSpec(1, (2,)) != ActionSpec(1, (3,))


def test_empty_and_random_actions():
    spec = ActionSpec.create_hybrid(2, (3, 5))
    empty = spec.empty_action(4)
    assert empty.continuous.shape == (4, 2) and empty.continuous.dtype == np.float32
    assert empty.discrete.shape == (4, 2) and empty.discrete.dtype == np.int32
    assert not empty.continuous.any() and not empty.discrete.any()
    np.random.seed(0)
    rand = spec.random_action(500)
    assert rand.continuous.dtype == np.float32 and rand.discrete.dtype == np.int32
    assert rand.continuous.min() >= -1.0 and rand.continuous.max() <= 1.0
    assert set(np.unique(rand.discrete[:, 0])) == {0, 1, 2}
    assert set(np.unique(rand.discrete[:, 1])) == {0, 1, 2, 3, 4}
    continuous_only = ActionSpec.create_continuous(1).random_action(3)
    assert continuous_only.discrete.shape == (3, 0)


def test_action_tuple_fills_missing_part_and_casts():
    only_discrete = ActionTuple(discrete=np.array([[1], [2]], dtype=np.int64))
    assert only_discrete.discrete.dtype == np.int32
    assert only_discrete.continuous.shape == (2, 0)
    only_continuous = ActionTuple(continuous=np.ones((3, 2), dtype=np.float64))
    assert only_continuous.continuous.dtype == np.float32
    assert only_continuous.discrete.shape == (3, 0)
    assert ActionTuple().continuous is None


def test_validate_action_rejects_wrong_shapes():
    spec = ActionSpec.create_hybrid(2, (3,))
    good = spec.empty_action(4)
    assert spec._validate_action(good, 4, "b") is good
    with pytest.raises(
        UnityActionException, match=r"behavior b needs a continuous input.*\(4, 2\)"
    ):
        spec._validate_action(ActionTuple(np.zeros((4, 3)), np.zeros((4, 1))), 4, "b")
    with pytest.raises(UnityActionException, match=r"discrete input of dimension \(4, 1\)"):
        spec._validate_action(ActionTuple(np.zeros((4, 2)), np.zeros((4, 2))), 4, "b")


def test_dimension_property_and_observation_type():
    assert issubclass(DimensionProperty, int)
    combined = DimensionProperty.TRANSLATIONAL_EQUIVARIANCE | DimensionProperty.VARIABLE_SIZE
    assert int(combined) == 6
    assert DimensionProperty(4) is DimensionProperty.VARIABLE_SIZE
    assert DimensionProperty.UNSPECIFIED == 0 and DimensionProperty.NONE == 1
    assert ObservationType(1) is ObservationType.GOAL_SIGNAL
    assert not isinstance(ObservationType.DEFAULT, int)


def test_behavior_mapping_is_read_only_mapping():
    spec = make_spec(ActionSpec.create_continuous(1))
    mapping = BehaviorMapping({"a?team=0": spec})
    assert len(mapping) == 1 and list(mapping) == ["a?team=0"] and mapping["a?team=0"] is spec
    assert not hasattr(mapping, "__setitem__")
    assert [o.shape for o in spec.observation_specs] == [(3,), (3, 4, 5)]


def test_base_env_requires_every_method():
    with pytest.raises(TypeError):
        BaseEnv()
    assert BaseEnv.__abstractmethods__ == {
        "step",
        "reset",
        "close",
        "behavior_specs",
        "set_actions",
        "set_action_for_agent",
        "get_steps",
    }


def test_exceptions_are_mlagents_fast_errors():
    assert issubclass(UnityActionException, UnityException)
    assert issubclass(UnityException, MlagentsFastError)
