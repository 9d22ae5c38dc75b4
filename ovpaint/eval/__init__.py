"""Evaluation on public benchmarks: metrics, dataset readers, the runner, reports."""
