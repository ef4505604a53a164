"""Where the tracking URI comes from: the environment over the config, an explicit flag over both."""

from __future__ import annotations

import mlflow

from cnslrisk.registry import DEFAULT_TRACKING_URI, resolve_model_uri, tracking_uri, use_tracking


def test_environment_tracking_uri_takes_precedence_over_the_config(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert tracking_uri("sqlite:///configured.db") == "sqlite:///configured.db"
    assert tracking_uri(None) == DEFAULT_TRACKING_URI
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert tracking_uri("sqlite:///configured.db") == "http://127.0.0.1:5000"


def test_an_explicit_uri_wins_over_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    explicit = f"sqlite:///{tmp_path / 'explicit.db'}"
    try:
        assert use_tracking(explicit, explicit=True) == explicit
        assert mlflow.get_tracking_uri() == explicit
    finally:
        mlflow.set_tracking_uri(None)


def test_default_model_is_the_champion():
    assert resolve_model_uri(None) == "models:/cnslrisk-pfs1@champion"
    assert resolve_model_uri(None, "other") == "models:/other@champion"
    assert resolve_model_uri("runs:/abc/model") == "runs:/abc/model"
