"""Causalization: turn a full-sequence video UNet into a causal one by weight transfer."""

from .convert import CausalizationReport, causalize, causalize_state_dict, load_official_state_dict
from .keys import UNET_PREFIX, is_official_layout, normalize_keys, strip_prefix, to_official_keys
from .transfer import TRANSFER_MODES, extrapolation_coefficients, transfer_conv_weight, transfer_kernel

__all__ = ["CausalizationReport", "causalize", "causalize_state_dict", "load_official_state_dict", "UNET_PREFIX",
           "is_official_layout", "normalize_keys", "strip_prefix", "to_official_keys", "TRANSFER_MODES",
           "extrapolation_coefficients", "transfer_conv_weight", "transfer_kernel"]
