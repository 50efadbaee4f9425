"""Figures and the self-contained HTML audit report (plain matplotlib and HTML, no Kedro)."""
