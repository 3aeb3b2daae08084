"""The torchvision zoo tests run in the zoo venv (scripts/zoo-env.sh, scripts/test-zoo.sh). The GL platform
must be chosen before OpenGL is imported anywhere, hence here."""
import os

os.environ.setdefault("EGL_PLATFORM", "surfaceless")
os.environ["PYOPENGL_PLATFORM"] = "egl"


def pytest_configure(config):
    config.addinivalue_line("markers", "zoo: torchvision architectures (needs torchvision: scripts/test-zoo.sh)")
