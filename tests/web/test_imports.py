"""What the web processes may import: the HTTP layer never TensorFlow, Keras or worker/ (it starts fast and its
image stays small), and the shared core (web.core) not even Flask, so the worker uses it without the HTTP layer."""

import pkgutil
import subprocess
import sys
from pathlib import Path

import web.core

ROOT = Path(__file__).resolve().parents[2]

WEB_CHECK = """
import sys
from web.app import create_app
from web.core.settings import Settings
import web.cli, web.core.jobs, web.portal, web.api
settings = Settings.from_env({}, database_url="sqlite://", secret_key="x", local_storage_dir=sys.argv[1])
app = create_app(settings)
heavy = sorted(m for m in sys.modules if m.split(".")[0] in {"tensorflow", "keras", "worker", "torch"})
print(",".join(heavy))
"""

CORE_CHECK = """
import importlib, sys
for name in sys.argv[1:]:
    importlib.import_module(name)
banned = {"flask", "werkzeug", "tensorflow", "keras", "worker"}
print(",".join(sorted(m for m in sys.modules if m.split(".")[0] in banned)))
"""


def _run(code: str, *args: str) -> str:
    done = subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, check=True, capture_output=True, text=True)
    return done.stdout.strip()


def test_web_imports_no_tensorflow(tmp_path: Path) -> None:
    assert _run(WEB_CHECK, str(tmp_path)) == ""


def test_core_imports_no_flask_and_no_tensorflow() -> None:
    modules = sorted(info.name for info in pkgutil.walk_packages(web.core.__path__, "web.core."))
    assert "web.core.db" in modules and "web.core.registry.services" in modules, modules
    assert _run(CORE_CHECK, *modules) == ""
