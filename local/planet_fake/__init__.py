"""A faithful fake of Planet's Orders API v2 for local runs and tests. See README.md."""

from .app import create_app
from .config import FakePlanetConfig
from .server import FakePlanetServer, start_in_thread

__all__ = ["FakePlanetConfig", "FakePlanetServer", "create_app", "start_in_thread"]
