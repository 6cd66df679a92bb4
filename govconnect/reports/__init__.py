"""Supervision reports (电子监察 / 绩效评估): rollups kept as the pipeline runs, and what is read from them."""
