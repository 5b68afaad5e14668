"""Evaluation of image reconstructions: PSNR and SSIM."""

from deq_imaging.evaluation.metrics import psnr, ssim

__all__ = ["psnr", "ssim"]
