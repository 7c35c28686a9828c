"""The ESMValTool layer: settings, dataset identity, inputs, products, provenance, script helpers.

Above the science core (:mod:`carbon_biomes.core`) and the figures (:mod:`carbon_biomes.figures`):
it reads what ESMValCore gives a diagnostic script (``settings.yml``, preprocessed files), turns
it into arrays for the core, and writes every product with its provenance.
"""
