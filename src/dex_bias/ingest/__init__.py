"""Ingest: UTKFace-named images found in a folder, screened and split. Knows nothing of Kedro.

- ``screening``: every ``.jpg`` under a folder, its labels parsed from the file name, decoded in
  full, duplicate ids set aside, each file it cannot use in a quarantine table with a reason; and
  the seeded train/test split stratified by race × gender × age band.
"""
