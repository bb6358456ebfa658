"""Fit the RUL band's calibration table (`rul_calibration.BAND_SCALE`) and print it.

Simulated degradation runs with the calibration's own seeds (never the evaluation's); per
nominal coverage, the split-conformal factor of each bucket of the estimated RUL, with the
number of calibration estimates behind it. Paste the table into rul_calibration.py.

    .venv/bin/python bench/ml_rul_calibration.py [--assets 300]
"""

from __future__ import annotations

import argparse

from maintainpro.analytics.ml.rul import HORIZON_BUCKETS
from maintainpro.analytics.ml.rul_calibration import (
    CALIBRATION_ASSETS,
    CALIBRATION_SEED,
    calibration_scores,
    conformal_factor,
)

COVERAGES = (0.8, 0.9)


def main() -> None:
    """Fit and print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--assets", type=int, default=CALIBRATION_ASSETS)
    parser.add_argument("--seed", type=int, default=CALIBRATION_SEED)
    args = parser.parse_args()
    names = [f"<= {end:g} d" for end in HORIZON_BUCKETS] + [f"> {HORIZON_BUCKETS[-1]:g} d"]
    print("BAND_SCALE = {")
    for coverage in COVERAGES:
        scores = calibration_scores(coverage, assets=args.assets, seed=args.seed)
        factors = [round(conformal_factor(bucket, coverage), 3) for bucket in scores]
        counts = ", ".join(f"{n}: {len(b)}" for n, b in zip(names, scores, strict=True))
        print(f'    "{coverage:g}": {tuple(factors)},  # estimates {counts}')
    print("}")


if __name__ == "__main__":
    main()
