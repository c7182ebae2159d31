"""The Dockerfile: its targets, and a web image whose requirements cannot pull in TensorFlow or Keras."""

from __future__ import annotations

import ast
import re
import shlex
import sys
from importlib.metadata import PackageNotFoundError, packages_distributions, requires
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (REPO_ROOT / "Dockerfile").read_text()
FORBIDDEN_IN_WEB = {"tensorflow", "tensorflow-cpu", "keras", "tf-keras", "torch"}
# The web tier runs these files: web/ and the parts of mirnet that never import TensorFlow.
WEB_SOURCES = [
    *sorted((REPO_ROOT / "web").rglob("*.py")),
    REPO_ROOT / "mirnet/imageio.py",
    REPO_ROOT / "mirnet/metrics.py",
]


def build_arg(name: str) -> list[str]:
    match = re.search(rf"^ARG {name}=(.+)$", DOCKERFILE, re.MULTILINE)
    assert match, f"ARG {name} not found in Dockerfile"
    return shlex.split(match[1])[0].split()


def web_requirements() -> set[str]:
    return {canonicalize_name(Requirement(spec).name) for spec in build_arg("WEB_REQUIREMENTS")}


def installed_closure(specs: list[str]) -> set[str]:
    """``specs`` and everything they require (with extras), from the metadata installed in this venv."""
    seen: set[str] = set()
    todo = [Requirement(spec) for spec in specs]
    while todo:
        requirement = todo.pop()
        name = canonicalize_name(requirement.name)
        key = f"{name}[{','.join(sorted(requirement.extras))}]"
        if key in seen:
            continue
        seen.add(key)
        try:
            children = [Requirement(spec) for spec in requires(name) or []]
        except PackageNotFoundError:
            continue  # not installed here (another platform's dependency); checked by name above
        extras = requirement.extras or {""}
        todo += [c for c in children if c.marker is None or any(c.marker.evaluate({"extra": e}) for e in extras)]
    return {key.split("[")[0] for key in seen}


def imported_distributions(paths: list[Path]) -> set[str]:
    """Distributions that provide the third-party top-level modules these files import."""
    modules: set[str] = set()
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module.split(".")[0])
    providers = packages_distributions()
    ours = {"web", "mirnet", "worker"}
    third_party = {m for m in modules - ours if m not in sys.stdlib_module_names and m != "__future__"}
    return {canonicalize_name(providers[m][0]) for m in third_party}


def test_three_targets() -> None:
    stages = re.findall(r"^FROM \S+ AS (\S+)$", DOCKERFILE, re.MULTILINE)
    assert {"base", "web", "worker", "worker-gpu"} <= set(stages)


def test_web_requirements_exclude_tensorflow_and_keras_transitively() -> None:
    closure = installed_closure(build_arg("WEB_REQUIREMENTS"))
    assert web_requirements() <= closure
    assert "flask" in closure and "werkzeug" in closure, "the closure is computed from installed metadata"
    assert not closure & FORBIDDEN_IN_WEB


def test_web_requirements_cover_what_web_imports() -> None:
    closure = installed_closure(build_arg("WEB_REQUIREMENTS"))
    missing = imported_distributions(WEB_SOURCES) - closure
    assert not missing, f"the web image lacks {sorted(missing)}"


def test_web_requirements_are_dependencies_of_the_project() -> None:
    import tomllib

    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    declared = {canonicalize_name(Requirement(spec).name) for spec in project["dependencies"]}
    assert web_requirements() <= declared


def test_web_stage_installs_the_package_without_its_dependencies() -> None:
    web_stage = DOCKERFILE.split("AS web\n", 1)[1].split("\nFROM ", 1)[0]
    base_stage = DOCKERFILE.split("AS base\n", 1)[1].split("\nFROM ", 1)[0]
    assert "pip install --no-deps -e ." in base_stage
    assert "-c constraints.txt ${WEB_REQUIREMENTS}" in web_stage
    assert "pip install -c constraints.txt -e ." not in web_stage


def test_gpu_worker_builds_on_a_cuda_tensorflow_image() -> None:
    assert build_arg("TF_GPU_IMAGE")[0].startswith("tensorflow/tensorflow:2.21.")
    assert build_arg("TF_GPU_IMAGE")[0].endswith("-gpu")
    assert re.search(r"^FROM \$\{TF_GPU_IMAGE\} AS worker-gpu$", DOCKERFILE, re.MULTILINE)


def test_copied_paths_exist_and_are_not_ignored() -> None:
    ignored = {line.strip() for line in (REPO_ROOT / ".dockerignore").read_text().splitlines()}
    for line in re.findall(r"^COPY (?!--from)(.+)$", DOCKERFILE, re.MULTILINE):
        *sources, _target = line.split()
        for source in sources:
            assert (REPO_ROOT / source).exists(), source
            assert source not in ignored, f"{source} is copied but excluded by .dockerignore"
    assert {".venv", ".git", "data", "runs", "var"} <= ignored
