"""Detection and tracking of marine carbon biomes in Earth System Model output.

The method follows Mohanty et al. (2025, Ocean Science 21, 587): per month, fCO2 is regressed on
sea-surface temperature, dissolved inorganic carbon and alkalinity in boxes of a regular
latitude/longitude lattice; the standardized slopes are clustered with Ward's method, the
dendrogram is cut adaptively, and a feed-forward network trained on one reference month labels
every other month.
"""

__version__ = "0.1.0"
