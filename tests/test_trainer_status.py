"""Run-state files and helpers: training_status.json, timers, run-folder checks, behavior ids."""

import json
import os
import time

import pytest
from mlagents_fast.exceptions import CorruptFileError, MlagentsFastError
from mlagents_fast.trainers import timers
from mlagents_fast.trainers.behavior_id_utils import (
    BehaviorIdentifiers,
    create_name_behavior_id,
    get_global_agent_id,
)
from mlagents_fast.trainers.directory_utils import RunFolderError, validate_existing_directories
from mlagents_fast.trainers.training_status import GlobalTrainingStatus, StatusMetaData, StatusType


@pytest.fixture(autouse=True)
def _clean_status():
    GlobalTrainingStatus.reset()
    yield
    GlobalTrainingStatus.reset()


def test_training_status_round_trip(tmp_path):
    path = str(tmp_path / "run_logs" / "training_status.json")
    GlobalTrainingStatus.set_parameter_state("wall_height", StatusType.LESSON_NUM, 2)
    onnx = str(tmp_path / "3DBall" / "3DBall-10.onnx")
    entry = {"steps": 10, "file_path": onnx, "auxillary_file_paths": [onnx[:-4] + "pt"]}
    GlobalTrainingStatus.set_parameter_state("3DBall", StatusType.CHECKPOINTS, [entry])
    GlobalTrainingStatus.save_state(path)
    with open(path) as f:
        saved = json.load(f)
    assert saved["wall_height"] == {"lesson_num": 2}
    # Paths relative to the run folder (the folder above run_logs).
    relative = {
        "steps": 10,
        "file_path": os.path.join("3DBall", "3DBall-10.onnx"),
        "auxillary_file_paths": [os.path.join("3DBall", "3DBall-10.pt")],
    }
    assert saved["3DBall"] == {"checkpoints": [relative]}
    assert saved["metadata"] == {
        **StatusMetaData().to_dict(),
        "checkpoint_paths": "relative to the run folder",
    }
    assert os.listdir(tmp_path / "run_logs") == ["training_status.json"]

    GlobalTrainingStatus.reset()
    assert GlobalTrainingStatus.get_parameter_state("wall_height", StatusType.LESSON_NUM) is None
    GlobalTrainingStatus.load_state(path)
    assert GlobalTrainingStatus.get_parameter_state("wall_height", StatusType.LESSON_NUM) == 2
    assert GlobalTrainingStatus.get_parameter_state("3DBall", StatusType.CHECKPOINTS) == [entry]


def test_training_status_missing_file_only_warns(tmp_path, caplog):
    GlobalTrainingStatus.load_state(str(tmp_path / "nope.json"))
    assert "not found" in caplog.text
    assert GlobalTrainingStatus.get_parameter_state("x", StatusType.LESSON_NUM) is None


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", '{"3DBall": {}}'])
def test_training_status_rejects_foreign_files(tmp_path, content):
    path = tmp_path / "training_status.json"
    path.write_text(content)
    with pytest.raises(CorruptFileError, match="training_status.json"):
        GlobalTrainingStatus.load_state(str(path))
    assert dict(GlobalTrainingStatus.saved_state) == {}


def test_timers_nest_and_count():
    stack = timers.TimerStack()
    with timers.hierarchical_timer("outer", stack):
        for _ in range(3):
            with timers.hierarchical_timer("inner", stack):
                time.sleep(0.001)
    timers.set_gauge("reward", 1.0, stack)
    timers.set_gauge("reward", 3.0, stack)
    tree = stack.get_timing_tree()
    outer = tree["children"]["outer"]
    assert outer["count"] == 1
    assert outer["children"]["inner"]["count"] == 3
    assert outer["children"]["inner"]["total"] >= 0.003
    assert outer["total"] >= outer["children"]["inner"]["total"]
    assert tree["gauges"]["reward"] == {"value": 3.0, "min": 1.0, "max": 3.0, "count": 2}
    assert tree["metadata"]["timer_format_version"] == timers.TIMER_FORMAT_VERSION
    json.dumps(tree)  # timers.json must serialize


def test_timed_decorator_keeps_name_and_result():
    @timers.timed
    def add(a, b):
        return a + b

    timers.reset_timers()
    assert add(2, 3) == 5
    assert add.__name__ == "add"
    tree = timers.get_timer_tree()
    name = next(k for k in tree["children"] if k.endswith("add"))
    assert tree["children"][name]["count"] == 1


def test_run_folder_rules(tmp_path):
    run = str(tmp_path / "run")
    validate_existing_directories(run, resume=False, force=False)  # new run: fine
    with pytest.raises(RunFolderError, match="--resume"):
        validate_existing_directories(run, resume=True, force=False)
    os.makedirs(run)
    with pytest.raises(RunFolderError, match="Previous data from this run ID was found"):
        validate_existing_directories(run, resume=False, force=False)
    validate_existing_directories(run, resume=True, force=False)
    validate_existing_directories(run, resume=False, force=True)
    with pytest.raises(RunFolderError, match="initialize from"):
        validate_existing_directories(
            run, resume=False, force=True, init_path=str(tmp_path / "other")
        )
    assert issubclass(RunFolderError, MlagentsFastError) and issubclass(RunFolderError, ValueError)


def test_behavior_identifiers():
    parsed = BehaviorIdentifiers.from_name_behavior_id("Striker?team=1")
    assert (parsed.brain_name, parsed.team_id, parsed.behavior_id) == (
        "Striker",
        1,
        "Striker?team=1",
    )
    plain = BehaviorIdentifiers.from_name_behavior_id("3DBall")
    assert (plain.brain_name, plain.team_id) == ("3DBall", 0)
    assert create_name_behavior_id("Goalie", 0) == "Goalie?team=0"
    assert get_global_agent_id(2, 17) == "agent_2-17"


def test_agent_manager_queue_fifo_and_empty():
    from mlagents_fast.trainers.agent_processor import AgentManagerQueue

    q = AgentManagerQueue("Ball", maxlen=2)
    assert q.behavior_id == "Ball" and q.maxlen == 2 and q.empty()
    q.put(1)
    q.put(2)
    assert q.qsize() == 2
    assert [q.get_nowait(), q.get_nowait()] == [1, 2]
    with pytest.raises(AgentManagerQueue.Empty):
        q.get_nowait()
