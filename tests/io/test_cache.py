"""Where radsynth keeps what it can rebuild: $RADSYNTH_CACHE, else the XDG cache, else ~/.cache."""

from __future__ import annotations

from radsynth.io.cache import cache_root


def test_the_cache_is_radsynth_cache_else_xdg_else_home(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("RADSYNTH_CACHE", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert cache_root() == tmp_path / "home" / ".cache" / "radsynth"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "xdg" / "radsynth"
    monkeypatch.setenv("RADSYNTH_CACHE", str(tmp_path / "mine"))
    assert cache_root() == tmp_path / "mine"
