"""Training: fits the models of `models.spec` and publishes their artifacts."""
