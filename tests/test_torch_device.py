"""The training device (--torch-device, torch_settings.device): chosen as ML-Agents 1.1.0
chooses it, and honoured by every module and every tensor of acting, updates, value estimates,
reward signals and normalizers; checkpoints and ONNX files do not depend on it.

Forgotten devices are made to fail even without a GPU: under ``with torch.device("meta")`` a
tensor created without naming its device lands on the meta device, which holds no data, and
mixing it with the networks raises. The networks are built under a CPU default device, as they
are built on the CPU and moved with ``.to()``. They train on ``MLAGENTS_FAST_TEST_DEVICE``
(default ``cpu``; ``cuda`` on a GPU machine runs the same checks there), and the tests marked
``needs_cuda`` move real checkpoints between a GPU and the CPU.
"""

import contextlib
import functools
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from mlagents_fast import torch_utils
from mlagents_fast.torch_utils import device as torch_utils_module
from mlagents_fast.trainers.buffer import AgentBuffer
from mlagents_fast.trainers.exception import TrainerConfigError
from mlagents_fast.trainers.model_saver.torch_model_saver import (
    TorchModelSaver,
    save_checkpoint_file,
)
from mlagents_fast.trainers.poca.optimizer_torch import TorchPOCAOptimizer
from mlagents_fast.trainers.policy.torch_policy import TorchPolicy
from mlagents_fast.trainers.ppo.optimizer_torch import TorchPPOOptimizer
from mlagents_fast.trainers.sac.optimizer_torch import TorchSACOptimizer
from mlagents_fast.trainers.settings import (
    CuriositySettings,
    EncoderType,
    POCASettings,
    PPOSettings,
    RewardSignalSettings,
    RewardSignalType,
    RNDSettings,
    SACSettings,
    TorchSettings,
    TrainerSettings,
)
from mlagents_fast.trainers.torch_entities import utils as torch_entity_utils
from mlagents_fast.trainers.torch_entities.components.bc.module import BCModule
from mlagents_fast.trainers.torch_entities.components.reward_providers.gail_reward_provider import (
    GAILRewardProvider,
)
from mlagents_fast.trainers.torch_entities.model_serialization import ModelSerializer
from mlagents_fast.trainers.torch_entities.networks import SharedActorCritic, SimpleActor
from mlagents_fast.trainers.torch_entities.utils import ModelUtils, to_device
from policy_fixtures import (
    behavior_spec,
    decision_steps,
    network_settings,
    random_obs,
    single_thread_torch,
    training_batch,
    vector_spec,
    visual_spec,
)
from torch.overrides import TorchFunctionMode

single_thread_torch()

CPU = torch.device("cpu")
META = torch.device("meta")
# The device these tests train on, as tensors report it (cuda:0 for "cuda").
TRAIN = torch.empty(
    0, device=torch_utils.resolve_device(os.environ.get("MLAGENTS_FAST_TEST_DEVICE", "cpu"))
).device
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here")


@pytest.fixture(autouse=True)
def _train_on_the_test_device():
    saved = torch_utils_module._device
    torch_utils_module._device = TRAIN
    yield
    torch_utils_module._device = saved


# --- choosing the device ------------------------------------------------------------------


def test_an_unset_device_is_cuda_when_available_else_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert torch_utils.resolve_device(None) == CPU
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert torch_utils.resolve_device(None) == torch.device("cuda")
    assert torch_utils.resolve_device("cuda:1") == torch.device("cuda", 1)
    with pytest.raises(TrainerConfigError, match=r"has 2 CUDA device\(s\), cuda:0 to cuda:1"):
        torch_utils.resolve_device("cuda:2")


def test_devices_this_machine_lacks_or_that_are_none_are_configuration_errors(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert torch_utils.resolve_device("cpu") == CPU
    with pytest.raises(TrainerConfigError, match="--torch-device cuda: CUDA is not available"):
        torch_utils.resolve_device("cuda")
    with pytest.raises(TrainerConfigError, match="'gpu': not a torch device"):
        torch_utils.resolve_device("gpu")
    with pytest.raises(TrainerConfigError, match="training runs on cpu, cuda, cuda:N or mps"):
        torch_utils.resolve_device("meta")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None:
        monkeypatch.setattr(mps, "is_available", lambda: False)
    with pytest.raises(TrainerConfigError, match="--torch-device mps: the Apple MPS backend"):
        torch_utils.resolve_device("mps")
    with pytest.raises(TrainerConfigError) as error:
        torch_utils.set_torch_config(TorchSettings(device="cuda:0"))
    assert error.value.key_path == ["torch_settings", "device"]


def test_set_torch_config_chooses_the_default_device():
    torch_utils.set_torch_config(TorchSettings(device="cpu"))
    assert torch_utils.default_device() == CPU
    torch_utils_module._device = None  # not configured yet: ML-Agents' rule
    assert torch_utils.default_device() == torch_utils.resolve_device(None)


@pytest.mark.smoke
def test_command_line_device_errors_are_one_line_and_exit_2(tmp_path):
    code = (
        "import sys\n"
        "from mlagents_fast.trainers.learn import main\n"
        "for device in ('gpu', 'cuda:7'):\n"
        "    try:\n"
        "        main(['--env', 'builtin:GoalSeeker1D', '--torch-device', device])\n"
        "    except SystemExit as exit:\n"
        "        print('exit', exit.code)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "CUDA_VISIBLE_DEVICES": ""},
    )
    assert result.returncode == 0, result.stderr
    exits = [line for line in result.stdout.splitlines() if line.startswith("exit")]
    assert exits == ["exit 2", "exit 2"], result.stdout
    not_a_device, no_cuda = result.stderr.strip().splitlines()
    assert "--torch-device 'gpu': not a torch device" in not_a_device
    assert "--torch-device cuda:7: CUDA is not available" in no_cuda
    assert not os.path.exists(tmp_path / "results")


# --- tensors reach the device through one helper ---------------------------------------------


def test_host_tensors_go_to_cuda_through_pinned_memory_without_blocking(monkeypatch):
    calls = []
    host = torch.arange(4.0)

    class Pinned:
        def to(self, device, non_blocking=False):
            calls.append(("to", device, non_blocking))
            return "on the device"

    def pin_memory(self):
        calls.append(("pin", self is host))
        return Pinned()

    monkeypatch.setattr(torch.Tensor, "pin_memory", pin_memory)
    assert to_device(host, torch.device("cuda", 1)) == "on the device"
    assert calls == [("pin", True), ("to", torch.device("cuda", 1), True)]
    # Already on the device (or CPU to CPU): the tensor itself, no copy.
    assert to_device(host, CPU) is host
    assert ModelUtils.list_to_tensor(np.ones(3, np.float32), device=CPU).device == CPU


def test_the_helpers_default_to_the_configured_device(monkeypatch):
    seen = []
    monkeypatch.setattr(torch_entity_utils, "default_device", lambda: seen.append(1) or CPU)
    ModelUtils.list_to_tensor([1.0, 2.0])
    torch_entity_utils.as_float32_tensor(np.zeros(2))
    assert seen == [1, 1]


class DeviceAudit(TorchFunctionMode):
    """Records the device of every tensor any torch function computes: ``devices`` maps each
    device to the names of the functions that made tensors there.

    Host-side staging and the copies back for numpy are left out (they are on the CPU by
    design when training on a GPU): numpy arrays made tensors, pinned, and tensors copied.
    """

    TRANSFERS = frozenset({"as_tensor", "from_numpy", "pin_memory", "cpu", "to", "numpy"})

    def __init__(self):
        super().__init__()
        self.devices = {}

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        name = getattr(func, "__name__", repr(func))
        if name not in self.TRANSFERS:
            for value in out if isinstance(out, (tuple, list)) else (out,):
                if isinstance(value, torch.Tensor):
                    self.devices.setdefault(value.device, set()).add(name)
        return out


def built_on_cpu(fn):
    @functools.wraps(fn)
    def build(*args, **kwargs):
        with torch.device("cpu"):
            return fn(*args, **kwargs)

    return build


def trainer_settings(trainer_type, memory=None, normalize=True, encoder=EncoderType.SIMPLE):
    signals = {
        RewardSignalType.EXTRINSIC: RewardSignalSettings(),
        RewardSignalType.CURIOSITY: CuriositySettings(strength=0.1),
        RewardSignalType.RND: RNDSettings(strength=0.1),
    }
    for signal in (RewardSignalType.CURIOSITY, RewardSignalType.RND):
        signals[signal].network_settings = network_settings(hidden_units=8, vis_encode_type=encoder)
    hyperparameters = (
        {"ppo": PPOSettings, "poca": POCASettings}[trainer_type](batch_size=16, buffer_size=32)
        if trainer_type != "sac"
        else SACSettings(batch_size=16, buffer_size=64)
    )
    return TrainerSettings(
        trainer_type=trainer_type,
        hyperparameters=hyperparameters,
        network_settings=network_settings(
            hidden_units=8, memory=memory, normalize=normalize, vis_encode_type=encoder
        ),
        reward_signals=signals,
        max_steps=1000,
    )


@built_on_cpu
def build(trainer_type, spec, settings, shared_critic=False):
    actor_cls, kwargs = SimpleActor, {}
    if shared_critic:
        actor_cls, kwargs = (
            SharedActorCritic,
            {"stream_names": [signal.value for signal in settings.reward_signals]},
        )
    elif trainer_type == "sac":
        kwargs = {"conditional_sigma": True, "tanh_squash": True}
    policy = TorchPolicy(0, spec, settings.network_settings, actor_cls, kwargs)
    optimizer_cls = {
        "ppo": TorchPPOOptimizer,
        "sac": TorchSACOptimizer,
        "poca": TorchPOCAOptimizer,
    }[trainer_type]
    return policy, optimizer_cls(policy, settings)


def full_batch(policy, spec, n, rng):
    """Every key the PPO and SAC updates and the reward signals read."""
    obs = random_obs(spec, n, rng)
    info = policy.get_action(decision_steps(spec, obs))
    cont = info.action.continuous if spec.action_spec.continuous_size else None
    disc = info.action.discrete if spec.action_spec.discrete_branches else None
    names = ["extrinsic", "curiosity", "rnd"]
    memories = info.outputs.get("memory_out")
    return training_batch(
        spec,
        obs,
        cont,
        disc,
        info.outputs["log_probs"].continuous if cont is not None else None,
        info.outputs["log_probs"].discrete if disc is not None else None,
        rng.standard_normal(n).astype(np.float32),
        {name: np.ones(n, np.float32) for name in names},
        {name: np.full(n, 0.9, np.float32) for name in names},
        memories=None if memories is None else np.zeros_like(memories),
        next_obs=random_obs(spec, n, rng),
        rewards={name: np.ones(n, np.float32) for name in names},
        dones=np.zeros(n, np.float32),
    )


def trajectory_buffer(batch):
    buffer = AgentBuffer()
    for key in batch:
        for row in batch[key]:
            buffer[key].append(row)
    return buffer


def exercise(trainer_type, spec, settings, shared_critic=False):
    """Act, estimate values, update normalizers, reward signals and the networks, all under
    a meta default device; returns the devices of every tensor made."""
    rng = np.random.default_rng(0)
    policy, optimizer = build(trainer_type, spec, settings, shared_critic)
    policy.acting_device = policy.device  # acting on the CPU copy is tested on its own below
    batch = full_batch(policy, spec, 16, rng)
    next_obs = [o[0] for o in random_obs(spec, 1, rng)]
    with torch.device("meta"), DeviceAudit() as audit:
        info = policy.get_action(decision_steps(spec, random_obs(spec, 3, rng)))
        policy.update_normalization(batch)
        optimizer.get_trajectory_value_estimates(trajectory_buffer(batch), next_obs, False, "a")
        for provider in optimizer.reward_signals.values():
            provider.evaluate(batch)
        optimizer.update_reward_signals(batch)
        stats = optimizer.update(batch, num_sequences=16 // policy.sequence_length)
    assert all(np.isfinite(value) for value in stats.values())
    assert info.env_action is not None
    assert set(audit.devices) == {TRAIN}, audit.devices
    return set(audit.devices)


# Each encoder with the smallest image it takes (ModelUtils.MIN_RESOLUTION_FOR_ENCODER).
VISUAL_ENCODERS = [
    (EncoderType.SIMPLE, 20),
    (EncoderType.NATURE_CNN, 36),
    (EncoderType.RESNET, 15),
    (EncoderType.MATCH3, 5),
    (EncoderType.FULLY_CONNECTED, 5),
]


@pytest.mark.parametrize("encoder,side", VISUAL_ENCODERS, ids=[e.value for e, _ in VISUAL_ENCODERS])
def test_every_tensor_of_ppo_names_its_device_with_each_visual_encoder(encoder, side):
    spec = behavior_spec([vector_spec(3), visual_spec(2, side, side)], continuous=1, branches=(3,))
    devices = exercise("ppo", spec, trainer_settings("ppo", encoder=encoder))
    assert devices == {TRAIN}


@pytest.mark.parametrize(
    "trainer_type,continuous,branches,memory,shared",
    [
        ("ppo", 2, (), (4, 8), False),
        ("ppo", 0, (3, 2), (4, 8), True),
        ("ppo", 1, (2,), None, True),
        ("sac", 2, (), None, False),
        ("sac", 0, (3, 2), None, False),
        ("sac", 1, (2,), (4, 8), False),
    ],
)
def test_every_tensor_of_ppo_and_sac_names_its_device(
    trainer_type, continuous, branches, memory, shared
):
    spec = behavior_spec([vector_spec(5)], continuous=continuous, branches=branches)
    settings = trainer_settings(trainer_type, memory=memory)
    assert exercise(trainer_type, spec, settings, shared_critic=shared) == {TRAIN}


def test_the_audit_leaves_out_host_staging_and_copies_but_not_host_computation():
    host = np.zeros(2, np.float32)
    with DeviceAudit() as audit:
        torch.as_tensor(host, device="cpu").to(META)
        torch.from_numpy(host).cpu().numpy()
    assert audit.devices == {}
    with DeviceAudit() as audit:
        torch.as_tensor(host, device="cpu").exp()
    assert audit.devices == {CPU: {"exp"}}


def test_the_audit_catches_a_tensor_created_without_its_device():
    spec = behavior_spec([vector_spec(3)], continuous=1)
    policy, _ = build("ppo", spec, trainer_settings("ppo"))
    # What the networks would see if the policy built its inputs with a bare torch.as_tensor.
    with torch.device("meta"), pytest.raises(RuntimeError, match="meta"):
        policy.actor.get_action_and_stats([torch.as_tensor(np.zeros((2, 3), np.float32))])


@pytest.mark.parametrize("trainer_type", ["ppo", "sac", "poca"])
def test_every_module_and_optimizer_state_moves_to_the_training_device(trainer_type, monkeypatch):
    # Built for the meta device: every parameter and buffer of every module a checkpoint
    # holds (actor, critics, target, entropy coefficients, reward-signal networks) is there.
    monkeypatch.setattr(torch_utils_module, "_device", META)
    spec = behavior_spec([vector_spec(3), visual_spec(2, 20, 20)], continuous=1, branches=(2,))
    policy, optimizer = build(trainer_type, spec, trainer_settings(trainer_type, memory=(2, 8)))
    assert policy.device == META and policy.acting_device == META
    modules = {**policy.get_modules(), **optimizer.get_modules()}
    checked = 0
    for name, module in modules.items():
        if isinstance(module, torch.nn.Module) and name != "global_step":
            for tensor in [*module.parameters(), *module.buffers()]:
                assert tensor.device == META, name
                checked += 1
        elif isinstance(module, torch.optim.Optimizer):
            for group in module.param_groups:
                assert all(param.device == META for param in group["params"]), name
    assert checked > 50


# --- whole training runs ---------------------------------------------------------------------


UNDER_META = pytest.mark.parametrize(
    "under_meta", [True, pytest.param(False, marks=needs_cuda)], ids=["meta-default", "plain"]
)


@pytest.fixture
def whole_runs(monkeypatch):
    """Trainers built as in a real run (modules on the CPU, then moved), policies acting from
    a copy on another device, and a list of the updates that ran (a run that never updates
    would prove nothing)."""
    for cls in (TorchPPOOptimizer, TorchSACOptimizer, TorchPOCAOptimizer):
        monkeypatch.setattr(cls, "__init__", built_on_cpu(cls.__init__))
    policy_init = built_on_cpu(TorchPolicy.__init__)

    def init_acting_from_a_copy(self, *args, **kwargs):
        policy_init(self, *args, **kwargs)
        if self.acting_device == self.device:
            # Training on the CPU: act from a copy all the same (cpu:0 is another device to
            # the policy), as a policy training on CUDA does by default.
            self.acting_device = torch.device("cpu", 0)

    monkeypatch.setattr(TorchPolicy, "__init__", init_acting_from_a_copy)
    updated = []

    def counted(cls, method):
        def run(self, *args, **kwargs):
            updated.append(cls.__name__)
            return method(self, *args, **kwargs)

        monkeypatch.setattr(cls, method.__name__, run)

    for cls in (
        TorchPPOOptimizer,
        TorchSACOptimizer,
        TorchPOCAOptimizer,
        BCModule,
        GAILRewardProvider,
    ):
        counted(cls, cls.update)
    # torch.onnx's exporter makes tensors of its own; it runs on a CPU copy of the actor.
    monkeypatch.setattr(
        ModelSerializer, "export_policy_model", built_on_cpu(ModelSerializer.export_policy_model)
    )
    # Adam makes its step counters itself on its first step (without naming a device in some
    # torch versions): torch's business, done under the CPU default device as in a real run.
    monkeypatch.setattr(torch.optim.Adam, "step", built_on_cpu(torch.optim.Adam.step))
    return updated


@UNDER_META
def test_whole_ppo_and_sac_runs_name_every_device(tmp_path, whole_runs, under_meta):
    """PPO (batched and LSTM value estimates) and SAC with curiosity and RND, PPO with GAIL
    (VAIL, actions), behavioral cloning (PPO, LSTM PPO, SAC), normalizers, checkpoints and ONNX
    exports, under a meta default device (and, on a GPU, as a user runs them)."""
    from mlagents_fast.envs.builtin.experts import expert_for
    from mlagents_fast.envs.demo_writer import record_demonstration
    from mlagents_fast.envs.env_opener import make_env
    from mlagents_fast.trainers.run import train
    from mlagents_fast.trainers.settings import RunOptions

    updated = whole_runs
    demo = str(tmp_path / "expert.demo")
    expert_env = make_env("builtin:GoalSeeker1DHybrid", seed=5)
    try:
        record_demonstration(expert_env, expert_for("GoalSeeker1DHybrid"), demo, 100)
    finally:
        expert_env.close()
    signals = {
        "extrinsic": {"gamma": 0.9},
        "curiosity": {"gamma": 0.9, "strength": 0.01},
        "rnd": {"gamma": 0.9, "strength": 0.01},
    }
    gail = {"strength": 0.01, "demo_path": demo, "use_actions": True, "use_vail": True}
    bc = {"demo_path": demo, "strength": 0.1, "batch_size": 16}
    # 16 agents: a time horizon of 4 makes 64 steps a round, so each run updates before 200.
    common = {"time_horizon": 4, "summary_freq": 100, "checkpoint_interval": 150}
    behaviors = {
        # Batched value estimates (no memory), then the sequence path (LSTM).
        "ppo": {
            "trainer_type": "ppo",
            "hyperparameters": {"batch_size": 32, "buffer_size": 64, "num_epoch": 1},
            "network_settings": {"hidden_units": 8, "num_layers": 1, "normalize": True},
            "reward_signals": {**signals, "gail": gail},
            "behavioral_cloning": bc,
            "max_steps": 200,
            **common,
        },
        "ppo-lstm": {
            "trainer_type": "ppo",
            "hyperparameters": {"batch_size": 32, "buffer_size": 64, "num_epoch": 1},
            "network_settings": {
                "hidden_units": 8,
                "num_layers": 1,
                "normalize": True,
                "memory": {"sequence_length": 4, "memory_size": 8},
            },
            "behavioral_cloning": bc,
            "max_steps": 200,
            **common,
        },
        "sac": {
            "trainer_type": "sac",
            "hyperparameters": {"batch_size": 16, "buffer_size": 500, "buffer_init_steps": 50},
            "network_settings": {"hidden_units": 8, "num_layers": 1, "normalize": True},
            "reward_signals": signals,
            "behavioral_cloning": bc,
            "max_steps": 200,
            **common,
        },
    }
    expected_updates = {
        "ppo": {"TorchPPOOptimizer", "BCModule", "GAILRewardProvider"},
        "ppo-lstm": {"TorchPPOOptimizer", "BCModule"},
        "sac": {"TorchSACOptimizer", "BCModule"},
    }
    with torch.device("meta") if under_meta else contextlib.nullcontext():
        for run_id, behavior in behaviors.items():
            updated.clear()
            options = RunOptions.from_dict(
                {
                    "behaviors": {"GoalSeeker1DHybrid": behavior},
                    "torch_settings": {"device": str(TRAIN)},
                }
            )
            result = train(
                "builtin:GoalSeeker1DHybrid",
                options,
                run_id=run_id,
                results_dir=str(tmp_path),
                seed=1,
            )
            assert result.steps["GoalSeeker1DHybrid"] >= 200, run_id
            assert set(updated) == expected_updates[run_id], run_id
            assert os.path.isfile(tmp_path / run_id / "GoalSeeker1DHybrid.onnx")


@UNDER_META
@pytest.mark.parametrize("memory", [False, True], ids=["feedforward", "lstm"])
def test_whole_poca_runs_name_every_device(tmp_path, whole_runs, under_meta, memory):
    """POCA's centralized critic and baseline (group mates, absent mates, memories) on the
    training device, through a whole run on a cooperative env."""
    from mlagents_fast.trainers.run import train
    from mlagents_fast.trainers.settings import RunOptions
    from multiagent_fixtures import coop_env

    behavior = {
        "trainer_type": "poca",
        "hyperparameters": {"batch_size": 32, "buffer_size": 64, "num_epoch": 1},
        "network_settings": {"hidden_units": 8, "num_layers": 1, "normalize": True},
        "max_steps": 150,
        "time_horizon": 8,
        "summary_freq": 100,
    }
    if memory:
        behavior["network_settings"]["memory"] = {"sequence_length": 4, "memory_size": 8}
    options = RunOptions.from_dict(
        {"behaviors": {"Coop": behavior}, "torch_settings": {"device": str(TRAIN)}}
    )
    with torch.device("meta") if under_meta else contextlib.nullcontext():
        result = train(coop_env(seed=1), options, run_id="coop", results_dir=tmp_path, seed=2)
    assert result.steps["Coop"] >= 150
    assert "TorchPOCAOptimizer" in whole_runs
    assert os.path.isfile(tmp_path / "coop" / "Coop.onnx")


# --- acting on another device ----------------------------------------------------------------


def test_a_policy_training_on_cuda_acts_on_the_cpu():
    spec = behavior_spec([vector_spec(4)], continuous=1, branches=(2,))
    policy, _ = build("ppo", spec, trainer_settings("ppo"))
    assert policy.device == TRAIN
    assert policy.acting_device == (CPU if TRAIN.type == "cuda" else TRAIN)
    info = policy.get_action(decision_steps(spec, random_obs(spec, 3, np.random.default_rng(0))))
    assert info.env_action.continuous.shape == (3, 1)
    acting = policy.actor if policy._acting_copy is None else policy._acting_copy
    assert {p.device for p in acting.parameters()} == {policy.acting_device}


def test_acting_on_another_device_uses_a_copy_that_follows_training():
    # cpu:0 compares unequal to cpu, so the copy path runs here as it would for cuda -> cpu.
    spec = behavior_spec([vector_spec(4)], continuous=2)
    settings = trainer_settings("ppo")
    settings.network_settings.deterministic = True
    policy, optimizer = build("ppo", spec, settings)
    rng = np.random.default_rng(0)
    steps = decision_steps(spec, random_obs(spec, 6, rng))

    def actions():
        return policy.get_action(steps).action.continuous

    policy.acting_device = torch.device("cpu", 0)
    first = actions()
    copy = policy._acting_copy
    assert copy is not None and copy is not policy.actor
    policy.acting_device = policy.device
    same_actions(first, actions())

    batch = full_batch(policy, spec, 16, rng)
    policy.update_normalization(batch)  # replaces the normalizer's statistics
    optimizer.update(batch, num_sequences=16)  # writes the weights in place
    trained = actions()
    assert not np.array_equal(first, trained)
    policy.acting_device = torch.device("cpu", 0)
    same_actions(trained, actions())
    assert policy._acting_copy is copy  # refreshed, not rebuilt


def same_actions(a, b):
    """Equal on one kind of device; within float32 rounding between a GPU and the CPU."""
    if TRAIN.type == "cpu":
        np.testing.assert_array_equal(a, b)
    else:
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


# --- checkpoints and ONNX --------------------------------------------------------------------


def test_checkpoints_hold_cpu_tensors(tmp_path, monkeypatch):
    spec = behavior_spec([vector_spec(3)], continuous=1, branches=(2,))
    policy, optimizer = build("ppo", spec, trainer_settings("ppo"))
    optimizer.update(full_batch(policy, spec, 16, np.random.default_rng(0)), num_sequences=16)
    state = {
        name: module.state_dict()
        for name, module in {**policy.get_modules(), **optimizer.get_modules()}.items()
    }
    moved = []
    real_cpu = torch.Tensor.cpu

    def cpu(self, *args, **kwargs):
        moved.append(id(self))
        return real_cpu(self, *args, **kwargs)

    monkeypatch.setattr(torch.Tensor, "cpu", cpu)
    save_checkpoint_file(str(tmp_path / "c.pt"), state, "B", 1)
    monkeypatch.undo()

    def tensors(value):
        if isinstance(value, torch.Tensor):
            yield value
        elif isinstance(value, dict):
            for item in value.values():
                yield from tensors(item)
        elif isinstance(value, (list, tuple)):
            for item in value:
                yield from tensors(item)

    every_tensor = list(tensors(state))
    assert len(every_tensor) > 30
    assert {id(t) for t in every_tensor} <= set(moved)  # each went through .cpu() first
    loaded = torch.load(tmp_path / "c.pt", weights_only=True)  # no map_location needed
    assert all(t.device == CPU for t in tensors(loaded))


def test_a_checkpoint_written_on_cuda_resumes_on_the_cpu(tmp_path, monkeypatch):
    spec = behavior_spec([vector_spec(3)], continuous=1, branches=(2,))
    settings = trainer_settings("ppo")
    policy, optimizer = build("ppo", spec, settings)
    policy.set_step(77)
    saver = TorchModelSaver(settings, str(tmp_path / "B"))
    saver.register(policy)
    saver.register(optimizer)
    # Storages tagged as CUDA's, as torch.save writes them from a GPU.
    monkeypatch.setattr(torch.serialization, "location_tag", lambda storage: "cuda:0")
    saver.save_checkpoint("B", 77)
    monkeypatch.undo()
    path = tmp_path / "B" / "checkpoint.pt"
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA"):
            torch.load(path, weights_only=True)  # what a loader without map_location meets

    resumed_policy, resumed_optimizer = build("ppo", spec, settings)
    resumer = TorchModelSaver(settings, str(tmp_path / "B"), load=True)
    resumer.register(resumed_policy)
    resumer.register(resumed_optimizer)
    resumer.initialize_or_load()
    assert resumed_policy.get_current_step() == 77
    for a, b in zip(policy.actor.state_dict().values(), resumed_policy.actor.state_dict().values()):
        torch.testing.assert_close(a, b)


@needs_cuda
@pytest.mark.parametrize("trainer_type", ["ppo", "sac"])
def test_checkpoints_move_between_a_gpu_and_the_cpu(trainer_type, tmp_path):
    """Trained on cuda, resumed on the cpu, trained there, resumed on cuda: the weights,
    optimizer state and step cross both ways unchanged."""
    spec = behavior_spec([vector_spec(3), visual_spec(2, 20, 20)], continuous=1, branches=(2,))
    settings = trainer_settings(trainer_type, memory=(2, 8) if trainer_type == "ppo" else None)
    rng = np.random.default_rng(0)

    def train_and_save(device, step, resumed_step):
        torch_utils_module._device = torch.device(device)
        policy, optimizer = build(trainer_type, spec, settings)
        saver = TorchModelSaver(settings, str(tmp_path / "B"), load=resumed_step is not None)
        saver.register(policy)
        saver.register(optimizer)
        saver.initialize_or_load()
        assert policy.get_current_step() == (resumed_step or 0)
        loaded = {k: v.cpu().clone() for k, v in policy.actor.state_dict().items()}
        for module in (policy.actor, optimizer.critic):
            assert {t.device.type for t in [*module.parameters(), *module.buffers()]} == {device}
        batch = full_batch(policy, spec, 16, rng)
        optimizer.update(batch, num_sequences=16 // policy.sequence_length)
        policy.set_step(step)
        saver.save_checkpoint("B", step)
        trained = {k: v.cpu().clone() for k, v in policy.actor.state_dict().items()}
        return loaded, trained

    _, on_cuda = train_and_save("cuda", 10, None)
    loaded_on_cpu, on_cpu = train_and_save("cpu", 20, 10)
    loaded_on_cuda, _ = train_and_save("cuda", 30, 20)
    for name in on_cuda:
        torch.testing.assert_close(loaded_on_cpu[name], on_cuda[name], rtol=0, atol=0)
        torch.testing.assert_close(loaded_on_cuda[name], on_cpu[name], rtol=0, atol=0)
    assert not all(torch.equal(on_cuda[name], on_cpu[name]) for name in on_cuda)


# torch says that copying into a meta tensor does nothing: that copy is what is checked here.
@pytest.mark.filterwarnings("ignore:for .*copying from a non-meta parameter")
def test_a_cpu_checkpoint_loads_into_modules_on_another_device(tmp_path):
    # load_state_dict copies into the live tensors: a resumed run stays on its device.
    spec = behavior_spec([vector_spec(3)], continuous=1)
    settings = trainer_settings("ppo")
    policy, optimizer = build("ppo", spec, settings)
    saver = TorchModelSaver(settings, str(tmp_path / "B"))
    saver.register(policy)
    saver.register(optimizer)
    saver.save_checkpoint("B", 5)
    resumed_policy, resumed_optimizer = build("ppo", spec, settings)
    resumed_policy.actor.to(META)
    resumed_optimizer.critic.to(META)
    resumer = TorchModelSaver(settings, str(tmp_path / "B"), load=True)
    resumer.register(resumed_policy)
    resumer.register(resumed_optimizer)
    resumer.initialize_or_load()
    for module in (resumed_policy.actor, resumed_optimizer.critic):
        assert {t.device for t in [*module.parameters(), *module.buffers()]} == {META}


def test_onnx_export_runs_on_cpu_tensors_whatever_the_actor_trains_on(tmp_path, monkeypatch):
    spec = behavior_spec([vector_spec(3)], continuous=1, branches=(2,))
    policy, _ = build("ppo", spec, trainer_settings("ppo"))
    exported = []

    def export(module, args, *rest, **kwargs):
        obs, masks, memories = args
        exported.append(
            {t.device for t in [*module.parameters(), *obs, masks, memories]} | {module.training}
        )

    monkeypatch.setattr(torch.onnx, "export", export)
    with torch.device("meta"):
        ModelSerializer(policy).export_policy_model(str(tmp_path / "policy"))
    assert exported == [{CPU, False}]
    assert policy.actor.training  # the trained actor is left as it was
