"""Matching off the GUI thread.

    runner = MatchRunner()
    runner.finished.connect(on_result)          # MatchResult, only for the latest request
    runner.submit(MatchRequest(model, photo0, photo1, ComputeSettings(max_side=640)))
    runner.shutdown()                           # on close: cancel, stop, never wait long

A :class:`MatchWorker` lives on its own QThread and runs one request at a time,
through a core ``Matcher`` that keeps the model's features of the last pair warm.
Every request gets an id and a ``threading.Event``; submitting a new one sets the
previous event, so the running match stops at its next stage boundary
(``Cancelled`` from the core) and queued stale requests are skipped. The runner
drops any signal whose id is not the latest, so a stale result is never shown.
"""
from __future__ import annotations

import os
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field, replace

import cv2
import torch
from . import pyside_fix  # noqa: F401, I001 - before Qt signals are emitted (PySide6 6.12.0 bug, see there)
from PySide6 import QtCore

from ucn_gui.core.alignment import Alignment
from ucn_gui.core.checkpoint import LoadedModel
from ucn_gui.core.devices import DeviceNameError, choose_device
from ucn_gui.core.filters import default_filters
from ucn_gui.core.image import Photo
from ucn_gui.core.matcher import Matcher, MatchRun, reference_matches
from ucn_gui.core.matching import Cancelled, MatchSet, PairFeatures
from ucn_gui.core.nn import check_cancel
from ucn_gui.core.precision import PRECISIONS, choose_precision
from ucn_gui.core.settings import ComputeSettings

from . import background


WORKER_NICE = 10  # the worker's niceness relative to the GUI thread


def needs_model(compute: ComputeSettings) -> bool:
    """Whether a run with these settings uses the UCN model (as matcher A or B)."""
    return "UCN" in (compute.matcher, compute.compare)


@dataclass(frozen=True)
class MatchRequest:
    model: LoadedModel | None  # None when neither matcher is UCN
    image0: Photo  # as opened for display; the Matcher makes the network's copies
    image1: Photo
    compute: ComputeSettings = field(default_factory=ComputeSettings)
    request_id: int = 0  # set by MatchRunner.submit


@dataclass
class MatchResult:
    request_id: int
    pair: PairFeatures | None  # the dense features (click-to-query); None for a sparse matcher
    matches: MatchSet
    device: str  # where it actually ran
    seconds: float
    reused_features: bool
    precision: str = "fp32"  # what the network ran in
    matcher: str = "UCN"  # or SIFT, ORB, AKAZE, XFeat (core.reference_matchers)
    compare: MatchResult | None = None  # the second matcher's result on the same pair, when one was chosen
    alignment: Alignment | None = None  # UCN with the alignment pass: what it found
    preview: bool = False  # the first pass, shown while the alignment pass runs


def _is_cuda_oom(exc: BaseException) -> bool:
    oom = getattr(torch.cuda, "OutOfMemoryError", ())
    return (oom and isinstance(exc, oom)) or "CUDA out of memory" in str(exc)


def _lower_thread_priority() -> None:
    """Nice this thread (Linux: per thread) so that on a busy CPU the GUI thread
    gets the core first; the compute pool threads it starts inherit the value."""
    if sys.platform.startswith("linux"):
        try:
            tid = threading.get_native_id()
            if os.getpriority(os.PRIO_PROCESS, tid) < WORKER_NICE:
                os.setpriority(os.PRIO_PROCESS, tid, WORKER_NICE)
        except OSError:
            pass


class MatchWorker(QtCore.QObject):
    """Runs requests on the thread it was moved to. Signals carry the request id."""

    progress = QtCore.Signal(int, str, float)
    preview = QtCore.Signal(object)  # MatchResult of the first pass while the alignment pass runs
    finished = QtCore.Signal(object)  # MatchResult
    failed = QtCore.Signal(int, str)
    cancelled = QtCore.Signal(int)
    notice = QtCore.Signal(int, str)

    def __init__(self) -> None:
        super().__init__()
        self._matcher: Matcher | None = None  # the current model, with the features of the last pair

    @QtCore.Slot()
    def warm_up(self) -> None:
        """One-time library start-up costs (torch's compute pool for this thread, OpenCV's
        SIFT) hold the GIL for a few hundred ms; pay them at launch, not in the first run."""
        _lower_thread_priority()
        try:
            import numpy as np

            x = torch.zeros(1, 1, 64, 64)
            torch.nn.functional.conv2d(x, torch.zeros(4, 1, 3, 3), padding=1).sum().item()
            (torch.zeros(256, 32) @ torch.zeros(32, 256)).max().item()
            board = (np.indices((96, 96)).sum(axis=0) // 12 % 2 * 255).astype(np.uint8)  # has corners
            kps = cv2.SIFT_create().detect(board, None)
            np.array([kp.pt for kp in sorted(kps, key=lambda kp: -kp.response)], np.float32)
        except Exception:  # noqa: BLE001 - a failed warm-up only costs time later
            pass

    @QtCore.Slot(object, object)
    def run(self, request: MatchRequest, stop: threading.Event) -> None:
        rid = request.request_id
        _lower_thread_priority()
        if stop.is_set():  # superseded while queued
            self.cancelled.emit(rid)
            return
        compute = request.compute
        try:
            result = self._run_matcher(request, compute.matcher, stop)
            if compute.compared:  # the second pane's matcher
                result.compare = self._run_matcher(request, compute.compared, stop)
        except Cancelled:
            self.cancelled.emit(rid)
            return
        except Exception as exc:  # noqa: BLE001 - any failure becomes a message, the thread lives on
            traceback.print_exc()
            self.failed.emit(rid, f"{type(exc).__name__}: {exc}")
            return
        self.finished.emit(result)

    def _run_matcher(self, request: MatchRequest, matcher: str, stop: threading.Event) -> MatchResult:
        rid = request.request_id
        start = time.perf_counter()
        if matcher != "UCN":  # a sparse reference matcher: detection and matching in OpenCV (or XFeat)
            check_cancel(stop.is_set, matcher)
            self.progress.emit(rid, f"{matcher} keypoints and matching", 0.5)
            matches = reference_matches(matcher, request.image0, request.image1, request.compute.max_side)
            check_cancel(stop.is_set, matcher)
            return MatchResult(rid, None, matches, "cpu", time.perf_counter() - start, False, "fp32", matcher)
        try:
            chosen, why = choose_device(request.compute.device)
        except DeviceNameError:  # e.g. a hand-edited setting: never a reason not to run
            chosen, why = choose_device("auto")
        device = str(chosen)
        if why:
            self.notice.emit(rid, why)
        try:
            run = self._run_on(request, device, stop)
        except Exception as exc:  # noqa: BLE001 - only CUDA OOM is retried, the rest re-raised
            if not (device.startswith("cuda") and _is_cuda_oom(exc)):
                raise
            if self._matcher is not None:
                self._matcher.forget()
            torch.cuda.empty_cache()
            self.notice.emit(rid, "The GPU ran out of memory; this pair was matched on the CPU instead.")
            device = "cpu"
            run = self._run_on(request, device, stop)
        return MatchResult(rid, run.pair, run.matches, device, time.perf_counter() - start, run.reused, run.pair.precision,
                           alignment=run.alignment)

    def _run_on(self, request: MatchRequest, device: str, stop: threading.Event) -> MatchRun:
        progress = lambda stage, fraction: self.progress.emit(request.request_id, stage, fraction)  # noqa: E731
        compute = request.compute
        requested = compute.precision if compute.precision in PRECISIONS else "auto"  # a hand-edited setting
        precision, why = choose_precision(requested, device)
        if why:
            self.notice.emit(request.request_id, why)
        if request.model is None:
            raise RuntimeError("UCN needs a model: choose a weights file first")
        if self._matcher is None or self._matcher.model is not request.model.model:
            self._matcher = Matcher(request.model.model)
        trust = default_filters(request.model.card) if compute.align else None  # the model's own defaults fit the warp
        start = time.perf_counter()

        def show_first_pass(run: MatchRun) -> None:  # slot A alone: a compared matcher comes with the final result
            if not compute.compared:
                self.preview.emit(MatchResult(request.request_id, run.pair, run.matches, device, time.perf_counter() - start,
                                              run.reused, run.pair.precision, preview=True))

        return self._matcher.match(request.image0, request.image1, compute.max_side, compute.options, device, precision,
                                   progress, stop.is_set, align=trust, on_first_pass=show_first_pass)


class MatchRunner(QtCore.QObject):
    """GUI-thread side: owns the thread, numbers requests, filters out stale signals."""

    progress = QtCore.Signal(str, float)
    preview = QtCore.Signal(object)  # the latest request's first pass, while its alignment pass runs (still busy)
    finished = QtCore.Signal(object)  # MatchResult of the latest request
    failed = QtCore.Signal(str)
    cancelled = QtCore.Signal()
    notice = QtCore.Signal(str)
    busy_changed = QtCore.Signal(bool)
    settled = QtCore.Signal(int, str)  # any request's end, stale ones too: id, "finished" | "failed" | "cancelled"

    _start = QtCore.Signal(object, object)  # (MatchRequest, threading.Event) -> worker.run

    def __init__(self, parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        # OpenCV's own thread pool (SIFT, resizing) was measured starving the GUI thread on
        # a busy 2-core CPU (200 ms event-loop stalls); one OpenCV thread keeps SIFT under
        # 100 ms there. This process-wide setting only affects the app, not the core library;
        # it deliberately narrows what configure_threads() set at start-up (torch keeps its count).
        cv2.setNumThreads(1)
        self._thread = QtCore.QThread()
        self._thread.setObjectName("ucn-match-worker")
        self._worker = MatchWorker()
        self._worker.moveToThread(self._thread)
        self._start.connect(self._worker.run, QtCore.Qt.ConnectionType.QueuedConnection)
        self._worker.progress.connect(self._on_progress)
        self._worker.finished.connect(self._on_finished)
        self._worker.preview.connect(self._on_preview)
        self._worker.failed.connect(self._on_failed)
        self._worker.cancelled.connect(self._on_cancelled)
        self._worker.notice.connect(self._on_notice)
        self._thread.started.connect(self._worker.warm_up)
        self._thread.start()
        self._next_id = 0
        self._latest = -1
        self._stop = threading.Event()
        self._busy = False

    @property
    def busy(self) -> bool:
        return self._busy

    @property
    def running(self) -> bool:
        """Whether the worker's thread runs (False once shutdown stopped it)."""
        return self._thread.isRunning()

    def submit(self, request: MatchRequest) -> int:
        """Start a run; any earlier one is cancelled and its result will be ignored."""
        self._stop.set()
        self._next_id += 1
        self._latest = self._next_id
        self._stop = threading.Event()
        self._set_busy(True)
        self._start.emit(replace(request, request_id=self._latest), self._stop)
        return self._latest

    def cancel(self) -> None:
        """Stop the current run; nothing it computes will be shown."""
        if self._busy:
            self._stop.set()
            self._latest = -1  # whatever is still in flight is now stale
            self._set_busy(False)
            self.cancelled.emit()

    def shutdown(self, timeout_ms: int = 300) -> bool:
        """Cancel and stop the thread; True when it stopped within ``timeout_ms``. Otherwise it is
        inside a step that cannot be interrupted (one network layer of a huge image), which it
        finishes on its own: it only computes in memory, so it is left to end in the background."""
        self._stop.set()
        self._latest = -1
        self._thread.quit()
        done = self._thread.wait(timeout_ms)
        if not done:
            background.adopt(self._thread, self._worker)
        self._set_busy(False)
        return done

    def _set_busy(self, busy: bool) -> None:
        if busy != self._busy:
            self._busy = busy
            self.busy_changed.emit(busy)

    def _on_progress(self, rid: int, stage: str, fraction: float) -> None:
        if rid == self._latest:
            self.progress.emit(stage, fraction)

    def _on_preview(self, result: MatchResult) -> None:
        if result.request_id == self._latest:
            self.preview.emit(result)

    def _on_finished(self, result: MatchResult) -> None:
        self.settled.emit(result.request_id, "finished")
        if result.request_id == self._latest:
            self._set_busy(False)
            self.finished.emit(result)

    def _on_failed(self, rid: int, message: str) -> None:
        self.settled.emit(rid, "failed")
        if rid == self._latest:
            self._set_busy(False)
            self.failed.emit(message)

    def _on_cancelled(self, rid: int) -> None:
        self.settled.emit(rid, "cancelled")
        if rid == self._latest:  # cancelled from inside (not via cancel(), which already reported)
            self._set_busy(False)
            self.cancelled.emit()

    def _on_notice(self, rid: int, message: str) -> None:
        if rid == self._latest:
            self.notice.emit(message)
