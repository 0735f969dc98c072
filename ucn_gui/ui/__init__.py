from . import pyside_fix

pyside_fix.apply()  # before any window emits a signal (see pyside_fix)
