"""Tests of automatic biome naming, CF flag attributes and the recipe settings."""

import numpy as np
import pytest

from carbon_biomes.naming import biome_signatures, flag_meaning, name_biomes, roman
from carbon_biomes.output import flag_attributes
from carbon_biomes.settings import DetectionSettings, SettingsError


def test_roman():
    assert [roman(k) for k in (1, 2, 3, 4, 9, 14)] == ["I", "II", "III", "IV", "IX", "XIV"]
    with pytest.raises(ValueError):
        roman(0)


def _planted():
    """Four biomes: ice (cold, icy), two thermal (SST z high), one DIC-dominated."""
    rng = np.random.default_rng(1)
    labels = np.repeat([1, 2, 3, 4], [10, 30, 20, 25])
    centres = {1: (-1.0, 1.5, 0.0), 2: (1.5, -1.0, 0.0), 3: (1.0, 0.5, 0.0), 4: (-0.5, 1.2, 0.0)}
    z = np.vstack([centres[k] for k in labels]) + 0.05 * rng.standard_normal((labels.size, 3))
    lat = np.where(labels == 1, -70.0, np.where(labels == 4, -50.0, 20.0))
    sst = np.where(labels == 1, -1.5, np.where(labels == 4, 8.0, 25.0))
    ice = np.where(labels == 1, 80.0, 0.0)
    return labels, z, lat, sst, ice


def test_names_follow_signature_and_size():
    names = name_biomes(biome_signatures(*_planted()))
    # biome 2 (30 boxes) is the larger thermal biome -> SUBTR I; biome 3 -> SUBTR II
    assert names == {1: "ICE", 2: "SUBTR I", 3: "SUBTR II", 4: "SUBP+UP"}


def test_names_without_ice_field_use_sst():
    labels, z, lat, sst, _ = _planted()
    names = name_biomes(biome_signatures(labels, z, lat, sst, None))
    assert names[1] == "ICE"


def test_overrides_and_errors():
    signature = biome_signatures(*_planted())
    names = name_biomes(signature, overrides={4: "Southern Ocean"})
    assert names[4] == "Southern Ocean"
    with pytest.raises(ValueError, match="biome 9"):
        name_biomes(signature, overrides={9: "x"})
    with pytest.raises(ValueError, match="not unique"):
        name_biomes(signature, overrides={4: "ICE"})


def test_flag_attributes_are_cf_words():
    attrs = flag_attributes({2: "SUBP+UP I", 1: "ICE"})
    assert list(attrs["flag_values"]) == [1, 2]
    assert attrs["flag_meanings"] == "ICE SUBP_and_UP_I"
    assert flag_meaning("SUBTR II") == "SUBTR_II"


def test_detection_settings_defaults_and_validation():
    settings = DetectionSettings.from_cfg({"run_dir": "x", "work_dir": "y", "plot_dir": "z"})
    assert settings.box_size == 2.0 and settings.alpha == 0.04
    assert settings.outlier_filter["fco2_max"] == 500.0
    assert settings.thresholds == "auto" and settings.dist_scale == "root"
    paper = DetectionSettings.from_cfg({"thresholds": "paper"})
    assert paper.thresholds == (25.0, 0.1) and paper.dist_scale == "absolute"
    assert paper.scan_delta_dist == (20.0, 25.0, 28.0, 30.0)
    import datetime

    assert DetectionSettings(reference_months=datetime.date(2009, 1, 1)).reference_months == (
        "2009-01",
    )
    for bad in (
        {"box_size": -2},
        {"reference_months": ["2009-13"]},
        {"thresholds": [1]},
        {"spread": "max"},
        {"outlier_filter": {"dic_max": 3}},
        {"bogus": 1},
    ):
        with pytest.raises(SettingsError):
            DetectionSettings.from_cfg(bad)


def test_a_few_icy_boxes_do_not_make_a_biome_ice():
    labels = np.repeat([1, 2], [100, 50])
    z = np.vstack([np.tile([-0.5, 1.0, 0.0], (100, 1)), np.tile([1.0, -1.0, 0.0], (50, 1))])
    lat = np.where(labels == 1, -50.0, 10.0)
    sst = np.where(labels == 1, 5.0, 25.0)
    ice = np.zeros(150)
    ice[:30] = 100.0  # 30 % of biome 1's boxes fully ice covered: mean 30 %, median 0
    names = name_biomes(biome_signatures(labels, z, lat, sst, ice))
    assert names == {1: "SUBP+UP", 2: "SUBTR"}
