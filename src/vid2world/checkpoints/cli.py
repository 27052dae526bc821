"""`vid2world convert` and `vid2world inspect`: their arguments and handlers."""

from __future__ import annotations

import argparse

from ..io.args import add_json_flag, non_negative_int, positive_int, write_json


def _action_space(args: argparse.Namespace):
    """--action-dim A (continuous) or --action-space continuous:A | discrete:K (multi-hot)."""
    from ..models.config import ActionSpace

    if args.action_dim is not None and args.action_space is not None:
        raise ValueError("give --action-dim or --action-space, not both")
    if args.action_dim is not None:
        return ActionSpace.continuous(args.action_dim)
    if args.action_space is None:
        return None
    kind, _, width = args.action_space.partition(":")
    kinds = {"continuous": ActionSpace.continuous, "discrete": ActionSpace.multi_hot,
             "multi_hot": ActionSpace.multi_hot}
    if kind not in kinds or not width.isdigit():
        raise ValueError(f"--action-space: expected continuous:A or discrete:K (multi-hot over K), got "
                         f"{args.action_space!r}")
    return kinds[kind](int(width))


def _backbone(args: argparse.Namespace) -> str:
    """--backbone, or the kind the --base path holds (a Wan directory; DynamiCrafter otherwise)."""
    from ..models.wan.layouts import detect_video_model

    detected = detect_video_model(args.base) or "dynamicrafter"
    if args.backbone is not None and args.backbone != detected:
        raise ValueError(f"--backbone {args.backbone}: {args.base} holds a {detected} model")
    return detected


def _convert_wan(args: argparse.Namespace) -> int:
    from .wan import WanConversion, convert_wan_directory

    options = WanConversion(action_space=_action_space(args), vae=args.vae, prompt=args.prompt,
                            text_encoder=args.text_encoder, prompt_features=args.prompt_features,
                            image_encoder=args.image_encoder, seed=args.seed)
    report = convert_wan_directory(args.base, args.out, options, overwrite=args.overwrite)
    print(f"convert: {report['backbone']} from {report['path']} (VAE {report['vae']}, prompt of "
          f"{report['prompt_tokens']} tokens), causalized: {len(report['causalization']['new'])} action keys new")
    print(f"wrote {args.out}/ (load it with vid2world.WorldModel.from_pretrained)")
    return 0


def _convert(args: argparse.Namespace) -> int:
    from ..checkpoints.convert import ConvertOptions, convert, load_unet_config

    if _backbone(args) == "wan2.1":
        return _convert_wan(args)

    unet_config, schedule = load_unet_config(args.unet_config) if args.unet_config else (None, None)
    options = ConvertOptions(preset=args.preset, transfer=args.transfer, norm=args.norm,
                             action_space=_action_space(args), official=args.official,
                             out_conv_height_causal=args.out_conv_height_causal, fps=args.fps, seed=args.seed,
                             trust_pickle=args.trust_pickle, unet_config=unet_config, schedule=schedule)
    report = convert(args.base, args.out, options, overwrite=args.overwrite)
    print(report.summary())
    print(f"wrote {args.out}/ (load it with vid2world.WorldModel.from_pretrained)")
    return 0


def _inspect(args: argparse.Namespace) -> int:
    from ..checkpoints.inspect import format_inspection, inspect_checkpoint

    info = inspect_checkpoint(args.file, trust_pickle=args.trust_pickle)
    print(format_inspection(info))
    write_json(args.json, info)
    return 0


def register(sub) -> None:
    """The `convert` and `inspect` commands."""
    conv = sub.add_parser("convert", help="a pretrained video model (or a released Vid2World one) into a world model")
    conv.add_argument("--base", required=True, help="checkpoint: DynamiCrafter model.ckpt, released Vid2World, a "
                      "UNet-only state dict (.ckpt/.pt/.safetensors), or a Wan 2.1 transformer / pipeline directory")
    conv.add_argument("--backbone", default=None, choices=["dynamicrafter", "wan2.1"],
                      help="the model's kind (default: detected from --base)")
    conv.add_argument("--vae", default=None, help="Wan: Wan2.1_VAE.pth or a diffusers vae/ folder (default: the "
                      "pipeline directory's vae/)")
    conv.add_argument("--image-encoder", default=None, help="Wan image-to-video: the CLIP image encoder, "
                      "a transformers CLIPVisionModel folder (default: the pipeline directory's "
                      "image_encoder/)")
    conv.add_argument("--prompt", default="", help="Wan: the world model's fixed prompt (default: empty)")
    conv.add_argument("--text-encoder", default=None, help="Wan: a UMT5 encoder directory with its tokenizer, run "
                      "once on --prompt (default: the pipeline directory's text_encoder/)")
    conv.add_argument("--prompt-features", default=None, help="Wan: saved prompt features (safetensors, key "
                      "prompt_embeds) instead of --text-encoder")
    conv.add_argument("--preset", default="dynamicrafter-512",
                      help="architecture of the file: dynamicrafter-256|512|1024, tiny (default: dynamicrafter-512)")
    conv.add_argument("--unet-config", default=None, help="JSON UNet architecture for a UNet-only file that matches "
                      "no preset (a UNetConfig, or a world-model config.json)")
    conv.add_argument("--transfer", default="extrapolative", choices=["extrapolative", "masked", "shift"],
                      help="causal temporal-conv weight transfer (default: extrapolative)")
    conv.add_argument("--norm", default=None, choices=["frame", "causal", "clip"],
                      help="temporal GroupNorm mode (default: frame; clip with --official)")
    conv.add_argument("--action-dim", type=positive_int, default=None, help="continuous actions of this width")
    conv.add_argument("--action-space", default=None, help="continuous:A or discrete:K (multi-hot over K, CS:GO: 51)")
    conv.add_argument("--official", action="store_true",
                      help="a released Vid2World checkpoint: no transfer, official quirks kept")
    conv.add_argument("--out-conv-height-causal", action=argparse.BooleanOptionalAction, default=None,
                      help="the official height-causal output conv (default: on with --official, off otherwise)")
    conv.add_argument("--fps", type=positive_int, default=3, help="frame-rate condition (Vid2World: 3)")
    conv.add_argument("--seed", type=non_negative_int, default=0, help="initialisation of new action layers")
    conv.add_argument("--trust-pickle", action="store_true",
                      help="unpickle arbitrary objects in the file (only for files you trust)")
    conv.add_argument("--out", required=True, help="world-model directory to write (atomically): new or empty")
    conv.add_argument("--overwrite", action="store_true", help="replace the world model already in --out")
    conv.set_defaults(func=_convert)

    insp = sub.add_parser("inspect", help="what a checkpoint file or a world-model directory holds: format, preset, "
                          "parts, actions, dtype")
    insp.add_argument("file", help="a checkpoint file, or a world-model directory (convert's output)")
    insp.add_argument("--trust-pickle", action="store_true", help="unpickle arbitrary objects (trusted files only)")
    add_json_flag(insp)
    insp.set_defaults(func=_inspect)
