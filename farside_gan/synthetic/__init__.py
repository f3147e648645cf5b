"""The synthetic Sun: level-1-like AIA, HMI and EUVI files from a seeded, physical field model.

    from farside_gan.synthetic import SyntheticSun, write_observation, build_archive
    sun = SyntheticSun(seed=0)
    write_observation("x.fits", sun, "aia", 171, "2011-01-01T00:00", size=256)
    rows = build_archive(root, times, size=128)        # files + root/catalog.csv
    truth = sun.los_field(header_or_map)                # noiseless LOS field on that pixel grid

Modules: ``field`` (magnetic field physics), ``euv`` (brightness), ``instruments`` (headers,
observers), ``projection`` (pixel rays on the Sun), ``archive`` (files, catalog), ``truth`` (the
true field on a map's grid). The servers and bad files that stand in for the outside world are
in ``farside_gan.testing``.
"""

from farside_gan.synthetic.archive import (build_archive, plan_observation, read_catalog, render,
                                           write_catalog, write_observation)
from farside_gan.synthetic.field import SyntheticSun

__all__ = ["SyntheticSun", "build_archive", "plan_observation", "read_catalog", "render",
           "write_catalog", "write_observation"]
