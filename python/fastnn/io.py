"""Checkpoints: `save` / `load` of model, optimizer, epoch and extra state in one .npz file.

Layout of the file (a plain NumPy .npz, readable with `np.load(path, allow_pickle=False)`):
- "__fastnn__": a 0-d unicode array holding a JSON manifest: format marker, version, the
  epoch, and the structure of the model / optimizer / extra state, where every array is a
  reference {"__array__": key} to a member of the archive;
- "model/<name>" (e.g. "model/0.weight"), "optimizer/state/<i>/<buffer>",
  "extra/<name>/...": the arrays themselves.
No pickle anywhere: non-array values (numbers, bools, strings, None, tuples, dicts) live in the
JSON manifest.
"""
from __future__ import annotations

import json
import os
import secrets
import zipfile
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

import numpy as np

__all__ = ["save", "load", "CheckpointError", "CheckpointMismatchError", "FORMAT", "VERSION"]

FORMAT = "fastnn.checkpoint"
VERSION = 1
_MANIFEST = "__fastnn__"

PathLike = Union[str, "os.PathLike[str]"]


class CheckpointError(ValueError):
    """The file is not a readable fastnn checkpoint (truncated, corrupt or foreign)."""


class CheckpointMismatchError(CheckpointError, KeyError):
    """The checkpoint does not fit the objects it is loaded into (keys, shapes, groups)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


# -- encoding of nested values into JSON + arrays ------------------------------------------
class _Encoder:
    """Turns nested dicts/lists/tuples/arrays/scalars into JSON, collecting the arrays."""

    def __init__(self) -> None:
        self.arrays: Dict[str, np.ndarray] = {}

    def _key(self, path: str) -> str:
        key, n = path, 1
        while key in self.arrays or key == _MANIFEST:
            key, n = f"{path}#{n}", n + 1
        return key

    def array(self, value: np.ndarray, path: str) -> Dict[str, str]:
        arr = np.asarray(value)
        if arr.dtype.hasobject or arr.dtype.kind == "V":
            raise TypeError(f"{path}: cannot store an array of dtype {arr.dtype} without pickle "
                            "(use numeric, bool or string arrays)")
        key = self._key(path)
        self.arrays[key] = arr  # np.ascontiguousarray would turn 0-d into 1-d
        return {"__array__": key}

    def encode(self, value: Any, path: str) -> Any:
        if isinstance(value, np.ndarray):
            return self.array(value, path)
        if isinstance(value, np.generic):
            # numpy scalars keep their dtype (e.g. int64 num_batches_tracked) as 0-d arrays
            ref = self.array(np.asarray(value), path)
            return {"__scalar__": ref["__array__"]}
        if value is None or isinstance(value, (bool, str)):
            return value
        if isinstance(value, (int, float)):
            return value
        if isinstance(value, Mapping):
            items = []
            for k, v in value.items():
                if isinstance(k, (bool, np.bool_)) or not isinstance(k, (str, int, np.integer)):
                    raise TypeError(f"{path}: dict keys must be str or int to be stored, got {k!r}")
                k = int(k) if isinstance(k, (int, np.integer)) else k
                items.append([k, self.encode(v, f"{path}/{k}")])
            return {"__dict__": items}
        if isinstance(value, tuple):
            return {"__tuple__": [self.encode(v, f"{path}/{i}") for i, v in enumerate(value)]}
        if isinstance(value, list):
            return [self.encode(v, f"{path}/{i}") for i, v in enumerate(value)]
        raise TypeError(f"{path}: cannot store a value of type {type(value).__name__} "
                        "(expected arrays, numbers, bools, strings, None, tuples, lists or dicts)")


def _decode(node: Any, arrays: Mapping[str, np.ndarray]) -> Any:
    if isinstance(node, list):
        return [_decode(v, arrays) for v in node]
    if isinstance(node, dict):
        if "__array__" in node:
            return arrays[node["__array__"]]
        if "__scalar__" in node:
            return arrays[node["__scalar__"]][()]
        if "__tuple__" in node:
            return tuple(_decode(v, arrays) for v in node["__tuple__"])
        if "__dict__" in node:
            return {k: _decode(v, arrays) for k, v in node["__dict__"]}
        raise ValueError(f"unknown manifest node {sorted(node)}")
    return node


def _refs(node: Any, out: List[str]) -> List[str]:
    """Every array key a manifest node refers to."""
    if isinstance(node, list):
        for v in node:
            _refs(v, out)
    elif isinstance(node, dict):
        for tag in ("__array__", "__scalar__"):
            if tag in node:
                out.append(node[tag])
        for tag in ("__tuple__", "__dict__"):
            if tag in node:
                for v in node[tag]:
                    _refs(v[1] if tag == "__dict__" else v, out)
    return out


# -- writing ------------------------------------------------------------------------------
def _write_npz(f: Any, arrays: Dict[str, np.ndarray]) -> None:
    """Write the archive to an open binary file (a seam the tests use to simulate a crash)."""
    # The keys ("model/...", "optimizer/...", "extra/...", the manifest's) never clash with
    # savez's own keyword allow_pickle, which numpy's stubs cannot know.
    np.savez(f, **arrays)  # type: ignore[arg-type]


def _fsync_dir(folder: str) -> None:
    # Make the rename itself durable; not every platform can open a directory.
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def check_output_path(path: Any) -> str:
    """`path` as a str, checked for writing a checkpoint: not a folder, in a folder that exists
    (it is not created)."""
    try:
        text = os.fspath(path)
    except TypeError:
        text = None
    if not isinstance(text, str):
        raise TypeError(f"path: expected a str or os.PathLike, got {type(path).__name__}")
    path = text
    if os.path.isdir(path):
        raise IsADirectoryError(f"path: {path!r} is a folder; expected a file name, e.g. "
                                f"{os.path.join(path, 'checkpoint.npz')!r}")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"path: the folder {folder!r} of {path!r} does not exist")
    return path


def _atomic_write(path: str, arrays: Dict[str, np.ndarray]) -> None:
    check_output_path(path)
    folder = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(folder, f".{os.path.basename(path)}.{secrets.token_hex(6)}.tmp")
    # os.open with 0o666 lets the umask decide the final permissions, as a plain open() would.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            _write_npz(f, arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_dir(folder)


def save(path: PathLike, model: Any, optimizer: Any = None, *, epoch: Optional[int] = None,
         **extra: Any) -> None:
    """Write a checkpoint to `path` (exactly that name: no ".npz" is appended).

    model: a Module (its state_dict(): parameters and buffers) or None; optimizer: an
    Optimizer (its state_dict(): buffers, step counts, hyper-parameters) or None; epoch: an
    int or None; extra: objects with a `state_dict()` (preprocessors), numpy random Generators
    (their state, e.g. a DataLoader's `rng`, so a resumed run shuffles as the uninterrupted one)
    or plain values (arrays, numbers, strings, lists/tuples/dicts of those). The file is written to a temporary file in
    the same folder, flushed to disk and renamed over `path`, so a crash mid-write leaves any
    previous checkpoint at `path` intact.
    """
    path = os.fspath(path)
    if not isinstance(path, str):
        raise TypeError(f"path: expected a str or os.PathLike, got {type(path).__name__}")
    if epoch is not None:
        if isinstance(epoch, (bool, np.bool_)) or not isinstance(epoch, (int, np.integer)):
            raise TypeError(f"epoch: expected an int or None, got {type(epoch).__name__} {epoch!r}")
        epoch = int(epoch)
    enc = _Encoder()
    manifest: Dict[str, Any] = {"format": FORMAT, "version": VERSION, "epoch": epoch,
                                "model": None, "optimizer": None, "extra": {}}
    if model is not None:
        if not callable(getattr(model, "state_dict", None)):
            raise TypeError(f"model: expected a Module with state_dict(), got {type(model).__name__}")
        sd = model.state_dict()
        manifest["model"] = {"__dict__": [[k, enc.array(v, f"model/{k}")] for k, v in sd.items()]}
    if optimizer is not None:
        if not callable(getattr(optimizer, "state_dict", None)):
            raise TypeError(f"optimizer: expected an Optimizer with state_dict(), got {type(optimizer).__name__}")
        manifest["optimizer"] = enc.encode(optimizer.state_dict(), "optimizer")
    for name, obj in extra.items():
        if isinstance(obj, np.random.Generator):
            # its bit generator's state (a dict of ints, 128-bit ones too: JSON keeps them exact)
            manifest["extra"][name] = {"kind": "rng", "value": enc.encode(obj.bit_generator.state, f"extra/{name}")}
        elif callable(getattr(obj, "state_dict", None)):
            manifest["extra"][name] = {"kind": "state_dict", "type": type(obj).__name__,
                                       "value": enc.encode(obj.state_dict(), f"extra/{name}")}
        else:
            manifest["extra"][name] = {"kind": "value", "value": enc.encode(obj, f"extra/{name}")}
    try:
        text = json.dumps(manifest)
    except (TypeError, ValueError) as e:
        raise TypeError(f"save: a value cannot be stored in the manifest: {e}") from None
    arrays = {_MANIFEST: np.array(text)}
    arrays.update(enc.arrays)
    _atomic_write(path, arrays)


# -- reading ------------------------------------------------------------------------------
def _read(path: str) -> Tuple[Dict[str, Any], Dict[str, np.ndarray]]:
    """Manifest and every referenced array, read eagerly (so corruption shows up here)."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"path: no checkpoint at {path!r}")
    if os.path.isdir(path):
        raise CheckpointError(f"{path}: is a folder, not a checkpoint file")
    try:
        z = np.load(path, allow_pickle=False)
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as e:
        raise CheckpointError(f"{path}: not a readable .npz checkpoint (truncated, corrupt or "
                              f"another format): {type(e).__name__}: {e}") from None
    if not isinstance(z, np.lib.npyio.NpzFile):
        raise CheckpointError(f"{path}: a single .npy array, not a fastnn checkpoint (.npz)")
    with z:
        files = set(z.files)
        if _MANIFEST not in files:
            shown = sorted(files)[:8]
            raise CheckpointError(f"{path}: not a fastnn checkpoint (no {_MANIFEST!r} marker; the "
                                  f"archive holds {shown}{' ...' if len(files) > 8 else ''})")
        try:
            raw = z[_MANIFEST]
            manifest = json.loads(str(raw[()]))
        except Exception as e:
            raise CheckpointError(f"{path}: the checkpoint manifest is unreadable "
                                  f"(truncated or corrupt): {type(e).__name__}: {e}") from None
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise CheckpointError(f"{path}: not a fastnn checkpoint (format marker "
                                  f"{manifest.get('format') if isinstance(manifest, dict) else manifest!r})")
        version = manifest.get("version")
        if not isinstance(version, int) or version < 1 or version > VERSION:
            raise CheckpointError(f"{path}: checkpoint format version {version!r}; this fastnn reads "
                                  f"versions 1..{VERSION} (upgrade fastnn?)")
        try:
            extra = manifest.get("extra") or {}
            wanted = _refs([manifest.get("model"), manifest.get("optimizer"),
                            [e.get("value") for e in extra.values()]], [])
            if not all(isinstance(k, str) for k in wanted):
                raise TypeError("array references must be strings")
        except (AttributeError, TypeError, IndexError) as e:
            raise CheckpointError(f"{path}: the checkpoint manifest is malformed: {e}") from None
        missing = [k for k in wanted if k not in files]
        if missing:
            raise CheckpointError(f"{path}: the checkpoint is incomplete: missing arrays {missing[:8]}")
        arrays: Dict[str, np.ndarray] = {}
        for k in wanted:
            try:
                arrays[k] = z[k]
            except Exception as e:
                raise CheckpointError(f"{path}: array {k!r} is unreadable (truncated or corrupt "
                                      f"file): {type(e).__name__}: {e}") from None
    return manifest, arrays


def _snapshot(obj: Any) -> Any:
    try:
        return obj.state_dict()
    except Exception:
        return None


def load(path: PathLike, model: Any = None, optimizer: Any = None, **extra: Any) -> Dict[str, Any]:
    """Read a checkpoint written by `save` and restore it into the objects given.

    model: load_state_dict(strict=True); optimizer: load_state_dict; each extra (by the name
    it was saved under): its load_state_dict, or for a numpy Generator its bit generator's
    state. Returns a dict with "epoch" (int or None), the model's / optimizer's state dicts
    under "model" / "optimizer" when those objects were not given, and every saved extra that
    was not given (state dicts as dicts, plain values as saved, Generators as new Generators in
    the saved state). Raises FileNotFoundError for a missing file, CheckpointError (a
    ValueError) for a truncated, corrupt or foreign file and CheckpointMismatchError (a
    ValueError and a KeyError) when it does not fit the given objects; on any error the given
    objects are left as they were.
    """
    path = os.fspath(path)
    manifest, arrays = _read(path)
    state = {"model": manifest.get("model"), "optimizer": manifest.get("optimizer")}
    saved_extra = manifest.get("extra", {}) or {}

    if model is not None and state["model"] is None:
        raise CheckpointMismatchError(f"{path}: holds no model state, but a model was given")
    if optimizer is not None and state["optimizer"] is None:
        raise CheckpointMismatchError(f"{path}: holds no optimizer state, but an optimizer was given")
    for name, obj in extra.items():
        if name not in saved_extra:
            raise CheckpointMismatchError(f"{path}: holds no extra named {name!r} "
                                          f"(it holds {sorted(saved_extra)})")
        kind = saved_extra[name].get("kind")
        if isinstance(obj, np.random.Generator):
            saved_bg = (saved_extra[name].get("value") or {}).get("__dict__", [])
            saved_bg = dict((k, v) for k, v in saved_bg).get("bit_generator")
            if kind != "rng" or saved_bg != type(obj.bit_generator).__name__:
                raise CheckpointMismatchError(f"{path}: extra {name!r} is not the state of a "
                                              f"{type(obj.bit_generator).__name__} random generator")
            continue
        if not callable(getattr(obj, "load_state_dict", None)):
            raise TypeError(f"{name}: expected an object with load_state_dict() to restore into, "
                            f"got {type(obj).__name__}")
        if kind != "state_dict":
            raise CheckpointMismatchError(f"{path}: extra {name!r} was saved as a plain value, not as "
                                          "an object's state; load it without passing an object")

    # Restore in order; if a later step fails, put back what was already restored.
    done: List[Tuple[Any, Any]] = []
    try:
        if model is not None:
            sd = _decode(state["model"], arrays)
            snap = _snapshot(model)
            try:
                model.load_state_dict(sd, strict=True)
            except (KeyError, ValueError, TypeError) as e:
                raise CheckpointMismatchError(f"{path}: the saved model state does not fit the given "
                                              f"model: {e.args[0] if e.args else e}") from None
            done.append((model, snap))
        if optimizer is not None:
            sd = _decode(state["optimizer"], arrays)
            snap = _snapshot(optimizer)
            try:
                optimizer.load_state_dict(sd)
            except (KeyError, ValueError, TypeError) as e:
                raise CheckpointMismatchError(f"{path}: the saved optimizer state does not fit the given "
                                              f"optimizer: {e.args[0] if e.args else e}") from None
            done.append((optimizer, snap))
        for name, obj in extra.items():
            sd = _decode(saved_extra[name]["value"], arrays)
            if isinstance(obj, np.random.Generator):
                snap_state = obj.bit_generator.state
                obj.bit_generator.state = sd
                done.append((_RngRestore(obj), snap_state))
                continue
            snap = _snapshot(obj)
            try:
                obj.load_state_dict(sd)
            except (KeyError, ValueError, TypeError) as e:
                raise CheckpointMismatchError(f"{path}: the saved state of {name!r} does not fit the "
                                              f"given object: {e.args[0] if e.args else e}") from None
            done.append((obj, snap))
    except BaseException:
        for obj, snap in reversed(done):
            if snap is not None:
                try:
                    obj.load_state_dict(snap)
                except Exception:
                    pass
        raise

    out: Dict[str, Any] = {"epoch": manifest.get("epoch")}
    if model is None and state["model"] is not None:
        out["model"] = _decode(state["model"], arrays)
    if optimizer is None and state["optimizer"] is not None:
        out["optimizer"] = _decode(state["optimizer"], arrays)
    for name, entry in saved_extra.items():
        if name not in extra:
            value = _decode(entry["value"], arrays)
            out[name] = _make_rng(path, name, value) if entry.get("kind") == "rng" else value
    return out


class _RngRestore:
    """Gives a Generator the load_state_dict used to roll back a failed load."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        self.rng.bit_generator.state = state


def _make_rng(path: str, name: str, state: Dict[str, Any]) -> np.random.Generator:
    """A new Generator in the saved state (for a saved Generator that was not passed to load)."""
    bg = getattr(np.random, str(state.get("bit_generator")), None)
    if not (isinstance(bg, type) and issubclass(bg, np.random.BitGenerator)):
        raise CheckpointError(f"{path}: extra {name!r}: unknown bit generator {state.get('bit_generator')!r}")
    gen = np.random.Generator(bg())
    gen.bit_generator.state = state
    return gen
