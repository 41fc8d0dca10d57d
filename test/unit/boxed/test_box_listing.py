import yaml

from kiwi_boxed_plugin import box_listing
from kiwi_boxed_plugin.catalog import BoxCatalog
from kiwi_boxed_plugin.exceptions import KiwiBoxCacheError


def state_of(box, arch):
    return {
        ('tumbleweed', 'x86_64'): 'verified',
        ('tumbleweed', 's390x'): 'unverified',
        ('leap', 'x86_64'): 'modified',
    }.get((box.name, arch.name), 'absent')


def user_catalog(tmp_path):
    path = tmp_path / 'mine.yml'
    path.write_text(yaml.safe_dump({'box': [{
        'name': 'mine', 'mem_mb': '2G',
        'arch': [{'name': 'aarch64', 'container': 'registry.example/mine'}]
    }]}))
    return BoxCatalog(user_candidates=[str(path)])


def test_columns(tmp_path):
    lines = box_listing.box_list_lines(user_catalog(tmp_path), state_of)
    assert lines[0].split() == ['BOX', 'ARCHES', 'MEMORY', 'CPUS', 'CACHED', 'FROM']
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert rows['tumbleweed'] == [
        'tumbleweed', 'x86_64,aarch64,s390x', '8096M', '4',
        'x86_64:verified,s390x:unverified', 'packaged'
    ]
    assert rows['leap'][4] == 'x86_64:modified'
    assert rows['fedora'][4] == '-'
    assert rows['mine'] == ['mine', 'aarch64', '2048M', '-', '-', str(tmp_path / 'mine.yml')]
    # aligned: each column starts at its header's offset on every line
    for header in ('ARCHES', 'CACHED', 'FROM'):
        column = lines[0].index(header)
        assert all(line[column - 2:column] == '  ' and line[column] != ' ' for line in lines)


def test_unknown_cache_state():
    lines = box_listing.box_list_lines(BoxCatalog(user_candidates=[]), None)
    assert all(line.split()[4] == '?' for line in lines[1:])


def test_print_box_list(capsys, mocker, tmp_path, monkeypatch):
    monkeypatch.setenv('KIWI_BOXED_CACHE_DIR', str(tmp_path / 'cache'))
    monkeypatch.setenv('KIWI_BOXED_PLUGIN_CFG', str(tmp_path / 'none.yml'))
    monkeypatch.setenv('HOME', str(tmp_path))
    mocker.patch(
        'kiwi_boxed_plugin.defaults.Defaults.get_user_catalog_candidates',
        return_value=[str(tmp_path / 'none.yml')]
    )
    box_listing.print_box_list()
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[4] == 'CACHED'
    assert out[1].split()[:5] == ['tumbleweed', 'x86_64,aarch64,s390x', '8096M', '4', '-']


def test_print_box_list_with_unusable_cache(capsys, mocker, caplog):
    mocker.patch(
        'kiwi_boxed_plugin.cache.BoxCache', side_effect=KiwiBoxCacheError('not writable')
    )
    mocker.patch(
        'kiwi_boxed_plugin.defaults.Defaults.get_user_catalog_candidates', return_value=[]
    )
    box_listing.print_box_list()
    out = capsys.readouterr().out.splitlines()
    assert out[1].split()[4] == '?'
    assert 'cache state unknown: not writable' in caplog.text
