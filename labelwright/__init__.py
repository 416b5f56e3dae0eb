"""labelwright: a self-hosted platform for making training data.

Nothing is created at import time: the web app comes from :func:`labelwright.app.create_app`,
the database from :class:`labelwright.store.Store`.
"""

__version__ = "0.1.0"

__all__ = ["Client", "__version__"]


def __getattr__(name: str) -> object:
    """``labelwright.Client``, imported on first use (PEP 562): the client needs httpx, which takes most of a
    second to import, and every ``import labelwright.<module>`` (the server, the CLI) runs this file first."""
    if name == "Client":
        from labelwright.client import Client  # noqa: PLC0415 - lazy on purpose, see the docstring

        return Client
    raise AttributeError(name)
