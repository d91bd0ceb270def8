"""Grading an outside pipeline's output against the truth emugen recorded out of band."""
