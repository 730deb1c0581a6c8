"""Where files may come from: a graph's own folder and the data folders the user allowed, nothing else.

Loaders, the editor's file picker and the graphs library all resolve paths here, so `..`, absolute paths
and symlinks that lead out of an allowed folder are refused in one place, with one message.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def _resource(installed: str, checkout: str) -> Path:
    """A folder that ships inside the installed package (``nodegraph/<installed>``, see pyproject.toml's
    package-dir mapping) and sits beside the package in a checkout (``<checkout>/``)."""
    inside = PACKAGE_DIR / installed
    return inside if inside.is_dir() else PACKAGE_DIR.parent / checkout


FRONTEND_DIR = _resource("frontend", "frontend")  # the editor's page code and the vendored Vue Flow
GRAPHS_DIR = _resource("examples", "graphs")  # the example graphs
# The meshes and images the examples use. Any graph may read them, wherever it is saved, by the same relative
# name the examples use ("assets/cow_mesh/cow.obj"): a copy of an example saved elsewhere keeps working.
BUNDLED_ASSETS = GRAPHS_DIR / "assets"


def user_data_dir() -> Path:
    """The user's nodegraph folder: ``$XDG_DATA_HOME/nodegraph`` (``~/.local/share/nodegraph``)."""
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "nodegraph"


def safe_name(name: str) -> str:
    """A graph name as one folder or file name: letters, digits, '-' and '_' (others become '_')."""
    cleaned = "".join(c if c.isalnum() or c in "-_" else "_" for c in name).strip("_")
    return cleaned or "untitled"


def default_out_dir(graph_name: str) -> Path:
    """Where a run writes when no output folder is given: one folder per graph under the user's data folder,
    ``~/.local/share/nodegraph/out/<graph name>`` (never the folder a command happened to start in)."""
    return user_data_dir() / "out" / safe_name(graph_name)


def data_dirs() -> list[Path]:
    """Extra allowed folders from ``NODEGRAPH_DATA_DIRS`` (os.pathsep-separated)."""
    raw = os.environ.get("NODEGRAPH_DATA_DIRS", "")
    return [Path(p).resolve() for p in raw.split(os.pathsep) if p]


def allowed_roots(base_dir: Path) -> list[Path]:
    """The graph's own folder first (relative names resolve there), the user's data folders, the bundled assets."""
    return [Path(base_dir).resolve(), *data_dirs(), BUNDLED_ASSETS.resolve()]


def is_inside(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
        return True
    except ValueError:
        return False


def _real(candidate: Path, value: str) -> Path:
    """``candidate``'s real path; a symlink loop or a name the file system refuses (over 255 bytes, a NUL) is a
    ValueError naming ``value`` as given, never a RuntimeError/OSError that shows where it led."""
    if "\x00" in str(candidate):
        raise ValueError(f"{value!r} holds a NUL character")
    try:
        return candidate.resolve()
    except RuntimeError:  # Python 3.11: a symlink loop
        raise ValueError(f"{value!r} is a symlink loop") from None
    except OSError as exc:
        raise ValueError(f"{value!r} cannot be used as a file name: {exc.strerror or type(exc).__name__}") from None


def _is_file(path: Path, value: str) -> bool:
    try:
        return path.is_file()
    except OSError as exc:  # ENAMETOOLONG and friends, which is_file does not swallow
        raise ValueError(f"{value!r} cannot be used as a file name: {exc.strerror or type(exc).__name__}") from None


def resolve_inside(value: str, roots: list[Path]) -> Path:
    """Resolve ``value`` against the first root; refuse anything whose real path leaves every root."""
    if not value:
        raise ValueError("no path given")
    raw = Path(value)
    candidate = raw if raw.is_absolute() else roots[0] / raw
    real = _real(candidate, value)
    if not any(is_inside(real, root) for root in roots):
        shown = ", ".join(str(r) for r in roots)
        raise ValueError(f"{value!r} is outside the allowed folders ({shown}); "
                         "add a folder to NODEGRAPH_DATA_DIRS to allow it")
    return real


def resolve_asset(base_dir: Path, value: str, must_exist: bool = True) -> Path:
    """The real path of an asset named in a graph, checked to stay inside the allowed folders."""
    path = resolve_inside(value, allowed_roots(base_dir))
    if not _is_file(path, value) and not Path(value).is_absolute():
        bundled = _real(GRAPHS_DIR / value, value)
        if is_inside(bundled, BUNDLED_ASSETS.resolve()) and _is_file(bundled, value):
            return bundled
    if must_exist and not _is_file(path, value):
        raise ValueError(f"file {value!r} not found (looked for {path})")
    return path


def resolve_reference(base_dir: Path, owner: Path, name: str) -> Path:
    """A file named inside another file (an OBJ's ``mtllib``, an MTL's ``map_Kd``, a glTF buffer or image),
    resolved as the loaders do (against ``owner``'s folder; an absolute name stays absolute) and confined to
    the same allowed folders as a file param. The message names the reference as written and nothing about
    where it leads or whether it exists."""
    if not name:
        raise ValueError(f"{owner.name} names an empty file")
    real = _real(owner.parent / name, name)
    if not any(is_inside(real, root) for root in allowed_roots(base_dir)):
        raise ValueError(f"{owner.name} refers to {name!r}, which is outside the allowed folders; "
                         "add a folder to NODEGRAPH_DATA_DIRS to allow it")
    return real


def output_path(out_dir: Path, filename: str) -> Path:
    """A path for a file a node writes: always inside the run's output folder."""
    path = resolve_inside(filename, [Path(out_dir).resolve()])
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def write_atomic(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` so that a crash never leaves half a file and nothing planted beside it is
    followed: the temporary file is created exclusively under a random name in the same folder (a symlink
    someone left at ``<name>.tmp`` is never opened), then renamed over ``path``."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
