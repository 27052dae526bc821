"""The network metrics (LPIPS, FID's Inception, FVD's I3D): weights only from files the user names, the exact
upstream formats, the conventions of method.md 10.1. Stand-in files from vid2world.testing; parity with the
reference packages (which need torchvision) runs where they import, and skips here."""

from __future__ import annotations

import warnings

import torch
import pytest
from torch import nn

from vid2world import testing
from vid2world.metrics.i3d import DETECTOR_KWARGS, FVD_CONVENTION, I3DFeatures, fvd_features
from vid2world.metrics.inception import FIDInceptionV3, InceptionFeatures, fid_features
from vid2world.metrics.lpips import LPIPS, NETS, heads_file, lpips_frames, lpips_net_for
from vid2world.metrics.weights import ENV_VAR, WEIGHT_FILES, Skip, WeightsDir, load_checked, read_state_dict

HINT = "(give --weights DIR or set VID2WORLD_WEIGHTS)"


def videos(seed: int, shape: tuple[int, ...]) -> torch.Tensor:
    return torch.randint(0, 256, shape, generator=torch.Generator().manual_seed(seed), dtype=torch.uint8)


# --- where files come from ---------------------------------------------------------------------------------------

def test_lookup_returns_the_file_or_a_skip_naming_file_and_directory(tmp_path):
    present = testing.write_i3d_standin(tmp_path)
    weights = WeightsDir.resolve(tmp_path, environ={})
    assert weights.find("fvd") == present.resolve()
    skip = weights.find("fid")
    assert isinstance(skip, Skip)
    assert str(skip) == f"fid skipped: pt_inception-2015-12-05-6726825d.pth not found in {tmp_path.resolve()} {HINT}"
    nowhere = WeightsDir.resolve(None, environ={}).find("lpips-vgg")
    assert str(nowhere) == f"lpips-vgg skipped: vgg16-397923af.pth not found: no weights directory {HINT}"
    with pytest.raises(ValueError, match="unknown metric 'dreamsim'"):
        weights.find("dreamsim")


def test_env_var_is_honoured_and_the_flag_wins(tmp_path, monkeypatch):
    env_dir, flag_dir = tmp_path / "env", tmp_path / "flag"
    env_dir.mkdir(), flag_dir.mkdir()
    testing.write_i3d_standin(env_dir)
    monkeypatch.setenv(ENV_VAR, str(env_dir))
    assert WeightsDir.resolve().find("fvd") == (env_dir / "i3d_torchscript.pt").resolve()
    assert isinstance(WeightsDir.resolve(flag_dir).find("fvd"), Skip)  # --weights DIR overrides the variable
    monkeypatch.delenv(ENV_VAR)
    assert WeightsDir.resolve().path is None


def test_a_named_directory_that_does_not_exist_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match=f"--weights {tmp_path}/nope: no such directory"):
        WeightsDir.resolve(tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match=f"{ENV_VAR} {tmp_path}/gone: no such directory"):
        WeightsDir.resolve(environ={ENV_VAR: str(tmp_path / "gone")})


def test_the_file_names_are_the_upstream_releases():
    assert WEIGHT_FILES == {"lpips-vgg": "vgg16-397923af.pth", "lpips-alex": "alexnet-owt-7be5be79.pth",
                            "fid": "pt_inception-2015-12-05-6726825d.pth", "fvd": "i3d_torchscript.pt"}


def test_unreadable_files_name_the_file(tmp_path):
    garbage = tmp_path / "vgg16-397923af.pth"
    garbage.write_bytes(b"PK\x03\x04 truncated download")
    with pytest.raises(ValueError, match=f"{garbage}: corrupt, truncated or not a torch state dict"):
        read_state_dict(garbage)
    torch.save([torch.zeros(1)], tmp_path / "list.pth")
    with pytest.raises(ValueError, match="list.pth: holds a list, expected a state dict"):
        read_state_dict(tmp_path / "list.pth")
    with pytest.raises(FileNotFoundError, match="absent.pth: no such weights file"):
        read_state_dict(tmp_path / "absent.pth")


def test_checked_loading_names_the_file_and_the_first_differing_keys(tmp_path):
    module = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4))
    good = {k: v.clone() for k, v in module.state_dict().items() if not k.endswith("num_batches_tracked")}
    load_checked(module, good, "f.pth")  # num_batches_tracked may be absent (older files lack it)
    renamed = {("0.kernel" if k == "0.weight" else k): v for k, v in good.items()}
    with pytest.raises(ValueError, match=r"f.pth: not the expected weights: missing keys 0.weight; "
                                         r"unexpected keys 0.kernel"):
        load_checked(module, renamed, "f.pth")
    with pytest.raises(ValueError, match=r"f.pth: wrong shapes: 0.bias \(5,\) \(expected \(4,\)\)"):
        load_checked(module, {**good, "0.bias": torch.zeros(5)}, "f.pth")
    with pytest.raises(ValueError, match="f.pth: non-finite values .* in 1.weight"):
        load_checked(module, {**good, "1.weight": torch.full((4,), float("nan"))}, "f.pth")


# --- LPIPS ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("net, channels", [("vgg", (64, 128, 256, 512, 512)), ("alex", (64, 192, 384, 256, 256))])
def test_lpips_heads_are_read_from_the_torchmetrics_wheel(net, channels):
    heads = read_state_dict(heads_file(net))
    assert {k: tuple(v.shape) for k, v in heads.items()} == {
        f"lin{i}.model.1.weight": (1, c, 1, 1) for i, c in enumerate(channels)}
    assert all(bool((v >= 0).all()) for v in heads.values())  # lpips' heads are clamped non-negative


@pytest.mark.parametrize("net, convs", [
    ("vgg", {0: (64, 3, 3), 2: (64, 64, 3), 5: (128, 64, 3), 7: (128, 128, 3), 10: (256, 128, 3), 12: (256, 256, 3),
             14: (256, 256, 3), 17: (512, 256, 3), 19: (512, 512, 3), 21: (512, 512, 3), 24: (512, 512, 3),
             26: (512, 512, 3), 28: (512, 512, 3)}),
    ("alex", {0: (64, 3, 11), 3: (192, 64, 5), 6: (384, 192, 3), 8: (256, 384, 3), 10: (256, 256, 3)}),
])
def test_backbone_stand_in_has_torchvision_names_and_shapes(tmp_path, net, convs):
    state = read_state_dict(testing.write_lpips_backbone(tmp_path, net))
    expected = {}
    for index, (cout, cin, k) in convs.items():
        expected[f"features.{index}.weight"] = (cout, cin, k, k)
        expected[f"features.{index}.bias"] = (cout,)
    assert {k: tuple(v.shape) for k, v in state.items()} == expected
    again = read_state_dict(testing.write_lpips_backbone(tmp_path / "again", net))  # same seed, same file
    assert all(torch.equal(again[k], v) for k, v in state.items())


@pytest.fixture(scope="module")
def lpips_nets(tmp_path_factory) -> dict[str, LPIPS]:
    """Both nets on random stand-in backbones, built once for the module."""
    return {net: LPIPS(net, testing.write_lpips_backbone(tmp_path_factory.mktemp(net), net, seed=1)) for net in NETS}


@pytest.fixture(scope="module")
def vgg_lpips(lpips_nets) -> LPIPS:
    return lpips_nets["vgg"]


@pytest.mark.parametrize("net", ["vgg", "alex"])
def test_lpips_matches_torchmetrics_lpips_on_the_same_backbone(lpips_nets, net, monkeypatch):
    """torchmetrics' own LPIPS (lpips' slices, ScalingLayer, normalisation, heads) around our features stack:
    an independent implementation of everything but the backbone layers."""
    reference = pytest.importorskip("torchmetrics.functional.image.lpips")
    ours = lpips_nets[net]
    monkeypatch.setattr(reference, "_get_tv_model_features", lambda name, pretrained=False: ours.features)
    theirs = reference._LPIPS(pretrained=True, net=net).eval()
    gen = torch.Generator().manual_seed(0)
    a, b = (torch.rand(2, 3, 32, 40, generator=gen) * 2 - 1 for _ in range(2))
    with torch.no_grad():
        expected = theirs(a, b).flatten()
        got = ours(a, b)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=0)


def test_lpips_per_frame_properties(vgg_lpips):
    pred, target = videos(0, (2, 3, 16, 24, 3)), videos(1, (2, 3, 16, 24, 3))
    d = lpips_frames(vgg_lpips, pred, target, batch_size=4)
    assert d.shape == (2, 3) and d.dtype == torch.float32 and bool((d > 0).all())
    torch.testing.assert_close(lpips_frames(vgg_lpips, target, pred), d, rtol=1e-5, atol=0)  # symmetric
    torch.testing.assert_close(lpips_frames(vgg_lpips, pred, target, batch_size=1), d, rtol=1e-5, atol=0)
    same = lpips_frames(vgg_lpips, pred.numpy(), pred.numpy())
    assert float(same.abs().max()) <= 1e-6 * float(d.min())
    assert "lpips v0.1 vgg" in vgg_lpips.convention and "vgg16-397923af.pth" in vgg_lpips.convention


def test_lpips_bad_inputs(vgg_lpips, tmp_path):
    frames = videos(0, (1, 2, 16, 16, 3))
    with pytest.raises(ValueError, match=r"pred: expected uint8 \[B,T,H,W,3\] RGB frames, got torch.float32"):
        lpips_frames(vgg_lpips, frames.float(), frames)
    with pytest.raises(ValueError, match=r"pred \(1, 2, 16, 16, 3\) and target \(1, 1, 16, 16, 3\): shapes differ"):
        lpips_frames(vgg_lpips, frames, frames[:, :1])
    with pytest.raises(ValueError, match="NaN or inf"):
        vgg_lpips(torch.full((1, 3, 8, 8), float("nan")), torch.zeros(1, 3, 8, 8))
    with pytest.raises(ValueError, match=r"LPIPS net 'squeeze': expected one of \['alex', 'vgg'\]"):
        LPIPS("squeeze", tmp_path / "x.pth")


def test_lpips_backbone_file_keeps_only_features_and_names_what_is_wrong(tmp_path):
    path = testing.write_lpips_backbone(tmp_path, "alex")
    state = read_state_dict(path)
    torch.save({**state, "classifier.6.bias": torch.zeros(1000)}, path)  # the real file's classifier is ignored
    assert LPIPS("alex", path).convention.startswith("lpips v0.1 alex")
    state.pop("features.8.weight")
    torch.save(state, path)
    with pytest.raises(ValueError, match=f"{path}: not the expected weights: missing keys features.8.weight"):
        LPIPS("alex", path)
    assert [lpips_net_for(name) for name in ("rt1", "csgo", "recon", "square")] == ["vgg", "vgg", "alex", "vgg"]


# --- FID Inception ----------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def inception_file(tmp_path_factory):
    """The full-size stand-in (~91 MiB), written once for the module."""
    return testing.write_fid_inception(tmp_path_factory.mktemp("fid"))


@pytest.fixture(scope="module")
def inception(inception_file) -> InceptionFeatures:
    return InceptionFeatures(inception_file)


def test_inception_state_dict_has_pytorch_fid_keys_and_loads_strictly(inception_file, inception):
    state = read_state_dict(inception_file)
    # torchvision's inception_v3 has 27,161,264 parameters; without AuxLogits (3,326,696) and with 1008 classes
    assert sum(v.numel() for k, v in state.items() if not k.endswith(("running_mean", "running_var"))) == 23_850_960
    shapes = {"Conv2d_1a_3x3.conv.weight": (32, 3, 3, 3), "Conv2d_4a_3x3.conv.weight": (192, 80, 3, 3),
              "Mixed_5b.branch_pool.conv.weight": (32, 192, 1, 1), "Mixed_6a.branch3x3.conv.weight": (384, 288, 3, 3),
              "Mixed_6e.branch7x7dbl_5.conv.weight": (192, 192, 1, 7), "Mixed_7b.branch1x1.conv.weight": (320, 1280, 1, 1),
              "Mixed_7c.branch3x3dbl_3b.conv.weight": (384, 384, 3, 1), "Mixed_7c.branch_pool.bn.running_var": (192,),
              "fc.weight": (1008, 2048), "fc.bias": (1008,)}
    assert {k: tuple(state[k].shape) for k in shapes} == shapes
    assert not any(k.startswith("AuxLogits") for k in state)
    loaded = inception.net.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in state.items())
    state["Mixed_6b.branch7x7_2.conv.kernel"] = state.pop("Mixed_6b.branch7x7_2.conv.weight")
    with pytest.raises(ValueError, match="missing keys Mixed_6b.branch7x7_2.conv.weight; unexpected keys "
                                         "Mixed_6b.branch7x7_2.conv.kernel"):
        load_checked(FIDInceptionV3(), state, inception_file)


class _Stop(Exception):
    pass


def test_inception_input_is_299_bilinear_in_minus_one_to_one(inception):
    seen = []

    def capture(module, args):
        seen.append(args[0].clone())
        raise _Stop  # the stem's input is all this test needs

    handle = inception.net.Conv2d_1a_3x3.register_forward_pre_hook(capture)
    try:
        for value in (0, 51, 255):
            with pytest.raises(_Stop):
                fid_features(inception, torch.full((2, 20, 30, 3), value, dtype=torch.uint8))
    finally:
        handle.remove()
    assert [tuple(x.shape) for x in seen] == [(2, 3, 299, 299)] * 3
    for x, expected in zip(seen, (-1.0, 2 * 51 / 255 - 1, 1.0)):
        torch.testing.assert_close(x, torch.full_like(x, expected), rtol=1e-6, atol=1e-6)


def test_fid_features_are_2048_per_frame_and_batch_independent(inception):
    frames = videos(4, (3, 24, 32, 3))
    frames[2] = frames[0]
    features = fid_features(inception, frames, batch_size=2)  # frames 0 and 2 land in different batches
    assert features.shape == (3, 2048) and features.dtype == torch.float32
    torch.testing.assert_close(features[2], features[0], rtol=1e-5, atol=1e-6 * float(features.abs().max()))
    assert not torch.equal(features[0], features[1])
    assert "pt_inception-2015-12-05-6726825d.pth" in inception.convention


# --- FVD I3D ----------------------------------------------------------------------------------------------------

def test_the_detector_is_called_with_the_recorded_convention(tmp_path):
    net = I3DFeatures(testing.write_i3d_standin(tmp_path))
    clips = videos(5, (3, 5, 16, 20, 3))
    features = fvd_features(net, clips, batch_size=2)
    assert features.shape == (3, 400) and features.dtype == torch.float32
    detector = net.detector
    assert detector.shapes == [[2, 3, 5, 16, 20], [1, 3, 5, 16, 20]]  # B,C,T,H,W at native size, batched
    assert detector.flags == [[True, True, True]] * 2  # rescale, resize, return_features
    assert DETECTOR_KWARGS == {"rescale": True, "resize": True, "return_features": True}
    seen = detector.last_input
    assert seen.dtype == torch.uint8 and seen.is_contiguous()  # [0, 255], as StyleGAN-V feeds it
    assert torch.equal(seen, clips[2:].permute(0, 4, 1, 2, 3))
    assert net.convention == f"{FVD_CONVENTION} (i3d_torchscript.pt)"
    again = fvd_features(net, clips.numpy(), batch_size=3)  # one call instead of two: the same features
    torch.testing.assert_close(again, features, rtol=1e-5, atol=1e-6 * float(features.abs().max()))


class _WrongWidth(nn.Module):
    def forward(self, x: torch.Tensor, rescale: bool = False, resize: bool = False,
                return_features: bool = False) -> torch.Tensor:
        return x.float().flatten(1)[:, :7]


def test_detector_files_that_are_not_the_i3d_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        I3DFeatures(tmp_path / "i3d_torchscript.pt")
    state_dict = tmp_path / "i3d_torchscript.pt"
    torch.save({"w": torch.zeros(2)}, state_dict)
    with pytest.raises(ValueError, match=f"{state_dict}: not a TorchScript archive"):
        I3DFeatures(state_dict)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(torch.jit.script(_WrongWidth()), str(state_dict))
    with pytest.raises(ValueError, match=r"returned \(1, 7\) for 1 videos, expected \[B, 400\]"):
        fvd_features(I3DFeatures(state_dict), videos(0, (1, 2, 4, 4, 3)))
    with pytest.raises(ValueError, match=r"videos: expected uint8 \[B,T,H,W,3\] RGB frames, got torch.uint8 "
                                         r"\(2, 4, 4, 3\)"):
        fvd_features(I3DFeatures(state_dict), videos(0, (2, 4, 4, 3)))


# --- parity with the reference packages (they need torchvision: the GPU machine) --------------------------------

@pytest.mark.parametrize("net", ["vgg", "alex"])
def test_lpips_matches_the_lpips_package(tmp_path, net):
    lpips = pytest.importorskip("lpips", reason="lpips needs torchvision: parity runs on the GPU machine")
    path = testing.write_lpips_backbone(tmp_path, net, seed=2)
    ours, backbone = LPIPS(net, path), read_state_dict(path)
    theirs = lpips.LPIPS(net=net, pnet_rand=True, verbose=False).eval()  # v0.1 heads from its wheel, no download
    for name, param in theirs.net.named_parameters():  # slice{k}.{torchvision index}.weight
        param.data.copy_(backbone["features." + name.split(".", 1)[1]])
    gen = torch.Generator().manual_seed(1)
    a, b = (torch.rand(2, 3, 64, 64, generator=gen) * 2 - 1 for _ in range(2))
    with torch.no_grad():
        torch.testing.assert_close(ours(a, b), theirs(a, b).flatten(), rtol=1e-4, atol=0)


def test_fid_inception_matches_pytorch_fid(inception_file, inception, monkeypatch):
    reference = pytest.importorskip("pytorch_fid.inception",
                                    reason="pytorch-fid needs torchvision: parity runs on the GPU machine")
    state = read_state_dict(inception_file)
    monkeypatch.setattr(reference, "load_state_dict_from_url", lambda *args, **kwargs: state)  # no download
    theirs = reference.InceptionV3([3]).eval()
    x = videos(6, (2, 40, 56, 3)).permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        expected = theirs(x)[0].flatten(1)
        got = inception(x)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5 * float(expected.abs().max()))
