"""digest's default templates. This folder is installed as the package ``digest.templates``
(see setup.py) and read with ``importlib.resources``; this file only makes it a package.

To restyle, copy the templates you change into a folder of your own and set DIGEST_TEMPLATES
to it: digest looks there first and falls back to these."""
