"""The layout of a synthetic truth file beyond its primary image (the truth itself): written by
``farside_gan.synthetic.truth``, read by ``farside_gan.evaluation`` (which must not import the
synthetic Sun).

* image extension ``CEILING``: the sign-blind ceiling, float32 G, the primary's grid, WCS and
  mask (NaN off the disk);
* table extension ``REGIONS``: one row per active region centred on the map's scored disk,
  the columns of :data:`REGION_COLUMNS`.
"""

CEILING_EXTNAME = "CEILING"
REGIONS_EXTNAME = "REGIONS"
#: (name, FITS format, unit, meaning) of the ``REGIONS`` table's columns.
REGION_COLUMNS = (
    ("REGION", "24A", None, "seed:bin:index -- the same region in every map and observer"),
    ("ANTIHALE", "L", None, "its leading polarity is the opposite of Hale's law's"),
    ("LEADSIGN", "I", None, "sign of its leading (westward) polarity, +1 or -1"),
    ("FLUX", "D", "Mx", "unsigned flux of its radial field on the sphere"),
    ("LEAD_X", "D", "pix", "leading polarity centre, 0-based column"),
    ("LEAD_Y", "D", "pix", "leading polarity centre, 0-based row"),
    ("FOLL_X", "D", "pix", "following polarity centre, 0-based column"),
    ("FOLL_Y", "D", "pix", "following polarity centre, 0-based row"),
    ("MU", "D", None, "cosine of the viewing angle at the region's centre"),
)
