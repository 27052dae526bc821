"""`CausalizationReport`: what `causalize` did to each key, whichever backbone it causalized."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any


@dataclass
class CausalizationReport:
    """What `causalize` did to each key of the state dict."""

    transfer: str
    temporal_norm: str
    out_conv_height_causal: bool
    renamed: dict[str, str] = field(default_factory=dict)  # input key -> vid2world key
    transferred: list[str] = field(default_factory=list)  # kernels rewritten by the weight transfer
    new: list[str] = field(default_factory=list)  # keys absent from the input, freshly initialised (actions)
    copied: list[str] = field(default_factory=list)  # keys copied unchanged

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def summary(self) -> str:
        return (f"causalize: transfer={self.transfer} temporal_norm={self.temporal_norm} "
                f"out_conv_height_causal={self.out_conv_height_causal}: {len(self.transferred)} kernels transferred, "
                f"{len(self.new)} keys new, {len(self.renamed)} renamed, {len(self.copied)} copied unchanged")

    def write(self, path: str) -> None:
        from ..io.atomic import write_text

        write_text(path, json.dumps(self.to_dict(), indent=1))
