"""Make the tests folder importable (shared manufactured solution)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
