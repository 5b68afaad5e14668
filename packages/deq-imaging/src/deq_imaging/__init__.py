"""deq-imaging: image-reconstruction operators (torch / JAX), datasets, classical baselines and metrics."""

__version__ = "0.1.0"
