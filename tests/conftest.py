"""Fixtures every folder of tests shares: a small synthetic archive, bad files, an HTTP archive
over it.

The data are session-scoped (built once, ~10 s); treat them as read-only. ``http_archive`` is
function-scoped: each test gets the one server with no pending faults and an empty request log.
"""

from __future__ import annotations

import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest

# The tests import their shared code as ``helpers.<name>`` (tests/helpers/) from every folder,
# under any of pytest's import modes.
TESTS = str(Path(__file__).resolve().parent)
if TESTS not in sys.path:
    sys.path.insert(0, TESTS)

#: The synthetic archive's nominal times: three at 12 h cadence.
ARCHIVE_TIMES = tuple(datetime(2011, 1, 1) + timedelta(hours=12 * i) for i in range(3))
ARCHIVE_SIZE = 128
ARCHIVE_SEED = 0


@pytest.fixture(scope="session")
def synthetic_sun():
    from farside_gan.synthetic import SyntheticSun
    return SyntheticSun(seed=ARCHIVE_SEED)


@pytest.fixture(scope="session")
def synthetic_archive(tmp_path_factory, synthetic_sun):
    """Root of a synthetic archive: AIA (304, 193, 171), HMI, EUVI-A and -B (304, 195, 171) at
    ARCHIVE_TIMES, 128 px, with ``catalog.csv``. Read-only."""
    from farside_gan.synthetic import build_archive
    root = tmp_path_factory.mktemp("synthetic_archive")
    build_archive(root, ARCHIVE_TIMES, size=ARCHIVE_SIZE, seed=ARCHIVE_SEED, sun=synthetic_sun)
    return root


@pytest.fixture(scope="session")
def bad_files(tmp_path_factory, synthetic_sun):
    """``{defect: path}`` from ``make_bad_files`` (64 px); see ``BAD_FILES`` in
    ``farside_gan.testing.bad_files`` for what each file claims to be and the reason code it
    should get."""
    from farside_gan.testing.bad_files import make_bad_files
    return make_bad_files(tmp_path_factory.mktemp("bad_files"), size=64, sun=synthetic_sun)


@pytest.fixture(scope="session")
def _archive_server(synthetic_archive):
    from farside_gan.testing.http_archive import ArchiveServer
    with ArchiveServer(synthetic_archive) as server:
        yield server


@pytest.fixture
def http_archive(_archive_server):
    """An ``ArchiveServer`` on 127.0.0.1 over ``synthetic_archive`` (``.url``, ``.inject_fault``,
    ``.requests``), reset for each test."""
    _archive_server.reset()
    yield _archive_server
    _archive_server.reset()
