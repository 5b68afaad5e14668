"""LP files (MPS) and instance generators."""

from deq_opt.datasets.generators import (
    combinatorial_auction_lp,
    facility_location_lp,
    pagerank_lp,
    pagerank_vector,
    random_lp,
    set_cover_lp,
)
from deq_opt.datasets.mps import MPSFormatError, mps_text, parse_mps, read_mps, write_mps

__all__ = [
    "combinatorial_auction_lp",
    "facility_location_lp",
    "pagerank_lp",
    "pagerank_vector",
    "random_lp",
    "set_cover_lp",
    "MPSFormatError",
    "mps_text",
    "parse_mps",
    "read_mps",
    "write_mps",
]
