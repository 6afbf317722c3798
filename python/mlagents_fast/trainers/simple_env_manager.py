"""One environment stepped in this process (the counterpart of ``mlagents.trainers.simple_env_manager``).

The fast path for built-in environments and for the Python API: no pipes, no copies; a step is
``get_action`` per behavior, ``set_actions``, ``env.step()``, ``get_steps`` per behavior.
"""

from __future__ import annotations

from typing import Any

from mlagents_fast.trainers.env_manager import AllStepResult, EnvironmentStep, EnvManager

__all__ = ["SimpleEnvManager"]


class SimpleEnvManager(EnvManager):
    """Steps a single BaseEnv in the calling thread."""

    def __init__(
        self,
        env: Any,
        env_params: Any = None,
        stats_channel: Any = None,
        training_analytics_channel: Any = None,
    ) -> None:
        """
        :param env: the BaseEnv to train on.
        :param env_params: its EnvironmentParametersChannel (None when it has none).
        :param stats_channel: its StatsSideChannel (None when it has none).
        :param training_analytics_channel: its TrainingAnalyticsSideChannel, told about each
            trainer created (None when the environment takes no analytics).
        """
        super().__init__()
        self.env_params = env_params
        self.stats_channel = stats_channel
        self.training_analytics_channel = training_analytics_channel
        self.env = env
        self.previous_step: EnvironmentStep = EnvironmentStep.empty(0)
        self.previous_all_action_info: dict[str, Any] = {}

    def _step(self) -> list[EnvironmentStep]:
        all_action_info = self._take_step(self.previous_step)
        self.previous_all_action_info = all_action_info
        for brain_name, action_info in all_action_info.items():
            self.env.set_actions(brain_name, action_info.env_action)
        self.env.step()
        step_info = EnvironmentStep(
            self._generate_all_results(),
            0,
            self.previous_all_action_info,
            self._environment_stats(),
        )
        self.previous_step = step_info
        return [step_info]

    def _reset_env(self, config: dict[str, Any] | None = None) -> list[EnvironmentStep]:
        self.set_env_parameters(config)
        self.env.reset()
        self.previous_step = EnvironmentStep(self._generate_all_results(), 0, {}, {})
        return [self.previous_step]

    def set_env_parameters(self, config: dict[str, Any] | None = None) -> None:
        if config is not None and self.env_params is not None:
            for key, value in config.items():
                value.apply(key, self.env_params)

    def on_training_started(self, behavior_name: str, trainer_settings: Any) -> None:
        if self.training_analytics_channel is not None:
            self.training_analytics_channel.training_started(behavior_name, trainer_settings)

    @property
    def training_behaviors(self) -> dict[str, Any]:
        return dict(self.env.behavior_specs)

    def close(self) -> None:
        self.env.close()

    def _environment_stats(self) -> dict[str, Any]:
        if self.stats_channel is None:
            return {}
        return self.stats_channel.get_and_reset_stats()

    def _generate_all_results(self) -> AllStepResult:
        all_step_result: AllStepResult = {}
        for brain_name in self.env.behavior_specs:
            all_step_result[brain_name] = self.env.get_steps(brain_name)
        return all_step_result
