"""Forward operators for image reconstruction.

Backend-free pieces (kernels, masks, geometry, numpy noise) live here; the operators themselves
(:mod:`deq_imaging.operators.linear`) are written once and run on numpy, torch and JAX arrays alike.
:mod:`~deq_imaging.operators.reference`, :mod:`~deq_imaging.operators.torch` and
:mod:`~deq_imaging.operators.jax` hold what differs per framework (the Radon sampling kernel, seeded noise)
and make the operator classes available under their names.
"""

from deq_imaging.operators.blur_geometry import BlurGeometry
from deq_imaging.operators.kernels import gaussian_kernel, motion_blur_kernel, motion_trajectory
from deq_imaging.operators.masks import box_mask, random_pixel_mask
from deq_imaging.operators.noise import gaussian_noise, poisson_noise
from deq_imaging.operators.radon_geometry import RadonGeometry, fbp_filter

__all__ = [
    "BlurGeometry",
    "RadonGeometry",
    "box_mask",
    "fbp_filter",
    "gaussian_kernel",
    "gaussian_noise",
    "motion_blur_kernel",
    "motion_trajectory",
    "poisson_noise",
    "random_pixel_mask",
]
