"""The settings dock at the window's right: compute, filter and geometry panels, scrollable."""
from __future__ import annotations

from PySide6 import QtCore, QtGui, QtWidgets

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
        self._wheel_guard = WheelGuard(scroll, self)
        self._wheel_guard.guard(side)
        # Closable: View ▸ Settings panel (Ctrl+D) hides it for more room and brings it back.
        self.setFeatures(QtWidgets.QDockWidget.DockWidgetFeature.DockWidgetMovable
                         | QtWidgets.QDockWidget.DockWidgetFeature.DockWidgetClosable)

    def keep_width_in(self, window: QtWidgets.QMainWindow) -> None:
        """Give the panel back its room when ``window`` grows again: Qt shrinks a dock with its
        window but hands all regained width to the central widget, which left the values and
        buttons cut off behind a scroll bar after a shrink and re-enlarge."""
        self._window = window
        window.installEventFilter(self)

    def eventFilter(self, watched: QtCore.QObject, event: QtCore.QEvent) -> bool:  # noqa: N802 (Qt's name)
        if event.type() == QtCore.QEvent.Type.Resize and watched is getattr(self, "_window", None):
            QtCore.QTimer.singleShot(0, self._restore_width)  # after the window's own layout pass
        return False

    def _restore_width(self) -> None:
        window = self._window
        if not self.isVisible() or self.isFloating() or window.dockWidgetArea(self) not in (
                QtCore.Qt.DockWidgetArea.RightDockWidgetArea, QtCore.Qt.DockWidgetArea.LeftDockWidgetArea):
            return
        scroll = self.widget()
        wanted = scroll.widget().sizeHint().width() + scroll.verticalScrollBar().sizeHint().width() + 2 * scroll.frameWidth()
        wanted = min(wanted, window.width() // 3)
        if self.width() < wanted:
            window.resizeDocks([self], [wanted], QtCore.Qt.Orientation.Horizontal)

    def add_geometry_panel(self, alignment: QtGui.QAction) -> GeometryPanel:
        """The geometry panel, below the filters (it shows the window's alignment-view action)."""
        self.geometry_panel = GeometryPanel(alignment)
        self._layout.insertWidget(2, self.geometry_panel)
        self._wheel_guard.guard(self.geometry_panel)
        return self.geometry_panel


class WheelGuard(QtCore.QObject):
    """Wheel over an unfocused combo box, spin box or slider of a scrolled panel scrolls the panel.

    Without it, scrolling down the settings to reach the match count changed whatever setting
    passed under the pointer (RANSAC mode, thresholds), and those changes were saved. A control
    takes wheel input once it has focus (click or Tab), as in most desktop applications.
    """

    GUARDED = (QtWidgets.QComboBox, QtWidgets.QAbstractSpinBox, QtWidgets.QAbstractSlider)

    def __init__(self, scroll: QtWidgets.QScrollArea, parent: QtCore.QObject) -> None:
        super().__init__(parent)
        self.scroll = scroll

    def guard(self, root: QtWidgets.QWidget) -> None:
        for kind in self.GUARDED:
            for widget in root.findChildren(kind):
                widget.setFocusPolicy(QtCore.Qt.FocusPolicy.StrongFocus)  # the wheel alone never gives focus
                widget.installEventFilter(self)

    def eventFilter(self, watched: QtCore.QObject, event: QtCore.QEvent) -> bool:  # noqa: N802 (Qt's name)
        if event.type() == QtCore.QEvent.Type.Wheel and isinstance(watched, QtWidgets.QWidget) and not watched.hasFocus():
            QtCore.QCoreApplication.sendEvent(self.scroll.verticalScrollBar(), event)
            return True
        return False
