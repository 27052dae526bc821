"""The CPU training fast paths compute what the plain formulations compute: the matmul self-attention autograd
takes on CPU, the bfloat16 and channels-last GroupNorm, the GEGLU's split projection and the UNet's channels-last
features."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from vid2world.models.attention import GEGLU, self_attention
from vid2world.models.config import ActionSpace, CausalConfig, UNetConfig
from vid2world.models.temporal import group_norm
from vid2world.models import unet as unet_module
from vid2world.models.unet import VideoUNet


def _randn(*shape: int, seed: int = 0, dtype=torch.float64) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


@pytest.mark.parametrize("causal", [False, True])
def test_recorded_self_attention_equals_the_fused_kernel_with_its_gradients(causal):
    q, k, v = (_randn(3, 2, 7, 8, seed=s).requires_grad_() for s in range(3))
    out = self_attention(q, k, v, causal)  # autograd records: the matmul path
    with torch.no_grad():
        fused = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    torch.testing.assert_close(out, fused, rtol=1e-12, atol=1e-12)
    grads = torch.autograd.grad(out.square().sum(), (q, k, v))
    q2, k2, v2 = (t.detach().clone().requires_grad_() for t in (q, k, v))
    reference = F.scaled_dot_product_attention(q2, k2, v2, is_causal=causal)  # the fused kernel's own backward
    for got, want in zip(grads, torch.autograd.grad(reference.square().sum(), (q2, k2, v2))):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)


def test_bfloat16_group_norm_rounds_the_float32_result_once():
    x = (_randn(4, 64, 6, 5, dtype=torch.float32) * 3 + 1).bfloat16()
    w, b = 1 + 0.1 * _randn(64, seed=1, dtype=torch.float32), 0.1 * _randn(64, seed=2, dtype=torch.float32)
    out = group_norm(x, 16, w, b, 1e-5)
    reference = F.group_norm(x.float(), 16, w, b, 1e-5)
    assert out.dtype == torch.bfloat16
    # within one bfloat16 rounding of the float32 result (the kernel only sums in another order)
    assert ((out.float() - reference).abs() <= reference.abs() * 2 ** -8 + 1e-6).all()


@pytest.mark.parametrize("dims", [4, 5])
def test_channels_last_group_norm_keeps_its_layout_and_values(dims):
    x = _randn(2, 32, *(3, 4, 5)[: dims - 2], dtype=torch.float32)
    layout = torch.channels_last if dims == 4 else torch.channels_last_3d
    w, b = 1 + 0.1 * _randn(32, seed=1, dtype=torch.float32), 0.1 * _randn(32, seed=2, dtype=torch.float32)
    out = group_norm(x.contiguous(memory_format=layout), 8, w, b, 1e-5)
    assert out.is_contiguous(memory_format=layout) and not out.is_contiguous()
    torch.testing.assert_close(out, F.group_norm(x, 8, w, b, 1e-5), rtol=0, atol=0)


def test_geglu_split_projection_equals_the_chunked_one():
    torch.manual_seed(0)
    geglu = GEGLU(6, 10).double()
    x = _randn(3, 4, 6)
    value, gate = geglu.proj(x).chunk(2, dim=-1)
    torch.testing.assert_close(geglu(x), value * F.gelu(gate), rtol=1e-13, atol=1e-13)


def test_unet_on_channels_last_features_equals_the_contiguous_computation(monkeypatch):
    cfg = UNetConfig.preset("pixel-tiny", action_space=ActionSpace.continuous(3), causal=CausalConfig("frame"))
    torch.manual_seed(0)
    unet = VideoUNet(cfg).double().eval()
    x, levels, actions = _randn(2, cfg.in_channels, 3, 16, 16), torch.tensor([[10, 500, 900]] * 2), _randn(2, 3, 3)
    assert unet_module.feature_layout(x.device) == torch.channels_last
    with torch.no_grad():
        out = unet.denoise(x, levels, frame_actions=actions)
        monkeypatch.setattr(unet_module, "feature_layout", lambda device: torch.contiguous_format)
        plain = unet.denoise(x, levels, frame_actions=actions)
    torch.testing.assert_close(out, plain, rtol=1e-12, atol=1e-12)
