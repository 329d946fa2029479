"""rnnkit: recurrent sequence models you can read, trust and train."""

__version__ = "0.1.0"
