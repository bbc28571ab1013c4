"""Session-wide pytest fixtures. Keep this file small and generic: helpers belong in modules beside the tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cephlab.launcher import CephLab, CephLabUnavailable, ensure_installed
from lab.launcher import Lab, bin_dir, missing_binaries

# Identities the session lab accepts besides its admin (user name -> groups); a test gets the bearer token with
# lab.token(name) and grants roles itself. Add users here: the apiservers read their token file once, at start.
LAB_USERS: dict[str, tuple[str, ...]] = {"lab-no-role": ()}


@pytest.fixture(scope="session")
def lab() -> Iterator[Lab]:
    """Real apiservers (hub, prod-east, prod-west) with every lab CRD installed, shared by the whole session.

    Tests isolate themselves by namespace (unique names). Skips only when this machine has no lab binaries.
    """
    missing = missing_binaries()
    if missing:
        pytest.skip(
            f"no Kubernetes lab binaries on this machine ({', '.join(missing)} missing in {bin_dir()}); "
            "scripts/test builds them with tests/lab/build.sh"
        )
    with Lab(users=LAB_USERS) as running:
        yield running


@pytest.fixture(scope="session")
def ceph_lab() -> Iterator[CephLab]:
    """A real Ceph stretch cluster on 127.0.0.1 (tests/cephlab), shared by the session; its timings are printed
    at the end (pytest -s). Skips only when this machine has no Ceph packages and cannot install them."""
    try:
        ensure_installed()
    except CephLabUnavailable as exc:
        pytest.skip(f"no Ceph lab on this machine: {exc}")
    with CephLab() as running:
        yield running
        print(f"\nceph lab timings (s): {running.timings}; peak RSS of all daemons {running.peak_rss_kib // 1024} MiB")
