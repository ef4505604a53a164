"""The REST API and web page: ``cnslrisk serve`` (FastAPI app built by :func:`main.create_app`)."""

from .main import create_app

__all__ = ["create_app"]
