"""Rebuild app/directory/data/communes.csv.gz, the referential of French communes, from the npm
package @etalab/decoupage-administratif (INSEE's Code officiel géographique, La Poste's postal
codes; data under the Licence Ouverte 2.0, code MIT).

    python scripts/update_communes.py                 # npm pack the latest version
    python scripts/update_communes.py --version 6.0.0
    python scripts/update_communes.py --tarball etalab-decoupage-administratif-6.0.0.tgz

Keeps the communes in force (`commune-actuelle`) and the municipal arrondissements of Paris,
Lyon and Marseille; a postal code of an arrondissement names the arrondissement, not the city
(so 75001 is Paris 1er, not Paris as well). Then load it: `creneau communes load`.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

PACKAGE = "@etalab/decoupage-administratif"
DATA = Path(__file__).resolve().parent.parent / "app" / "directory" / "data"
KEPT = ("commune-actuelle", "arrondissement-municipal")
COLUMNS = ("insee", "name", "departement", "postal_codes", "population")


def npm_pack(version: str | None, into: Path) -> Path:
    spec = f"{PACKAGE}@{version}" if version else PACKAGE
    out = subprocess.run(  # noqa: S603 -- a fixed command, the version as one argument
        ["npm", "pack", "--silent", spec],  # noqa: S607
        cwd=into,
        check=True,
        capture_output=True,
        text=True,
    )
    return into / out.stdout.strip().splitlines()[-1]


def read_package(tarball: Path) -> tuple[str, list[dict[str, Any]]]:
    with tarfile.open(tarball) as tar:
        meta = json.load(tar.extractfile("package/package.json"))  # type: ignore[arg-type]
        communes = json.load(tar.extractfile("package/data/communes.json"))  # type: ignore[arg-type]
    return str(meta["version"]), communes


def rows(communes: list[dict[str, Any]]) -> list[tuple[str, ...]]:
    kept = [c for c in communes if c["type"] in KEPT]
    with_arrondissements = {c["commune"] for c in kept if c["type"] == "arrondissement-municipal"}
    out = []
    for c in sorted(kept, key=lambda c: c["code"]):
        codes = [] if c["code"] in with_arrondissements else c.get("codesPostaux") or []
        population = c.get("population")
        out.append(
            (
                c["code"],
                c["nom"],
                c["departement"],
                " ".join(sorted(set(codes))),
                "" if population is None else str(population),
            )
        )
    return out


def write(rows: list[tuple[str, ...]], target: Path) -> int:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows(rows)
    # mtime=0 and no file name: the same data gives the same bytes (a quiet diff).
    with (
        target.open("wb") as raw,
        gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as gz,
    ):
        gz.write(text.getvalue().encode())
    return target.stat().st_size


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--version", help="the package version (default: the latest)")
    parser.add_argument("--tarball", type=Path, help="an already packed tarball")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tarball = args.tarball or npm_pack(args.version, Path(tmp))
        version, communes = read_package(tarball)
    built = rows(communes)
    size = write(built, DATA / "communes.csv.gz")
    (DATA / "VERSION").write_text(f"{PACKAGE}@{version}\n")
    print(f"{PACKAGE}@{version}: {len(built)} communes, {size} bytes in {DATA}/communes.csv.gz")
    print("Update the version in app/directory/data/README.md, then: creneau communes load")
    return 0


if __name__ == "__main__":
    sys.exit(main())
