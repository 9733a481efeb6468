"""Datasets: built-ins, image folders and CSVs, stable stratified splits, a run's recorded
splits (:func:`load_run_data`), tf.data pipelines."""

from tfpilot.data.manifest import RecordedSplitError
from tfpilot.data.pipeline import make_pipeline
from tfpilot.data.registry import (
    DATASETS,
    FORMATS,
    DataFormat,
    PreparedData,
    list_datasets,
    load_dataset,
    prepare_data,
    register_dataset,
)
from tfpilot.data.report import DataReport
from tfpilot.data.run_data import load_run_data, recorded_manifest, training_overlap
from tfpilot.data.source import RawDataset, Split

__all__ = [
    "DATASETS",
    "FORMATS",
    "DataFormat",
    "DataReport",
    "PreparedData",
    "RawDataset",
    "RecordedSplitError",
    "Split",
    "list_datasets",
    "load_dataset",
    "load_run_data",
    "make_pipeline",
    "prepare_data",
    "recorded_manifest",
    "register_dataset",
    "training_overlap",
]
