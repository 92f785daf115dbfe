"""The layers stay visible and checked (issue 12, point 3): import-linter's contracts in
pyproject.toml (run by `make lint`) fail on a core→services import, every module is in a layer, no
module imports another module's private names, and no module is over 400 lines."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("msgd", "services")
MAX_LINES = 400
# Package __init__ modules that only hold others (no code, no imports): in no layer.
CONTAINERS = {"msgd", "services", "services.senders"}
# Private by spelling only: Django's documented Model._meta API.
PUBLIC_UNDERSCORE = {"_meta"}


def modules() -> Iterator[tuple[str, Path]]:
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            yield name, path


def contracts() -> list[dict[str, object]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return list(config["tool"]["importlinter"]["contracts"])


def layer_modules() -> list[list[str]]:
    (layers,) = [c["layers"] for c in contracts() if c["type"] == "layers"]
    assert isinstance(layers, list)
    return [[m.strip() for m in layer.replace("|", ":").split(":")] for layer in layers]


def within(name: str, module: str) -> bool:
    return name == module or name.startswith(module + ".")


def lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    """lint-imports with the project's contracts on the packages under ``tree``."""
    env = {"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin", "HOME": str(tree)}
    return subprocess.run([str(Path(sys.executable).with_name("lint-imports")), str(tree / "pyproject.toml"),
                           "--no-cache"],
                          cwd=tree, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tree = tmp_path_factory.mktemp("layers")
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tree / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tree / "pyproject.toml")
    return tree


def test_the_contracts_hold_for_the_code_as_it_is(copy: Path) -> None:
    result = lint_imports(copy)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 2 kept, 0 broken." in result.stdout


@pytest.mark.parametrize(("module", "line"), [
    ("msgd/store/cache.py", "from services.senders.base import Outbound  # a core→services import"),
    ("msgd/metrics.py", "    from services.senders.registry import live_channels  # hidden in a function"),
])
def test_a_core_to_services_import_breaks_lint(copy: Path, module: str, line: str) -> None:
    target = copy / module
    original = target.read_text(encoding="utf-8")
    body = f"\n\ndef _probe() -> None:\n{line}\n" if line.startswith("    ") else f"\n{line}\n"
    target.write_text(original + body, encoding="utf-8")
    try:
        result = lint_imports(copy)
    finally:
        target.write_text(original, encoding="utf-8")
    assert result.returncode == 1, result.stdout
    name = module.removesuffix(".py").replace("/", ".")
    assert "The core imports nothing from services/ BROKEN" in result.stdout
    assert f"{name} -> services.senders." in result.stdout  # the import is named with its line


def test_a_channel_importing_another_channel_breaks_lint(copy: Path) -> None:
    target = copy / "services" / "senders" / "telegram" / "settings.py"
    original = target.read_text(encoding="utf-8")
    target.write_text(original + "\nfrom services.senders.sms.settings import SmsSettings  # noqa\n", encoding="utf-8")
    try:
        result = lint_imports(copy)
    finally:
        target.write_text(original, encoding="utf-8")
    assert result.returncode == 1
    assert "services.senders.telegram is not allowed to import services.senders.sms" in result.stdout


def test_every_module_is_in_a_layer() -> None:
    listed = [m for layer in layer_modules() for m in layer]
    missing = [name for name, _ in modules() if name not in CONTAINERS and not any(within(name, m) for m in listed)]
    assert missing == [], f"add these to a layer in pyproject.toml [tool.importlinter]: {missing}"
    for name in CONTAINERS:  # a container holds modules; code in it would escape the contracts
        path = ROOT / name.replace(".", "/") / "__init__.py"
        tree = ast.parse(path.read_text(encoding="utf-8"))
        assert all(isinstance(node, ast.Expr | ast.Assign) for node in tree.body), f"{path} must hold no code"


def test_the_core_layer_is_the_forbidden_contracts_source() -> None:
    (forbidden,) = [c for c in contracts() if c["type"] == "forbidden"]
    assert sorted(forbidden["source_modules"]) == sorted(layer_modules()[-1])  # type: ignore[arg-type]
    assert forbidden["forbidden_modules"] == ["services"]


def private_imports(path: Path, base: Path = ROOT) -> list[str]:
    """``from x import _name`` and ``module._name`` of msgd's own modules (dunders allowed)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    ours: set[str] = set()
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in PACKAGES:
            for alias in node.names:
                if alias.name.startswith("_") and not alias.name.startswith("__"):
                    found.append(f"{path.relative_to(base)}:{node.lineno}: from {node.module} import {alias.name}")
                ours.add(alias.asname or alias.name)
        elif isinstance(node, ast.Import):
            ours.update((a.asname or a.name).split(".")[0] for a in node.names if a.name.split(".")[0] in PACKAGES)
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in ours
                and node.attr.startswith("_") and not node.attr.startswith("__")
                and node.attr not in PUBLIC_UNDERSCORE):
            found.append(f"{path.relative_to(base)}:{node.lineno}: {node.value.id}.{node.attr}")
    return found


def test_no_module_imports_another_modules_private_names() -> None:
    found = [hit for _, path in modules() for hit in private_imports(path)]
    assert found == [], "make these public (or keep them in their module):\n" + "\n".join(found)


def test_the_private_name_check_finds_one(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("from services.senders.email.sender import _Dialogue\nfrom msgd import store\n"
                      "store._secret()\nimport os\nos._exit(0)\n", encoding="utf-8")
    assert private_imports(sample, tmp_path) == ["sample.py:1: from services.senders.email.sender import _Dialogue",
                                                 "sample.py:3: store._secret"]


def test_no_module_is_over_400_lines() -> None:
    long = {str(path.relative_to(ROOT)): n for _, path in modules()
            if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}, f"split these modules (at most {MAX_LINES} lines): {long}"
