"""The audit's parameters, ``params:report`` (conf/base/parameters_report.yml), as settings classes.

The report pipeline's nodes and the ``compare`` pipeline take :class:`ReportSettings`; the
statistics functions get its :attr:`~ReportSettings.estimation` (bands, interval level, smallest
group, bootstrap) as one value, and their own settings one by one. Lists of numbers keep the YAML's ints (a
challenge age of 18 stays 18 in the tables' columns).
"""

from __future__ import annotations

from dex_bias.schema import settings_dataclass
from dex_bias.stats.engine import Estimation
from dex_bias.stats.verification import AgeVerificationSettings
from dex_bias.utkface import AgeBands


@settings_dataclass
class ReportInput:
    """``report.input``: rows breaking the contract stop the run (or, ``allow_quarantine``, are set
    aside); ``predicted_age_range`` (years, inclusive) is plausible; ``splits`` (``None``: all) are audited."""

    allow_quarantine: bool
    predicted_age_range: tuple[float, float]
    splits: list[str] | None


@settings_dataclass
class BootstrapSettings:
    """``report.bootstrap``: replicates and seed of every bootstrap interval."""

    n_boot: int
    seed: int


@settings_dataclass
class SignificanceTestSettings:
    """``report.tests``: the stratified permutation tests (``dex_bias.stats.significance``)."""

    stratum_years: int
    gate_stratum_years: int
    n_perm: int
    pairwise: bool
    outcomes: list[str]
    min_n: int
    seed: int


@settings_dataclass
class ImageQualitySettings:
    """``report.image_quality``: quantile bins of the interocular distance, bin edges of |head yaw|."""

    interocular_bins: int
    yaw_edges: list[float]


@settings_dataclass
class ArticleSettings:
    """``report.article``: Appendix B as the dex-model-analysis article made it."""

    explanation_method: str
    accurate_above: float
    renormalisation: str


@settings_dataclass
class ReportSettings:
    """``params:report``: the audit's bands, groups, intervals, tests, gates and the article's tables."""

    input: ReportInput
    age_bands: AgeBands
    paper_age_bands: AgeBands
    balanced_mae_bands: AgeBands | None
    sensitive_features: list[str]
    intersections: bool
    outer_grouping: str | None
    accuracy_within: list[int | float]
    test_features: list[str]
    gate_features: list[str]
    spread_features: list[str]
    min_n: int
    confidence: float
    alpha: float
    bootstrap: BootstrapSettings
    tests: SignificanceTestSettings
    challenge_ages: list[int | float]
    buffer_targets: list[float]
    age_verification: AgeVerificationSettings
    image_quality: ImageQualitySettings
    article: ArticleSettings
    explanation_method: str

    @property
    def balanced_bands(self) -> AgeBands:
        """The bands of the balanced MAE's reference cells: ``balanced_mae_bands``, else ``age_bands``."""
        return self.balanced_mae_bands or self.age_bands

    @property
    def estimation(self) -> Estimation:
        """How every table is estimated: the audit's age bands, ``confidence``, ``min_n`` and ``bootstrap``."""
        return Estimation(
            bands=self.age_bands,
            confidence=self.confidence,
            min_n=self.min_n,
            n_boot=self.bootstrap.n_boot,
            seed=self.bootstrap.seed,
        )
