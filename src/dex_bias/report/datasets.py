"""Datasets of the report: ``OptionalDataset`` (an input that may legitimately be absent) and
``SourcedCSVDataset`` (a CSV whose frames remember their file, for error messages).

The report's explanation sections need ``region_attributions``, which only the explain pipeline
makes. An audit of a vendor's CSV (``--env external``) has none. Rather than a second pipeline or
a ``catalog.exists`` call inside a node, the ``external`` environment declares the dataset as
``OptionalDataset`` wrapping the usual file: it always *exists* (so the run's upstream check
passes) and loads as an empty table with the expected columns when the file was never made; the
report nodes then leave those sections out and say so.
"""

from __future__ import annotations

import base64
import logging
from typing import Any

import pandas as pd
from kedro.io import AbstractDataset
from kedro.io.core import DatasetError, Version, get_filepath_str
from kedro_datasets._typing import ImagePreview, TablePreview
from kedro_datasets.pillow import ImageDataset

logger = logging.getLogger(__name__)


class OptionalDataset(AbstractDataset[pd.DataFrame, pd.DataFrame]):
    """Wrapper: the inner dataset's data, or an empty ``DataFrame`` when it was never made.

    It always *exists*, loads the inner data when there is some (the latest version, or the
    one ``--load-versions`` names) and otherwise an empty table with ``columns``; ``save`` goes
    to the inner dataset, so the pipeline that makes the data can write through it too.
    ``versioned: true`` at the top level versions the inner dataset with the run's stamp.

    Catalog example::

        region_attributions:
          type: dex_bias.report.datasets.OptionalDataset
          columns: [image_id, method, region, weight]
          versioned: true
          dataset:
            type: pandas.ParquetDataset
            filepath: data/07_model_output/region_attributions.parquet
    """

    def __init__(
        self,
        *,
        dataset: dict[str, Any],
        columns: list[str] | None = None,
        version: Version | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self._inner_config = dict(dataset)
        inner_config = dict(dataset)
        if version is not None:
            inner_config["versioned"] = True
        self._inner = AbstractDataset.from_config(
            "optional_inner",
            inner_config,
            load_version=version.load if version else None,
            save_version=version.save if version else None,
        )
        self._columns = list(columns or [])
        self.metadata = metadata
        self.left_out_reason: str | None = None

    #: Read by the run ledger (``dex_bias.runs``): a version of this input that does not belong
    #: with the run's other inputs is left out rather than stopping the run.
    optional = True

    @property
    def files_dataset(self) -> AbstractDataset:
        """The dataset that holds the files (for the run ledger's versions and provenance)."""
        return self._inner

    def leave_out(self, reason: str) -> None:
        """Load as absent from now on (``reason`` is logged): the data exists but must not be used here."""
        self.left_out_reason = reason

    def _describe(self) -> dict[str, Any]:
        return {
            "dataset": self._inner_config.get("type"),
            "filepath": self._inner_config.get("filepath"),
            "columns": self._columns,
        }

    def _inner_exists(self) -> bool:
        try:
            return bool(self._inner.exists())
        except Exception:  # a versioned dataset with no version yet may raise instead of saying False
            return False

    def load(self) -> pd.DataFrame:
        where = self._inner_config.get("filepath", self._inner_config.get("type"))
        if self.left_out_reason is not None:
            logger.warning(
                "Optional input %s is left out of this run (%s): the sections that need it are left out",
                where,
                self.left_out_reason,
            )
        elif self._inner_exists():
            return self._inner.load()
        else:
            logger.info("Optional input %s is absent: the sections that need it are left out", where)
        return pd.DataFrame({column: pd.Series(dtype=object) for column in self._columns})

    def save(self, data: pd.DataFrame) -> None:
        self._inner.save(data)

    def _exists(self) -> bool:
        return True

    def preview(self, **kwargs: Any) -> TablePreview:
        """The inner table's Kedro-Viz preview (an empty table when it was never made)."""
        if self._inner_exists() and hasattr(self._inner, "preview"):
            return self._inner.preview(**kwargs)
        return {"index": [], "columns": self._columns, "data": []}


try:  # kedro-datasets' pandas extra is pinned; the guard keeps this module importable alone
    from kedro_datasets.pandas import CSVDataset
except ImportError:  # pragma: no cover
    CSVDataset = None

if CSVDataset is not None:

    class SourcedCSVDataset(CSVDataset):
        """``pandas.CSVDataset`` whose frames remember their file (``df.attrs["source"]``), so the
        report's input-contract errors name the user's file rather than a catalog entry.

        Cells are read as written (``keep_default_na: false`` unless ``load_args`` says
        otherwise), so an error can tell an empty cell from a written ``n/a`` or ``NaN``; the
        contract turns numbers into numbers itself. A file of zero bytes is refused with its path
        and what it should hold, rather than pandas' "No columns to parse from file".
        """

        DEFAULT_LOAD_ARGS: dict[str, Any] = {"keep_default_na": False}

        def load(self) -> pd.DataFrame:
            try:
                data = super().load()
            except DatasetError as error:
                if isinstance(error.__cause__, pd.errors.EmptyDataError):
                    raise DatasetError(
                        f"{self._filepath} is empty (no header, no rows). It should hold one row per image "
                        "with a header, at least `image_id,predicted_age` (for example "
                        "`25_1_3_20170116174525125.jpg,27.4`); put the estimates there, or point the "
                        "catalog's `filepath` at the file that holds them."
                    ) from error.__cause__
                raise
            data.attrs["source"] = str(self._filepath)
            return data


class PreviewImageDataset(ImageDataset):
    """``pillow.ImageDataset`` with a Kedro-Viz preview: the saved PNG, base64-encoded.

    The report's figures are PIL images (they are also inlined into the HTML report), and
    kedro-datasets' pillow dataset offers no ``preview()``.
    """

    def preview(self) -> ImagePreview:
        load_path = get_filepath_str(self._get_load_path(), self._protocol)
        with self._fs.open(load_path, mode="rb") as handle:
            return ImagePreview(base64.b64encode(handle.read()).decode("ascii"))
