"""The table task: what training a table model (a config with a ``features`` section) does
differently from a classifier, behind the interface of :class:`~tfpilot.training.setup.Task`.

The table is read, resolved and split by :func:`~tfpilot.data.table.prepare_table`; the model
gets an encoder per column and a head per output (:mod:`tfpilot.models.multitask`), adapted on
the training split; every head has its own loss and metrics (:mod:`tfpilot.training.losses`),
weighted by ``features.outputs[].loss_weight``.

Example:
    >>> from tfpilot.config import load_config
    >>> cfg = load_config({"features": {"outputs": ["y"]}, "model": {"name": "multitask"}})
    >>> TableTask().loss_weights(cfg)
    {'y': 1.0}
"""

from __future__ import annotations

import json
import logging
from typing import Any

from tfpilot.config import Config
from tfpilot.runs import SPLIT, Run

log = logging.getLogger(__name__)


class TableTask:
    """A table model: :class:`~tfpilot.data.table.TableData`, encoders per column, a loss per head."""

    def prepare(self, config: Config, source: Run | None = None) -> tuple[Config, Any]:
        """Read and split the table; returns the config with its resolved ``features`` and the data.

        Args:
            config: the run config.
            source: the run being resumed (its recorded split must match the table's); None
                for a new run.

        Raises:
            ValueError: the table's rows or split changed since ``source`` started.
        """
        from tfpilot.data.table import prepare_table

        data = prepare_table(config)
        config = config.model_copy(update={"features": data.features})
        log.info("%s", data.schema_text())
        if source is not None:
            saved = json.loads(source.file(SPLIT).read_text())
            if saved["splits"] != json.loads(json.dumps(data.manifest))["splits"]:
                raise ValueError(f"the data of {source.path} changed since the run started; cannot resume it")
        return config, data

    def create_model(self, config: Config, data: Any) -> Any:
        """The registered table model of ``model.name``, with each column's encoder settings.

        Args:
            config: the run config (features resolved).
            data: the prepared table.
        """
        from tfpilot.registry import MODELS

        return MODELS.get(config.model.name)(data.input_spec, 0, encoders=data.encoders(), **config.model.params)

    def adapt(self, model: Any, data: Any) -> None:
        """Learn vocabularies, normalisation and target statistics from the training split only.

        Args:
            model: the built table model.
            data: the prepared table.
        """
        from tfpilot.models.multitask import adapt_table_model

        train = data.splits["train"]
        adapt_table_model(model, data.input_spec, train.inputs, train.targets, data.normalize)

    def loss_and_metrics(self, config: Config, model: Any, num_classes: int) -> tuple[Any, Any]:
        """One loss and its metrics per head, keyed by output key.

        Args:
            config: the run config (features resolved).
            model: the adapted table model.
            num_classes: unused (a table has classes per head).
        """
        from tfpilot.training.losses import table_loss_and_metrics

        return table_loss_and_metrics(config.features, model, config.train.top_k)

    def loss_weights(self, config: Config) -> dict[str, float]:
        """Output key -> ``features.outputs[].loss_weight``.

        Args:
            config: the run config.
        """
        from tfpilot.spec import column_key

        return {column_key(o.name): float(o.loss_weight) for o in config.features.outputs}

    def measures_mode_gap(self, model: Any) -> bool:
        """No mode-gap check: it compares the accuracy of one classifier head.

        Args:
            model: the trained model.
        """
        return False
