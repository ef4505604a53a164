"""The data dictionary's eight baseline covariates as training-config overrides.

The bundled config trains on pCE and LMD only (what 36 events support); tests that exercise numeric and
categorical covariates (ranges, levels, applicability warnings, contributions) train on all eight.
"""

BASELINE_COVARIATES = {
    "features.binary": ["pce", "lmd", "steroids", "ldh_elevated"],
    "features.categorical": ["cnsl_type"],
    "features.numeric": ["age", "ecog", "prior_lines"],
}
