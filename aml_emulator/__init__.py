"""Offline Azure ML batch endpoint emulator that really scores CSV files in Azurite.

Run it with ``python -m aml_emulator serve`` or in-process::

    from aml_emulator import EmulatorConfig, EmulatorServer
    with EmulatorServer(EmulatorConfig(port=0, state_path="state.sqlite")) as server:
        print(server.base_url)

See ``aml_emulator/README.md`` for routes, defaults, faults and the model.
"""

from aml_emulator._config import (
    ConfigError,
    EmulatorConfig,
    EndpointConfig,
    FaultSpec,
    config_from_dict,
    load_config,
)
from aml_emulator._model import COEFFICIENTS, HEART_COLUMNS, INTERCEPT, predict_row, score_csv
from aml_emulator._sample import generate_sample_files
from aml_emulator.server import EmulatorServer

__all__ = [
    "COEFFICIENTS",
    "HEART_COLUMNS",
    "INTERCEPT",
    "ConfigError",
    "EmulatorConfig",
    "EmulatorServer",
    "EndpointConfig",
    "FaultSpec",
    "config_from_dict",
    "generate_sample_files",
    "load_config",
    "predict_row",
    "score_csv",
]
