"""Registers the path formats tfpilot reads for images (folders, archives, CSVs)."""

from __future__ import annotations

from tfpilot.data import folder
from tfpilot.data.paths import is_archive
from tfpilot.data.registry import FORMATS, DataFormat

FORMATS.add("image_csv", DataFormat(folder.is_image_csv, folder.load_image_csv, priority=10),
            description="CSV of path,label rows")
FORMATS.add("image_folder", DataFormat(lambda p: p.is_dir() or is_archive(p), folder.load_image_folder, priority=50),
            description="ROOT/<class>/* or ROOT/{train,test,val}/<class>/*, or an archive of one")
