"""The prepare stage: calibrate, align (co-align), normalize, stack, and the training manifest."""
