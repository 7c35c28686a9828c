"""Tests of automatic biome naming, CF flag attributes and the recipe settings."""

import numpy as np
import pytest

from carbon_biomes.core.classifier import ClassifierSettings
from carbon_biomes.core.detection import DetectionSettings
from carbon_biomes.core.errors import SettingsError
from carbon_biomes.core.monthly_regression import RegressionSettings
from carbon_biomes.core.naming import biome_signatures, flag_meaning, name_biomes, roman
from carbon_biomes.workflow.products import flag_attributes
from carbon_biomes.workflow.settings import (
    DetectionScriptSettings,
    RegressionScriptSettings,
    TrackingScriptSettings,
)


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


def test_settings_defaults_come_from_library_constants():
    from carbon_biomes.core import clustering, detection, regression

    esmvalcore = {"run_dir": "x", "work_dir": "y", "plot_dir": "z", "scheduler_address": "tcp://a"}
    reg = RegressionScriptSettings.from_cfg(esmvalcore).regression
    assert reg.box_size == regression.DEFAULT_BOX_SIZE == 2.0
    assert reg.alpha == regression.DEFAULT_ALPHA == 0.04
    assert reg.outlier_filter == regression.DEFAULT_OUTLIER_FILTER
    det = DetectionScriptSettings.from_cfg(esmvalcore).detection
    assert det.thresholds == "auto" and det.dist_scale == "root"
    assert det.scan_delta_dist == clustering.DEFAULT_DELTA_DISTS_ROOT
    assert det.min_biome_size == detection.DEFAULT_MIN_BIOME_SIZE
    paper = DetectionSettings(thresholds="paper")
    assert paper.thresholds == (25.0, 0.1) and paper.dist_scale == "absolute"
    assert paper.scan_delta_dist == (20.0, 25.0, 28.0, 30.0)
    assert TrackingScriptSettings.from_cfg(esmvalcore).network == ClassifierSettings()
    import datetime

    months = DetectionSettings(reference_months=datetime.date(2009, 1, 1)).reference_months
    assert months == ("2009-01",)


@pytest.mark.parametrize(
    ("cls", "bad", "named"),
    [
        (RegressionSettings, {"box_size": -2}, "box_size"),
        (RegressionSettings, {"box_size": 7}, "box_size"),
        (RegressionSettings, {"alpha": 1.5}, "alpha"),
        (RegressionSettings, {"outlier_filter": {"dic_max": 3}}, "outlier_filter"),
        (RegressionSettings, {"carbon": "preindustrial"}, "carbon"),
        (DetectionSettings, {"reference_months": ["2009-13"]}, "reference_months"),
        (DetectionSettings, {"thresholds": [1]}, "thresholds"),
        (DetectionSettings, {"thresholds": [-1, 0.1]}, "delta_dist"),
        (DetectionSettings, {"spread": "max"}, "spread"),
        (DetectionSettings, {"min_biomes": 9, "max_biomes": 4}, "min_biomes"),
        (ClassifierSettings, {"dropout": 1.0}, "dropout"),
        (ClassifierSettings, {"epochs": 0}, "epochs"),
        (ClassifierSettings, {"optimizer": "rmsprop"}, "optimizer"),
    ],
)
def test_one_validation_style_names_the_setting(cls, bad, named):
    with pytest.raises(SettingsError, match=named):
        cls(**bad)


@pytest.mark.parametrize(
    "script", [RegressionScriptSettings, DetectionScriptSettings, TrackingScriptSettings]
)
def test_unknown_script_setting_is_refused_with_the_known_ones(script):
    with pytest.raises(SettingsError, match="unknown setting.*bogus.*known settings"):
        script.from_cfg({"bogus": 1})


def test_regression_months_setting():
    assert RegressionScriptSettings.from_cfg({}).months == "all"
    assert RegressionScriptSettings.from_cfg({"months": "2009-01"}).months == ("2009-01",)
    with pytest.raises(SettingsError, match="months"):
        RegressionScriptSettings.from_cfg({"months": ["January"]})


def test_a_few_icy_boxes_do_not_make_a_biome_ice():
    labels = np.repeat([1, 2], [100, 50])
    z = np.vstack([np.tile([-0.5, 1.0, 0.0], (100, 1)), np.tile([1.0, -1.0, 0.0], (50, 1))])
    lat = np.where(labels == 1, -50.0, 10.0)
    sst = np.where(labels == 1, 5.0, 25.0)
    ice = np.zeros(150)
    ice[:30] = 100.0  # 30 % of biome 1's boxes fully ice covered: mean 30 %, median 0
    names = name_biomes(biome_signatures(labels, z, lat, sst, ice))
    assert names == {1: "SUBP+UP", 2: "SUBTR"}
