"""The conventions every stage shares: errors, FITS I/O, the instrument registry, frame
conventions and geometry, header checks, scores, figures' basics, progress."""
