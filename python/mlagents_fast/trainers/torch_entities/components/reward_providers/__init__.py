"""Reward signals: extrinsic, curiosity, rnd and gail."""

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
from mlagents_fast.trainers.torch_entities.components.reward_providers.reward_provider_factory import (
    create_reward_provider,
)
from mlagents_fast.trainers.torch_entities.components.reward_providers.rnd_reward_provider import (
    RNDRewardProvider,
)

__all__ = [
    "BaseRewardProvider",
    "CuriosityRewardProvider",
    "ExtrinsicRewardProvider",
    "GAILRewardProvider",
    "RNDRewardProvider",
    "create_reward_provider",
]
