"""The products stage: generated magnetograms (inference), their headers, the ensemble's
uncertainty, synchronic Carrington maps, quicklooks."""
