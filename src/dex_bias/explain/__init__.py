"""Explanations of age estimates: facial regions from landmarks, LIME over regions, and checks
of how faithful and stable those explanations are. Knows nothing of Kedro.

- ``regions``: the article's thirteen facial regions + background, as a label map per crop.
- ``lime_regions``: LIME of the scalar expected age, batched across images (lime_image's draws).
- ``quality``: deletion curves and seed stability.
- ``groups``: which faces can be explained (and why not), samples of them, and group attribution
  maps in a common aligned frame.
- ``frame``: the model's crop frame: its view, landmarks in it, the mean template, the regions
  drawn on a face.
- ``tasks``: a table of faces explained chunk by chunk, fanned out on Dask and resumable.
- ``attributions``: the ``region_attributions`` table, and one method's weights for its readers.
"""
