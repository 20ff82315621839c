"""The check `make build` runs on what `sam build` made: every module precompiled, nothing unused."""

from __future__ import annotations

import py_compile
from pathlib import Path

from gateway_local import build_check


def _dist(site: Path, name: str, version: str, files: list[str], requires: tuple[str, ...] = ()) -> None:
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    metadata = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    metadata += [f"Requires-Dist: {line}" for line in requires]
    (info / "METADATA").write_text("\n".join(metadata) + "\n")
    (info / "RECORD").write_text("".join(f"{file},,\n" for file in files))
    for file in files:
        (site / file).parent.mkdir(parents=True, exist_ok=True)
        (site / file).write_text("")


def _build(tmp_path: Path, *, extra_dist: bool = False, boto3: bool = False) -> Path:
    build = tmp_path / "build"
    site = build / "SharedLayer" / "python"
    _dist(site, "powertools", "1.0", ["powertools/__init__.py"], ("xray>=1; extra == 'tracer'",))
    _dist(site, "xray", "1.0", ["xray/__init__.py"], ("botocore>=1",))
    _dist(site, "pydantic", "2.0", ["pydantic/__init__.py"])
    if extra_dist:
        _dist(site, "python-dotenv", "1.0", ["dotenv/__init__.py"])
    if boto3:
        _dist(site, "botocore", "1.0", ["botocore/__init__.py"])
    (site / "order_core").mkdir()
    (site / "order_core" / "__init__.py").write_text("import pydantic\n")
    (build / "ApiFunction").mkdir()
    (build / "ApiFunction" / "app.py").write_text("def handler():\n    from powertools import Logger\n")
    (tmp_path / "requirements.txt").write_text("powertools[tracer]==1.*\npydantic>=2  # models\n")
    return build


def _compile_all(build: Path, mode: py_compile.PycInvalidationMode) -> None:
    for source in build.rglob("*.py"):
        py_compile.compile(str(source), invalidation_mode=mode, doraise=True)


def _check(tmp_path: Path, build: Path) -> int:
    return build_check.main([str(build), "--requirements", str(tmp_path / "requirements.txt")])


def test_build_check_precompiled_and_all_used_passes(tmp_path, capsys):
    build = _build(tmp_path)
    _compile_all(build, py_compile.PycInvalidationMode.UNCHECKED_HASH)

    assert _check(tmp_path, build) == 0
    assert "SharedLayer" in capsys.readouterr().out


def test_build_check_timestamp_pyc_fails(tmp_path, capsys):
    build = _build(tmp_path)
    _compile_all(build, py_compile.PycInvalidationMode.TIMESTAMP)  # judged against mtimes in /opt

    assert _check(tmp_path, build) == 1
    assert "order_core/__init__.py has no unchecked-hash .pyc" in capsys.readouterr().err


def test_build_check_module_without_pyc_fails(tmp_path, capsys):
    build = _build(tmp_path)
    _compile_all(build, py_compile.PycInvalidationMode.UNCHECKED_HASH)
    (build / "ApiFunction" / "extra.py").write_text("")

    assert _check(tmp_path, build) == 1
    assert "ApiFunction: extra.py has no unchecked-hash .pyc" in capsys.readouterr().err


def test_build_check_distribution_nothing_requires_fails(tmp_path, capsys):
    build = _build(tmp_path, extra_dist=True)
    _compile_all(build, py_compile.PycInvalidationMode.UNCHECKED_HASH)

    assert _check(tmp_path, build) == 1
    assert "python-dotenv is in the layer but no requirement needs it" in capsys.readouterr().err


def test_build_check_requirement_never_imported_fails(tmp_path, capsys):
    build = _build(tmp_path)
    (build / "SharedLayer" / "python" / "order_core" / "__init__.py").write_text("")
    _compile_all(build, py_compile.PycInvalidationMode.UNCHECKED_HASH)

    assert _check(tmp_path, build) == 1
    assert "pydantic is a requirement of the layer but the code never imports it" in capsys.readouterr().err


def test_build_check_runtime_provided_botocore_in_layer_fails(tmp_path, capsys):
    build = _build(tmp_path, boto3=True)
    _compile_all(build, py_compile.PycInvalidationMode.UNCHECKED_HASH)

    assert _check(tmp_path, build) == 1
    assert "botocore is in the layer but the Lambda runtime provides it" in capsys.readouterr().err
