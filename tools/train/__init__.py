"""Training tools for int4rt models: synthetic corpus, PyTorch RNN-T and LM, RNN-T loss."""
