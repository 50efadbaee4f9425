"""dex_bias: audit face age-estimation models for demographic bias."""

__version__ = "0.1.0"
