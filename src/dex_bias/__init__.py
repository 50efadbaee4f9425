"""dex_bias: audit face age-estimation models for demographic bias."""

__version__ = "0.1.0"

#: The folders of a project's ``data/`` (Kedro's layers; conf/base/catalog.yml writes under them):
#: what a fresh copy of the project needs before its first run.
DATA_LAYERS = (
    "01_raw",
    "02_intermediate",
    "03_primary",
    "04_feature",
    "05_model_input",
    "06_models",
    "07_model_output",
    "08_reporting",
)
