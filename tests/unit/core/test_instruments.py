"""The instrument registry (``farside_gan.core.instruments``): one function identifies an
instrument from a header (and no guess where the header does not say), and the registry's facts
agree with each other and with calibrate's procedures."""

from __future__ import annotations

import pytest

from farside_gan.core import instruments as layout


@pytest.mark.parametrize("keywords, expected", [
    ({"TELESCOP": "SDO/AIA", "INSTRUME": "AIA_3", "DETECTOR": "AIA"}, "aia"),  # real AIA level 1
    ({"TELESCOP": "SDO/HMI", "INSTRUME": "HMI_FRONT2"}, "hmi"),                 # real HMI
    ({"TELESCOP": "STEREO", "INSTRUME": "SECCHI", "DETECTOR": "EUVI", "OBSRVTRY": "STEREO_A"},
     "euvi_a"),
    ({"TELESCOP": "STEREO", "INSTRUME": "SECCHI", "DETECTOR": "EUVI", "OBSRVTRY": "STEREO_B"},
     "euvi_b"),
    # EUVI of neither spacecraft: not a guess
    ({"TELESCOP": "STEREO", "INSTRUME": "SECCHI", "DETECTOR": "EUVI"}, None),
    # two cameras claimed at once: not a guess either
    ({"TELESCOP": "SDO/AIA", "INSTRUME": "HMI_FRONT2"}, None),
    # our own product: what made it is the generator, not an instrument
    ({"TELESCOP": "farside-gan", "INSTRUME": "Pix2PixHD generator", "OBSRVTRY": "STEREO_A"}, None),
    ({}, None),
])
def test_instrument_of_a_header(keywords, expected):
    from astropy.io import fits
    assert layout.instrument_of(fits.Header(keywords)) == expected


def test_instrument_of_sunpys_real_headers():
    import sunpy.data.test
    from astropy.io import fits
    aia = fits.getheader(sunpy.data.test.get_test_filepath("aia_171_level1.fits"))
    euvi = fits.Header.fromtextfile(
        sunpy.data.test.get_test_filepath("euvi_20090615_000900_n4euA_s.header"))
    assert layout.instrument_of(aia) == "aia" and layout.channel_of(aia, "aia") == 171
    assert layout.instrument_of(euvi) == "euvi_a" and layout.channel_of(euvi, "euvi_a") == 171


def test_registry_facts_are_consistent():
    assert layout.CHANNELS[layout.TRAINING_INPUT] == (304, 193, 171)
    assert all(layout.CHANNELS[i] == (304, 195, 171) for i in layout.FARSIDE_INPUTS)
    # every EUV instrument's channels image the same lines in the same order (the model's input)
    assert len({layout.bands(layout.CHANNELS[i]) for i in layout.EUV_INSTRUMENTS}) == 1
    assert layout.OBSERVERS == {"aia": "sdo", "euvi_a": "stereo_a", "euvi_b": "stereo_b"}
    assert layout.NEARSIDE_LABEL == "nearside/sdo/hmi"
    for i in layout.INSTRUMENT_LIST:
        assert set(i.channels) <= set(i.all_channels), i.key
        from farside_gan.prepare.calibrate import CALIBRATIONS
        assert i.calibration in CALIBRATIONS, i.key
