"""cartflow's pipeline: the lab home, ledger, routing, warehouse, Prefect flows and command line."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("cartflow")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+source"
