"""Bias-correction models for age estimates and their out-of-sample evaluation.

- ``split``: seeded calibration / held-out split, stratified by race × gender × age band.
- ``models``: the regression correction, the second study's gender × race × bin rule, the
  identity, cross-validated selection within the calibration part.
- ``evaluate``: before/after errors and age-gate rates on the held-out part only.
- ``corrected``: corrected estimates laid out in the ``predictions`` contract.
- ``settings``: the ``correct`` parameters as settings classes.
"""
