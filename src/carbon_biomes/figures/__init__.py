"""Figures: axes-level drawing (:mod:`.plotting`) and the figures of each stage.

Figures take arrays and core results, never files; the ESMValTool layer saves them.
"""
