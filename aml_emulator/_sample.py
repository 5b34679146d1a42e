"""Deterministic heart-disease-like sample data (no downloads).

Writes ``heart-unlabeled-0.csv`` .. ``heart-unlabeled-3.csv`` with 100+100+100+3 = 303 rows,
the shape of the Azure ML heart-classifier example: a header line, LF endings, ``oldpeak``
with a decimal point and ``thal`` in normal/fixed/reversible. A seeded RNG draws a hidden
"disease" flag per row and shifts the risk features with it, so the emulator's model predicts
a realistic mix of 0 and 1.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from aml_emulator._model import HEART_COLUMNS

SEED = 20240229
FILE_ROWS: tuple[int, ...] = (100, 100, 100, 3)
FILE_PATTERN = "heart-unlabeled-{index}.csv"
SAMPLE_CONTAINER = "azureml-blobstore"
SAMPLE_PREFIX = "heart-unlabeled"
# The first row of the real example's file 0, kept so the files look familiar.
FIRST_ROW = "63,1,1,145,233,1,2,150,0,2.3,3,0,fixed"


@dataclass(frozen=True, slots=True, kw_only=True)
class SampleFile:
    """One generated file: its name, content and number of data rows."""

    name: str
    content: bytes
    rows: int


def _clip(value: float, low: float, high: float) -> float:
    return max(low, min(high, value))


def _row(rng: random.Random) -> str:
    sick = rng.random() < 0.45
    age = round(_clip(rng.gauss(57 if sick else 52, 8), 29, 77))
    sex = int(rng.random() < (0.82 if sick else 0.56))
    cp = rng.choices([1, 2, 3, 4], weights=[7, 9, 18, 66] if sick else [9, 25, 41, 25])[0]
    trestbps = round(_clip(rng.gauss(134 if sick else 129, 17), 94, 200))
    chol = round(_clip(rng.gauss(251 if sick else 242, 50), 126, 564))
    fbs = int(rng.random() < 0.15)
    restecg = rng.choices([0, 1, 2], weights=[42, 1, 57] if sick else [57, 1, 42])[0]
    thalach = round(_clip(rng.gauss(139 if sick else 158, 20), 71, 202))
    exang = int(rng.random() < (0.55 if sick else 0.14))
    oldpeak = round(_clip(rng.expovariate(1 / (1.6 if sick else 0.6)), 0.0, 6.2), 1)
    slope = rng.choices([1, 2, 3], weights=[25, 65, 10] if sick else [65, 30, 5])[0]
    ca = rng.choices([0, 1, 2, 3], weights=[33, 32, 22, 13] if sick else [80, 13, 5, 2])[0]
    thal = rng.choices(
        ["normal", "fixed", "reversible"], weights=[27, 9, 64] if sick else [79, 4, 17]
    )[0]
    values = (
        age,
        sex,
        cp,
        trestbps,
        chol,
        fbs,
        restecg,
        thalach,
        exang,
        f"{oldpeak:.1f}",
        slope,
        ca,
        thal,
    )
    return ",".join(str(v) for v in values)


def generate_sample_files(seed: int = SEED) -> list[SampleFile]:
    """Return the four sample files; the same seed always gives the same bytes."""
    rng = random.Random(seed)
    header = ",".join(HEART_COLUMNS)
    files: list[SampleFile] = []
    for index, count in enumerate(FILE_ROWS):
        rows = [_row(rng) for _ in range(count)]
        if index == 0:
            rows[0] = FIRST_ROW
        content = "\n".join([header, *rows]) + "\n"
        files.append(
            SampleFile(name=FILE_PATTERN.format(index=index), content=content.encode(), rows=count)
        )
    return files


def write_sample_files(out_dir: Path, files: list[SampleFile]) -> list[Path]:
    """Write ``files`` into ``out_dir`` (created if needed); return the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for sample in files:
        path = out_dir / sample.name
        path.write_bytes(sample.content)
        paths.append(path)
    return paths
