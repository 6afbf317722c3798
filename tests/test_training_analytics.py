"""Training analytics go to Unity from environment worker 0 only, as ML-Agents 1.1.0 sends them:
worker 0 gets the trainer's TrainingAnalyticsSideChannel, fills it with the run's options when
the environment declares the ``trainingAnalytics`` capability, and adds each behavior's trainer
when it is created; the other workers get no analytics channel of the trainer's."""

from __future__ import annotations

import json
from types import SimpleNamespace

import cloudpickle
from google.protobuf.any_pb2 import Any as AnyProto
from mlagents_fast.envs.communicator_objects import training_analytics_pb2
from mlagents_fast.envs.env_opener import make_env
from mlagents_fast.envs.side_channel import DefaultTrainingAnalyticsSideChannel
from mlagents_fast.trainers.env_workers import (
    EnvChannels,
    EnvironmentCommand,
    EnvironmentRequest,
    EnvWorker,
)
from mlagents_fast.trainers.settings import RunOptions
from mlagents_fast.trainers.simple_env_manager import SimpleEnvManager
from mlagents_fast.trainers.subprocess_env_manager import SubprocessEnvManager
from mlagents_fast.trainers.training_analytics_side_channel import TrainingAnalyticsSideChannel

BEHAVIOR = "GoalSeeker1D?team=0"
ANALYTICS_ID = DefaultTrainingAnalyticsSideChannel.CHANNEL_ID


class AnalyticsRecordingEnv:
    """A built-in environment that declares Unity's ``trainingAnalytics`` capability and writes
    to ``record_path`` (JSON lines) the side channels it was given, then each analytics message
    it receives with its reset or step, as Unity would receive them."""

    def __init__(self, worker_id, side_channels, record_path, takes_analytics=True):
        self.analytics = [c for c in side_channels if c.channel_id == ANALYTICS_ID]
        others = [c for c in side_channels if c.channel_id != ANALYTICS_ID]
        self.env = make_env(
            "builtin:GoalSeeker1D", seed=5, worker_id=worker_id, side_channels=others
        )
        self.academy_capabilities = SimpleNamespace(trainingAnalytics=takes_analytics)
        self.record_path = record_path
        self._write({"channels": [type(c).__name__ for c in side_channels]})

    def _write(self, record):
        with open(self.record_path, "a") as f:
            f.write(json.dumps(record) + "\n")

    def _deliver_analytics(self):
        for channel in self.analytics:
            for payload in channel.message_queue:
                wrapped = AnyProto.FromString(bytes(payload))
                name = wrapped.TypeName().rsplit(".", 1)[-1]
                message = getattr(training_analytics_pb2, name)()
                wrapped.Unpack(message)
                self._write({"message": name, **_fields(message)})
            channel.message_queue = []

    def reset(self):
        self._deliver_analytics()
        self.env.reset()

    def step(self):
        self._deliver_analytics()
        self.env.step()

    @property
    def behavior_specs(self):
        return self.env.behavior_specs

    def get_steps(self, name):
        return self.env.get_steps(name)

    def set_actions(self, name, actions):
        self.env.set_actions(name, actions)

    def close(self):
        self.env.close()


def _fields(message):
    return {field.name: value for field, value in message.ListFields()}


def records(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def run_options(num_envs):
    return RunOptions.from_dict(
        {
            "behaviors": {"GoalSeeker1D": {"trainer_type": "ppo"}},
            "env_settings": {
                "env_path": "builtin:GoalSeeker1D",
                "num_envs": num_envs,
                "timeout_wait": 300,
            },
        }
    )


def test_only_worker_0_sends_the_run_and_each_trainer_to_unity(tmp_path):
    options = run_options(num_envs=2)

    def create(worker_id, side_channels):
        return AnalyticsRecordingEnv(worker_id, side_channels, tmp_path / f"{worker_id}.jsonl")

    manager = SubprocessEnvManager(create, options, n_env=2)
    try:
        manager.reset()
        manager.on_training_started(BEHAVIOR, options.behaviors["GoalSeeker1D"])
        manager.reset()  # carries what was queued since the first reset
    finally:
        manager.close()

    first, *messages = records(tmp_path / "0.jsonl")
    assert first["channels"] == [
        "EnvironmentParametersChannel",
        "EngineConfigurationChannel",
        "StatsSideChannel",
        "TrainingAnalyticsSideChannel",
    ]
    assert [m["message"] for m in messages] == [
        "TrainingEnvironmentInitialized",
        "TrainingBehaviorInitialized",
    ]
    environment, behavior = messages
    assert environment["num_envs"] == 2
    assert json.loads(environment["run_options"])["env_settings"]["num_envs"] == 2
    assert behavior["trainer_type"] == "ppo" and behavior["extrinsic_reward_enabled"]
    assert behavior["behavior_name"] == TrainingAnalyticsSideChannel._hash(BEHAVIOR)

    # Worker 1: ML-Agents' three channels, nothing of the trainer's analytics.
    assert records(tmp_path / "1.jsonl") == [
        {
            "channels": [
                "EnvironmentParametersChannel",
                "EngineConfigurationChannel",
                "StatsSideChannel",
            ]
        }
    ]


def test_run_options_that_are_not_a_run_options_send_nothing(tmp_path):
    # Managers built with a plain namespace of settings (as tests do) still train.
    path = tmp_path / "0.jsonl"

    def create(worker_id, side_channels):
        return AnalyticsRecordingEnv(worker_id, side_channels, path)

    namespace = SimpleNamespace(env_settings=SimpleNamespace(num_envs=1))
    worker = EnvWorker(cloudpickle.dumps(create), 0, None, namespace)
    try:
        assert worker.channels.training_analytics is None
        worker.handle(EnvironmentRequest(EnvironmentCommand.RESET))
    finally:
        worker.close()
    assert [r for r in records(path) if "message" in r] == []


def test_an_environment_without_the_capability_gets_no_analytics(tmp_path):
    path = tmp_path / "0.jsonl"

    def create(worker_id, side_channels):
        return AnalyticsRecordingEnv(worker_id, side_channels, path, takes_analytics=False)

    options = run_options(num_envs=1)
    worker = EnvWorker(cloudpickle.dumps(create), 0, None, options)
    try:
        assert worker.channels.training_analytics is None
        # The trainer still announces its trainers; nothing goes out.
        started = (BEHAVIOR, options.behaviors["GoalSeeker1D"])
        assert (
            worker.handle(EnvironmentRequest(EnvironmentCommand.TRAINING_STARTED, started)) is None
        )
        worker.handle(EnvironmentRequest(EnvironmentCommand.RESET))
    finally:
        worker.close()
    assert [r for r in records(path) if "message" in r] == []


def test_the_in_process_environment_of_a_single_env_run_is_worker_0(tmp_path):
    # mlagents-fast-learn with --num-envs 1 steps the environment here (SimpleEnvManager);
    # ML-Agents' worker 0 would send the same two messages from its process.
    options = run_options(num_envs=1)
    path = tmp_path / "0.jsonl"
    channels = EnvChannels.create(None, with_training_analytics=True)
    env = AnalyticsRecordingEnv(0, channels.as_list(), path)
    channels.environment_initialized(env, options)
    manager = SimpleEnvManager(
        env, channels.environment_parameters, channels.stats, channels.training_analytics
    )
    try:
        manager.reset()
        manager.on_training_started(BEHAVIOR, options.behaviors["GoalSeeker1D"])
        manager.reset()
    finally:
        manager.close()
    sent = [r for r in records(path) if "message" in r]
    assert [m["message"] for m in sent] == [
        "TrainingEnvironmentInitialized",
        "TrainingBehaviorInitialized",
    ]
    assert sent[0]["num_envs"] == 1


def test_the_run_options_training_device_type_is_reported():
    def sent_device(device):
        options = RunOptions.from_dict({"torch_settings": {"device": device}})
        channel = TrainingAnalyticsSideChannel()
        channel.environment_initialized(options)
        message = training_analytics_pb2.TrainingEnvironmentInitialized()
        assert AnyProto.FromString(bytes(channel.message_queue[0])).Unpack(message)
        return message.torch_device_type

    # What the run was told to use (the trainer checked it before the workers started), not
    # the default of the (spawned) worker process.
    assert sent_device("cuda:1") == "cuda"
    assert sent_device("cpu") == "cpu"
    import torch

    assert sent_device(None) == ("cuda" if torch.cuda.is_available() else "cpu")
