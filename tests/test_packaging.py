"""digest as a user installs it: the wheel in a fresh virtualenv outside the checkout, run
from an empty folder; every import declared; the templates read from the installed package.

The wheel test builds without a network: the build backend comes from the test environment
(``--no-build-isolation``), the wheel is installed with ``--no-deps --no-index``, and the
dependencies already installed in the test environment are made visible to the new
virtualenv by a ``.pth`` line naming their folder (a path line: that folder's own ``.pth``
files, among them the editable install's, are not run, so ``digest`` comes from the wheel).
"""

from __future__ import annotations

import ast
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from importlib import resources
from pathlib import Path

import pytest

from digest import compose
from tests.support.httpd import FeedServer
from tests.support.values import ROOT, SAMPLES

SAMPLE = SAMPLES / "launch-pad.xml"


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _declared() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return {_normal(re.match(r"[A-Za-z0-9._-]+", spec)[0]) for spec in project["dependencies"]}


# Modules of one distribution that import another one: lxml.cssselect needs cssselect.
NEEDS = {"lxml.cssselect": "cssselect"}


def _imported_top_levels() -> dict[str, str]:
    """Every top-level module imported anywhere in digest/ (and the distributions NEEDS
    names), with one file importing it."""
    found: dict[str, str] = {}
    for path in sorted((ROOT / "digest").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], str(path.relative_to(ROOT)))
                if name in NEEDS:
                    found.setdefault(NEEDS[name], str(path.relative_to(ROOT)))
    return found


def test_every_third_party_import_of_the_package_is_a_declared_dependency():
    providers = importlib.metadata.packages_distributions()
    declared = _declared()
    undeclared = []
    for module, where in sorted(_imported_top_levels().items()):
        if module in sys.stdlib_module_names or module in ("digest", "__future__"):
            continue
        dists = {_normal(d) for d in providers.get(module, [])}
        if not dists & declared:
            undeclared.append(f"{module} (imported in {where}; from {sorted(dists) or '?'})")
    assert not undeclared, f"imported but not in pyproject's dependencies: {undeclared}"


def test_the_default_templates_are_read_from_the_installed_package():
    installed = Path(str(resources.files("digest.templates")))
    assert installed == compose.TEMPLATES
    assert {"base.css", "head.css", "digest.html.j2", "digest.txt.j2"} <= {
        p.name for p in installed.iterdir()
    }
    assert (installed / "web" / "base.html.j2").is_file()


def test_the_editable_install_reads_the_repository_s_templates_folder():
    # `make test` installs digest editable: editing templates/ must change what it renders.
    import digest

    if not Path(digest.__file__).resolve().is_relative_to(ROOT):
        pytest.skip(f"digest is imported from {digest.__file__}, not from this checkout")
    assert compose.TEMPLATES.resolve() == (ROOT / "templates").resolve()


def _run(args: list, *, cwd: Path, env: dict, timeout: float = 120) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, (args, done.returncode, done.stdout, done.stderr)
    return done


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A fresh virtualenv outside the checkout with digest installed from its wheel; its bin/."""
    base = tmp_path_factory.mktemp("wheel")
    source = base / "source"  # built from a copy: the build leaves nothing in the checkout
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build")
    for name in ("digest", "templates"):
        shutil.copytree(ROOT / name, source / name, ignore=ignore)
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DIGEST_", "PYTHON", "PIP_INDEX", "PIP_EXTRA"))
    }
    env["PIP_NO_INDEX"] = "1"
    env["PIP_FIND_LINKS"] = ""
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    _run(
        [
            *pip,
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-q",
            "-w",
            base / "dist",
            source,
        ],
        cwd=base,
        env=env,
    )
    wheel = next((base / "dist").glob("digest-*.whl"))
    venv = base / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=base, env=env)
    python = venv / "bin" / "python"
    _run(
        [*pip, "--python", python, "install", "--no-deps", "--no-index", "-q", wheel],
        cwd=base,
        env=env,
    )
    site = Path(
        _run(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            cwd=base,
            env=env,
        ).stdout.strip()
    )
    (site / "zz_test_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return venv / "bin"


def test_the_wheel_works_from_an_empty_folder_outside_the_checkout(installed, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DIGEST_", "PYTHON"))}
    folder = tmp_path / "newsletter"
    folder.mkdir()
    where = _run(
        [
            installed / "python",
            "-c",
            "import digest, digest.templates as t; print(digest.__file__); print(t.__file__)",
        ],
        cwd=folder,
        env=env,
    ).stdout
    assert all(Path(line).is_relative_to(installed.parent) for line in where.split()), where

    said = _run([installed / "digest", "init"], cwd=folder, env=env).stdout
    assert "starter newsletter definition" in said
    assert {"digest.toml", "example-feed.xml", ".env", "subscribers"} <= {
        p.name for p in folder.iterdir()
    }
    _run([installed / "digest", "fetch"], cwd=folder, env=env)  # the starter's example feed

    with FeedServer() as server:
        url = server.add("/launch-pad.xml", body=SAMPLE.read_bytes())
        config = folder / "digest.toml"
        config.write_text(
            config.read_text().replace('feeds = ["example-feed.xml"]', f'feeds = ["{url}"]')
        )
        fetched = _run([installed / "digest", "fetch"], cwd=folder, env=env).stdout
        assert server.requests_to("/launch-pad.xml") and "+7 new" in fetched, fetched
    _run([installed / "digest", "preview"], cwd=folder, env=env)
    html = (folder / "preview" / "digest.html").read_text(encoding="utf-8")
    assert "Heavy-lift rocket clears static fire" in html  # from the served feed
    assert "Your newsletter is set up" in html  # from the starter's example feed
    assert "<style" in html  # head.css, read from the installed templates

    # A folder of the user's own templates is looked up first, the installed ones after it.
    mine = folder / "my-templates"
    mine.mkdir()
    default = (ROOT / "templates" / "digest.txt.j2").read_text(encoding="utf-8")
    (mine / "digest.txt.j2").write_text("FROM MY OWN TEMPLATE\n" + default, encoding="utf-8")
    _run([installed / "digest", "preview"], cwd=folder, env={**env, "DIGEST_TEMPLATES": str(mine)})
    text = (folder / "preview" / "digest.txt").read_text(encoding="utf-8")
    assert text.startswith("FROM MY OWN TEMPLATE") and "Heavy-lift rocket" in text


def test_the_wheel_carries_every_catalog_and_reads_it(installed, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DIGEST_", "PYTHON"))}
    said = _run(
        [
            installed / "python",
            "-c",
            "from digest import i18n; print(i18n.LOCALES); print(','.join(i18n.shipped())); "
            "print(i18n.translations('fr_CA').gettext('Read more'))",
        ],
        cwd=tmp_path,
        env=env,
    ).stdout.splitlines()
    assert Path(said[0]).is_relative_to(installed.parent), said
    assert said[1:] == ["ar,de,en,es,fr,it,ja,pt", "Lire la suite"]


def test_init_in_an_empty_folder_writes_a_working_starter(tmp_path):
    from typer.testing import CliRunner

    from digest.cli import app

    runner = CliRunner()
    first = runner.invoke(app, ["init"])
    assert first.exit_code == 0, first.output
    starter = (tmp_path / "digest.toml").read_text()
    assert "EDIT" in starter and 'feeds = ["example-feed.xml"]' in starter
    for command in (["fetch"], ["preview"]):
        done = runner.invoke(app, command)
        assert done.exit_code == 0, (command, done.output)
    assert "Your newsletter is set up" in (tmp_path / "preview" / "digest.txt").read_text()
    # A second init keeps what the user edited.
    (tmp_path / "digest.toml").write_text(starter.replace("My Newsletter", "Our Paper"))
    assert runner.invoke(app, ["init"]).exit_code == 0
    assert "Our Paper" in (tmp_path / "digest.toml").read_text()


def test_init_writes_no_starter_where_a_definition_is_named(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from digest.cli import app

    monkeypatch.setenv("DIGEST_CONFIG", str(ROOT / "digest.toml"))
    assert CliRunner().invoke(app, ["init"]).exit_code == 0
    assert not (tmp_path / "digest.toml").exists()
    assert not (tmp_path / "example-feed.xml").exists()


def _corpus_tests(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The corpus tests of test_feeds.py, run by a pytest of their own under ``env``."""
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    command += [str(ROOT / "tests" / "test_feeds.py"), "-k", "corpus"]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_the_corpus_tests_fail_under_ci_when_the_corpus_is_missing(tmp_path):
    env = {**os.environ, "CI": "true", "DIGEST_TEST_CORPUS": str(tmp_path / "absent")}
    run = _corpus_tests(env)
    assert run.returncode == 1 and "3 error" in run.stdout, run.stdout[-2000:]
    assert "CI is set, so the corpus tests must run" in run.stdout
    env.pop("CI")
    run = _corpus_tests(env)
    assert run.returncode == 0 and "3 skipped" in run.stdout, run.stdout[-2000:]
