"""Training: fit, validate, register and describe models from a config."""
