from kiwi_stackbuild_plugin.listing import format_table, stash_rows


def test_rows_per_name_newest_first_and_table():
    images = [
        {
            'Id': 'old', 'Names': ['localhost/base:latest', 'localhost/base:v1'],
            'Size': 210730055, 'Created': 0,
            'Labels': {
                'org.opensuse.kiwi.stash.image-name': 'Leap',
                'org.opensuse.kiwi.stash.image-version': '1.0',
                'org.opensuse.kiwi.stash.author': 'Me',
                'org.opensuse.kiwi.stash.arch': 'x86_64',
            },
        },
        {'Id': 'new', 'Names': ['quay.io/x/y:2'], 'Size': 1000, 'Created': 86400,
         'Labels': None},
        {'Id': 'dangling', 'Names': None, 'Size': 1, 'Created': 5},
    ]
    rows = stash_rows(images)
    assert rows == [
        ('quay.io/x/y', '2', '1 kB', '1970-01-02 00:00:00 UTC', '', ''),
        ('base', 'latest', '211 MB', '1970-01-01 00:00:00 UTC', 'x86_64', 'Leap 1.0 by Me'),
        ('base', 'v1', '211 MB', '1970-01-01 00:00:00 UTC', 'x86_64', 'Leap 1.0 by Me'),
    ]
    assert format_table(rows[1:2]).splitlines() == [
        'NAME  TAG     SIZE    CREATED                  ARCH    DESCRIPTION',
        'base  latest  211 MB  1970-01-01 00:00:00 UTC  x86_64  Leap 1.0 by Me',
    ]
