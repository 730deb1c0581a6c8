"""What a loader checks before it hands a file to a parser: every file the file names (an OBJ's MTL, the MTL's
textures, a glTF's buffers and images) stays inside the allowed folders, and nothing decodes to more than a
limit (an image's pixels, an archive's arrays), refused with the figure before anything is allocated.

The parsers (PyTorch3D, trimesh, numpy, PIL) then open only what was checked here.
"""
from __future__ import annotations

import json
import struct
import zipfile
from pathlib import Path
from urllib.parse import unquote

import numpy as np
from PIL import Image

from nodegraph.memory import fmt_bytes

MAX_IMAGE_PIXELS = 8192 * 8192  # an 8K texture; a 79 KB PNG can claim 60000 x 60000 (2.5 GB and more decoded)
MAX_ARCHIVE_BYTES = 2 << 30  # decoded arrays of one .npz (a full SMPL model is ~250 MB)
MTL_MAPS = ("map_Kd", "map_Ka", "map_Ks", "map_Ns", "map_d", "map_bump", "bump", "disp", "decal", "norm")


def check_image(ctx, field: str, path: Path, what: str) -> tuple[int, int]:
    """The image's (width, height) from its header, refused when it would decode to more than the limit."""
    try:
        with Image.open(path) as im:
            width, height = im.size
            bands = len(im.getbands())
    except Image.DecompressionBombError as exc:
        ctx.fail(field, f"{what} is too large to decode: {exc}")
    except (OSError, ValueError, SyntaxError) as exc:
        ctx.fail(field, f"cannot read {what} as an image: {exc}")
    if width * height > MAX_IMAGE_PIXELS:
        ctx.fail(field, f"{what} is {width} x {height} pixels ({width * height / 1e6:.0f} megapixels, about "
                        f"{fmt_bytes(width * height * max(bands, 3) * 4)} decoded as floats); images are "
                        f"limited to {MAX_IMAGE_PIXELS / 1e6:.0f} megapixels")
    return width, height


def check_archive(ctx, field: str, path: Path, what: str) -> None:
    """Refuse an .npz whose arrays decode to more than the limit (the zip directory says, before inflating),
    or an .npy whose header claims more."""
    try:
        if path.suffix.lower() == ".npy":
            with open(path, "rb") as f:
                version = np.lib.format.read_magic(f)
                read = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
                    np.lib.format.read_array_header_2_0
                shape, _order, dtype = read(f)
            total = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
        else:
            with zipfile.ZipFile(path) as zf:
                total = sum(info.file_size for info in zf.infolist())
    except (OSError, zipfile.BadZipFile, ValueError, TypeError) as exc:
        ctx.fail(field, f"cannot read {what} as an {path.suffix.lower()}: {exc}")
    if total > MAX_ARCHIVE_BYTES:
        ctx.fail(field, f"{what} holds {fmt_bytes(total)} of arrays once decompressed ({fmt_bytes(path.stat().st_size)}"
                        f" on disk); archives are limited to {fmt_bytes(MAX_ARCHIVE_BYTES)}")


# ------------------------------------------------------------------------------------ files named by files

def _lines(path: Path):
    with open(path, "rb") as f:
        for raw in f:
            yield raw.decode("utf-8", "replace")


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except OSError:
        return False


def obj_companions(ctx, field: str, path: Path, what: str) -> list[Path]:
    """The MTL an OBJ names and the texture maps that MTL names, each confined to the allowed folders and
    each image's size checked. Names resolve as PyTorch3D resolves them: against the OBJ's folder."""
    mtl_name = None
    for line in _lines(path):
        if line.startswith("mtllib"):
            tokens = line.split()
            if len(tokens) >= 2:
                mtl_name = line[len(tokens[0]):].strip()  # the last mtllib wins, spaces allowed
    if mtl_name is None:
        return []
    mtl = ctx.reference(path, mtl_name, field)
    found = [mtl]
    if not _is_file(mtl):
        return found
    for line in _lines(mtl):
        tokens = line.strip().split()
        if tokens and tokens[0] in MTL_MAPS:
            for name in {line.strip()[len(tokens[0]):].strip(), tokens[-1]}:  # PyTorch3D's name, and without options
                texture = ctx.reference(path, name, field)
                found.append(texture)
                if _is_file(texture) and texture.suffix.lower() not in (".mtl", ".obj"):
                    check_image(ctx, field, texture, f"{what}'s texture {name!r}")
    return found


def glb_json(path: Path) -> dict:
    """A .glb's JSON chunk (read up to 64 MiB), or {} when the file is not GLB or its first chunk is not JSON.
    The loader and the confinement check both read it here."""
    with open(path, "rb") as f:
        header = f.read(20)
        if len(header) < 20 or header[:4] != b"glTF":
            return {}
        length, kind = struct.unpack("<II", header[12:20])
        return json.loads(f.read(min(length, 64 << 20))) if kind == 0x4E4F534A else {}


def gltf_companions(ctx, field: str, path: Path, what: str) -> dict:
    """Confine the buffers and images a .gltf (or a .glb's JSON chunk) names by URI to the allowed folders;
    returns the glTF document, so that the loader need not read it again."""
    try:
        doc = glb_json(path) if path.suffix.lower() == ".glb" else json.loads(path.read_bytes()[: 256 << 20])
    except (OSError, ValueError, struct.error) as exc:
        ctx.fail(field, f"cannot read {what} as glTF: {exc}")
    for key in ("buffers", "images"):
        for item in doc.get(key) or [] if isinstance(doc, dict) else []:
            uri = item.get("uri") if isinstance(item, dict) else None
            if isinstance(uri, str) and not uri.startswith("data:"):
                for name in {uri, unquote(uri)}:
                    ctx.reference(path, name, field)
    return doc
