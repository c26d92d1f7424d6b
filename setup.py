"""The packages of the wheel (everything else is in pyproject.toml).

digest's own packages are found under digest/; the repository's top-level templates/ folder,
the one publishers read and restyle, is installed as the package ``digest.templates``, so an
installed digest (``pip install .``, ``pipx install .``) carries its default templates and
reads them with ``importlib.resources``. An editable install maps it to the same folder.
"""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["digest", "digest.*"]), "digest.templates"],
    package_dir={"digest.templates": "templates"},
)
