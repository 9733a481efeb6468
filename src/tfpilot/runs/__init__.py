"""The run directory: its file names, reading, and atomic writing.

The bottom of the stack beside the config: training writes a run, every other package
(evaluation, inference, export, serving, models loading a backbone) reads it through
:class:`Run` without importing ``training/``.
"""

from tfpilot.runs.run import (
    BACKUP,
    CONFIG,
    DATA_REPORT,
    ENSEMBLE,
    ENV,
    EVALUATIONS,
    HISTORY,
    LABELS,
    METRICS,
    MODEL,
    REPORT,
    SPLIT,
    Run,
    beside,
    evaluation_name,
    import_run_modules,
    load_model,
    rerun_dir,
    write_json,
)

__all__ = ["BACKUP", "CONFIG", "DATA_REPORT", "ENSEMBLE", "ENV", "EVALUATIONS", "HISTORY", "LABELS", "METRICS",
           "MODEL", "REPORT", "SPLIT", "Run", "beside", "evaluation_name", "import_run_modules", "load_model", "rerun_dir",
           "write_json"]
