"""Evaluation of image reconstructions: PSNR/SSIM, the Fourier perturbation recipe, figures."""

from deq_imaging.evaluation.figures import plot_grid
from deq_imaging.evaluation.metrics import psnr, ssim
from deq_imaging.evaluation.perturbations import cosine_mode, fourier_directions, fourier_modes

__all__ = ["cosine_mode", "fourier_directions", "fourier_modes", "plot_grid", "psnr", "ssim"]
