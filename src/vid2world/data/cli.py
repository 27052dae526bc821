"""`vid2world data record|convert|export|info|preview`: their arguments and handlers."""

from __future__ import annotations

import argparse

from ..io.args import add_json_flag, add_progress_flag, frame_size, non_negative_int, positive_int, write_json
from .sim.policies import POLICIES


def _data_record(args: argparse.Namespace) -> int:
    from ..data.record import RecordConfig, record_dataset

    cfg = RecordConfig(env=args.env, episodes=args.episodes, steps=args.steps, policy=args.policy, size=args.size,
                       seed=args.seed, actions=not args.no_actions, val_episodes=args.val_episodes,
                       workers=args.workers)
    dataset = record_dataset(cfg, args.out, progress=not args.no_progress)
    print(f"wrote {dataset.root}: {len(dataset)} episodes, {dataset.num_frames} frames, "
          f"{dataset.meta.action_dim}-d actions")
    return 0


def _data_convert(args: argparse.Namespace) -> int:
    from ..data.importers import FORMATS

    options = {"size": args.size, "skip_bad": args.skip_bad, "progress": not args.no_progress}
    if args.format == "rlds":
        options["split"] = args.rlds_split
    else:
        options["split_file"] = args.split_file
    if args.format == "lerobot":
        options["camera"] = args.camera
    elif args.camera:
        raise ValueError("--camera: only for --format lerobot (a dataset with several camera streams)")
    dataset, report = FORMATS[args.format](args.src, args.out, **options)
    print(report.summary())
    print(f"wrote {dataset.root}: {len(dataset)} episodes, {dataset.num_frames} frames")
    return 0


def _data_export(args: argparse.Namespace) -> int:
    from ..data.export_lerobot import export_lerobot
    from ..data.store import open_dataset

    ds = open_dataset(args.src)
    task = args.task if args.task is not None else (ds.meta.source or ds.meta.name)
    out = export_lerobot(ds, args.out, camera=args.camera, task=task, lossless=not args.lossy,
                         robot_type=args.robot_type, progress=not args.no_progress)
    print(f"wrote {out}: a LeRobot {len(ds)}-episode dataset ({ds.num_frames} frames, camera {args.camera})")
    return 0


def _data_info(args: argparse.Namespace) -> int:
    from ..data.inspect import dataset_info, format_info
    from ..data.store import open_dataset

    info = dataset_info(open_dataset(args.dir))
    print(format_info(info))
    write_json(args.json, info)
    return 0


def _data_preview(args: argparse.Namespace) -> int:
    from ..data.inspect import write_preview
    from ..data.store import open_dataset

    out = args.out or str(args.dir).rstrip("/") + "_preview.mp4"
    path = write_preview(open_dataset(args.dir), out, episodes=args.episodes, frames=args.frames, scale=args.scale,
                         seed=args.seed, overwrite=args.overwrite)
    print(f"wrote {path}")
    return 0


def register(sub) -> None:
    """The `data` command and its sub-commands."""
    data = sub.add_parser("data", help="record, import and look at datasets")
    data_sub = data.add_subparsers(dest="data", required=True)
    record = data_sub.add_parser("record", help="simulator episodes into a dataset (offline)")
    record.add_argument("--env", required=True,
                        help="vizdoom:<scenario> (deathmatch, my_way_home, health_gathering, defend_the_center, ...), "
                             "atari:<Game> (any ALE game, e.g. atari:Breakout), or crafter")
    record.add_argument("--episodes", type=positive_int, required=True, help="number of episodes")
    record.add_argument("--steps", type=positive_int, default=200,
                        help="frames per episode; fewer if the game ends (200)")
    record.add_argument("--policy", choices=sorted(POLICIES), default="scripted",
                        help="random: a new uniform action every step; scripted: purposeful actions held for "
                             "several steps (default); explore: 1-5-step segments, scripted or random, half each")
    record.add_argument("--size", type=positive_int, default=64, help="frame height and width in pixels (default: 64)")
    record.add_argument("--seed", type=non_negative_int, default=0,
                        help="the same seed gives the same episodes (default: 0)")
    record.add_argument("--workers", type=positive_int, default=1, help="recording processes (default: 1)")
    record.add_argument("--val-episodes", type=non_negative_int, default=0,
                        help="the last K episodes form split 'val' (0)")
    record.add_argument("--no-actions", action="store_true", help="store video only (for passive pretraining)")
    record.add_argument("--out", required=True, help="dataset directory to create (must not exist)")
    add_progress_flag(record)
    record.set_defaults(func=_data_record)

    convert = data_sub.add_parser("convert", help="RT-1 / CS:GO / RECON / LeRobot v3 into a dataset")
    convert.add_argument("--format", required=True, choices=["rt1", "rlds", "csgo", "recon", "lerobot"],
                         help="rt1: official npz files (image, action); rlds: an RLDS/TFDS builder directory (needs "
                              "the rlds extra); csgo: DIAMOND's HDF5 files; recon: NoMaD trajectory folders; "
                              "lerobot: a LeRobot v3.0 dataset directory (meta/info.json, parquet, mp4)")
    convert.add_argument("--src", required=True, help="source directory")
    convert.add_argument("--out", required=True, help="dataset directory to create (must not exist)")
    convert.add_argument("--size", type=frame_size, help="resize frames to HxW while importing (default: keep)")
    convert.add_argument("--split-file", help="held-out names (DIAMOND test_split.txt, NoMaD traj_names.txt, or a "
                                              "JSON list): those episodes get split 'test'")
    convert.add_argument("--rlds-split", default="train", help="rlds: the TFDS split to read (default: train)")
    convert.add_argument("--skip-bad", action="store_true",
                         help="skip unreadable source files and list them in the summary (default: stop at the first)")
    convert.add_argument("--camera", default=None, help="lerobot: the video feature to import (default: the first)")
    add_progress_flag(convert)
    convert.set_defaults(func=_data_convert)

    export = data_sub.add_parser("export", help="a dataset as a LeRobot v3 dataset",
                                 description="Write a dataset in LeRobot's v3.0 layout (meta/info.json, parquet "
                                 "frames and episodes, one mp4 per camera), so LeRobot's tools open it.")
    export.add_argument("--format", required=True, choices=["lerobot"], help="the layout to write")
    export.add_argument("--src", required=True, help="a vid2world dataset directory")
    export.add_argument("--out", required=True, help="directory to create (must not exist)")
    export.add_argument("--camera", default="observation.image", help="the video feature's name")
    export.add_argument("--task", default=None, help="the task text of every episode (default: the dataset's "
                        "source, e.g. vizdoom:deathmatch)")
    export.add_argument("--robot-type", default=None, help="info.json's robot_type")
    export.add_argument("--lossy", action="store_true", help="yuv420p H.264 (smaller, not exact) instead of "
                        "lossless RGB H.264")
    add_progress_flag(export)
    export.set_defaults(func=_data_export)

    info = data_sub.add_parser("info", help="counts, lengths and action statistics")
    info.add_argument("dir", help="dataset directory")
    add_json_flag(info)
    info.set_defaults(func=_data_info)

    preview = data_sub.add_parser("preview", help="an mp4 or GIF grid of episodes with their actions written on")
    preview.add_argument("dir", help="dataset directory")
    preview.add_argument("--out", help="output .mp4 or .gif (default: DIR_preview.mp4)")
    preview.add_argument("--episodes", type=positive_int, default=4, help="episodes in the grid (default: 4)")
    preview.add_argument("--frames", type=positive_int, default=64, help="frames shown (default: 64)")
    preview.add_argument("--scale", type=positive_int, default=2, help="pixel upscaling (default: 2)")
    preview.add_argument("--seed", type=non_negative_int, default=0, help="which episodes (default: 0)")
    preview.add_argument("--overwrite", action="store_true", help="replace the file at --out when it exists")
    preview.set_defaults(func=_data_preview)
