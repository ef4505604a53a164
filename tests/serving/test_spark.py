"""The registered model on Spark (local mode) via mlflow.pyfunc.spark_udf: the local scorer's numbers."""

from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd
import pytest
from pyspark.sql import SparkSession

from cnslrisk.data.synthetic import generate_cohort
from cnslrisk.serving import load


@pytest.fixture(scope="module")
def spark():
    session = (SparkSession.builder.master("local[2]").appName("cnslrisk-test")
               .config("spark.ui.enabled", "false").config("spark.sql.shuffle.partitions", "2").getOrCreate())
    yield session
    session.stop()


def test_spark_udf_gives_the_local_scorer_numbers(spark, registered):
    mlflow.set_tracking_uri(registered.tracking_uri)
    scorer = load(registered.model_uri, tracking_uri=registered.tracking_uri)
    patients = generate_cohort(300, seed=17)
    columns = ["patient_id", *scorer.model.feature_columns, scorer.model.landmark.response]
    udf = mlflow.pyfunc.spark_udf(spark, registered.model_uri, env_manager="local")
    scored = (spark.createDataFrame(patients[columns]).repartition(3)
              .withColumn("prediction", udf(*columns)).select("prediction.*").toPandas())
    local = scorer.predict(patients[columns])
    scored = scored.set_index("patient_id").loc[local["patient_id"]].reset_index()
    assert list(scored.columns) == list(local.columns)
    numeric = local.select_dtypes("number").columns
    np.testing.assert_allclose(scored[numeric].to_numpy(dtype=float), local[numeric].to_numpy(dtype=float),
                               rtol=1e-12, atol=1e-15, equal_nan=True)
    text = [c for c in local.columns if c not in numeric]
    pd.testing.assert_frame_equal(scored[text].fillna(""), local[text].fillna(""), check_dtype=False)
