"""Shared pytest configuration: the opt-in slow marker and the UCI data folder."""

import os
import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
# One variable for the data folder, the library's own (fairhc_jax.datasets).
UCI_DIR = pathlib.Path(os.environ.get("FAIRHC_DATA_DIR") or REPO.parent / "shared" / "data" / "uci")


def pytest_addoption(parser):
  parser.addoption("--runslow", action="store_true", default=False,
                   help="also run tests marked slow")


def pytest_collection_modifyitems(config, items):
  if config.getoption("--runslow"):
    return
  skip = pytest.mark.skip(reason="slow: run with --runslow")
  for item in items:
    if "slow" in item.keywords:
      item.add_marker(skip)


@pytest.fixture(scope="session")
def uci_dir() -> pathlib.Path:
  """The folder with the UCI files ($FAIRHC_DATA_DIR, else ../shared/data/uci); skips when absent."""
  if not (UCI_DIR / "adult.data").exists():
    pytest.skip(f"UCI data not found at {UCI_DIR} (set FAIRHC_DATA_DIR)")
  return UCI_DIR
