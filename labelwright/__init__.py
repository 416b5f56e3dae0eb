"""labelwright: a self-hosted platform for making training data.

Nothing is created at import time: the web app comes from :func:`labelwright.app.create_app`,
the database from :class:`labelwright.store.Store`.
"""

__version__ = "0.1.0"

__all__ = ["Client", "__version__"]


def __getattr__(name):  # lazy, so `import labelwright` stays light
    if name == "Client":
        from labelwright.client import Client

        return Client
    raise AttributeError(name)
