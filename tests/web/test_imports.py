"""The web process never imports TensorFlow, Keras or worker/: it starts fast and its image stays small."""

import subprocess
import sys
from pathlib import Path

CHECK = """
import sys
from web.app import create_app
from web.core.settings import Settings
import web.cli, web.core.jobs, web.portal, web.api
settings = Settings.from_env({}, database_url="sqlite://", secret_key="x", local_storage_dir=sys.argv[1])
app = create_app(settings)
heavy = sorted(m for m in sys.modules if m.split(".")[0] in {"tensorflow", "keras", "worker", "torch"})
print(",".join(heavy))
"""


def test_web_imports_no_tensorflow(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", CHECK, str(tmp_path)], cwd=root, check=True, capture_output=True, text=True
    )
    assert done.stdout.strip() == ""
