"""Promote a stage's release folder to cards/: copy it over the bundled release of the same name, re-pin the
sha256 in the plugin that names the old weights, and re-render the card (`zoo card`, which recomputes the
canonical-subset claims for the new weights).

    python stages/tools/promote.py stages/gated-pixelcnn.binarized-mnist/release

Files of the old card that the release lacks (a growth figure, an FID curve) are kept; a test fixture that holds the
old weights' logits is named. Run from the repository root.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
from pathlib import Path

from zoo.util import sha256_file


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("release", type=Path)
    ap.add_argument("--card", default=None, help="cards/ folder name (default ARCHITECTURE.TAG from config.json)")
    args = ap.parse_args()
    config = json.loads((args.release / "config.json").read_text())
    card = Path("cards") / (args.card or f"{config['architecture']}.{config['tag']}")
    old = json.loads((card / "config.json").read_text())["weights"]["sha256"]
    new = sha256_file(args.release / "model.safetensors")
    pinned = [p for p in Path("plugins").glob("*/plugin.py") if old in p.read_text()]
    if len(pinned) != 1:
        raise SystemExit(f"expected one plugin pinning {old[:12]}, found {[str(p) for p in pinned]}")
    for f in args.release.iterdir():
        if f.is_file():
            shutil.copy2(f, card / f.name)
    pinned[0].write_text(pinned[0].read_text().replace(old, new))
    subprocess.run(["zoo", "card", str(card)], check=True)
    print(f"{card}: {old[:12]} -> {new[:12]} (pinned in {pinned[0]})")
    for fixture in sorted(Path("tests/fixtures").glob("*.safetensors")):  # frozen logits of the old weights
        if old.encode() in fixture.read_bytes():
            print(f"{fixture} holds the old weights' logits: regenerate it (its make_*.py says how)")


if __name__ == "__main__":
    main()
