"""Classical CT reconstruction from sinograms (N, C, n_det, n_angles) in skimage ``radon`` geometry."""

from __future__ import annotations

import numpy as np
from skimage.transform import iradon, iradon_sart

from deq_imaging.baselines.base import Baseline
from deq_imaging.operators.radon_geometry import RadonGeometry, fbp_filter


class _CT(Baseline):
    """Shared sinogram checks."""

    def __init__(self, image_size: int, theta: np.ndarray | None, circle: bool, weight: float) -> None:
        super().__init__(weight)
        self.geometry = RadonGeometry.build(image_size, theta, circle)

    def _check(self, y: np.ndarray) -> np.ndarray:
        y = super()._check(y)
        if y.shape[2:] != self.geometry.sinogram_shape:
            d, a = self.geometry.sinogram_shape
            raise ValueError(
                f"{type(self).__name__}: expected sinograms of shape (N, C, {d}, {a}), got {y.shape}"
            )
        return y


class FBP(_CT):
    """Filtered back-projection (skimage ``iradon``), ramp x window filter; ``weight`` = cutoff in (0, 1]
    as a fraction of Nyquist."""

    grid = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)

    def __init__(
        self,
        image_size: int,
        theta: np.ndarray | None = None,
        circle: bool = True,
        weight: float = 1.0,
        filter_name: str = "ramp",
    ) -> None:
        """FBP for (image_size)^2 images at angles ``theta`` (degrees)."""
        super().__init__(image_size, theta, circle, weight)
        self.filter_name = filter_name

    def _restore(self, y: np.ndarray) -> np.ndarray:
        g = self.geometry
        size = g.filter_size()
        filt = fbp_filter(size, self.filter_name, float(self.weight))
        yf = np.fft.irfft(np.fft.rfft(y, n=size, axis=1) * filt[:, None], n=size, axis=1)[:, : g.n_det]
        kw = {"theta": g.theta, "filter_name": None, "circle": g.circle, "output_size": g.image_size}
        return np.stack([iradon(c, **kw) for c in yf])


class SART(_CT):
    """Simultaneous algebraic reconstruction (skimage ``iradon_sart``), clipped to [0, 1];
    ``weight`` = number of SART sweeps (early stopping regularises)."""

    grid = (1, 2, 3, 5, 8)

    def __init__(
        self,
        image_size: int,
        theta: np.ndarray | None = None,
        circle: bool = True,
        weight: int = 3,
        relaxation: float = 0.15,
    ) -> None:
        """SART with ``weight`` sweeps and the given relaxation."""
        super().__init__(image_size, theta, circle, weight)
        if not self.geometry.circle:
            raise ValueError("SART: skimage iradon_sart supports circle=True geometry only")
        self.relaxation = relaxation

    def _restore(self, y: np.ndarray) -> np.ndarray:
        out = []
        for c in y:
            rec = None
            for _ in range(int(self.weight)):
                rec = iradon_sart(
                    c, theta=self.geometry.theta, image=rec, relaxation=self.relaxation, clip=(0, 1)
                )
            out.append(rec)
        return np.stack(out)
