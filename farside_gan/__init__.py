"""farside-gan: AI-generated solar farside magnetograms (Pix2PixHD on SDO AIA -> HMI pairs)."""

__version__ = "0.1.0"
