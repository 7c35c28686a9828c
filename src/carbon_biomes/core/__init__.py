"""The science core: pure functions and containers on numpy arrays, one module per stage.

No files, no iris, no ESMValTool: numpy, scipy, scikit-learn and (lazily) Keras only. The
stages, in pipeline order (docs/method.md):

* :mod:`~carbon_biomes.core.regression` - box regression of fCO2 on SST, DIC and ALK;
* :mod:`~carbon_biomes.core.monthly_regression` - the month-by-month regression stream used by
  every later stage (outlier filter, box regression, significance, box statistics);
* :mod:`~carbon_biomes.core.clustering` - standardization, Ward linkage, adaptive cut, scores;
* :mod:`~carbon_biomes.core.naming` - biome signatures and automatic names;
* :mod:`~carbon_biomes.core.detection` - detection of the biomes of the reference month(s);
* :mod:`~carbon_biomes.core.classifier` - the neural-network biome classifier;
* :mod:`~carbon_biomes.core.tracking` - labelling of every month with the classifier;
* :mod:`~carbon_biomes.core.regions`, :mod:`~carbon_biomes.core.coverage` and
  :mod:`~carbon_biomes.core.trends` - the analysis of tracked biomes: regions, cell areas,
  coverage and frequency maps, Theil-Sen/Mann-Kendall trends (not yet run by a diagnostic).
"""
