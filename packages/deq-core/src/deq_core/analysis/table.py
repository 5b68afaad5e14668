"""A plain-text table of a report: quality and Lipschitz per budget, then the reference models."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def _fmt(value: Any) -> str:
    return "-" if value is None else f"{value:.4g}"


def format_table(report: Mapping[str, Any]) -> str:
    """Render a (schema-valid) report as an aligned text table."""
    quality, lipschitz = report["quality"], report["lipschitz"]
    arrow = "higher is better" if quality["higher_is_better"] else "lower is better"
    header = ["model", "iterations", quality["metric"], "lip max", "lip mean", "lip local", "seconds"]
    rows = []
    for i, t in enumerate(report["iterations"]):
        local = lipschitz["local"][i] if "local" in lipschitz else None
        q, lmax, lmean = quality["implicit"][i], lipschitz["max"][i], lipschitz["mean"][i]
        rows.append(["implicit", str(t), _fmt(q), _fmt(lmax), _fmt(lmean), _fmt(local), ""])
    explicit_lip = lipschitz.get("explicit", {})
    rows.append(
        [
            "explicit",
            "",
            _fmt(quality["explicit"]),
            _fmt(explicit_lip.get("max")),
            _fmt(explicit_lip.get("mean")),
            _fmt(explicit_lip.get("local")),
            "",
        ]
    )
    for name, entry in quality["baselines"].items():
        rows.append([name, "", _fmt(entry["value"]), "", "", "", _fmt(entry["seconds"])])
    widths = [max(len(r[c]) for r in [header, *rows]) for c in range(len(header))]
    lines = [
        f"{report['domain']}/{report['task']} on {report['backend']} ({report['device']}): "
        f"{quality['metric']}, {arrow}; params implicit={report['params']['implicit']} "
        f"explicit={report['params']['explicit']}; {report['seconds']:.1f} s",
        "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)),
        "  ".join("-" * w for w in widths),
    ]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    return "\n".join(lines)
