"""Host side: load data sets, train, quantize and export models for the edge runtime."""
