"""What a model consumes: the contract between data, models, export and serving.

Example:
    >>> from tfpilot.spec import InputSpec
    >>> spec = InputSpec.image(28, 28, 1)
    >>> spec.shape, spec.dtype
    ((28, 28, 1), 'uint8')
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal


@dataclass(frozen=True)
class InputSpec:
    """The raw input a tfpilot model takes.

    Args:
        kind: "image" (raw uint8 pixels, HxWxC) or "text" (raw strings).
        shape: per-example shape; () for a text string.
        dtype: "uint8" for images, "string" for text.
    """

    kind: Literal["image", "text"]
    shape: tuple[int, ...]
    dtype: str

    @classmethod
    def image(cls, height: int, width: int, channels: int) -> InputSpec:
        return cls("image", (int(height), int(width), int(channels)), "uint8")

    @classmethod
    def text(cls) -> InputSpec:
        return cls("text", (), "string")

    @property
    def image_size(self) -> tuple[int, int]:
        if self.kind != "image":
            raise ValueError("a text input has no image size")
        return self.shape[0], self.shape[1]

    @property
    def channels(self) -> int:
        if self.kind != "image":
            raise ValueError("a text input has no channels")
        return self.shape[2]

    def decode_target(self) -> dict[str, Any]:
        """Keyword arguments telling a pipeline how to decode file examples for this input:
        ``{"image_size", "channels"}`` for images, nothing for text."""
        return {"image_size": self.image_size, "channels": self.channels} if self.kind == "image" else {}

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["shape"] = list(self.shape)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> InputSpec:
        return cls(d["kind"], tuple(d["shape"]), d["dtype"])
