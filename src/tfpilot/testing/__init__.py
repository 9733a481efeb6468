"""Shared test helpers: tiny synthetic datasets and configs (used by tests/ and bench/)."""

from tfpilot.testing.synthetic import (
    make_image_folder,
    make_shapes_arrays,
    tiny_config,
    write_image,
)

__all__ = ["make_image_folder", "make_shapes_arrays", "tiny_config", "write_image"]
