"""The settings dock at the window's right: compute, filter and geometry panels, scrollable."""
from __future__ import annotations

from PySide6 import QtGui, QtWidgets

from .compute_panel import ComputePanel
from .filter_panel import FilterPanel
from .geometry_panel import GeometryPanel


class SettingsDock(QtWidgets.QDockWidget):
    def __init__(self) -> None:
        super().__init__("Settings")
        self.setObjectName("settings_dock")  # QMainWindow.saveState finds it by this name
        self.compute_panel = ComputePanel()
        self.filter_panel = FilterPanel()
        side = QtWidgets.QWidget()
        self._layout = layout = QtWidgets.QVBoxLayout(side)
        layout.addWidget(self.compute_panel)
        layout.addWidget(self.filter_panel)
        layout.addStretch(1)
        scroll = QtWidgets.QScrollArea()
        scroll.setWidget(side)
        scroll.setWidgetResizable(True)
        scroll.setMinimumWidth(300)
        for box in side.findChildren(QtWidgets.QComboBox):  # long item texts must not widen the dock
            box.setSizeAdjustPolicy(QtWidgets.QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            box.setMinimumContentsLength(12)
        self.setWidget(scroll)
        # Closable: View ▸ Settings panel (Ctrl+D) hides it for more room and brings it back.
        self.setFeatures(QtWidgets.QDockWidget.DockWidgetFeature.DockWidgetMovable
                         | QtWidgets.QDockWidget.DockWidgetFeature.DockWidgetClosable)

    def add_geometry_panel(self, alignment: QtGui.QAction) -> GeometryPanel:
        """The geometry panel, below the filters (it shows the window's alignment-view action)."""
        self.geometry_panel = GeometryPanel(alignment)
        self._layout.insertWidget(2, self.geometry_panel)
        return self.geometry_panel
