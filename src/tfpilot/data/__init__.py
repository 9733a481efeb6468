"""Datasets: built-ins, image folders and CSVs, stratified splits, tf.data pipelines."""

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
from tfpilot.data.source import RawDataset, Split

__all__ = [
    "DATASETS",
    "FORMATS",
    "DataFormat",
    "DataReport",
    "PreparedData",
    "RawDataset",
    "Split",
    "list_datasets",
    "load_dataset",
    "make_pipeline",
    "prepare_data",
    "register_dataset",
]
