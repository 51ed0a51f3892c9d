"""`arcadia-pipeline`, the command line (cli/main.py builds it from one module per command
group)."""

from arcadia_pipeline.cli.main import main

__all__ = ["main"]
