"""Check what ``sam build`` made, as ``make build`` and CI run it: precompiled, and nothing unused.

    python3.13 local/gateway_local/build_check.py .aws-sam/build --requirements shared/requirements.txt

Run it with the Lambda runtime's Python (the ``.pyc`` it expects are that interpreter's). For every artifact
(the layer, each function) it prints its size and how many ``.py`` and ``.pyc`` it holds, and fails when:

* a ``.py`` has no ``__pycache__/<name>.<cache tag>.pyc`` of this Python compiled with
  ``--invalidation-mode unchecked-hash`` (the only kind Python uses without checking, or rewriting, the
  source: in Lambda's read-only ``/opt`` a timestamp ``.pyc`` is judged against mtimes the zip does not keep);
* the layer holds a distribution that nothing needs: every requirement must be imported by the code (the
  layer's ``order_core`` and the functions), every other distribution must be required by one of those;
* the layer holds what the runtime provides (boto3, botocore, s3transfer): two copies, and the layer's wins.

Standard library only (plus ``packaging``, which pip vendors), so it runs without the project's venv.
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from importlib.metadata import Distribution, distributions
from pathlib import Path

try:
    from packaging.markers import Marker
    from packaging.requirements import Requirement
except ImportError:  # pragma: no cover - the Lambda Python without packaging: pip's copy
    from pip._vendor.packaging.markers import Marker  # type: ignore[assignment]
    from pip._vendor.packaging.requirements import Requirement  # type: ignore[assignment]

# What the Lambda Python runtime provides; a layer copy would shadow it (and weighs ~25 MB).
RUNTIME_PROVIDED = frozenset({"boto3", "botocore", "s3transfer"})
LAYER = "SharedLayer"
UNCHECKED_HASH = 0b01  # PEP 552 flags: hash-based, check_source off


@dataclass
class Artifact:
    name: str
    path: Path
    size_bytes: int = 0
    py: int = 0
    pyc: int = 0
    missing_pyc: list[Path] = field(default_factory=list)


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def scan_artifact(name: str, path: Path) -> Artifact:
    """Size, ``.py`` and ``.pyc`` counts, and the ``.py`` whose ``.pyc`` is missing or not unchecked-hash."""
    artifact = Artifact(name, path)
    tag = sys.implementation.cache_tag
    for file in path.rglob("*"):
        if not file.is_file():
            continue
        artifact.size_bytes += file.stat().st_size
        if file.suffix == ".pyc":
            artifact.pyc += 1
        elif file.suffix == ".py":
            artifact.py += 1
            compiled = file.parent / "__pycache__" / f"{file.stem}.{tag}.pyc"
            if not _is_unchecked_hash_pyc(compiled):
                artifact.missing_pyc.append(file.relative_to(path))
    return artifact


def _is_unchecked_hash_pyc(path: Path) -> bool:
    try:
        header = path.read_bytes()[:8]
    except OSError:
        return False
    return (
        header[:4] == importlib.util.MAGIC_NUMBER and int.from_bytes(header[4:8], "little") == UNCHECKED_HASH
    )


def imported_modules(files: Iterable[Path]) -> set[str]:
    """Every module name the files import, anywhere in them (lazy imports inside functions included)."""
    names: set[str] = set()
    for file in files:
        tree = ast.parse(file.read_text(encoding="utf-8"), filename=str(file))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module)
                names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def modules_of(distribution: Distribution) -> set[str]:
    """The importable module names a distribution installs (from its RECORD)."""
    modules = set()
    for file in distribution.files or []:
        parts = file.parts
        if file.suffix != ".py" or any(part.endswith((".dist-info", "__pycache__")) for part in parts):
            continue
        dotted = [*parts[:-1]] if parts[-1] == "__init__.py" else [*parts[:-1], file.stem]
        modules.add(".".join(dotted))
    return modules


def requirement_closure(
    roots: list[Requirement], installed: dict[str, Distribution]
) -> tuple[set[str], set[str]]:
    """Distributions the roots need (extras and environment markers applied), and those not installed."""
    needed: set[str] = set()
    absent: set[str] = set()
    queue = [(root, frozenset(root.extras)) for root in roots]
    while queue:
        requirement, extras = queue.pop()
        name = normalize(requirement.name)
        if name in needed or name in absent:
            continue
        if name not in installed:
            absent.add(name)
            continue
        needed.add(name)
        for line in installed[name].requires or []:
            child = Requirement(line)
            if child.marker is None or _marker_applies(child.marker, extras):
                queue.append((child, frozenset(child.extras)))
    return needed, absent


def _marker_applies(marker: Marker, extras: frozenset[str]) -> bool:
    return any(marker.evaluate({"extra": extra}) for extra in (extras or {""}))


def read_requirements(path: Path) -> list[Requirement]:
    lines = (line.split("#", 1)[0].strip() for line in path.read_text(encoding="utf-8").splitlines())
    return [Requirement(line) for line in lines if line]


def check_layer(site: Path, roots: list[Requirement], code_files: list[Path]) -> list[str]:
    """Problems with the layer's distributions: unused ones, runtime-provided ones, missing ones."""
    installed = {normalize(dist.metadata["Name"]): dist for dist in distributions(path=[str(site)])}
    problems = [
        f"{name} is in the layer but the Lambda runtime provides it"
        for name in sorted(RUNTIME_PROVIDED & installed.keys())
    ]
    needed, absent = requirement_closure(roots, installed)
    problems += [
        f"{name} is required but not in the layer"
        for name in sorted(absent - RUNTIME_PROVIDED)
        if name in {normalize(root.name) for root in roots}
    ]
    problems += [
        f"{name} is in the layer but no requirement needs it"
        for name in sorted(installed.keys() - needed - RUNTIME_PROVIDED)
    ]
    imported = imported_modules(code_files)
    for root in roots:
        dist = installed.get(normalize(root.name))
        if dist is not None and not modules_of(dist) & imported:
            problems.append(f"{root.name} is a requirement of the layer but the code never imports it")
    return problems


def artifacts(build_dir: Path) -> Iterator[tuple[str, Path]]:
    for path in sorted(build_dir.iterdir()):
        if path.is_dir():
            yield path.name, path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("build_dir", type=Path)
    parser.add_argument("--requirements", type=Path, required=True)
    args = parser.parse_args(argv)

    found = [scan_artifact(name, path) for name, path in artifacts(args.build_dir)]
    if not any(artifact.name == LAYER for artifact in found):
        print(f"no {LAYER} in {args.build_dir}: run sam build first", file=sys.stderr)
        return 1
    print(f"{'artifact':<20} {'size':>9} {'.py':>6} {'.pyc':>6}   (.pyc for Python {sys.version.split()[0]})")
    for artifact in found:
        mib = artifact.size_bytes / 2**20
        print(f"{artifact.name:<20} {mib:>7.1f} M {artifact.py:>6} {artifact.pyc:>6}")
    problems = [
        f"{artifact.name}: {missing} has no unchecked-hash .pyc for {sys.implementation.cache_tag}"
        for artifact in found
        for missing in artifact.missing_pyc
    ]
    site = args.build_dir / LAYER / "python"
    code = [*(site / "order_core").rglob("*.py")]
    code += [file for artifact in found if artifact.name != LAYER for file in artifact.path.rglob("*.py")]
    problems += check_layer(site, read_requirements(args.requirements), code)
    for problem in problems:
        print(f"FAIL {problem}", file=sys.stderr)
    if problems:
        return 1
    print("every module precompiled; every distribution in the layer is used")
    return 0


if __name__ == "__main__":
    sys.exit(main())
