"""Shared fixtures: the real third-party data beside the repo, and small random zoos."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# A busy machine (load 6 on 2 cores) must not fail a property test: hypothesis's defaults
# include a 200 ms deadline per example and a health check on slow data generation, both
# wall-clock. Tests that set their own settings keep them; these are the defaults.
try:
    from hypothesis import HealthCheck, settings

    settings.register_profile(
        "zoolens", deadline=None, suppress_health_check=[HealthCheck.too_slow]
    )
    settings.load_profile("zoolens")
except ImportError:  # hypothesis is a dev dependency
    pass

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("ZOOLENS_SHARED_DATA", REPO.parent / "shared" / "data"))


def shared_path(*parts: str) -> Path:
    """Path under ../shared/data, or skip the test with the reason when it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real test data not found at {path} (../shared/data beside the repo)")
    return path


@pytest.fixture
def shared_data() -> Path:
    return shared_path()


@pytest.fixture(autouse=True)
def _not_quiet():
    """``--quiet`` is process-wide state: a CLI test that passed it must not silence the next."""
    from zoolens.progress import set_quiet

    set_quiet(False)
    yield
    set_quiet(False)


@pytest.fixture(params=["torch", "numpy"])
def kernels(request, monkeypatch):
    """Run a test on both array kernels of the analysis (``measure.fused``,
    ``measure.calibration``): torch's CPU kernels (the torch install) and numpy's (the light
    install, ``zoolens.errors.optional_torch`` returning None)."""
    import zoolens.measure.calibration as calibration
    import zoolens.measure.fused as fused
    import zoolens.study.threads as threads

    if request.param == "numpy":
        for module in (calibration, fused, threads):
            monkeypatch.setattr(module, "optional_torch", lambda: None)
    else:
        pytest.importorskip("torch")
    return request.param
