"""The deterministic heart-disease model the emulator scores with.

A fixed logistic regression over the 13 columns of the heart-disease example
(``age,sex,cp,trestbps,chol,fbs,restecg,thalach,exang,oldpeak,slope,ca,thal``)::

    z = -6.2
        + 0.030 * age + 0.90 * sex + 0.60 * cp + 0.015 * trestbps + 0.004 * chol
        - 0.10 * fbs + 0.20 * restecg - 0.030 * thalach + 0.90 * exang
        + 0.50 * oldpeak + 0.40 * slope + 0.80 * ca + 0.70 * thal
    p = 1 / (1 + exp(-z));  prediction = 1 if p >= 0.5 else 0

``thal`` is encoded normal=0, fixed=1, reversible=2; a digit string (``"1"``) is read as that
number, as the example data set contains a few. The coefficients are not fitted to anything:
they only have plausible signs, so the model is deterministic, dependency-free and yields a
mix of 0 and 1 on the sample data (see ``_sample.py``).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping
from dataclasses import dataclass

HEART_COLUMNS: tuple[str, ...] = (
    "age",
    "sex",
    "cp",
    "trestbps",
    "chol",
    "fbs",
    "restecg",
    "thalach",
    "exang",
    "oldpeak",
    "slope",
    "ca",
    "thal",
)
INTERCEPT = -6.2
COEFFICIENTS: Mapping[str, float] = {
    "age": 0.030,
    "sex": 0.90,
    "cp": 0.60,
    "trestbps": 0.015,
    "chol": 0.004,
    "fbs": -0.10,
    "restecg": 0.20,
    "thalach": -0.030,
    "exang": 0.90,
    "oldpeak": 0.50,
    "slope": 0.40,
    "ca": 0.80,
    "thal": 0.70,
}
THAL_CODES: Mapping[str, float] = {"normal": 0.0, "fixed": 1.0, "reversible": 2.0}


class ScoringError(ValueError):
    """A file could not be scored; the message names the file and the problem."""


@dataclass(frozen=True, slots=True, kw_only=True)
class FileScore:
    """Predictions for one input file, in row order."""

    file_name: str
    predictions: tuple[int, ...]


def _feature(file_name: str, row: int, column: str, raw: str) -> float:
    value = raw.strip()
    if column == "thal" and value.lower() in THAL_CODES:
        return THAL_CODES[value.lower()]
    try:
        number = float(value)
    except ValueError:
        raise ScoringError(
            f"Error processing input file: '{file_name}'. Row {row}, column '{column}': "
            f"invalid literal for a number: {value[:40]!r}"
        ) from None
    if not math.isfinite(number):
        raise ScoringError(
            f"Error processing input file: '{file_name}'. Row {row}, column '{column}': "
            f"value is not finite: {value[:40]!r}"
        )
    return number


def predict_row(features: Mapping[str, float]) -> int:
    """Return 0/1 for one row of numeric features (all 13 heart columns required)."""
    z = INTERCEPT + sum(COEFFICIENTS[c] * features[c] for c in HEART_COLUMNS)
    # Clamp before exp(): extreme rows must not overflow.
    p = 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, z))))
    return 1 if p >= 0.5 else 0


def score_csv(file_name: str, data: bytes) -> FileScore:
    """Score one CSV file with a header line holding (at least) the 13 heart columns.

    Raises:
        ScoringError: the file is not UTF-8, has no header, misses a column or has a bad value.
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ScoringError(
            f"Error processing input file: '{file_name}'. The file is not UTF-8 text"
        ) from None
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if not header:
        raise ScoringError(
            f"Error processing input file: '{file_name}'. No columns to parse from file"
        )
    index = {name.strip(): i for i, name in enumerate(header)}
    for column in HEART_COLUMNS:
        if column not in index:
            raise ScoringError(
                f"Error processing input file: '{file_name}'. Missing column '{column}' "
                f"(expected columns: {','.join(HEART_COLUMNS)})"
            )
    predictions: list[int] = []
    for row_number, row in enumerate(reader):
        if not row or all(not cell.strip() for cell in row):
            continue  # blank lines are not rows (as pandas.read_csv skips them)
        if len(row) < len(header):
            raise ScoringError(
                f"Error processing input file: '{file_name}'. Row {row_number} has {len(row)} "
                f"fields, expected {len(header)}"
            )
        features = {c: _feature(file_name, row_number, c, row[index[c]]) for c in HEART_COLUMNS}
        predictions.append(predict_row(features))
    return FileScore(file_name=file_name, predictions=tuple(predictions))


def prediction_lines(scores: list[FileScore]) -> str:
    """Render predictions as the service does: ``row,prediction,file_name`` lines, no header."""
    out = io.StringIO()
    for score in scores:
        for row, prediction in enumerate(score.predictions):
            out.write(f"{row},{prediction},{score.file_name}\n")
    return out.getvalue()
