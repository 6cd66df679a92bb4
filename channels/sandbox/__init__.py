"""The provider sandbox: the providers' wire formats, run here where the real ones are unreachable."""

from channels.sandbox.app import create_sandbox_app
from channels.sandbox.state import SandboxConfig, SandboxState

__all__ = ["SandboxConfig", "SandboxState", "create_sandbox_app"]
