"""Frame conventions: the choices that make a co-aligned, normalized frame what it is.

The stage that fixes a convention writes it into the frame's header (the writers below); every
later stage reads it back with :func:`read` (or :func:`of_stack`, :func:`of_target`,
:func:`of_map`), never from its own default or a second config value:

==================  ======================  =========  =========================================
convention          keyword                 written    read by
==================  ======================  =========  =========================================
image size          NAXIS1 = NAXIS2         align      stack, training, predict, truth, evaluate
solar radius (px)   ``R_SUN``               align      normalize, stack, training (validation
                                                       metrics), predict (mask), truth, evaluate
mask radius (Rsun)  ``MASKRAD``             align      the same
EUV median          ``NORMTGT``             normalize  stack, training, predict
EUV clip            ``NORMCLO``/``NORMCHI`` normalize  stack, training, predict
HMI clip (G)        ``NORMCLIP``            normalize  training (into the checkpoint), evaluate
channel order       ``CHAN1``..``CHAN3``    stack      training, predict
==================  ======================  =========  =========================================

Training records its data's conventions in the checkpoint (``conventions``); prediction refuses
a stack whose conventions differ from the model's and turns its output into Gauss with the
model's HMI clip. A configuration value given for a convention is checked against what the
data says (:func:`check`): a mismatch is an :class:`InputDataError` naming the file.

No torch and no other farside_gan stage here: every stage can import it.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, fields

import numpy as np

from farside_gan.core.errors import InputDataError
from farside_gan.core.fitsio import read_header
from farside_gan.core.instruments import bands

#: keyword of each geometric convention (align writes them)
GEOMETRY_KEYWORDS = {"rsun_px": "R_SUN", "mask_radius": "MASKRAD"}
#: keywords of the normalization (normalize writes them)
EUV_KEYWORDS = {"euv_median": "NORMTGT", "euv_clip": ("NORMCLO", "NORMCHI")}
HMI_KEYWORD = "NORMCLIP"
CHANNEL_KEYWORD = "CHAN{}"  # CHAN1, CHAN2, ... (stack writes them)
#: Relative tolerance of "the same convention" (values pass through FITS cards as decimals).
RTOL = 1e-6


@dataclass(frozen=True)
class Conventions:
    """The conventions of a frame, a pair, a dataset or a model (None: not part of it)."""
    size: int
    rsun_px: float
    mask_radius: float
    euv_median: float | None = None
    euv_clip: tuple[float, float] | None = None
    hmi_clip: float | None = None
    channels: tuple | None = None

    GEOMETRY = ("size", "rsun_px", "mask_radius")
    EUV = ("euv_median", "euv_clip")

    def disk_mask(self) -> np.ndarray:
        """True on the pixels within ``mask_radius`` solar radii of the centre."""
        from farside_gan.core.geometry import disk_mask
        return disk_mask(self.size, self.rsun_px, self.mask_radius)

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, values: dict) -> "Conventions":
        known = {f.name for f in fields(cls)}
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items() if k in known}
        return cls(**values)

    def differences(self, other: "Conventions", names=None) -> list[str]:
        """``name: self != other`` for each of ``names`` (default: all) where they differ."""
        names = names or [f.name for f in fields(self)]
        return [f"{describe(n)} {_show(getattr(self, n))} != {_show(getattr(other, n))}"
                for n in names if not same(getattr(self, n), getattr(other, n))]

    def merge(self, other: "Conventions") -> "Conventions":
        """These conventions completed by ``other``'s (e.g. a stack's and its target's)."""
        return Conventions(**{f.name: getattr(self, f.name) if getattr(self, f.name) is not None
                              else getattr(other, f.name) for f in fields(self)})


def describe(name: str) -> str:
    """A convention's name with its header keyword, for messages."""
    keyword = {**GEOMETRY_KEYWORDS, **EUV_KEYWORDS, "hmi_clip": HMI_KEYWORD,
               "size": "NAXIS1", "channels": "CHAN1.."}.get(name, name)
    return f"{name} ({'/'.join(keyword) if isinstance(keyword, tuple) else keyword})"


def _show(value) -> str:
    if isinstance(value, tuple):
        return "(" + ", ".join(_show(v) for v in value) + ")"
    return f"{value:g}" if isinstance(value, float) else str(value)


def same(a, b) -> bool:
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) \
            and not isinstance(a, bool) and not isinstance(b, bool):
        return math.isclose(float(a), float(b), rel_tol=RTOL, abs_tol=1e-12)
    return a == b


# ----------------------------------------------------------------------------- writing

def write_geometry(header, rsun_px: float, mask_radius: float) -> None:
    """align: the disk radius (px) and the radius (Rsun) beyond which pixels are fill."""
    header[GEOMETRY_KEYWORDS["rsun_px"]] = (float(rsun_px), "[pix] solar radius in the image")
    header[GEOMETRY_KEYWORDS["mask_radius"]] = (float(mask_radius), "[Rsun] pixels beyond are FILLVAL")


def write_euv_normalization(header, disk_median: float, euv_median: float, euv_clip) -> None:
    """normalize (EUV): the median it divided by, the median it scaled to, the clip range."""
    header["NORMMED"] = (float(disk_median), "on-disk median before scaling")
    header[EUV_KEYWORDS["euv_median"]] = (float(euv_median), "on-disk median scaled to this, then clipped")
    low, high = EUV_KEYWORDS["euv_clip"]
    header[low] = (float(euv_clip[0]), "clip low before log10")
    header[high] = (float(euv_clip[1]), "clip high before log10")


def write_hmi_normalization(header, hmi_clip: float) -> None:
    """normalize (HMI): the Gauss of a normalized value of 1."""
    header[HMI_KEYWORD] = (float(hmi_clip), "[Gauss] field clipped to +-NORMCLIP, / NORMCLIP")


def write_channels(header, channels, comment: str = "wavelength [Angstrom] of plane i") -> None:
    """stack: the channel of each plane, in order."""
    for i, channel in enumerate(channels, start=1):
        header[CHANNEL_KEYWORD.format(i)] = (channel, comment)


# ----------------------------------------------------------------------------- reading

def _number(header, key: str, path) -> float:
    value = header.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise InputDataError(path, f"header lacks {key}, a frame convention the stages before "
                             "this one write", reason="missing_keyword")
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise InputDataError(path, f"{key} = {value!r} is not a number",
                             reason="inconsistent_header") from None
    if not (math.isfinite(x) and x > 0):
        raise InputDataError(path, f"{key} = {x:g} is not a positive number",
                             reason="inconsistent_header")
    return x


def read(header, path=None, shape=None, need=()) -> Conventions:
    """The conventions a frame's header states. Geometry (size, ``R_SUN``, ``MASKRAD``) is always
    needed; ``need`` names the others that must be there (``"euv"``, ``"field"``, ``"channels"``);
    those not needed are read when present. A missing or unreadable keyword is an
    :class:`InputDataError` naming the file and the keyword."""
    if shape is None:  # from the header: (NAXIS3,) NAXIS2, NAXIS1
        naxis = int(header.get("NAXIS", 2))
        shape = tuple(int(header.get(f"NAXIS{i}", 0)) for i in range(naxis, 0, -1))
    size = int(shape[-1])
    if len(shape) < 2 or shape[-2] != size or size <= 0:
        raise InputDataError(path, f"a {tuple(shape)} image is not a square co-aligned frame",
                             reason="bad_shape")
    values = {"size": size,
              **{name: _number(header, key, path) for name, key in GEOMETRY_KEYWORDS.items()}}
    median_key, (low_key, high_key) = EUV_KEYWORDS["euv_median"], EUV_KEYWORDS["euv_clip"]
    if "euv" in need or median_key in header:
        values["euv_median"] = _number(header, median_key, path)
        values["euv_clip"] = (_number(header, low_key, path), _number(header, high_key, path))
    if "field" in need or HMI_KEYWORD in header:
        values["hmi_clip"] = _number(header, HMI_KEYWORD, path)
    if "channels" in need or CHANNEL_KEYWORD.format(1) in header:
        count = shape[0] if len(shape) == 3 else 0
        keys = [CHANNEL_KEYWORD.format(i) for i in range(1, max(count, 1) + 1)]
        missing = [k for k in keys if header.get(k) in (None, "")]
        if missing:
            raise InputDataError(path, f"header lacks {', '.join(missing)}: the stack's channel "
                                 "order", reason="missing_keyword")
        values["channels"] = tuple(header[k] for k in keys)
    return Conventions(**values)


def channels_of(header) -> tuple:
    """The channel order a header records (CHAN1, CHAN2, ... as far as they go), e.g. to keep
    it as provenance; () when it records none."""
    channels, i = [], 1
    while header.get(CHANNEL_KEYWORD.format(i)) not in (None, ""):
        channels.append(header[CHANNEL_KEYWORD.format(i)])
        i += 1
    return tuple(channels)


def of_stack(header, path=None, shape=None) -> Conventions:
    """An EUV stack's: geometry, EUV normalization and channel order."""
    return read(header, path, shape, need=("euv", "channels"))


def of_target(header, path=None, shape=None) -> Conventions:
    """A normalized magnetogram's: geometry and HMI clip."""
    return read(header, path, shape, need=("field",))


def of_map(header, path=None, shape=None) -> Conventions:
    """A map in physical units (aligned frame, generated or true magnetogram): its geometry."""
    return read(header, path, shape)


def of_pairs(pairs) -> Conventions:
    """The one set of conventions of (stack, target) file pairs: every stack's must equal the
    first's, every target's the first target's, and a target's geometry its stack's; the
    first file that differs is named."""
    found = None
    for stack_path, target_path in pairs:
        stack = of_stack(read_header(stack_path), stack_path)
        target = of_target(read_header(target_path), target_path)
        check(target, stack, target_path, f"its input {os.fspath(stack_path)}",
              Conventions.GEOMETRY)
        pair = stack.merge(target)
        if found is None:
            found, first = pair, (stack_path, target_path)
        else:
            check(stack, found, stack_path, f"the first stack {os.fspath(first[0])}",
                  Conventions.GEOMETRY + Conventions.EUV + ("channels",))
            check(target, found, target_path, f"the first target {os.fspath(first[1])}",
                  ("hmi_clip",))
    if found is None:
        raise ValueError("no (stack, target) pairs to read conventions from")
    return found


def check(found: Conventions, expected: Conventions | dict, path, what: str = "the configuration",
          names=None) -> None:
    """Raise ``convention_mismatch`` naming ``path`` when ``found`` differs from ``expected``
    (a Conventions or a dict of some of its fields) in any of ``names`` (default: every
    convention ``expected`` states)."""
    if isinstance(expected, dict):
        unknown = set(expected) - {f.name for f in fields(Conventions)}
        if unknown:
            raise ValueError(f"unknown frame conventions {sorted(unknown)}")
        expected_values = {k: tuple(v) if isinstance(v, list) else v for k, v in expected.items()}
        names = names or list(expected_values)
    else:
        expected_values = {f.name: getattr(expected, f.name) for f in fields(Conventions)}
        names = names or [n for n, v in expected_values.items() if v is not None]
    diffs = [f"{describe(n)} {_show(getattr(found, n))}, {what} {_show(expected_values[n])}"
             for n in names if not same(getattr(found, n), expected_values[n])]
    if diffs:
        raise InputDataError(path, "frame conventions differ: " + "; ".join(diffs),
                             reason="convention_mismatch")


def check_model_input(stack: Conventions, model: Conventions, path) -> None:
    """A stack the model was trained for: the same geometry and EUV normalization, and channels
    imaging the same emission lines in the same order (EUVI 195 where AIA had 193)."""
    check(stack, model, path, "the model's", Conventions.GEOMETRY + Conventions.EUV)
    if bands(stack.channels) != bands(model.channels):
        raise InputDataError(path, f"channels {_show(stack.channels)} ({', '.join(bands(stack.channels))}) "
                             f"are not the model's {_show(model.channels)} "
                             f"({', '.join(bands(model.channels))})", reason="convention_mismatch")


def parse_expected(assignments) -> dict:
    """``KEY=VALUE`` strings (the CLI's ``--expect``) -> a dict for :func:`check`; ``euv_clip``
    is ``LOW,HIGH``."""
    out = {}
    names = {f.name for f in fields(Conventions)} - {"channels"}
    for item in assignments:
        key, sep, value = (s.strip() for s in item.partition("="))
        if not sep or key not in names:
            raise ValueError(f"--expect {item!r}: expected KEY=VALUE with KEY one of {sorted(names)}")
        try:
            out[key] = (int(value) if key == "size" else
                        tuple(float(v) for v in value.strip("[]()").split(",")) if key == "euv_clip"
                        else float(value))
        except ValueError:
            raise ValueError(f"--expect {item!r}: {value!r} is not a valid {key}") from None
    return out
