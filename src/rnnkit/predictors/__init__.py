"""What `rnnkit.load(path)` returns: one predictor class per task (see nets.py for the network protocols)."""
