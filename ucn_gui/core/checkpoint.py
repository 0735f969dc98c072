"""Loading and saving model weights without ever executing code from a file.

Three formats load:

* our own ``.safetensors`` (architecture and ``n_out`` in its metadata, a JSON
  model card beside it);
* any ``torch.save`` file that ``torch.load(weights_only=True)`` accepts
  (bare state dicts, our trainer's checkpoints);
* open-ucn's checkpoints (legacy serialization with an ``easydict.EasyDict``
  config), through a restricted unpickler that resolves only an allow-list of
  globals: tensors, storages, ordered dicts, and EasyDict mapped to a plain dict.

Anything else a pickle asks for is refused with :class:`CheckpointError`,
before it can run.
"""
from __future__ import annotations

import functools
import io
import json
import os
import pickle
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file as load_safetensors
from safetensors.torch import save_file as save_safetensors

from .files import atomic_write
from .model import ARCHITECTURES, NORM_MODES, ResUNet2, build_model

FORMAT_TAG = "ucn-viewer/1"


class CheckpointError(Exception):
    """A model file that cannot be used; the message names the file and the reason."""


class ModelOutputError(RuntimeError):
    """A forward pass gave descriptors that are not finite numbers (NaN or inf)."""


@dataclass
class LoadedModel:
    model: ResUNet2
    arch: str
    n_out: int
    path: Path
    card: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return str(self.card.get("name") or self.path.stem)


# --------------------------------------------------------------------------- reading


class _ConfigDict(dict):
    """Stand-in for easydict.EasyDict: a plain dict that also accepts BUILD state."""

    def __setstate__(self, state: Any) -> None:  # EasyDict pickles its attributes too
        if isinstance(state, dict):
            self.update({k: v for k, v in state.items() if k not in self})


def _allowed_globals() -> dict[tuple[str, str], Any]:
    allowed: dict[tuple[str, str], Any] = {
        ("collections", "OrderedDict"): OrderedDict,
        ("easydict", "EasyDict"): _ConfigDict,
        ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
        ("torch._utils", "_rebuild_tensor"): torch._utils._rebuild_tensor,
        ("torch._utils", "_rebuild_parameter"): torch._utils._rebuild_parameter,
        ("torch", "Size"): torch.Size,
        ("torch", "device"): torch.device,
    }
    for dtype_name in ("Float", "Double", "Half", "BFloat16", "Long", "Int", "Short", "Char", "Byte", "Bool"):
        allowed[("torch", f"{dtype_name}Storage")] = getattr(torch, f"{dtype_name}Storage")
    for dtype in ("float32", "float64", "float16", "bfloat16", "int64", "int32", "uint8", "bool"):
        allowed[("torch", dtype)] = getattr(torch, dtype)
    return allowed


class _RefusedGlobal(pickle.UnpicklingError):
    """A pickle asked for a global outside the allow-list."""


class _RestrictedUnpickler(pickle.Unpickler):
    _allowed = _allowed_globals()

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise _RefusedGlobal(f"refused to load global {module}.{name}: not on the allow-list") from None


class _RestrictedPickleModule:
    """What torch.load's ``pickle_module`` needs: Unpickler, load, and the error type."""

    Unpickler = _RestrictedUnpickler
    UnpicklingError = pickle.UnpicklingError

    @staticmethod
    def load(f: io.IOBase, **kwargs: Any) -> Any:
        return _RestrictedUnpickler(f, **kwargs).load()


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a weights file into plain Python objects (dicts of tensors), never running its code."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: the file is empty")
    if path.suffix == ".safetensors":
        try:
            return {"state_dict": load_safetensors(str(path)), "metadata": _safetensors_metadata(path)}
        except (SafetensorError, OSError, ValueError) as exc:
            raise CheckpointError(f"{path}: not a readable safetensors file ({exc})") from None
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # not plain weights: try the open-ucn layout with our narrow allow-list
        try:
            obj = torch.load(path, map_location="cpu", weights_only=False, pickle_module=_RestrictedPickleModule)
        except _RefusedGlobal as exc:
            raise CheckpointError(f"{path}: unsafe model file, not loaded ({exc})") from None
        except Exception as exc:
            raise CheckpointError(f"{path}: not a readable model file ({type(exc).__name__}: {exc})") from None
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{path}: expected a dict of weights, found {type(obj).__name__}")
    return dict(obj)


def _safetensors_metadata(path: Path) -> dict[str, str]:
    with open(path, "rb") as f:
        header_len = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(header_len))
    return dict(header.get("__metadata__", {}))


def extract_state_dict(obj: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """The model weights inside a checkpoint dict (or the dict itself when bare)."""
    for key in ("state_dict", "model_state_dict", "model"):
        inner = obj.get(key)
        if isinstance(inner, Mapping) and inner and all(isinstance(v, torch.Tensor) for v in inner.values()):
            obj = inner
            break
    state = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    # DistributedDataParallel and torch.compile wrap names; strip their prefixes.
    for prefix in ("module.", "_orig_mod."):
        if state and all(k.startswith(prefix) for k in state):
            state = {k[len(prefix):]: v for k, v in state.items()}
    return state


def infer_architecture(state: Mapping[str, torch.Tensor]) -> tuple[str, int]:
    """(architecture name, n_out) from parameter shapes alone."""
    try:
        channels = (
            0,
            state["conv1.weight"].shape[0],
            state["conv2.weight"].shape[0],
            state["conv3.weight"].shape[0],
            state["conv4.weight"].shape[0],
        )
        tr_channels = (
            0,
            state["conv1_tr.weight"].shape[0],
            state["conv2_tr.weight"].shape[1],  # ConvTranspose2d weight is in x out x k x k
            state["conv3_tr.weight"].shape[1],
            state["conv4_tr.weight"].shape[1],
        )
        n_out = int(state["final.weight"].shape[0])
    except KeyError as exc:
        raise ValueError(f"not a ResUNet2 state dict (missing {exc.args[0]})") from None
    for name, cls in ARCHITECTURES.items():
        if tuple(cls.CHANNELS) == channels and tuple(cls.TR_CHANNELS) == tr_channels:
            return name, n_out
    raise ValueError(f"no known architecture has channels {channels[1:]} / {tr_channels[1:]}")


def _declared_architecture(obj: Mapping[str, Any]) -> tuple[str | None, int | None]:
    """Architecture and n_out as a config or metadata states them, if it does."""
    for key in ("metadata", "config", "card"):
        cfg = obj.get(key)
        if isinstance(cfg, Mapping):
            arch = cfg.get("architecture") or cfg.get("model")
            n_out = cfg.get("n_out") or cfg.get("model_n_out")
            if arch:
                return str(arch), int(n_out) if n_out is not None else None
    return None, None


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu") -> LoadedModel:
    """Load any supported weights file into an eval-mode model on ``device``."""
    path = Path(path)
    obj = read_checkpoint(path)
    state = extract_state_dict(obj)
    if not state:
        raise CheckpointError(f"{path}: holds no weight tensors")
    arch, n_out = _declared_architecture(obj)
    if arch is None or arch not in ARCHITECTURES:
        try:
            arch, n_out = infer_architecture(state)
        except ValueError as exc:
            raise CheckpointError(f"{path}: {exc}") from None
    if n_out is None:
        n_out = int(state["final.weight"].shape[0]) if "final.weight" in state else 32
    in_channels = int(state["conv1.weight"].shape[1]) if "conv1.weight" in state else 1
    if in_channels != 1:
        raise CheckpointError(f"{path}: the network takes {in_channels} input channels; UCN models take 1 (a grey image)")
    model = build_model(arch, n_out, in_channels=in_channels)
    _check_shapes(path, arch, model.state_dict(), state)
    _check_weight_values(path, state)
    model.load_state_dict(state, strict=True)
    card = load_card(path)
    card.setdefault("architecture", arch)
    card.setdefault("n_out", n_out)
    # How the model normalises at inference must match how it was trained: models
    # trained one pair per step say "per-image"; open-ucn's published ones (no card)
    # use running statistics.
    norm = card.setdefault("norm", "running")
    if norm not in NORM_MODES:
        raise CheckpointError(f"{card_path(path)}: unknown \"norm\" {norm!r} (expected one of {', '.join(NORM_MODES)})")
    model.set_norm(norm)
    model.register_forward_hook(functools.partial(_refuse_non_finite_output, path))
    return LoadedModel(model=model.to(device).eval(), arch=arch, n_out=n_out, path=path, card=card)


def _check_weight_values(path: Path, state: Mapping[str, torch.Tensor]) -> None:
    """Refuse weights that cannot give meaningful descriptors: NaN or inf anywhere, or a
    convolution whose weights are all zero (its output is the same at every pixel)."""
    for name, t in state.items():
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            bad = int((~torch.isfinite(t)).sum())
            raise CheckpointError(f"{path}: {bad} of {t.numel()} values of {name} are NaN or infinite; the model is unusable")
    for name, t in state.items():
        if t.is_floating_point() and t.ndim == 4 and t.numel() and not bool(t.any()):
            raise CheckpointError(f"{path}: every weight of {name} is zero; the model is unusable")


def check_descriptors(desc: torch.Tensor, what: str) -> None:
    """ModelOutputError when a forward pass gave NaN or inf descriptors (``what`` names the model)."""
    finite = torch.isfinite(desc)
    if not bool(finite.all()):
        bad = int((~finite).sum())
        raise ModelOutputError(
            f"{what}: the model gave non-finite descriptors ({bad} of {desc.numel()} values NaN or inf); "
            "its weights do not work on this input"
        )


def _refuse_non_finite_output(path: Path, _module: torch.nn.Module, _inputs: Any, output: torch.Tensor) -> None:
    """Forward hook of every model load_model returns: no NaN or inf descriptor reaches matching."""
    check_descriptors(output, str(path))


def _check_shapes(path: Path, arch: str, expected: Mapping[str, torch.Tensor], found: Mapping[str, torch.Tensor]) -> None:
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    wrong = [
        f"{k}: expected {tuple(expected[k].shape)}, found {tuple(found[k].shape)}"
        for k in expected
        if k in found and expected[k].shape != found[k].shape
    ]
    problems = []
    if wrong:
        problems.append("shape mismatch: " + "; ".join(wrong[:5]) + (" ..." if len(wrong) > 5 else ""))
    if missing:
        problems.append(f"missing {len(missing)} keys (e.g. {', '.join(missing[:3])})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected keys (e.g. {', '.join(unexpected[:3])})")
    if problems:
        raise CheckpointError(f"{path}: does not fit {arch}: " + " | ".join(problems))


def card_path(weights_path: str | os.PathLike) -> Path:
    p = Path(weights_path)
    return p.with_name(p.name.split(".")[0] + ".json")


def load_card(weights_path: str | os.PathLike) -> dict[str, Any]:
    """The JSON model card beside a weights file, or {} when there is none or it is unreadable."""
    p = card_path(weights_path)
    try:
        card = json.loads(p.read_text())
        return card if isinstance(card, dict) else {}
    except (OSError, ValueError):
        return {}


def save_model(path: str | os.PathLike, model: ResUNet2, card: Mapping[str, Any] | None = None) -> Path:
    """Save weights as safetensors plus a JSON model card; both written atomically.

    The card should say how the model was made: ``command``, ``training_data``,
    ``iterations``, ``metrics``... Architecture and ``n_out`` are filled in.
    """
    path = Path(path)
    if path.suffix != ".safetensors":
        path = path.with_suffix(".safetensors")
    arch = type(model).__name__
    card = {"format": FORMAT_TAG, "architecture": arch, "n_out": model.out_channels, "norm": model.norm_mode, **(card or {})}
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    meta = {"format": FORMAT_TAG, "architecture": arch, "n_out": str(model.out_channels)}
    atomic_write(path, lambda tmp: save_safetensors(state, str(tmp), metadata=meta))
    atomic_write(card_path(path), lambda tmp: tmp.write_text(json.dumps(card, indent=2, default=str) + "\n"))
    return path
