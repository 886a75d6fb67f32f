"""Measuring reality: machine calibration, real-run validation, published measurements."""
