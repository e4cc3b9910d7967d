"""The original kit's serving design, rewritten in our own code as the baseline."""
