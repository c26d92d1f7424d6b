"""Real test servers shared by the test modules."""
