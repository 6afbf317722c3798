"""create_reward_provider: the one place that maps a reward signal type to its class."""

from __future__ import annotations

from typing import Any

from mlagents_fast.trainers.exception import TrainerConfigError
from mlagents_fast.trainers.settings import RewardSignalType
from mlagents_fast.trainers.torch_entities.components.reward_providers.base_reward_provider import (
    BaseRewardProvider,
)
from mlagents_fast.trainers.torch_entities.components.reward_providers.curiosity_reward_provider import (
    CuriosityRewardProvider,
)
from mlagents_fast.trainers.torch_entities.components.reward_providers.extrinsic_reward_provider import (
    ExtrinsicRewardProvider,
)
from mlagents_fast.trainers.torch_entities.components.reward_providers.gail_reward_provider import (
    GAILRewardProvider,
)
from mlagents_fast.trainers.torch_entities.components.reward_providers.rnd_reward_provider import (
    RNDRewardProvider,
)

__all__ = ["NAME_TO_CLASS", "create_reward_provider"]

NAME_TO_CLASS: dict[Any, type[BaseRewardProvider]] = {
    RewardSignalType.EXTRINSIC: ExtrinsicRewardProvider,
    RewardSignalType.CURIOSITY: CuriosityRewardProvider,
    RewardSignalType.RND: RNDRewardProvider,
    RewardSignalType.GAIL: GAILRewardProvider,
}


def create_reward_provider(name: Any, specs: Any, settings: Any) -> BaseRewardProvider:
    """The reward provider for signal ``name`` (a RewardSignalType) with these settings."""
    rcls = NAME_TO_CLASS.get(name)
    if rcls is None:
        label = getattr(name, "value", name)
        supported = ", ".join(sorted(str(getattr(k, "value", k)) for k in NAME_TO_CLASS))
        raise TrainerConfigError(
            f"reward_signals: '{label}' is not supported yet by mlagents-fast "
            f"(supported: {supported}). Remove it from the reward_signals section."
        )
    return rcls(specs, settings)
