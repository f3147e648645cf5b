"""Configuration: the workflow's (``workflow``: read, merge, validate, check; ``schedule``: the
time grids, the periods that batch them, the evaluation months) and training's (``training``)."""
