"""Model and data directories edited into bad ones (issue 29, item 4): every entry point refuses each with one
error naming the file and what is wrong in it, never a traceback or garbage with exit status 0."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

import vid2world as v2w
from vid2world.checkpoints.inspect import inspect_checkpoint
from vid2world.checkpoints.reader import CheckpointError
from vid2world.cli import main
from vid2world.data.inspect import dataset_info
from vid2world.data.spec import ActionSpec, DatasetMeta
from vid2world.data.store import open_dataset
from vid2world.data.writer import DatasetWriter

from .test_eval_run import make_inputs

pytestmark = pytest.mark.usefixtures("one_thread")
TINY = Path(__file__).resolve().parents[1] / "configs" / "tiny.yaml"
# a one-step run of the tiny config on the 16x16 data
TRAIN = ["data.size=[16,16]", "data.length=4", "train.steps=1", "train.batch_size=2", "log.sample_every=0",
         "log.tensorboard=false", "--no-progress"]


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> tuple[Path, Path]:
    """A loadable pixel model and a 16x16 dataset of 8 episodes of 9 frames in one shard (s00000, 72 rows)."""
    return make_inputs(tmp_path_factory.mktemp("good"))


def edited_json(source: Path, target: Path, name: str, edit: Callable[[Any], Any]) -> Path:
    """A copy of the directory `source` at `target` whose JSON file `name` is `edit(its content)`."""
    shutil.copytree(source, target)
    (target / name).write_text(json.dumps(edit(json.loads((source / name).read_text()))))
    return target


def changed(**changes: Any) -> Callable[[dict], dict]:
    """An edit setting top-level keys (a value of `...` deletes the key)."""
    def edit(config: dict) -> dict:
        for key, value in changes.items():
            if value is ...:
                del config[key]
            else:
                config[key] = value
        return config
    return edit


def nested(key: str, **changes: Any) -> Callable[[dict], dict]:
    """An edit setting keys inside the object under `key`."""
    def edit(config: dict) -> dict:
        config[key] = changed(**changes)(config[key])
        return config
    return edit


def rollout(model: Path, data: Path, out: Path, episode: int = 0) -> int:
    return main(["rollout", "--model", str(model), "--data", str(data), "--episode", str(episode),
                 "--context", "2", "--horizon", "2", "--out", str(out), "--no-progress"])


# ---- config.json of a world model ------------------------------------------------------------------------
# each case: the edit, and the error after "config.json: "
BAD_CONFIGS = {
    "list": (lambda c: [1, 2], r"a JSON array, expected a JSON object"),
    "no codec": (changed(codec=...), r"key 'codec' is missing, expected the codec's settings"),
    "no unet": (changed(unet=...), r"key 'unet' is missing, expected the UNet's architecture"),
    "no schedule": (changed(schedule=...), r"key 'schedule' is missing"),
    "no sampler": (changed(sampler=...), r"key 'sampler' is missing"),
    "codec a string": (changed(codec="identity"),
                       r"key 'codec' is 'identity', expected the codec's settings \(a JSON object\)"),
    "unet a list": (changed(unet=[1]), r"key 'unet' is \[1\], expected"),
    "sampler null": (changed(sampler=None), r"key 'sampler' is None, expected"),
    "fps a string": (changed(fps="3"), r"key 'fps' is '3', expected the frame-rate condition"),
    "concat a string": (changed(concat_first_frame="yes"), r"key 'concat_first_frame' is 'yes'"),
    "conditioner a number": (changed(conditioner=5), r"key 'conditioner' is 5, expected"),
    "metadata a list": (changed(metadata=[]), r"key 'metadata' is \[\], expected"),
    "codec kind": (nested("codec", kind="nope"), r"key 'codec': unknown codec kind 'nope'"),
    "codec without kind": (nested("codec", kind=...), r"key 'codec': unknown codec kind None"),
    "codec setting": (nested("codec", colour=1), r"key 'codec': .*unexpected .*'colour'"),
    "unet setting": (nested("unet", bogus=1), r"key 'unet': unknown UNetConfig keys \['bogus'\]"),
    "unet action space": (nested("unet", action_space={"dim": 2}), r"key 'unet': missing key 'kind'"),
    "unet causal": (nested("unet", causal=[1]), r"key 'unet': "),
    "schedule setting": (nested("schedule", foo=1), r"key 'schedule': .*'foo'"),
    "sampler steps": (nested("sampler", steps=0), r"key 'sampler': steps must be an integer"),
    "sampler guidance": (nested("sampler", guidance=[]), r"key 'sampler': "),
    "conditioner kind": (changed(conditioner={"kind": "nope"}), r"key 'conditioner': .*'nope'"),
    "codec channels": (nested("codec", channels=4),
                       r"VideoUNet channels in=6 out=3 do not fit a codec of 4 channels"),
}


@pytest.fixture(scope="module", params=list(BAD_CONFIGS))
def bad_model(request, good, tmp_path_factory) -> tuple[Path, str]:
    edit, message = BAD_CONFIGS[request.param]
    target = tmp_path_factory.mktemp("model") / request.param.replace(" ", "-")
    return edited_json(good[0], target, "config.json", edit), "config.json: " + message


def test_bad_model_config_is_named_by_from_pretrained(bad_model):
    model_dir, message = bad_model
    with pytest.raises(ValueError, match=message):
        v2w.WorldModel.from_pretrained(model_dir)


def test_bad_model_config_is_not_loadable_for_inspect(bad_model):
    model_dir, message = bad_model
    with pytest.raises(CheckpointError, match=f"{model_dir.name}: not a loadable world model: .*{message}"):
        inspect_checkpoint(model_dir)


@pytest.mark.parametrize("case", ["no codec", "list", "unet setting"])
def test_bad_model_config_from_the_command_line(good, tmp_path, capsys, case):
    edit, message = BAD_CONFIGS[case]
    model_dir = edited_json(good[0], tmp_path / "model", "config.json", edit)
    assert main(["inspect", str(model_dir)]) == 2
    assert rollout(model_dir, good[1], tmp_path / "r.mp4") == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2, err
    assert err[0].startswith("vid2world inspect: error: ") and "not a loadable world model" in err[0]
    assert err[1].startswith("vid2world rollout: error: ")
    for line in err:
        assert re.search("config.json: " + message, line), line
    assert not (tmp_path / "r.mp4").exists()


# ---- episodes.json against the shards --------------------------------------------------------------------
def at(column: str, episode: int, value: Any) -> Callable[[dict], dict]:
    def edit(index: dict) -> dict:
        index[column][episode] = value
        return index
    return edit


# each case: the edit, and the error (after "episodes.json: " unless it names a shard file)
BAD_INDEXES = {
    "last too long": (at("length", 7, 30), r"episode 7 \('ep7'\) has length 30 at offset 63 of shard "
                                           r"'s00000', but the shard holds 72 frames \(only 9 from there\)"),
    "overlaps the next": (at("length", 3, 30), r"episode 3 \('ep3'\) has length 30 at offset 27 of shard "
                                               r"'s00000', but episode 4 \('ep4'\) starts at 36 \(only 9"),
    "past the end": (at("offset", 7, 70), r"episode 7 \('ep7'\) has length 9 at offset 70 of shard 's00000', "
                                          r"but the shard holds 72 frames \(only 2 from there\)"),
    "empty": (at("length", 2, 0), r"column 'length': episode 2 \('ep2'\) has 0, expected >= 1"),
    "negative offset": (at("offset", 0, -1), r"column 'offset': episode 0 \('ep0'\) has -1, expected >= 0"),
    "no such shard": (at("shard", 5, 3),
                      r"column 'shard': episode 5 \('ep5'\) has 3, expected a shard number in 0..0"),
    "not a number": (at("length", 1, "9"), r"column 'length' must hold integers"),
    "negative rows": (lambda index: {**index, "shard_rows": [-1]},
                      r"column 'shard_rows': shard 0 \('s00000'\) has -1, expected >= 0"),
    "a column not a list": (lambda index: {**index, "length": 9},
                            r"columns \['name', .*\] must be lists of the same length"),
    "a list": (lambda index: [index], r"a JSON array, expected a JSON object"),
    "rows beyond the file": (lambda index: {**index, "shard_rows": [80]},
                             r"s00000.frames: 55296 bytes, expected 61440 .*episodes.json gives shard "
                             r"'s00000' 80 frames"),
}


def index_error(case: str) -> str:
    message = BAD_INDEXES[case][1]
    return message if message.startswith("s00000") else "episodes.json: " + message


@pytest.mark.parametrize("case", list(BAD_INDEXES))
def test_index_is_checked_against_the_shards_on_open(good, tmp_path, case):
    data = edited_json(good[1], tmp_path / "data", "episodes.json", BAD_INDEXES[case][0])
    with pytest.raises(ValueError, match=index_error(case)):
        open_dataset(data)


def test_index_errors_from_the_command_line(good, tmp_path, capsys):
    data = edited_json(good[1], tmp_path / "data", "episodes.json", BAD_INDEXES["last too long"][0])
    assert main(["data", "info", str(data)]) == 2
    assert rollout(good[0], data, tmp_path / "r.mp4", episode=7) == 2
    captured = capsys.readouterr()
    assert captured.out == ""  # no report of 93 frames
    err = captured.err.splitlines()
    assert [line.split(":")[0] for line in err] == ["vid2world data", "vid2world rollout"], err
    for line in err:
        assert re.search(index_error("last too long"), line), line


def test_train_refuses_the_bad_index_before_any_work(good, tmp_path, capsys):
    data = edited_json(good[1], tmp_path / "data", "episodes.json", BAD_INDEXES["overlaps the next"][0])
    assert main(["train", str(TINY), f"data.path={data}", f"out={tmp_path / 'run'}", *TRAIN]) == 2
    err = capsys.readouterr().err
    assert err.startswith("vid2world train: error: "), err
    assert re.search(index_error("overlaps the next"), err), err


def test_a_good_dataset_still_opens(good):
    data = open_dataset(good[1])
    assert len(data) == 8 and data.num_frames == 72 and data.episode(7).frames.shape == (9, 16, 16, 3)


# ---- non-finite actions ----------------------------------------------------------------------------------
def with_actions_at(source: Path, target: Path, cells: dict[tuple[int, int], float]) -> Path:
    """A copy of the dataset whose action array has the given values at (row, column)."""
    shutil.copytree(source, target)
    path = target / "shards" / "s00000.actions"
    actions = np.fromfile(path, "<f4").reshape(72, 2)
    for (row, column), value in cells.items():
        actions[row, column] = value
    actions.tofile(path)
    return target


def test_data_info_refuses_non_finite_actions(good, tmp_path, capsys):
    # rows 20 and 40 are episode 2's step 2 and episode 4's step 4 (9 frames an episode)
    data = with_actions_at(good[1], tmp_path / "data", {(40, 1): np.inf, (20, 1): np.nan, (41, 1): np.nan})
    message = (r"action column 'action.dy' holds 3 non-finite values \(NaN or inf\), the first at episode 2 "
               r"\('ep2'\) step 2")
    with pytest.raises(ValueError, match=message):
        dataset_info(open_dataset(data))
    assert main(["data", "info", str(data), "--json", str(tmp_path / "info.json")]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "nan%" not in captured.err and "+nan" not in captured.err
    assert captured.err.startswith(f"vid2world data: error: {data}") and re.search(message, captured.err)
    assert not (tmp_path / "info.json").exists()


def test_data_info_names_every_bad_column(good, tmp_path):
    data = with_actions_at(good[1], tmp_path / "data", {(70, 0): np.nan, (5, 1): -np.inf})
    with pytest.raises(ValueError, match=r"'action.dx' holds 1 non-finite value \(NaN or inf\), the first at "
                                         r"episode 7 \('ep7'\) step 7; action column 'action.dy' holds 1 "
                                         r"non-finite value \(NaN or inf\), the first at episode 0 \('ep0'\) "
                                         r"step 5"):
        dataset_info(open_dataset(data))


def test_training_refuses_a_batch_with_non_finite_actions(good, tmp_path, capsys):
    # already so before issue 29 (clip_loss checks every batch): kept here as the promise's end-to-end test
    data = with_actions_at(good[1], tmp_path / "data", {(row, 0): np.nan for row in range(72)})
    assert main(["train", str(TINY), f"data.path={data}", f"out={tmp_path / 'run'}", *TRAIN]) == 2
    err = capsys.readouterr().err
    assert err.startswith("vid2world train: error: batch actions: non-finite value nan at [0, "), err
    assert not (tmp_path / "run").exists()


def test_the_writer_names_the_non_finite_column(tmp_path):
    meta = DatasetMeta("t", 4.0, (8, 8), ActionSpec.continuous(["x", "y"]))
    actions = np.zeros((5, 2), np.float32)
    actions[3:, 1] = np.inf
    with pytest.raises(ValueError, match=r"episode 'e': actions contain NaN or inf \(2 in column 'action.y', "
                                         r"the first at step 3\)"):
        with DatasetWriter(tmp_path / "d", meta) as writer:
            writer.add(np.zeros((5, 8, 8, 3), np.uint8), actions, name="e")
