"""The ``ingest`` pipeline: a folder of UTKFace-named images (or the demo) → ``faces``, ``quarantine``."""
