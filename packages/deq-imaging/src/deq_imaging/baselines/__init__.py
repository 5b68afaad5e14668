"""Classical restoration baselines (numpy in, numpy out), each with one weight and a grid ``tune``."""

from deq_imaging.baselines.base import Baseline, TuneResult
from deq_imaging.baselines.ct import FBP, SART
from deq_imaging.baselines.deblurring import (
    BM3DDeblur,
    RichardsonLucy,
    UnsupervisedWienerDeblur,
    WienerDeblur,
)
from deq_imaging.baselines.denoising import BM3DDenoiser, NLMDenoiser, TVDenoiser, WaveletDenoiser

__all__ = [
    "FBP",
    "SART",
    "BM3DDeblur",
    "BM3DDenoiser",
    "Baseline",
    "NLMDenoiser",
    "RichardsonLucy",
    "TVDenoiser",
    "TuneResult",
    "UnsupervisedWienerDeblur",
    "WaveletDenoiser",
    "WienerDeblur",
]
