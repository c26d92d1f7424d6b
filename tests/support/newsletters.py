"""Newsletter definitions for tests beyond the repository's own digest.toml."""

from __future__ import annotations

from pathlib import Path

from tests.support.values import ROOT

TWO_LISTS = ("daily", "weekly")  # the lists of two_list_config, in its order


def two_list_config(folder: Path) -> Path:
    """digest.toml with a second list, "weekly", beside "daily" (feeds read from the
    repository); written into ``folder``, its path returned."""
    text = (ROOT / "digest.toml").read_text().replace('"samples/', f'"{ROOT}/samples/')
    weekly = text[text.index("[[lists]]") : text.index("[[sections]]")].replace(
        'name = "daily"', 'name = "weekly"', 1
    )
    path = folder / "two-lists.toml"
    path.write_text(text + "\n" + weekly)
    return path


def localized_config(folder: Path, locale: str) -> Path:
    """digest.toml with its list in ``locale`` (feeds read from the repository); written
    into ``folder``, its path returned."""
    text = (ROOT / "digest.toml").read_text().replace('"samples/', f'"{ROOT}/samples/')
    assert 'locale = "en"' in text
    path = folder / f"{locale}.toml"
    path.write_text(text.replace('locale = "en"', f'locale = "{locale}"', 1))
    return path


def list_config(folder: Path, **keys: object) -> Path:
    """digest.toml with ``keys`` added to its "daily" list (strings quoted, numbers as they
    are; feeds read from the repository), written into ``folder``; its path returned."""
    text = (ROOT / "digest.toml").read_text().replace('"samples/', f'"{ROOT}/samples/')
    lines = "".join(
        f"{name} = {value!s}\n" if isinstance(value, int) else f'{name} = "{value}"\n'
        for name, value in keys.items()
    )
    text = text.replace('name = "daily"\n', f'name = "daily"\n{lines}', 1)
    path = folder / "digest.toml"
    path.write_text(text)
    return path
