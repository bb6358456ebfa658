"""Machine-learning models: anomaly detection on sensor streams and remaining useful life."""
