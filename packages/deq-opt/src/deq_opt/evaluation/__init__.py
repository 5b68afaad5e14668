"""Evaluation of LP models: solution metrics, Lipschitz perturbations, PDLP warm starts, figures."""
