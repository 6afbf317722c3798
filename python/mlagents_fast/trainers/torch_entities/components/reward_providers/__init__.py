"""Reward signals. Only ``extrinsic`` is implemented; curiosity, gail and rnd are refused by
:func:`create_reward_provider` with a TrainerConfigError."""

from mlagents_fast.trainers.torch_entities.components.reward_providers.base_reward_provider import (
    BaseRewardProvider,
)
from mlagents_fast.trainers.torch_entities.components.reward_providers.extrinsic_reward_provider import (
    ExtrinsicRewardProvider,
)
from mlagents_fast.trainers.torch_entities.components.reward_providers.reward_provider_factory import (
    create_reward_provider,
)

__all__ = ["BaseRewardProvider", "ExtrinsicRewardProvider", "create_reward_provider"]
