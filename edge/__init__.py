"""Edge runtime: run exported handwriting models on a Raspberry Pi (no TensorFlow)."""
