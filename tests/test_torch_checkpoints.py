"""Checkpoint save/load (atomic, weights-only), corrupt and foreign files, checkpoint rotation."""

import io
import os

import numpy as np
import pytest
import torch
from mlagents_fast.exceptions import CorruptFileError, MlagentsFastError, StorageIOError
from mlagents_fast.trainers.exception import ResultsFileError
from mlagents_fast.trainers.model_saver.torch_model_saver import (
    DEFAULT_CHECKPOINT_NAME,
    TorchModelSaver,
    _seal,
    load_checkpoint_file,
)
from mlagents_fast.trainers.policy.checkpoint_manager import (
    ModelCheckpoint,
    ModelCheckpointManager,
)
from mlagents_fast.trainers.policy.torch_policy import TorchPolicy
from mlagents_fast.trainers.ppo.optimizer_torch import TorchPPOOptimizer
from mlagents_fast.trainers.settings import PPOSettings, TrainerSettings
from mlagents_fast.trainers.torch_entities.networks import SimpleActor
from policy_fixtures import (
    behavior_spec,
    decision_steps,
    network_settings,
    random_obs,
    single_thread_torch,
    vector_spec,
)

single_thread_torch()

_SEAL_LEN = len(b"mlagents-fast-sha256:") + 64

SPEC = behavior_spec([vector_spec(4)], continuous=1, branches=(2,))


def make_trainer_parts(seed, init_path=None):
    torch.manual_seed(seed)
    settings = TrainerSettings(
        hyperparameters=PPOSettings(), network_settings=network_settings(normalize=True)
    )
    settings.init_path = init_path
    policy = TorchPolicy(seed, SPEC, settings.network_settings, SimpleActor, {})
    optimizer = TorchPPOOptimizer(policy, settings)
    return settings, policy, optimizer


def make_saver(tmp_path, seed, load=False, init_path=None):
    settings, policy, optimizer = make_trainer_parts(seed, init_path)
    saver = TorchModelSaver(settings, str(tmp_path / "Walker"), load=load)
    saver.register(policy)
    saver.register(optimizer)
    return saver, policy, optimizer


def test_checkpoint_round_trip_restores_weights_and_step(tmp_path):
    saver, policy, optimizer = make_saver(tmp_path, seed=0)
    policy.set_step(1234)
    onnx_path, aux = saver.save_checkpoint("Walker", 1234)
    folder = tmp_path / "Walker"
    assert onnx_path == str(folder / "Walker-1234.onnx") and os.path.isfile(onnx_path)
    assert aux == [str(folder / "Walker-1234.pt")] and os.path.isfile(aux[0])
    assert os.path.isfile(folder / DEFAULT_CHECKPOINT_NAME)
    assert sorted(p.name for p in folder.iterdir()) == [
        "Walker-1234.onnx",
        "Walker-1234.pt",
        "checkpoint.pt",
    ]

    resumed_saver, resumed, resumed_optimizer = make_saver(tmp_path, seed=1, load=True)
    resumed_saver.initialize_or_load()
    assert resumed.get_current_step() == 1234
    for a, b in zip(policy.actor.state_dict().values(), resumed.actor.state_dict().values()):
        torch.testing.assert_close(a, b)
    for a, b in zip(optimizer.critic.parameters(), resumed_optimizer.critic.parameters()):
        torch.testing.assert_close(a, b)
    obs = random_obs(SPEC, 3, np.random.default_rng(0))
    with torch.no_grad():
        first = policy.actor.network_body([torch.from_numpy(obs[0])])[0]
        second = resumed.actor.network_body([torch.from_numpy(obs[0])])[0]
    torch.testing.assert_close(first, second)


def test_initialize_from_resets_the_step(tmp_path):
    saver, policy, _ = make_saver(tmp_path / "old", seed=0)
    policy.set_step(500)
    saver.save_checkpoint("Walker", 500)
    init_path = str(tmp_path / "old" / "Walker" / "checkpoint.pt")
    new_saver, new_policy, _ = make_saver(tmp_path / "new", seed=1, init_path=init_path)
    new_saver.initialize_or_load()
    assert new_policy.get_current_step() == 0
    for a, b in zip(policy.actor.parameters(), new_policy.actor.parameters()):
        torch.testing.assert_close(a, b)


def test_checkpoint_is_loadable_weights_only(tmp_path):
    saver, _, _ = make_saver(tmp_path, seed=0)
    saver.save_checkpoint("Walker", 10)
    loaded = torch.load(str(tmp_path / "Walker" / "Walker-10.pt"), weights_only=True)
    assert {"Policy", "global_step", "Optimizer:critic", "Optimizer:value_optimizer"} <= set(loaded)
    assert loaded["__mlagents_fast__"]["step"] == 10


def test_truncated_checkpoint_is_corrupt(tmp_path):
    saver, _, _ = make_saver(tmp_path, seed=0)
    saver.save_checkpoint("Walker", 10)
    path = tmp_path / "Walker" / "checkpoint.pt"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    resumed, _, _ = make_saver(tmp_path, seed=1, load=True)
    # One line naming the file, and which intact checkpoint to copy over it.
    with pytest.raises(ResultsFileError, match="checkpoint.pt is corrupt") as info:
        resumed.initialize_or_load()
    assert "copy " + str(tmp_path / "Walker" / "Walker-10.pt") in str(info.value)
    assert "\n" not in str(info.value)


def test_garbage_and_foreign_files_are_rejected(tmp_path):
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"\x00not a checkpoint at all" * 10)
    with pytest.raises(CorruptFileError):
        load_checkpoint_file(str(garbage))
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, str(foreign))
    with pytest.raises(CorruptFileError, match="not a trainer checkpoint"):
        load_checkpoint_file(str(foreign))
    tensor_only = tmp_path / "tensor.pt"
    torch.save(torch.zeros(3), str(tensor_only))
    with pytest.raises(CorruptFileError, match="not a trainer checkpoint"):
        load_checkpoint_file(str(tensor_only))


class Exploit:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_pickled_code_is_never_run(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"Policy": Exploit()}, str(path))
    with pytest.raises(CorruptFileError):
        load_checkpoint_file(str(path))
    # A checksum is no signature: a correctly sealed exploit is refused by weights_only too.
    buffer = io.BytesIO()
    torch.save({"Policy": Exploit()}, buffer)
    path.write_bytes(_seal(buffer.getvalue()))
    with pytest.raises(CorruptFileError, match="evil.pt"):
        load_checkpoint_file(str(path))


def test_every_flipped_bit_is_refused_naming_the_file(tmp_path):
    """Any damage to a checkpoint is refused (the SHA-256 in the zip comment covers every
    other byte; a flip in the comment itself breaks the seal). Before checksums, 249 of 300
    random single-bit flips loaded with different weights."""
    saver, _, _ = make_saver(tmp_path, seed=0)
    saver.save_checkpoint("Walker", 10)
    path = tmp_path / "Walker" / "checkpoint.pt"
    good = path.read_bytes()
    load_checkpoint_file(str(path))
    rng = np.random.default_rng(0)
    positions = list(rng.integers(0, len(good), 300)) + list(range(len(good) - 120, len(good)))
    refused = 0
    for position in positions:
        damaged = bytearray(good)
        damaged[position] ^= 1 << int(rng.integers(0, 8))
        path.write_bytes(bytes(damaged))
        with pytest.raises(CorruptFileError, match="checkpoint.pt") as info:
            load_checkpoint_file(str(path))
        assert "\n" not in str(info.value)
        refused += 1
    assert refused == len(positions) == 420


def test_unsealed_checkpoints_of_format_1_and_ml_agents_still_load(tmp_path):
    saver, policy, _ = make_saver(tmp_path, seed=0)
    state = {name: module.state_dict() for name, module in saver.modules.items()}
    format_1 = dict(state)
    format_1["__mlagents_fast__"] = {
        "format": "mlagents-fast-checkpoint",
        "version": 1,
        "behavior_name": "Walker",
        "step": 3,
    }
    torch.save(format_1, str(tmp_path / "v1.pt"))
    torch.save(state, str(tmp_path / "mlagents.pt"))  # ML-Agents: plain state dicts
    for name in ("v1.pt", "mlagents.pt"):
        loaded = load_checkpoint_file(str(tmp_path / name))
        torch.testing.assert_close(loaded["Policy"], state["Policy"])
        assert loaded["Policy"].keys() == policy.actor.state_dict().keys()
    # A format-2 file whose seal is gone (cut off, or its prefix damaged) is refused.
    saver.save_checkpoint("Walker", 4)
    sealed = (tmp_path / "Walker" / "checkpoint.pt").read_bytes()
    unsealed = tmp_path / "unsealed.pt"
    unsealed.write_bytes(sealed[: -_SEAL_LEN - 2] + b"\0\0")
    with pytest.raises(CorruptFileError, match="checksum .* is missing"):
        load_checkpoint_file(str(unsealed))


def test_missing_checkpoint_is_a_storage_error(tmp_path):
    with pytest.raises(StorageIOError, match="does not exist"):
        load_checkpoint_file(str(tmp_path / "nope.pt"))
    assert issubclass(CorruptFileError, MlagentsFastError)


def test_copy_final_model(tmp_path):
    saver, _, _ = make_saver(tmp_path, seed=0)
    onnx_path, _ = saver.save_checkpoint("Walker", 7)
    saver.copy_final_model(onnx_path)
    final = tmp_path / "Walker.onnx"
    with open(onnx_path, "rb") as f:
        assert final.read_bytes() == f.read()


def test_policy_acts_after_resume(tmp_path):
    saver, _policy, _ = make_saver(tmp_path, seed=0)
    saver.save_checkpoint("Walker", 1)
    resumed_saver, resumed, _ = make_saver(tmp_path, seed=3, load=True)
    resumed_saver.initialize_or_load()
    obs = random_obs(SPEC, 2, np.random.default_rng(0))
    info = resumed.get_action(decision_steps(SPEC, obs))
    assert info.action.continuous.shape == (2, 1) and info.action.discrete.shape == (2, 1)


def test_checkpoint_manager_keeps_the_newest(tmp_path):
    paths = []
    for step in range(4):
        onnx_file = tmp_path / f"B-{step}.onnx"
        pt_file = tmp_path / f"B-{step}.pt"
        onnx_file.write_bytes(b"x")
        pt_file.write_bytes(b"x")
        paths.append((onnx_file, pt_file))
        ModelCheckpointManager.add_checkpoint(
            "ckpt-test-behavior",
            ModelCheckpoint(step, str(onnx_file), None, 0.0, [str(pt_file)]),
            keep_checkpoints=2,
        )
    kept = ModelCheckpointManager.get_checkpoints("ckpt-test-behavior")
    assert [c["steps"] for c in kept] == [2, 3]
    for onnx_file, pt_file in paths[:2]:
        assert not onnx_file.exists() and not pt_file.exists()
    for onnx_file, pt_file in paths[2:]:
        assert onnx_file.exists() and pt_file.exists()
