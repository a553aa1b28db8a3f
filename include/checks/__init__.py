"""Checking a month before it is published: its profile (gathered on the way in), the checks every
month must pass, and the anomaly test against the months before it."""
