"""Serving: scoring one patient or many, the REST API, the web page and the command line."""

from .scoring import Scorer, load

__all__ = ["Scorer", "load"]
