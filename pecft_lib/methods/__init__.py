"""Continual-learning methods: one sub-package per method, plus the baselines."""
