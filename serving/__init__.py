"""Serving: scoring one patient or many (Python, files, Spark), the REST API and the web page."""

from .scoring import Scorer, load

__all__ = ["Scorer", "load"]
