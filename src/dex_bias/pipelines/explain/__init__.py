"""The ``explain`` pipeline: LIME of the expected age over facial regions, and its quality."""
