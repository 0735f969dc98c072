"""Issue 14, the viewer's second round: thresholds in network pixels, geometry you can see,
other matchers side by side, no stale or stranded state, layout.

Same set-up as test_ui.py: a tiny random model, the terrace pair at 320 px.
"""
from __future__ import annotations

import numpy as np
import pytest

from ucn_gui.core.match_files import load_matches
from test_ui import IMG0, IMG1, RUN_TIMEOUT_MS, matched, model_path, opened, settings, window  # noqa: F401 - fixtures

pytestmark = pytest.mark.timeout(120)


# ---------------------------------------------------------------------- 1. thresholds in network pixels


def test_thresholds_are_labelled_in_network_pixels_and_exported_in_both_units(matched, tmp_path):
    panel = matched.filter_panel
    m = matched.state.result.matches
    assert m.network_side == 320
    for row in (panel.reciprocity, panel.stability):
        assert "(px at 320)" in row.check.text()
        assert f"{744 / 320:.2f} original px" in row.check.toolTip()
    # The filter compares network pixels: a 1-px threshold keeps errors of up to 1 network pixel.
    panel.stability.check.setChecked(False)
    panel.reciprocity.slider.setValue(1.0)
    assert np.array_equal(matched.state.mask, m.reciprocity_error <= 1.0)
    out = matched.export_matches(tmp_path / "m.npz")
    cols = load_matches(out)
    np.testing.assert_array_equal(cols["reciprocity_error_network_px"], m.reciprocity_error)
    np.testing.assert_array_equal(cols["reciprocity_error_original_px"], m.reciprocity_error_original)
    assert cols["settings"]["network_side"] == 320 and "network_px" in cols["settings"]["error_units"]
