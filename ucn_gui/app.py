"""``ucn-gui`` / ``python main.py``: the desktop app.

    python main.py                          # the bundled sample pair (and default model, when bundled)
    python main.py A.jpg B.jpg --weights W  # a pair of your own
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

# Only light imports up here: main() checks the display libraries and sets the
# thread policy before Qt and torch are loaded.
from ucn_gui import package_version
from ucn_gui.core.devices import ACCEPTED, DeviceNameError, check_device_name
from ucn_gui.core.settings import ComputeSettings


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="ucn-gui", description="UCN Viewer: dense correspondences between two images.")
    p.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    p.add_argument("images", nargs="*", metavar="IMAGE", help="two images to open (default: the bundled sample pair)")
    p.add_argument("--weights", help="a weights file (.safetensors, a torch checkpoint, open-ucn's format) or a zoo name")
    p.add_argument("--device", help=f"where to compute: {' | '.join(ACCEPTED)} (default: auto, remembered); "
                                    "an unavailable CUDA device falls back to the CPU")
    p.add_argument("--max-size", type=int, metavar="PX",
                   help=f"longest image side the network sees (default {ComputeSettings().max_side}, remembered)")
    # For smoke tests and README screenshots: quit by itself.
    p.add_argument("--quit-after", type=float, metavar="S", help=argparse.SUPPRESS)
    p.add_argument("--screenshot", metavar="PNG", help=argparse.SUPPRESS)
    p.add_argument("--first-result", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if len(args.images) not in (0, 2):
        p.error(f"give two images (or none for the sample pair), not {len(args.images)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.device is not None:
        try:
            args.device = check_device_name(args.device)
        except DeviceNameError as exc:
            print(f"ucn-gui: error: --device: {exc}", file=sys.stderr)
            return 2
    from ucn_gui.ui.system_libs import check_display_libraries

    if not check_display_libraries("ucn-gui"):  # prints the apt line instead of Qt's plugin error
        return 1
    from ucn_gui.core.threads import configure_threads

    configure_threads()  # before anything below loads torch
    # Qt imports after argument parsing, so `--help` works without a display.
    import pyqtgraph as pg
    from PySide6 import QtCore, QtWidgets

    from ucn_gui.ui import background
    from ucn_gui.ui.main_window import MainWindow

    pg.setConfigOptions(imageAxisOrder="row-major", antialias=False)
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(sys.argv[:1])
    app.setApplicationName("UCN Viewer")
    app.setOrganizationName("ucn-viewer")
    window = MainWindow()
    chosen = window.compute_panel.settings()  # as remembered; the command line overrides
    window.compute_panel.set_settings(replace(chosen, device=args.device or chosen.device, max_side=args.max_size or chosen.max_side))
    window.show()
    window.start([str(Path(p)) for p in args.images] or None, args.weights)
    if args.screenshot:
        def shoot() -> None:
            window.grab().save(args.screenshot)
            window.close()

        if window.runner.busy or window.loader.busy:  # photos opening, or a match running
            window.result_shown.connect(lambda: QtCore.QTimer.singleShot(300, shoot))
            window.runner.failed.connect(lambda _m: QtCore.QTimer.singleShot(300, shoot))
            window.load_finished.connect(lambda ok: ok or QtCore.QTimer.singleShot(300, shoot))
        else:
            QtCore.QTimer.singleShot(500, shoot)
    if args.first_result:  # for benchmarks/bench_matching.py: when did the first matches show?
        def report(*_args) -> None:
            if window.isVisible():  # once: a first pass drawn while the alignment pass runs counts
                print(f"first-result {time.time():.3f}", flush=True)
                window.close()

        window.result_shown.connect(report)
        window.runner.preview.connect(report)
    if args.quit_after is not None:
        def quit_now() -> None:  # tests time the close and the exit from these lines
            print(f"closing {time.time():.3f} busy={window.runner.busy}", file=sys.stderr, flush=True)
            start = time.perf_counter()
            window.close()
            print(f"closed in {time.perf_counter() - start:.3f}", file=sys.stderr, flush=True)

        QtCore.QTimer.singleShot(int(args.quit_after * 1000), quit_now)
    return background.leave(int(app.exec()))


if __name__ == "__main__":
    raise SystemExit(main())
