"""What `digest init` writes into an empty folder: a commented starter ``digest.toml`` and the
example feed it names, shipped inside the package and read with ``importlib.resources``."""
