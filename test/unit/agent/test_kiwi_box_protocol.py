"""
The protocol: every job the host can build parses back to the same job
in the box, and the box's parser refuses what it cannot take.
"""
import pytest

from kiwi_boxed_plugin.agent.kiwi_box_protocol import (
    BoxJob, ProtocolError, Share, carriable_name, carried_file_path, custom_mount_problem,
    encode_job, kiwi_arg_problem, kiwi_version_problem, no_halt_requested, normalize_path,
    parse_job, split_cmdline, unmark,
)

BASE = 'root=/dev/vda1 rw quiet console=hvc0 '
JOB = 'kiwi="--debug --type tbz system build --allow-existing-root"'

SSHFS_REMOTES = (
    ' host_kiwidescription=_joe@10.0.2.2:/home/joe/desc_'
    ' host_kiwibundle=_joe@10.0.2.2:/home/joe/out_'
)
BUILD = ('system', 'build')


class TestUnmark:
    @pytest.mark.parametrize('value, expected', [
        ('_9p_', '9p'), ('9p', '9p'), ('_', '_'), ('__', ''), ('_a', '_a'),
        ('a_', 'a_'), ('_a_b_', 'a_b'), ('', ''),
    ])
    def test_unmark(self, value, expected):
        assert unmark(value) == expected


class TestSplitCmdline:
    def test_splits_kiwi_arguments_on_white_space(self):
        args, parameters, flags = split_cmdline(
            BASE + 'kiwi="  --debug\tsystem  build  " kiwi-no-halt sharing_backend=_9p_'
        )
        assert args == ['--debug', 'system', 'build']
        assert parameters == {
            'root': '/dev/vda1', 'console': 'hvc0', 'sharing_backend': '9p'
        }
        assert flags == ['rw', 'quiet', 'kiwi-no-halt']

    def test_shell_syntax_is_kept_as_text(self):
        args, _, _ = split_cmdline(
            'kiwi="system build --profile $(reboot) --type `id`;rm" x=1'
        )
        assert args == ['system', 'build', '--profile', '$(reboot)', '--type', '`id`;rm']

    def test_only_the_first_pair_of_quotes_counts(self):
        args, parameters, flags = split_cmdline(
            'kiwi="system build" note="a b"'
        )
        assert args == ['system', 'build']
        assert parameters == {'note': '"a'}
        assert flags == ['b"']

    def test_words_around_the_job_are_parameters(self):
        _, parameters, _ = split_cmdline('a=1 kiwi="system build"b=2 c=_3_')
        assert parameters == {'a': '1', 'b': '2', 'c': '3'}

    def test_value_with_equals_sign(self):
        _, parameters, _ = split_cmdline('kiwi="system build" ssh_key=_AAAA+b/c==_')
        assert parameters['ssh_key'] == 'AAAA+b/c=='

    @pytest.mark.parametrize('text, reason', [
        ('root=/dev/vda1', 'carries no kiwi='),
        ('root="/dev/vda1" kiwi="system build"', 'carries no kiwi='),
        ('kiwi="system build', 'is not closed'),
        ('kiwi=system build', 'carries no kiwi='),
    ])
    def test_malformed(self, text, reason):
        with pytest.raises(ProtocolError, match=reason):
            split_cmdline(text)


class TestParseJob:
    def test_defaults(self):
        job = parse_job(BASE + JOB)
        assert job == BoxJob(
            kiwi_args=('--debug', '--type', 'tbz', 'system', 'build', '--allow-existing-root')
        )
        assert job.sharing_backend == ''
        assert not job.no_halt
        assert [share.target for share in job.shares] == ['/bundle', '/description']

    def test_every_parameter(self):
        job = parse_job(
            BASE + JOB + ' kiwi-no-halt kiwi_version=_9.24.61_ custom_mount=_/srv/repo/_'
            ' sharing_backend=_sshfs_ ssh_key=_AAAAC3Nza_ ssh_key_type=_ssh-ed25519_'
            ' kiwi_ssh_port=_40022_' + SSHFS_REMOTES
            + ' host_custompath=_joe@10.0.2.2:/srv/repo_'
        )
        assert job.no_halt
        assert job.kiwi_version == '9.24.61'
        assert job.custom_mount == '/srv/repo'
        assert job.sharing_backend == 'sshfs'
        assert job.ssh_port == 40022
        assert (job.ssh_key, job.ssh_key_type) == ('AAAAC3Nza', 'ssh-ed25519')
        assert job.shares == [
            Share('kiwibundle', '/bundle', 'joe@10.0.2.2:/home/joe/out'),
            Share('kiwidescription', '/description', 'joe@10.0.2.2:/home/joe/desc'),
            Share('custompath', '/srv/repo', 'joe@10.0.2.2:/srv/repo'),
        ]

    def test_kiwi_no_halt_inside_the_job_is_not_the_flag(self):
        job = parse_job('kiwi="system build --profile kiwi-no-halt"')
        assert not job.no_halt

    @pytest.mark.parametrize('backend', ['9p', 'virtiofs'])
    def test_backends(self, backend):
        assert parse_job(JOB + f' sharing_backend=_{backend}_').sharing_backend == backend

    @pytest.mark.parametrize('extra, reason', [
        (' sharing_backend=_nfs_', "unknown sharing_backend 'nfs'"),
        (' kiwi_version=_10;reboot_', 'not a kiwi version'),
        (' kiwi_version=_latest_', 'not a kiwi version'),
        (' kiwi_ssh_port=_0_', 'not a port number'),
        (' kiwi_ssh_port=_65536_', 'not a port number'),
        (' kiwi_ssh_port=_22x_', 'not a port number'),
        (' custom_mount=_relative/path_', 'not an absolute path'),
        (' custom_mount=_/bundle/sub_', "hide the box's /bundle"),
        (' sharing_backend=_sshfs_', 'host_kiwibundle=_user@host:/path_'),
        (' sharing_backend=_sshfs_ host_kiwibundle=_10.0.2.2:/out_',
         'host_kiwibundle=_user@host:/path_'),
        (' sharing_backend=_sshfs_ host_kiwibundle=_joe@10.0.2.2:/out_',
         'host_kiwidescription=_user@host:/path_'),
        (' sharing_backend=_sshfs_ custom_mount=_/srv_' + SSHFS_REMOTES,
         'host_custompath=_user@host:/path_'),
    ])
    def test_rejected(self, extra, reason):
        with pytest.raises(ProtocolError, match=reason):
            parse_job(BASE + JOB + extra)

    @pytest.mark.parametrize('version', ['10.3.11', '9.24.61', '10.0.0rc1', '10.2.post1'])
    def test_versions(self, version):
        assert parse_job(JOB + f' kiwi_version=_{version}_').kiwi_version == version


class TestCheckKiwiJob:
    @pytest.mark.parametrize('job, reason', [
        ('kiwi=""', 'is empty'),
        ('kiwi="   "', 'is empty'),
        ('kiwi="system create --root /x"', "must be 'system build'"),
        ('kiwi="--type tbz image info"', "must be 'system build'"),
        ('kiwi="system build --description /x"', 'must not set --description'),
        ('kiwi="system build --target-dir=/x"', 'must not set --target-dir'),
        ('kiwi="--logfile /x system build"', 'must not set --logfile'),
    ])
    def test_rejected(self, job, reason):
        with pytest.raises(ProtocolError, match=reason):
            parse_job(job)


class TestCustomMount:
    @pytest.mark.parametrize('path, expected', [
        ('/srv/repo', '/srv/repo'), ('/srv/repo/', '/srv/repo'),
        ('//srv//repo', '/srv/repo'), ('/home/joe/x', '/home/joe/x'),
        ('/var/lib/repo', '/var/lib/repo'), ('/descriptions', '/descriptions'),
    ])
    def test_accepted(self, path, expected):
        assert custom_mount_problem(path) == ''
        assert normalize_path(path) == expected

    @pytest.mark.parametrize('path', [
        '/', '/description', '/bundle', '/result', '/result/x', '/description/a',
        '/proc', '/etc', '/usr', '/opt', '/srv/../etc', '/tmp', '/run', '/root',
    ])
    def test_rejected(self, path):
        assert 'would hide' in custom_mount_problem(path)

    @pytest.mark.parametrize('path, problem', [
        ('relative', 'not an absolute path'), ('/a b', 'white space'), ('/a"b', 'white space'),
    ])
    def test_not_carriable(self, path, problem):
        assert problem in custom_mount_problem(path)


# every kind of job the host builds: VM jobs of each backend (sshfs with
# remotes, port and login key), container jobs, kiwi versions, extra
# shares, odd but carriable kiwi arguments
HOST_JOBS = [
    BoxJob(kiwi_args=BUILD),
    BoxJob(kiwi_args=BUILD, sharing_backend='9p'),
    BoxJob(kiwi_args=('--type=tbz', '--profile=a', 'system', 'build', '--add-package=vim'),
           sharing_backend='virtiofs', custom_mount='/srv/repo', kiwi_version='10.3.11'),
    BoxJob(kiwi_args=('--debug',) + BUILD + ('--signing-key=/bundle/.boxbuild.files/1/k.asc',),
           sharing_backend='sshfs', no_halt=True, ssh_port=40022,
           ssh_key='AAAAC3NzaC1lZDI1NTE5AAAAI+/=', ssh_key_type='ssh-ed25519',
           custom_mount='/srv/repo',
           remotes={'kiwibundle': 'joe@10.0.2.2:/tmp/run/shares/kiwibundle/',
                    'kiwidescription': 'joe@10.0.2.2:/tmp/run/shares/kiwidescription/',
                    'custompath': 'joe@10.0.2.2:/tmp/run/shares/custompath/'}),
    BoxJob(kiwi_args=BUILD + ('--add-repo=http://x/$(id);`reboot`,rpm-md,a,1',),
           no_halt=True, kiwi_version='9.24.61'),
    BoxJob(kiwi_args=BUILD + ('--add-package=kiwi-no-halt', "--profile='q'")),
]


class TestRoundTrip:
    @pytest.mark.parametrize('job', HOST_JOBS)
    def test_the_box_reads_what_the_host_wrote(self, job):
        assert parse_job(encode_job(job)) == job

    @pytest.mark.parametrize('job', HOST_JOBS)
    def test_leading_kernel_words_do_not_change_the_job(self, job):
        assert parse_job(encode_job(job, ['root=/dev/vda3', 'rd.plymouth=0', 'console=hvc0'])) \
            == job

    @pytest.mark.parametrize('job', HOST_JOBS)
    def test_no_halt_read_the_same_way_everywhere(self, job):
        assert no_halt_requested(encode_job(job)) == job.no_halt

    @pytest.mark.parametrize('job', [
        BoxJob(kiwi_args=BUILD + ('a"b',)),
        BoxJob(kiwi_args=BUILD + ('a b',)),
        BoxJob(kiwi_args=BUILD + ('',)),
        BoxJob(kiwi_args=BUILD, custom_mount='/a b'),
        BoxJob(kiwi_args=BUILD, ssh_key='AA"AA', ssh_key_type='ssh-ed25519'),
    ])
    def test_what_cannot_travel_is_refused(self, job):
        with pytest.raises(ProtocolError):
            encode_job(job)


class TestWords:
    @pytest.mark.parametrize('argument, problem', [
        ('--add-package="vim"', "'\"'"), ('--set-repo=a b', 'white space'),
        ('a\tb', 'white space'), ('', 'empty'),
    ])
    def test_kiwi_arg_problem(self, argument, problem):
        assert problem in kiwi_arg_problem(argument)

    def test_kiwi_arg_carried(self):
        assert kiwi_arg_problem('--add-package=vim') == ''

    @pytest.mark.parametrize('version, ok', [
        ('10.2.3', True), ('9.24.61', True), ('10.0.0rc1', True), ('1!10.0', False),
        ('10.2.3_rc1', False), ('latest', False), ('10;reboot', False),
    ])
    def test_one_rule_for_kiwi_versions(self, version, ok):
        assert (kiwi_version_problem(version) == '') == ok

    def test_carried_files(self):
        assert carriable_name('my key "1".asc') == 'my_key__1_.asc'
        assert carried_file_path('1/k.asc') == '/bundle/.boxbuild.files/1/k.asc'
