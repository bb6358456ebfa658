"""`maintainpro supply ...`: purchase orders, supplier scorecards and spend from the terminal."""

from __future__ import annotations

import typer

supply_app = typer.Typer(
    help="Procurement: purchase orders, scorecards, spend.", no_args_is_help=True
)
