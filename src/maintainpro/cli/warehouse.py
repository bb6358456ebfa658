"""`maintainpro warehouse ...`: build and refresh the analytics warehouse."""

from __future__ import annotations

import typer

warehouse_app = typer.Typer(help="Analytics warehouse: ETL runs, datasets.", no_args_is_help=True)
