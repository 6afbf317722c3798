"""Fuzzing the Python path of messages from Unity (issue 10): the committed corpus of
reproducers, the seeds, and a seeded mutation campaign in worker processes (a quick slice;
``benches/fuzz_decoder.py`` runs the >= 1,000,000-input campaign).

Whatever the bytes, ``decode_output`` -> specs -> DecisionSteps/TerminalSteps -> side
channels either returns or raises a ``UnityProtocolException`` subclass.
"""

from __future__ import annotations

import pytest
from mlagents_fast.envs.exception import UnityMessageLimitException, UnityProtocolException
from unity_fuzz import (
    DOCUMENTED_OUTCOMES,
    HOST_FUZZ_LIMITS,
    SELF_TEST_ENV,
    Mutator,
    build_host_seeds,
    build_seeds,
    classify,
    corpus_files,
    parse_tree,
    run_campaign,
    run_host_path,
    run_python_path,
)


@pytest.mark.parametrize("path", corpus_files(), ids=lambda path: path.stem)
def test_corpus_reproducer_raises_a_protocol_error(path):
    if path.name.startswith("limit-trainer-"):
        # A message from a trainer, above the fuzzing limits: the host's path refuses it.
        with pytest.raises(UnityMessageLimitException):
            run_host_path(path.read_bytes(), HOST_FUZZ_LIMITS)
        return
    with pytest.raises(UnityProtocolException):
        run_python_path(path.read_bytes())


def test_corpus_is_there():
    names = {path.stem for path in corpus_files()}
    assert sum(name.startswith("crash-") for name in names) >= 6


def test_seeds_decode_and_parse_as_trees():
    seeds = build_seeds()
    assert len(seeds) >= 15
    agents = 0
    for seed in seeds:
        agents += run_python_path(seed)
        assert parse_tree(seed) is not None
    assert agents >= 30


def test_mutator_is_deterministic_and_varied():
    mutator = Mutator(build_seeds())
    first = [mutator.input(3, i) for i in range(200)]
    assert first == [mutator.input(3, i) for i in range(200)]
    assert len(set(first)) > 180
    outcomes = {classify(data)[0] for data in first}
    # The mutations reach success and several different checks.
    assert "ok" in outcomes and len(outcomes) >= 4


def test_quick_campaign_in_worker_processes(tmp_path):
    result = run_campaign(4000, seed=20261204, workers=2, chunk=1000, artifacts=tmp_path)
    assert result.crashes == [] and result.hangs == []
    assert result.undocumented == [], result.undocumented[:3]
    assert set(result.histogram) <= DOCUMENTED_OUTCOMES
    assert sum(result.histogram.values()) == 4000
    assert result.histogram["ok"] > 400


def test_host_seeds_decode_and_the_host_campaign_finds_nothing(tmp_path):
    """The mlagents-fast-env host's decoder of trainer messages, fuzzed the same way."""
    seeds = build_host_seeds()
    assert sum(run_host_path(seed) for seed in seeds) >= 15
    assert all(parse_tree(seed) is not None for seed in seeds)
    result = run_campaign(
        2000, seed=20261204, workers=2, chunk=1000, artifacts=tmp_path, target="host"
    )
    assert result.crashes == [] and result.hangs == []
    assert result.undocumented == [], result.undocumented[:3]
    assert set(result.histogram) <= DOCUMENTED_OUTCOMES
    assert sum(result.histogram.values()) == 2000
    assert result.histogram["ok"] > 200


def test_campaign_counts_crashes_and_hangs_and_goes_on(tmp_path, monkeypatch):
    """The harness itself: a worker that aborts or hangs is replaced, the input saved, the
    rest of its chunk still run."""
    monkeypatch.setenv(SELF_TEST_ENV, "crash:17,hang:40")
    result = run_campaign(60, seed=5, workers=1, chunk=30, timeout_s=1.0, artifacts=tmp_path)
    assert [index for index, _ in result.crashes] == [17]
    assert result.crashes[0][1] != 0
    assert result.hangs == [40]
    names = sorted(path.name for path in result.saved)
    assert names == ["crash-seed5-input17.bin", "hang-seed5-input40.bin"]
    assert (tmp_path / names[0]).read_bytes() == Mutator(build_seeds()).input(5, 17)
    # Inputs finished before a death are lost with the worker's report; every other input ran.
    counted = sum(n for kind, n in result.histogram.items() if kind != "lost with a dead worker")
    assert counted + result.histogram["lost with a dead worker"] + 2 == 60
