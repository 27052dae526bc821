"""One rule for every command that writes (vid2world.io.outputs): a file or folder the command did not create is
never replaced or deleted. Each writing command is run against a place that holds a file of the user's."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from vid2world.cli import main
from vid2world.eval.predict import PredictionStore
from vid2world.io.outputs import RECORD, OutputDirectory, check_output_file

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "configs" / "tiny.yaml"
MINE = b"the user's own file\n"


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def doom(tmp_path_factory) -> Path:
    from vid2world.data.record import RecordConfig, record_dataset

    root = tmp_path_factory.mktemp("data")
    return record_dataset(RecordConfig("vizdoom:deathmatch", episodes=2, steps=10, size=32, seed=3), root / "doom",
                          progress=False).root


EVAL = ["--protocol", "generic", "--context", "1", "--horizon", "2"]
# (command line with {dir} and {data}, the user's files in {dir}); every case must refuse before any work
DIRECTORY_CASES = {
    "train": (["train", str(TINY), "data.path={data}", "out={dir}", "train.steps=1", "data.size=[32,32]",
               "data.length=6", "train.batch_size=2", "log.tensorboard=false", "--no-progress"],
              ["config.yaml", "metrics.jsonl"]),
    "demo": (["demo", "--out", "{dir}", "--no-progress"], ["report.md"]),
    "evaluate": (["evaluate", "--model", "{dir}/nowhere", "--data", "{data}", "--out", "{dir}", *EVAL],
                 ["results.json"]),
    "evaluate --overwrite": (["evaluate", "--model", "{dir}/nowhere", "--data", "{data}", "--out", "{dir}", *EVAL,
                             "--overwrite"], ["predictions/mine.npz"]),
    "convert": (["convert", "--base", "{dir}/nowhere.ckpt", "--out", "{dir}"], ["model.safetensors"]),
    "idm train": (["idm", "train", "--data", "{data}", "--out", "{dir}"], ["idm.json"]),
    "data record": (["data", "record", "--env", "vizdoom:deathmatch", "--episodes", "1", "--out", "{dir}"],
                    ["episodes.json"]),
}

# (command line with {file}, {data}); the file exists and is the user's
FILE_CASES = {
    "data preview --out": ["data", "preview", "{data}", "--out", "{file}"],
    "rollout --out": ["rollout", "--model", "{data}", "--data", "{data}", "--episode", "0", "--context", "1",
                      "--horizon", "2", "--out", "{file}"],
    "data info --json": ["data", "info", "{data}", "--json", "{file}"],
    "inspect --json": ["inspect", "{data}/episodes.json", "--json", "{file}"],
    "compare --json": ["compare", "{data}", "{data}", "--json", "{file}"],
    "bench loader --json": ["bench", "loader", "--data", "{data}", "--json", "{file}"],
}


@pytest.mark.parametrize("case", sorted(DIRECTORY_CASES))
def test_no_command_replaces_a_file_of_the_users_in_its_output_directory(case, doom, tmp_path, capsys):
    argv, names = DIRECTORY_CASES[case]
    folder = tmp_path / "out"
    for name in names:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(MINE)
    before = _snapshot(folder)
    assert main([a.format(dir=folder, data=doom) for a in argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(folder) in err, err
    assert _snapshot(folder) == before


@pytest.mark.parametrize("case", sorted(FILE_CASES))
def test_no_command_replaces_an_existing_output_file_without_overwrite(case, doom, tmp_path, capsys):
    suffix = ".json" if "--json" in case else ".mp4"
    target = tmp_path / f"mine{suffix}"
    target.write_bytes(MINE)
    assert main([a.format(file=target, data=doom) for a in FILE_CASES[case]]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "exists" in err and "--overwrite" in err, err
    assert target.read_bytes() == MINE


def test_json_overwrite_replaces_the_file_when_asked(doom, tmp_path):
    target = tmp_path / "info.json"
    target.write_bytes(MINE)
    assert main(["data", "info", str(doom), "--json", str(target), "--overwrite"]) == 0
    assert json.loads(target.read_text())["episodes"] == 2


def test_preview_overwrite_replaces_its_file(doom, tmp_path):
    target = tmp_path / "p.mp4"
    assert main(["data", "preview", str(doom), "--out", str(target), "--frames", "4", "--episodes", "1"]) == 0
    assert main(["data", "preview", str(doom), "--out", str(target), "--frames", "4", "--episodes", "1",
                 "--overwrite"]) == 0
    assert target.stat().st_size > 0


def test_output_directory_claims_new_empty_and_own_directories(tmp_path):
    new = OutputDirectory(tmp_path / "a", "demo", outputs=["report.md"])
    assert not (tmp_path / "a").exists()  # checked only: a command failing on its inputs leaves nothing
    path = new.file("report.md")
    path.write_text("first")
    again = OutputDirectory(tmp_path / "a", "demo")  # an earlier run's: its own files may be replaced
    assert again.file("report.md") == path and again.owns("report.md")
    (tmp_path / "a" / "notes.txt").write_bytes(MINE)  # the user's, added later beside the outputs
    with pytest.raises(FileExistsError, match="notes.txt was not written by `vid2world demo`"):
        OutputDirectory(tmp_path / "a", "demo").file("notes.txt")
    with pytest.raises(FileExistsError, match="holds the outputs of `vid2world demo`"):
        OutputDirectory(tmp_path / "a", "evaluate")
    (tmp_path / "empty").mkdir()
    OutputDirectory(tmp_path / "empty", "demo").file("report.json")
    assert json.loads((tmp_path / "empty" / RECORD).read_text()) == {"command": "demo", "files": ["report.json"]}
    with pytest.raises(FileExistsError, match="notes.txt was not written"):  # checked before any work
        OutputDirectory(tmp_path / "a", "demo", outputs=["report.md", "notes.txt"])


def test_an_unrecorded_earlier_output_is_adopted_only_when_it_looks_like_one(tmp_path):
    old = tmp_path / "old"
    old.mkdir()
    (old / "report.md").write_text("an old demo's")
    with pytest.raises(FileExistsError, match=r"holds no earlier output of `vid2world demo`"):
        OutputDirectory(old, "demo", legacy=lambda p: (p / "report.json").is_file())
    assert not (old / RECORD).exists()
    (old / "report.json").write_text("{}")
    adopted = OutputDirectory(old, "demo", legacy=lambda p: (p / "report.json").is_file())
    assert adopted.owns("report.md") and adopted.owns("report.json")


def test_evaluate_overwrite_removes_only_its_own_predictions(tmp_path):
    root = tmp_path / "predictions"
    store = PredictionStore(root, {"steps": 1})
    batch = root / "model" / "seed-0" / "batch-00000.npz"
    store.save(batch, np.zeros((1, 2, 4, 4, 3), np.uint8), None)
    (root / "model" / "seed-0" / "mine.npz").write_bytes(MINE)
    (root / "notes.txt").write_bytes(MINE)
    with pytest.raises(FileExistsError, match="other settings"):
        PredictionStore(root, {"steps": 2})
    PredictionStore(root, {"steps": 2}, overwrite=True)
    assert not batch.exists()
    assert (root / "model" / "seed-0" / "mine.npz").read_bytes() == MINE and (root / "notes.txt").read_bytes() == MINE
    assert json.loads((root / "settings.json").read_text()) == {"steps": 2}


def test_check_output_file_names_the_flag(tmp_path):
    (tmp_path / "x.json").write_text("{}")
    with pytest.raises(FileExistsError, match=r"--json .*x.json: exists"):
        check_output_file(tmp_path / "x.json", flag="--json")
    with pytest.raises(FileExistsError, match="is a directory"):
        check_output_file(tmp_path, overwrite=True)
    assert check_output_file(tmp_path / "x.json", overwrite=True) == tmp_path / "x.json"
