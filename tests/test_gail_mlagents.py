"""GAIL's discriminator against ML-Agents 1.1.0's, run in its anchor venv.

ML-Agents builds its ``DiscriminatorNetwork`` for a hybrid-action, two-observation spec and
saves the initial weights; ours must load them with the same state-dict names (strict) and
then give the same numbers on the same batches: estimates, GAIL rewards, the discriminator
loss, the VAIL KL loss and beta update, the gradient penalty (same torch seed), and the
estimates after the normaliser learns from an expert batch. Needs the anchor venv described in
docs/reference-venvs.md.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from mlagents_fast.envs.base_env import (
    ActionSpec,
    BehaviorSpec,
    DimensionProperty,
    ObservationSpec,
    ObservationType,
)
from mlagents_fast.trainers.buffer import AgentBuffer, BufferKey, ObservationKeyPrefix
from mlagents_fast.trainers.settings import GAILSettings, NetworkSettings
from mlagents_fast.trainers.torch_entities.components.reward_providers.gail_reward_provider import (
    DiscriminatorNetwork,
)

ANCHOR_PYTHON = (
    Path(os.environ.get("ANCHOR_VENV", Path.home() / ".cache/mlagents-anchor-venv"))
    / "bin"
    / "python"
)

pytestmark = pytest.mark.skipif(
    not ANCHOR_PYTHON.exists(),
    reason="ML-Agents 1.1.0 anchor venv not built (docs/reference-venvs.md)",
)

# Both sides: the spec, the batches (from the .npz), and what is measured.
COMMON = r"""
import numpy as np, torch

def spec_of(BehaviorSpec, ObservationSpec, ActionSpec, DimensionProperty, ObservationType):
    def vector(size, name):
        return ObservationSpec(
            shape=(size,), dimension_property=(DimensionProperty.NONE,),
            observation_type=ObservationType.DEFAULT, name=name)
    return BehaviorSpec([vector(6, "a"), vector(3, "b")], ActionSpec(2, (3, 2)))

def batch_of(AgentBuffer, BufferKey, ObservationKeyPrefix, data, prefix):
    buffer = AgentBuffer()
    for i in range(2):
        for row in data[f"{prefix}_obs{i}"]:
            buffer[(ObservationKeyPrefix.OBSERVATION, i)].append(row)
    for row in data[f"{prefix}_continuous"]:
        buffer[BufferKey.CONTINUOUS_ACTION].append(row)
    for row in data[f"{prefix}_discrete"]:
        buffer[BufferKey.DISCRETE_ACTION].append(row)
    for value in data[f"{prefix}_done"]:
        buffer[BufferKey.DONE].append(bool(value))
    return buffer

def measure(network, policy, expert, use_vail):
    out = {}
    with torch.no_grad():
        estimate, _ = network.compute_estimate(policy, use_vail_noise=False)
        out["estimate"] = estimate.squeeze(1).tolist()
        out["reward"] = (-torch.log(1.0 - estimate.squeeze(1) * (1.0 - network.EPSILON))).tolist()
    network.gradient_penalty_weight = 0.0
    torch.manual_seed(11)
    loss, stats = network.compute_loss(policy, expert)
    out["loss"] = float(loss.item())
    out["stats"] = {k: float(v) for k, v in stats.items()}
    torch.manual_seed(12)
    out["gradient_magnitude"] = float(network.compute_gradient_magnitude(policy, expert).item())
    network.encoder.update_normalization(expert)
    with torch.no_grad():
        out["normalized_estimate"] = network.compute_estimate(expert)[0].squeeze(1).tolist()
    return out
"""

ANCHOR_SCRIPT = (
    COMMON
    + r"""
import json, sys
from mlagents.trainers.buffer import AgentBuffer, BufferKey, ObservationKeyPrefix
from mlagents.trainers.settings import GAILSettings, NetworkSettings
from mlagents.trainers.torch_entities.components.reward_providers.gail_reward_provider import (
    DiscriminatorNetwork,
)
from mlagents_envs.base_env import (
    ActionSpec, BehaviorSpec, DimensionProperty, ObservationSpec, ObservationType,
)

data = np.load(sys.argv[1])
config = json.loads(sys.argv[3])
spec = spec_of(BehaviorSpec, ObservationSpec, ActionSpec, DimensionProperty, ObservationType)
settings = GAILSettings(demo_path="unused.demo", use_actions=config["use_actions"],
                        use_vail=config["use_vail"])
settings.network_settings = NetworkSettings(hidden_units=16, num_layers=2, normalize=True)
torch.manual_seed(0)
network = DiscriminatorNetwork(spec, settings)
torch.save({k: v.clone() for k, v in network.state_dict().items()}, sys.argv[2])
policy = batch_of(AgentBuffer, BufferKey, ObservationKeyPrefix, data, "policy")
expert = batch_of(AgentBuffer, BufferKey, ObservationKeyPrefix, data, "expert")
print(json.dumps(measure(network, policy, expert, config["use_vail"])))
"""
)

namespace: dict = {}
exec(COMMON, namespace)  # noqa: S102 (the shared helpers, run on our side too)


def batches(path: Path) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(3)
    data = {}
    for prefix, scale in (("policy", 2.0), ("expert", 0.5)):
        data[f"{prefix}_obs0"] = rng.normal(0, scale, (24, 6)).astype(np.float32)
        data[f"{prefix}_obs1"] = rng.normal(1, scale, (24, 3)).astype(np.float32)
        data[f"{prefix}_continuous"] = rng.uniform(-1, 1, (24, 2)).astype(np.float32)
        data[f"{prefix}_discrete"] = np.stack(
            [rng.integers(0, 3, 24), rng.integers(0, 2, 24)], 1
        ).astype(np.int64)
        data[f"{prefix}_done"] = rng.random(24) < 0.2
    np.savez(path, **data)
    return data


@pytest.mark.parametrize("use_actions, use_vail", [(False, False), (True, True)])
def test_discriminator_matches_mlagents(tmp_path, use_actions, use_vail):
    data = batches(tmp_path / "batches.npz")
    state_path = tmp_path / "state.pt"
    done = subprocess.run(
        [
            str(ANCHOR_PYTHON),
            "-c",
            ANCHOR_SCRIPT,
            str(tmp_path / "batches.npz"),
            str(state_path),
            json.dumps({"use_actions": use_actions, "use_vail": use_vail}),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,  # the return code is asserted with stderr below
    )
    assert done.returncode == 0, done.stderr[-3000:]
    theirs = json.loads(done.stdout.strip().splitlines()[-1])

    spec = namespace["spec_of"](
        BehaviorSpec, ObservationSpec, ActionSpec, DimensionProperty, ObservationType
    )
    settings = GAILSettings(demo_path="unused.demo", use_actions=use_actions, use_vail=use_vail)
    settings.network_settings = NetworkSettings(hidden_units=16, num_layers=2, normalize=True)
    network = DiscriminatorNetwork(spec, settings)
    network.load_state_dict(torch.load(state_path, weights_only=True), strict=True)
    policy = namespace["batch_of"](AgentBuffer, BufferKey, ObservationKeyPrefix, data, "policy")
    expert = namespace["batch_of"](AgentBuffer, BufferKey, ObservationKeyPrefix, data, "expert")
    ours = namespace["measure"](network, policy, expert, use_vail)

    for key in ("estimate", "reward", "normalized_estimate"):
        np.testing.assert_allclose(ours[key], theirs[key], rtol=1e-5, atol=1e-6, err_msg=key)
    assert set(ours["stats"]) == set(theirs["stats"])
    for key, value in theirs["stats"].items():
        if use_vail and key in (
            "Losses/GAIL Loss",
            "Policy/GAIL Policy Estimate",
            "Policy/GAIL Expert Estimate",
        ):
            continue  # VAIL samples its code with torch's generator: compared below instead
        assert ours["stats"][key] == pytest.approx(value, rel=1e-5, abs=1e-6), key
    if not use_vail:
        assert ours["loss"] == pytest.approx(theirs["loss"], rel=1e-5)
    assert ours["gradient_magnitude"] == pytest.approx(theirs["gradient_magnitude"], rel=1e-4)
