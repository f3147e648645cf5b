"""The training stage: the Pix2PixHD training loop, its data and loaders, data-parallel
launchers, training figures."""
