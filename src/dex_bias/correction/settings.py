"""The bias correction's parameters, ``params:correct`` (conf/base/parameters_correct.yml), as
settings classes (:mod:`dex_bias.schema`); the correct pipeline's nodes take :class:`CorrectionSettings`."""

from __future__ import annotations

from dex_bias.schema import settings_dataclass
from dex_bias.stats.engine import Estimation
from dex_bias.utkface import AgeBands


@settings_dataclass
class CorrectionInput:
    """``correct.input``: contract-breaking rows stop the run unless ``allow_quarantine``;
    ``predicted_age_range`` (years, inclusive) is plausible."""

    allow_quarantine: bool
    predicted_age_range: tuple[float, float]


@settings_dataclass
class CalibrationSplit:
    """``correct.split``: the share of each race x gender x age band stratum fitted on, and the seed."""

    calibration_fraction: float
    seed: int


@settings_dataclass
class RegressionSettings:
    """``correct.regression``: polynomial degrees 1..``max_degree``; ``race_slopes`` tried too."""

    max_degree: int
    race_slopes: bool


@settings_dataclass
class BinRuleSettings:
    """``correct.bin_rule``: bins of the predicted age cut at ``predicted_age_edges``."""

    predicted_age_edges: list[int | float]


@settings_dataclass
class CrossValidationSettings:
    """``correct.cross_validation``: ``folds``, ``seed``, and whether the choice itself is cross-validated."""

    folds: int
    seed: int
    nested: bool


@settings_dataclass
class GuardSettings:
    """``correct.guard``: no candidate may make a group of ``features`` (``min_group_n`` rows or
    more) worse by more than ``z`` standard errors."""

    features: list[str]
    min_group_n: int
    z: float


@settings_dataclass
class CorrectionEvaluation:
    """``correct.evaluation``: the groups, gates and bootstrap of the held-out before/after metrics."""

    sensitive_features: list[str]
    intersections: bool
    gate_groups: list[str]
    challenge_ages: list[int | float]
    n_boot: int
    seed: int
    confidence: float
    min_n: int
    min_n_ci: int


@settings_dataclass
class GenderSettings:
    """``correct.gender``: the smallest group the gender-head table reports."""

    min_n: int


@settings_dataclass
class CorrectionSettings:
    """``params:correct`` (conf/base/parameters_correct.yml); ``age_bands``: on true age, for the
    split, the metrics and the gender table."""

    input: CorrectionInput
    split: CalibrationSplit
    method: str
    min_cell_n: int
    regression: RegressionSettings
    bin_rule: BinRuleSettings
    cross_validation: CrossValidationSettings
    guard: GuardSettings
    age_bands: AgeBands
    evaluation: CorrectionEvaluation
    gender: GenderSettings

    @property
    def estimation(self) -> Estimation:
        """How the held-out before/after tables are estimated: ``age_bands`` and ``evaluation``'s bootstrap."""
        evaluation = self.evaluation
        return Estimation(
            bands=self.age_bands,
            confidence=evaluation.confidence,
            min_n=evaluation.min_n,
            n_boot=evaluation.n_boot,
            seed=evaluation.seed,
        )
