"""Models built from quantized layers: RNN-T (encoder, predictor, joint) and LSTM LMs."""
