"""Statistics of an age-estimation audit: intervals, grouped metrics, tests, age gates, tables.

Every function here takes plain pandas/numpy inputs and knows nothing of Kedro:

- ``intervals``: Wilson score and percentile-bootstrap confidence intervals.
- ``contract``: the input contract of ``predictions`` (what the report accepts, and why not).
- ``metrics``: error metrics grouped by sensitive features (Fairlearn ``MetricFrame`` style).
- ``gates``: challenge-age (age-verification) rates with Wilson intervals, and buffers.
- ``tests``: pingouin between-group tests with Holm correction and effect sizes.
- ``paper``: the dex-model-analysis article's normality and correlation tables, made exactly.
"""
