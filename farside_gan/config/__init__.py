"""Configuration: the workflow's (load, merge, validate, time grid, periods) and training's."""
