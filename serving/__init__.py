"""Serving: scoring one patient or many, the REST API, the web page and the command line."""
