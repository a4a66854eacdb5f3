"""admin/reload_file.py: the config file a hot reload reads (checked before it is trusted) and the
`--watch-config` change detector."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from paygate.admin.reload_file import ConfigFileError, FileWatch, read_config_file


def test_reads_a_json_object_and_refuses_what_is_not_one(tmp_path: Path) -> None:
    good = tmp_path / "good.json"
    good.write_text('{"defaultCreditsPerCall": 3}')
    assert read_config_file(str(good)) == {"defaultCreditsPerCall": 3}
    bad = tmp_path / "bad.json"
    bad.write_text('{"adminKey": "sk_live_secret", oops}')
    with pytest.raises(ConfigFileError) as caught:
        read_config_file(str(bad))
    assert "line 1 column" in str(caught.value) and "sk_live_secret" not in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__  # the document is not carried
    big = tmp_path / "big.json"
    big.write_text('{"name": "' + "x" * 100 + '"}')
    with pytest.raises(ConfigFileError, match="larger than 50 bytes"):
        read_config_file(str(big), max_bytes=50)
    latin = tmp_path / "latin.json"
    latin.write_bytes(b'{"name": "\xe9"}')
    with pytest.raises(ConfigFileError, match="not UTF-8"):
        read_config_file(str(latin))


def test_a_change_is_reported_once_it_holds_still(tmp_path: Path) -> None:
    path = tmp_path / "paygate.json"
    path.write_text("{}")
    watch = FileWatch(str(path))
    assert not watch.changed()
    path.write_text('{"defaultCreditsPerCall": 2}')
    assert not watch.changed()  # first sight: maybe still being written
    assert watch.changed()  # the same version a tick later: reload it
    assert not watch.changed()  # and only once
    replacement = tmp_path / "new.json"
    replacement.write_text('{"defaultCreditsPerCall": 3}')
    os.replace(replacement, path)  # an editor's save: a new inode
    assert not watch.changed() and watch.changed()
    path.unlink()
    assert not watch.changed() and not watch.changed()  # gone: nothing to reload
    path.write_text("{}")
    assert not watch.changed() and watch.changed()  # back: reloaded
