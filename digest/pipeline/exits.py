"""Exit codes of `digest send` and `digest check` (the README documents them)."""

EXIT_OK, EXIT_INCOMPLETE, EXIT_FAILED, EXIT_STOPPED = 0, 10, 11, 12
EXIT_CHECK = 13  # `digest check` found errors in the composed message: nothing was sent
EXIT_LOCKED = 14  # another run is sending the list: this one sent nothing
