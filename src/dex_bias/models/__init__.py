"""The DEX model family, its input declarations, weights loading, training and batched inference.

Public API used by other areas:

- :class:`ModelSpec`, :data:`MODEL_SPECS`, :func:`spec_for`: what pixels each model takes.
- :func:`build_model`: an untrained model of a backbone (``compact``, ``efficientnet_b3``,
  ``wrn_16_8``, ``vgg_face``).
- :data:`AGES`, :func:`expected_age`: DEX's 101 bins and expected value.
- :func:`make_age_function`: ``uint8 RGB crops (N, S, S, 3) -> expected age (N,)``.
- :func:`make_head_function`: the same call returning the age probabilities and P(female).
"""

from dex_bias.models.backbones import BUILDERS, build_model
from dex_bias.models.spec import (
    AGE_OUTPUT,
    AGES,
    GENDER_OUTPUT,
    MODEL_SPECS,
    ModelSpec,
    expected_age,
    make_age_function,
    make_head_function,
    spec_for,
)

__all__ = [
    "AGE_OUTPUT",
    "AGES",
    "BUILDERS",
    "GENDER_OUTPUT",
    "MODEL_SPECS",
    "ModelSpec",
    "build_model",
    "expected_age",
    "make_age_function",
    "make_head_function",
    "spec_for",
]
