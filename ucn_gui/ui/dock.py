"""The settings dock at the window's right: the compute panel above the filter panel, scrollable."""
from __future__ import annotations

from PySide6 import QtWidgets

from .compute_panel import ComputePanel
from .filter_panel import FilterPanel


class SettingsDock(QtWidgets.QDockWidget):
    def __init__(self) -> None:
        super().__init__("Settings")
        self.setObjectName("settings_dock")  # QMainWindow.saveState finds it by this name
        self.compute_panel = ComputePanel()
        self.filter_panel = FilterPanel()
        side = QtWidgets.QWidget()
        layout = QtWidgets.QVBoxLayout(side)
        layout.addWidget(self.compute_panel)
        layout.addWidget(self.filter_panel)
        layout.addStretch(1)
        scroll = QtWidgets.QScrollArea()
        scroll.setWidget(side)
        scroll.setWidgetResizable(True)
        scroll.setMinimumWidth(300)
        self.setWidget(scroll)
        self.setFeatures(QtWidgets.QDockWidget.DockWidgetFeature.DockWidgetMovable)
