"""microsip-bridge: the automation API that the MicroSIP softphone lacks.

This module imports nothing: the hook, which MicroSIP waits for, imports the package.
"""

__version__ = "0.1.0"
