"""Typed run configuration: schema, YAML loading and ``--set`` overrides."""

from tfpilot.config.loader import (
    SHORT_FLAGS,
    ConfigError,
    dump_config,
    evaluation_batch,
    load_config,
    parse_override,
    save_config,
)
from tfpilot.config.schema import (
    CallbacksConfig,
    Config,
    DataConfig,
    ModelConfig,
    OptimizerConfig,
    OutputConfig,
    ScheduleConfig,
    TrainConfig,
)

__all__ = [
    "SHORT_FLAGS",
    "CallbacksConfig",
    "Config",
    "ConfigError",
    "DataConfig",
    "ModelConfig",
    "OptimizerConfig",
    "OutputConfig",
    "ScheduleConfig",
    "TrainConfig",
    "dump_config",
    "evaluation_batch",
    "load_config",
    "parse_override",
    "save_config",
]
