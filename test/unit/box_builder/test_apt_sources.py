"""
box_builder.apt_sources: the host's Debian mirror from its apt sources
"""
import pytest

from box_builder.apt_sources import (
    choose_mirror, host_apt_sources, host_mirror, parse_apt_sources,
)
from box_builder.errors import BoxBuildError
from box_builder.recipe import load_recipe

DEB822 = '''Types: deb
# a comment
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb deb-src
URIs: http://security.example/debian-security
Suites: bookworm-security
Components: main contrib

Types: deb
Enabled: no
URIs: http://off.example/debian
Suites: bookworm
Components: main
'''


class TestParseAptSources:
    def test_deb822(self):
        assert parse_apt_sources(DEB822, deb822=True) == [
            ('http://mirror.example/debian', ['bookworm', 'bookworm-updates'], ['main']),
            ('http://security.example/debian-security', ['bookworm-security'],
             ['main', 'contrib']),
        ]

    def test_deb822_multi_line_fields_and_several_uris(self):
        text = 'Types: deb\nURIs: http://a.example/d\n http://b.example/d\n' \
            'Suites: bookworm\nComponents: main\n'
        assert parse_apt_sources(text, deb822=True) == [
            ('http://a.example/d', ['bookworm'], ['main']),
            ('http://b.example/d', ['bookworm'], ['main']),
        ]

    def test_deb822_source_only(self):
        text = 'Types: deb-src\nURIs: http://a.example/d\nSuites: bookworm\nComponents: main\n'
        assert parse_apt_sources(text, deb822=True) == []

    def test_one_line_format(self):
        text = (
            '# deb http://commented.example/debian bookworm main\n'
            'deb [arch=amd64 signed-by=/k.gpg] http://mirror.example/debian bookworm main contrib\n'
            'deb-src http://mirror.example/debian bookworm main\n'
            'deb http://other.example/debian bookworm-updates main # trailing\n'
            'garbage\n'
        )
        assert parse_apt_sources(text, deb822=False) == [
            ('http://mirror.example/debian', ['bookworm'], ['main', 'contrib']),
            ('http://other.example/debian', ['bookworm-updates'], ['main']),
        ]


class TestChooseMirror:
    ENTRIES = [
        ('http://security.example/s/', ['bookworm-security'], ['main']),
        ('http://contrib.example/d', ['bookworm'], ['contrib']),
        ('http://mirror.example/debian/', ['bookworm', 'bookworm-updates'], ['main']),
        ('http://second.example/debian', ['bookworm'], ['main']),
    ]

    def test_first_matching_without_trailing_slash(self):
        assert choose_mirror(self.ENTRIES, 'bookworm', 'main') == \
            'http://mirror.example/debian'

    def test_none(self):
        with pytest.raises(BoxBuildError, match="'trixie main'.*--mirror"):
            choose_mirror(self.ENTRIES, 'trixie', 'main')


class TestHostMirror:
    @pytest.fixture
    def apt_dir(self, tmp_path):
        (tmp_path / 'sources.list.d').mkdir()
        return tmp_path

    def test_sources_list_first_then_the_parts_sorted(self, apt_dir):
        (apt_dir / 'sources.list.d' / 'b.list').write_text('')
        (apt_dir / 'sources.list.d' / 'a.sources').write_text('')
        (apt_dir / 'sources.list.d' / 'c.disabled').write_text('')
        assert host_apt_sources(str(apt_dir)) == [
            str(apt_dir / 'sources.list'),
            str(apt_dir / 'sources.list.d' / 'a.sources'),
            str(apt_dir / 'sources.list.d' / 'b.list'),
        ]

    def test_both_formats_in_apt_order(self, apt_dir):
        (apt_dir / 'sources.list').write_text(
            'deb http://security.example/s bookworm-security main\n'
        )
        (apt_dir / 'sources.list.d' / 'debian.sources').write_text(DEB822)
        (apt_dir / 'sources.list.d' / 'later.list').write_text(
            'deb http://later.example/debian bookworm main\n'
        )
        assert host_mirror(load_recipe(), str(apt_dir)) == 'http://mirror.example/debian'

    def test_no_sources_at_all(self, apt_dir):
        with pytest.raises(BoxBuildError, match="'bookworm main'"):
            host_mirror(load_recipe(), str(apt_dir))
