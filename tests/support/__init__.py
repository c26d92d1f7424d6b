"""What the test modules share: constants (``values``), the CLI runner (``cli``), built
editions and messages (``editions``, ``sending``), and real servers (``httpd``, ``smtpd``,
``web``, ``browser``), and the guard that keeps connections on loopback (``network``).
Fixtures built on them live in ``tests/conftest.py``."""
