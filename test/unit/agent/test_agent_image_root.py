"""
The image root word of the job (--keep-image-root): encoded, parsed,
and the agent leaving kiwi's image root in the bundle as it is.
"""
import os
import subprocess

import pytest

from kiwi_boxed_plugin.agent import kiwi_box_agent as agent
from kiwi_boxed_plugin.agent import kiwi_box_protocol as protocol
from kiwi_boxed_plugin.agent.kiwi_box_protocol import BoxJob, encode_job, parse_job

JOB = 'kiwi="--type tbz system build"'


class TestProtocolWord:
    def test_encoded_as_a_flag(self):
        words = protocol.job_words(BoxJob(('system', 'build'), keep_image_root=True))
        assert words == ['kiwi-keep-image-root', 'kiwi="system build"']

    def test_not_encoded_unless_asked(self):
        assert 'kiwi-keep-image-root' not in encode_job(BoxJob(('system', 'build')))

    def test_parsed(self):
        assert parse_job('kiwi-keep-image-root ' + JOB).keep_image_root
        assert not parse_job(JOB).keep_image_root

    def test_inside_kiwis_arguments_it_does_not_count(self):
        assert not parse_job('kiwi="system build kiwi-keep-image-root"').keep_image_root

    def test_round_trip(self):
        job = BoxJob(('system', 'build'), no_halt=True, keep_image_root=True)
        assert parse_job(encode_job(job)) == job

    def test_is_a_job_word(self):
        assert protocol.is_job_word('kiwi-keep-image-root')


class TestAgentKeepsTheImageRoot:
    @pytest.fixture
    def box(self, tmp_path, monkeypatch):
        bundle = tmp_path / 'bundle'
        bundle.mkdir()
        monkeypatch.setattr(agent, 'RESULT_CODE', str(bundle / 'result.code'))
        monkeypatch.setattr(agent, 'RESULT_LOG', str(bundle / 'result.log'))
        monkeypatch.setattr(agent, 'BUNDLE_DIR', str(bundle))
        monkeypatch.setattr(agent, 'RESULT_DIR', str(tmp_path / 'result'))
        return tmp_path

    def image_root(self, box):
        root = box / 'result' / 'build' / 'image-root'
        (root / 'etc').mkdir(parents=True)
        (root / 'etc' / 'hostname').write_text('box\n')
        os.chmod(root / 'etc' / 'hostname', 0o640)
        os.symlink('usr/bin', root / 'bin')
        os.link(root / 'etc' / 'hostname', root / 'etc' / 'hardlink')
        try:
            os.setxattr(root / 'etc' / 'hostname', 'user.kiwi', b'kept')
        except OSError:
            pass
        (box / 'result' / 'build' / 'other').write_text('not kept\n')
        return root

    def test_argv(self):
        assert agent.keep_image_root_argv('/result', '/bundle') == [
            'cp', '-a', '--no-target-directory', '--',
            '/result/build/image-root', '/bundle/build/image-root'
        ]

    def test_copied_as_it_is(self, box):
        root = self.image_root(box)
        box_agent = agent.Agent(
            parse_job('kiwi-keep-image-root ' + JOB), in_container=True, console=agent.Console()
        )
        box_agent.start_result()
        assert box_agent.keep_image_root() == 0
        kept = box / 'bundle' / 'build' / 'image-root'
        assert os.listdir(box / 'bundle' / 'build') == ['image-root']
        assert (kept / 'etc' / 'hostname').read_text() == 'box\n'
        assert os.stat(kept / 'etc' / 'hostname').st_mode & 0o777 == 0o640
        assert os.readlink(kept / 'bin') == 'usr/bin'
        assert os.stat(kept / 'etc' / 'hostname').st_ino == \
            os.stat(kept / 'etc' / 'hardlink').st_ino
        if 'user.kiwi' in os.listxattr(root / 'etc' / 'hostname'):
            assert os.getxattr(kept / 'etc' / 'hostname', 'user.kiwi') == b'kept'
        assert 'kept the image root in the bundle' in (box / 'bundle' / 'result.log').read_text()

    def test_nothing_to_keep(self, box):
        box_agent = agent.Agent(
            parse_job('kiwi-keep-image-root ' + JOB), in_container=True, console=agent.Console()
        )
        assert box_agent.keep_image_root() == 0
        assert not (box / 'bundle' / 'build').exists()

    @pytest.mark.parametrize('build_code, expected', [(0, 0), (3, 3)])
    def test_build_keeps_it_also_after_a_failure(self, box, monkeypatch, build_code, expected):
        self.image_root(box)
        box_agent = agent.Agent(
            parse_job('kiwi-keep-image-root ' + JOB), in_container=True, console=agent.Console()
        )
        box_agent.start_result()
        monkeypatch.setattr(box_agent, 'run_kiwi', lambda argv, environment: build_code)
        # build() clears the box's own /result first: make it afresh
        monkeypatch.setattr(agent.shutil, 'rmtree', lambda *args, **kwargs: None)
        assert box_agent.build({}) == expected
        assert (box / 'bundle' / 'build' / 'image-root' / 'etc' / 'hostname').exists()

    def test_copy_failure_fails_the_job(self, box):
        self.image_root(box)

        def run(argv, **kwargs):
            return subprocess.CompletedProcess(argv, 1, b'cp: no space left\n', b'')
        box_agent = agent.Agent(
            parse_job('kiwi-keep-image-root ' + JOB), in_container=True,
            console=agent.Console(), run=run
        )
        box_agent.start_result()
        assert box_agent.keep_image_root() == 1
        assert 'cp: no space left' in (box / 'bundle' / 'result.log').read_text()

    def test_not_asked_not_kept(self, box, monkeypatch):
        self.image_root(box)
        box_agent = agent.Agent(parse_job(JOB), in_container=True, console=agent.Console())
        box_agent.start_result()
        monkeypatch.setattr(box_agent, 'run_kiwi', lambda argv, environment: 0)
        monkeypatch.setattr(agent.shutil, 'rmtree', lambda *args, **kwargs: None)
        assert box_agent.build({}) == 0
        assert not (box / 'bundle' / 'build').exists()
